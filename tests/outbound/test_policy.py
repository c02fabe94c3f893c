"""The outbound policy (docs/decisions/014), with production's rule: what a town admin may make
the service fetch. Literal addresses are judged as typed; host names where they resolve, at
connect time, against real HTTP servers on this machine (loopback is what production refuses)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from backend.settings import SettingsError, load_settings
from outbound import OutboundPolicy, outbound_client, refusal_of

PRODUCTION = OutboundPolicy()
DEVELOPMENT = OutboundPolicy(allow_loopback=True)


class Server:
    """Answers every GET with 200 (or a redirect to `redirect_to`) and records the Host header."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.hosts: list[str] = []
        self.redirect_to: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("host", ""))
                if outer.redirect_to:
                    self.send_response(302)
                    self.send_header("location", outer.redirect_to)
                else:
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer((address, 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.http.shutdown()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1", "loopback"),
        ("https://[::1]", "loopback"),
        ("https://10.0.0.1", "private"),
        ("https://169.254.169.254/latest/", "link-local"),
        ("https://10.0.0.5:6379", "private"),
        ("https://[::1]:5432", "loopback"),
        ("https://192.168.1.10/", "private"),
        ("https://[fd12::1]/", "unique-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://224.0.0.251/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::ffff:10.0.0.1]/", "private"),  # IPv4-mapped
        ("https://[64:ff9b::a00:1]/", "private"),  # NAT64 to 10.0.0.1
        ("https://2130706433/", "loopback"),  # 127.0.0.1 written as one number
        ("https://0x7f.1/", "loopback"),
        ("https://100.64.0.1/", "non-public"),  # carrier-grade NAT
    ],
)
def test_literal_addresses_are_refused_as_typed(url: str, reason: str) -> None:
    refused = PRODUCTION.url_refusal(url)
    assert refused is not None and refused.startswith(reason), refused


def test_urls_the_client_cannot_use_are_refused_as_typed() -> None:
    for url in ("http://\u00f6\u0001/", "https://idp.example:99999/", "https://"):
        assert PRODUCTION.url_refusal(url) is not None, url


def test_public_addresses_and_names_pass_input() -> None:
    names = ("https://login.soest.de/realms/x", "https://localhost/")  # names: judged when resolved
    for url in ("https://8.8.8.8/", "https://[2001:4860:4860::8888]/", *names):
        assert PRODUCTION.url_refusal(url) is None


def test_allowed_networks_open_private_ones_but_never_link_local() -> None:
    policy = OutboundPolicy(["10.20.0.0/16"])
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.3.4")) == "private"
    wide = OutboundPolicy(["0.0.0.0/0", "::/0"])
    assert wide.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert wide.refusal(ipaddress.ip_address("fe80::1")) == "link-local"
    assert DEVELOPMENT.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert DEVELOPMENT.refusal(ipaddress.ip_address("10.0.0.1")) == "private"  # development: loopback only


def test_settings_read_allowed_networks_and_refuse_link_local() -> None:
    settings = load_settings(
        {"OUTBOUND_ALLOWED_NETWORKS": "10.20.0.0/16, 2001:db8::/32", "TRUSTED_PROXIES": "10.0.0.0/8"}, serving=False
    )
    assert settings.outbound_allowed_networks == ("10.20.0.0/16", "2001:db8::/32")
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.outbound_policy().allow_loopback  # development
    assert (
        not load_settings({"APP_ENV": "production", "DATABASE_URL": "postgresql://x/y"}, serving=False)
        .outbound_policy()
        .allow_loopback
    )
    with pytest.raises(SettingsError) as refused:
        load_settings({"OUTBOUND_ALLOWED_NETWORKS": "169.254.0.0/16 10.0.0.0/33 nonsense"}, serving=False)
    lines = str(refused.value)
    assert "169.254.0.0/16 reaches link-local" in lines and "'10.0.0.0/33'" in lines and "'nonsense'" in lines


async def test_a_name_is_judged_by_the_address_it_resolves_to(server: Server) -> None:
    url = f"http://localhost:{server.port}/.well-known/openid-configuration"
    async with outbound_client(PRODUCTION, timeout=5) as http:
        with pytest.raises(httpx.ConnectError) as error:
            await http.get(url)
    refusal = refusal_of(error.value)
    assert refusal is not None and refusal.reason == "loopback"
    assert server.hosts == []  # refused before connecting
    async with outbound_client(DEVELOPMENT, timeout=5) as http:
        assert (await http.get(url)).status_code == 200
    assert server.hosts == [f"localhost:{server.port}"]


async def test_the_address_checked_is_the_address_connected_to(server: Server) -> None:
    """Resolved once: `idp.example` does not exist in any DNS here, so reaching the server
    proves the connection went to the checked address, with the Host header of the URL."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async with outbound_client(DEVELOPMENT, timeout=5, resolve=resolve) as http:
        assert (await http.get(f"http://idp.example:{server.port}/")).status_code == 200
    assert asked == ["idp.example"] and server.hosts == [f"idp.example:{server.port}"]

    async def split(host: str, port: int) -> list[str]:
        return ["10.20.0.9", "127.0.0.1"]  # one allowed address and one inside our network

    async with outbound_client(OutboundPolicy(["10.20.0.0/16"]), timeout=5, resolve=split) as http:
        with pytest.raises(httpx.ConnectError) as error:
            await http.get(f"http://idp.example:{server.port}/")
    assert (refusal := refusal_of(error.value)) is not None and refusal.reason == "loopback"
    assert len(server.hosts) == 1


async def test_redirects_are_checked_like_the_first_request(server: Server) -> None:
    inside = Server("127.0.0.2")  # stands for an address inside our network
    try:
        server.redirect_to = f"http://127.0.0.2:{inside.port}/latest/meta-data/"
        policy = OutboundPolicy(["127.0.0.1/32"])  # the first server is allowed, the second not
        async with outbound_client(policy, timeout=5, follow_redirects=True) as http:
            with pytest.raises(httpx.ConnectError) as error:
                await http.get(f"http://127.0.0.1:{server.port}/")
        assert (refusal := refusal_of(error.value)) is not None and refusal.address == "127.0.0.2"
        assert len(server.hosts) == 1 and inside.hosts == []
    finally:
        inside.http.shutdown()
