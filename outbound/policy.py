"""Which addresses an outbound request may reach.

Refused: loopback, private (RFC 1918, CGNAT), link-local, unique-local, multicast, unspecified,
reserved and every other non-global range. Operators allow named networks (municipal identity
providers often live in private networks); link-local addresses (169.254.0.0/16, where clouds
serve instance metadata and credentials, and fe80::/10) stay refused whatever is allowed.
Development and tests may allow loopback (their identity provider and webhook receiver run on
127.0.0.1). The rule is applied to the address a connection is really made to
(`outbound.client`); `url_refusal` applies it early to literal addresses typed into a form.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never reachable, whatever an operator allows: instance metadata and link-local neighbours.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS instance metadata over IPv6
)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a NAT64 gateway forwards these to the IPv4 inside
# Host names that are IPv4 addresses in the old inet_aton forms (127.1, 0x7f000001, 2130706433):
# no top-level domain is numeric, so such a name is an address, however it is written.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}\.?$")


class OutboundRefused(httpcore.ConnectError):
    """A connection the policy refused. A subclass of httpcore's ConnectError so every caller
    that handles a failed connection handles this one too; httpx raises it as the `__cause__`
    of its own ConnectError (see `refusal_of`)."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"outbound policy refused {host} ({reason} address)")
        self.host = host
        self.address = address
        self.reason = reason


def refusal_of(error: BaseException) -> OutboundRefused | None:
    """The policy refusal behind an HTTP error, if that is what it was."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, OutboundRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (::ffff:10.0.0.1, 64:ff9b::a00:1), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


class Networks:
    """A set of networks, asked whether an address (text) is in one of them. A plain class, not
    a dataclass of `ipaddress` types: litestar converts the app state it injects with msgspec,
    which cannot type a union of two such classes."""

    __slots__ = ("networks",)

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    def __contains__(self, address: object) -> bool:
        try:
            parsed = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return False
        if not isinstance(parsed, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(parsed.version == n.version and parsed in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


class OutboundPolicy:
    __slots__ = ("allow_loopback", "allowed")

    def __init__(self, allowed_networks: Iterable[str] = (), allow_loopback: bool = False) -> None:
        self.allowed = Networks(allowed_networks)
        self.allow_loopback = allow_loopback  # development and tests only

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be reached (a category word), or None when it may."""
        address = _unwrapped(address)
        if any(address in network for network in ALWAYS_REFUSED):
            return "link-local"
        if address.is_loopback and self.allow_loopback:
            return None
        if address in self.allowed:
            return None
        if address.is_unspecified:
            return "unspecified"
        if address.is_loopback:
            return "loopback"
        if address.is_link_local:
            return "link-local"
        if address.is_multicast:
            return "multicast"
        if address in _UNIQUE_LOCAL:
            return "unique-local"
        if address.is_private:
            return "private"
        if not address.is_global or address.is_reserved:
            return "non-public"
        return None

    def url_refusal(self, url: str) -> str | None:
        """For input: why a URL's literal address is refused, else None.
        Host names are checked where they are resolved, at connect time."""
        try:
            httpx.URL(url)  # what the client will refuse later (control characters, bad ports …)
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError for a port out of range)
            host = (parts.hostname or "").rstrip(".")
        except (httpx.InvalidURL, ValueError):
            return "not a usable URL"
        if not host:
            return "the URL names no host"
        address = literal_address(host)
        if address is None:
            return None
        reason = self.refusal(address)
        return None if reason is None else f"{reason} addresses cannot be reached from this service"


def literal_address(host: str) -> IPAddress | None:
    """The address a host part spells out, in any form a resolver accepts, else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None
