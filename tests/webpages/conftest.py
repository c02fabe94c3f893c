"""Town sites on a local HTTP server and a web pages worker whose client reaches it by name.

The crawl client runs production's outbound rule with loopback opened as an allowed network
(OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8), and resolves the towns' host names to 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from backend.webpages.crawling import CrawlLimits
from backend.webpages.worker import WebPagesWorker
from outbound import OutboundPolicy, outbound_client
from tests.support.world import World
from tests.webpages.townsite import TownSites

GESEKE_HOST, SOEST_HOST, KREIS_HOST, OTHER_HOST = (
    "www.geseke.de",
    "www.soest.de",
    "www.kreis-soest.de",
    "cdn.example.net",
)
TOWN_HOSTS = {GESEKE_HOST, SOEST_HOST, KREIS_HOST, OTHER_HOST}
LIMITS = CrawlLimits(delay_seconds=0.0, max_bytes=1_000_000, timeout_seconds=5.0, max_pages=50)


async def resolve_towns(host: str, port: int) -> list[str]:
    if host in TOWN_HOSTS:
        return ["127.0.0.1"]
    raise OSError(f"unknown host {host}")


def crawl_client(policy: OutboundPolicy) -> httpx.AsyncClient:
    return outbound_client(policy, timeout=LIMITS.timeout_seconds, resolve=resolve_towns)


@pytest.fixture(scope="session")
def town_sites() -> Iterator[TownSites]:
    sites = TownSites()
    sites.start()
    yield sites
    sites.stop()


@pytest_asyncio.fixture(scope="session")
async def pages_worker(world: World) -> AsyncIterator[WebPagesWorker]:
    http = crawl_client(OutboundPolicy(("127.0.0.0/8",), allow_loopback=False))
    yield WebPagesWorker(world.state.pool, http, LIMITS)
    await http.aclose()


async def crawl_all(worker: WebPagesWorker) -> int:
    """Rounds until no site is due; how many sites were fetched."""
    rounds = 0
    while await worker.crawl_one() is not None:
        rounds += 1
    return rounds
