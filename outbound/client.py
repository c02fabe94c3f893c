"""The HTTP client for outbound requests: the policy is applied to the address connected to.

httpcore asks its network backend for a TCP connection to a host name; the backend here
resolves the name once, refuses it unless every address it resolved to passes the policy, and
connects to those very addresses. A name cannot pass the check with one address and connect to
another (DNS rebinding), and each redirect hop is a new connection, checked the same way. TLS
still names the host (SNI and certificate checks use the URL's host, not the address), and the
Host header is the URL's. Proxies from the environment are not used: a proxy would resolve the
name itself, out of the policy's sight.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx
import structlog

from outbound.policy import OutboundPolicy, OutboundRefused

Resolver = Callable[[str, int], Awaitable[list[str]]]
log = structlog.get_logger("outbound")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: OutboundPolicy, resolve: Resolver | None = None) -> None:
        self.policy = policy
        self.resolve = resolve or system_resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore calls it so)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = host.strip("[]")
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolve(name, port)
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"could not resolve {name}") from error
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {name}")
        # Every address must pass: a name that also resolves inside our network is refused.
        for address in addresses:
            reason = self.policy.refusal(ipaddress.ip_address(address.split("%")[0]))
            if reason is not None:
                log.warning("outbound_refused", host=name, address=address, port=port, reason=reason)
                raise OutboundRefused(name, address, reason)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:  # try the next address of the name
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused(path, path, "unix-socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def outbound_client(
    policy: OutboundPolicy,
    *,
    timeout: float,
    follow_redirects: bool = False,
    max_redirects: int = 3,
    resolve: Resolver | None = None,
) -> httpx.AsyncClient:
    """The client for every request made on someone's behalf (discovery, keys, webhooks)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx builds its connection pool without a way to pass a network backend: replace it
    # with the same pool over ours (the attribute has kept its name since httpx 0.18).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=PolicyNetworkBackend(policy, resolve)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )
