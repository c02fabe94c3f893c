"""Web sites under simultaneous work (the second concurrency sweep): two instances' workers on
one site, a fetch asked for while the site is being fetched, and one page turned into an
article draft by several requests at once. A site is fetched by one worker at a time (the town's
server sees one polite crawler, decision 025), a fetch asked for meanwhile is not lost, and a
page makes one draft."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import httpx

from backend.db.tenancy import tenant_transaction
from backend.webpages.crawling import CrawlLimits
from backend.webpages.worker import WebPagesWorker
from outbound import OutboundPolicy, outbound_client
from tests.http.test_concurrent_writes import _no_deadlock, unique
from tests.support.world import World
from tests.webpages.conftest import LIMITS, crawl_all
from tests.webpages.townsite import Resource, TownSites, page

Client = httpx.AsyncClient
SOEST = "stadt-soest"  # Geseke's sites are test_webpages' to list
PAGES = ("/eins.html", "/zwei.html", "/drei.html", "/vier.html")
PAUSE = 0.15  # between two requests to the host: a round of this site takes about a second


def _site(town_sites: TownSites, host: str) -> None:
    town_sites.sites[host] = {
        "/": Resource(page("Start", "Willkommen", "Die Stadt im Netz.", links=PAGES)),
        **{
            path: Resource(page(f"Burstseite {path[1:-5]}", "Burstseite", f"Burstseite {path[1:-5]}."))
            for path in PAGES
        },
    }


def _workers(world: World, host: str) -> tuple[WebPagesWorker, WebPagesWorker]:
    """Two instances' workers; their client finds the site's host (and nothing else) on loopback."""

    async def resolve(name: str, port: int) -> list[str]:
        if name == host:
            return ["127.0.0.1"]
        raise OSError(f"unknown host {name}")

    limits = CrawlLimits(PAUSE, LIMITS.max_bytes, LIMITS.timeout_seconds, LIMITS.max_pages)
    policy = OutboundPolicy(("127.0.0.0/8",), allow_loopback=False)
    return tuple(  # type: ignore[return-value]
        WebPagesWorker(world.state.pool, outbound_client(policy, timeout=5, resolve=resolve), limits) for _ in range(2)
    )


async def _registered(client: Client, world: World, town_sites: TownSites, host: str) -> str:
    _site(town_sites, host)
    made = await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/web-sites",
        json={"baseUrl": town_sites.url(host), "startUrls": [town_sites.url(host, "/")], "allowedHosts": []},
        headers=world.headers(SOEST, "town-admin"),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


@asynccontextmanager
async def _burst_site(
    client: Client, world: World, town_sites: TownSites
) -> AsyncIterator[tuple[str, str, WebPagesWorker, WebPagesWorker]]:
    """A new site of Soest's on a host of its own (its host, its id) and two instances' workers,
    other tests' due sites fetched out of the way first; the workers' clients closed after."""
    host = f"www.burst-{unique()}.de"
    first, second = _workers(world, host)
    try:
        await crawl_all(first)
        yield host, await _registered(client, world, town_sites, host), first, second
    finally:
        for worker in (first, second):
            await worker.http.aclose()


def _fetched(town_sites: TownSites, host: str) -> Counter[str]:
    return Counter(s.path for s in town_sites.requests(host) if s.path in PAGES)


async def test_two_workers_fetch_a_site_once_and_a_fetch_asked_meanwhile_follows_it(
    client: Client, world: World, town_sites: TownSites
) -> None:
    async with _burst_site(client, world, town_sites) as (host, site, first, second):
        # Both instances' rounds at once: the site is fetched by one of them, each page once.
        await asyncio.gather(crawl_all(first), crawl_all(second))
        assert _fetched(town_sites, host) == Counter(PAGES)

        # The admin asks for a fetch while the first worker is in the middle of one.
        ask = f"/v1/tenants/{world.slug(SOEST)}/web-sites/{site}/fetch"
        admin = world.headers(SOEST, "town-admin")
        assert (await client.post(ask, headers=admin)).status_code == 200
        running = asyncio.ensure_future(first.crawl_one())
        await asyncio.sleep(3 * PAUSE)
        assert (await client.post(ask, headers=admin)).status_code == 200
        meanwhile = await second.crawl_one()  # the other instance's round, during the fetch
        report = await running
        assert report is not None and meanwhile is None, meanwhile
        assert _fetched(town_sites, host) == Counter(dict.fromkeys(PAGES, 2))  # no second crawler at once
        # … and the fetch asked for is not lost: it runs after the one that was running.
        assert await second.crawl_one() is not None
        assert _fetched(town_sites, host) == Counter(dict.fromkeys(PAGES, 3))
        assert await second.crawl_one() is None


async def test_one_page_turned_into_a_draft_six_times_at_once_makes_one(
    client: Client, world: World, town_sites: TownSites
) -> None:
    async with _burst_site(client, world, town_sites) as (_, site, first, _):
        await crawl_all(first)
    async with tenant_transaction(world.state.pool, [world.tenant_ids[SOEST]]) as conn:
        page_id: UUID = await conn.fetchval(
            "SELECT id FROM web_pages WHERE tenant_id = $1 AND site_id = $2 AND url LIKE '%/eins.html'",
            world.tenant_ids[SOEST],
            UUID(site),
        )
    url = f"/v1/tenants/{world.slug(SOEST)}/web-pages/{page_id}/article-draft"
    responses = await asyncio.gather(*(client.post(url, headers=world.headers(SOEST, "editor")) for _ in range(6)))
    _no_deadlock(list(responses))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
