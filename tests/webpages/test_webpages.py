"""The towns' web pages (issue 14 §2): a site registered over REST and GraphQL, fetched by the
worker from a real local HTTP server — robots.txt, a redirect to another host, a huge page, a
PDF, conditional requests, a page that changed and one that vanished — searched next to the
articles without crossing tenants, and turned into an article draft with one call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.webpages.crawling import Crawler, CrawlLimits
from backend.webpages.worker import WebPagesWorker
from outbound import OutboundPolicy
from tests.support.world import World
from tests.telephony.helpers import gql
from tests.webpages.conftest import (
    GESEKE_HOST,
    KREIS_HOST,
    LIMITS,
    OTHER_HOST,
    SOEST_HOST,
    crawl_all,
    crawl_client,
)
from tests.webpages.townsite import Resource, TownSites, geseke_site, page

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"


async def register(client: Client, world: World, town: str, role: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/tenants/{world.slug(town)}/web-sites", json=body, headers=world.headers(town, role))


async def search(client: Client, world: World, town: str, q: str, role: str = "agent") -> dict[str, Any]:
    response = await client.get(
        "/v1/articles/search", params={"q": q, "tenant": world.slug(town)}, headers=world.headers(KREIS, role)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def crawled(client: Client, world: World, town_sites: TownSites, pages_worker: WebPagesWorker) -> dict[str, Any]:
    """Geseke (sitemap), Soest (start URL, links followed) and the operator registered and fetched once."""
    town_sites.sites[GESEKE_HOST] = geseke_site(town_sites, GESEKE_HOST, OTHER_HOST)
    town_sites.sites[OTHER_HOST] = {"/umzug.html": Resource(page("Umzug", "Umzug", "Ummelden beim Bürgerbüro."))}
    town_sites.sites[SOEST_HOST] = {
        "/": Resource(page("Stadt Soest", "Willkommen in Soest", "Rathaus und Bürgerservice.", links=("/sperrmuell",))),
        "/sperrmuell": Resource(
            page(
                "Sperrmüll – Stadt Soest",
                "Sperrmüll in Soest",
                "In Soest holen die Kommunalen Betriebe Sperrmüll nach Terminvereinbarung ab, "
                "viermal im Jahr kostenlos.",
            )
        ),
    }
    town_sites.sites[KREIS_HOST] = {
        "/abfall/schadstoffmobil.html": Resource(
            page(
                "Schadstoffmobil – Kreis Soest",
                "Schadstoffmobil",
                "Das Schadstoffmobil des Kreises Soest nimmt Farben, Lacke und Batterien an, auch in Geseke.",
            )
        )
    }
    geseke = await register(
        client,
        world,
        GESEKE,
        "town-admin",
        {
            "baseUrl": town_sites.url(GESEKE_HOST),
            "sitemapUrl": town_sites.url(GESEKE_HOST, "/sitemap.xml"),
            "allowedHosts": [],
        },
    )
    assert geseke.status_code == 201, geseke.text
    soest = await gql(
        client,
        world.headers(SOEST, "town-admin"),
        """mutation($t: String!, $u: String!) { registerWebSite(tenant: $t, input: {baseUrl: $u, startUrls: [$u]}) {
             site { id allowedHosts recrawlHours } errors { code field } } }""",
        t=world.slug(SOEST),
        u=town_sites.url(SOEST_HOST, "/"),
    )
    assert soest["data"]["registerWebSite"]["errors"] == [], soest
    assert soest["data"]["registerWebSite"]["site"]["allowedHosts"] == [f"{SOEST_HOST}:{town_sites.port}"]
    kreis = await register(
        client,
        world,
        KREIS,
        "platform-admin",
        {
            "baseUrl": town_sites.url(KREIS_HOST),
            "startUrls": [town_sites.url(KREIS_HOST, "/abfall/schadstoffmobil.html")],
        },
    )
    assert kreis.status_code == 201, kreis.text
    assert await crawl_all(pages_worker) >= 3
    sites = await client.get(f"/v1/tenants/{world.slug(GESEKE)}/web-sites", headers=world.headers(GESEKE, "town-admin"))
    assert sites.status_code == 200, sites.text
    return {"geseke": sites.json()[0], "kreis": kreis.json()}


async def test_registration_refuses_bad_input_and_wrong_roles(client: Client, world: World) -> None:
    for body, field in (
        ({"baseUrl": "https://10.0.0.1/", "startUrls": ["https://10.0.0.1/"]}, "baseUrl"),
        ({"baseUrl": "https://www.geseke.de/"}, "startUrls"),
        ({"baseUrl": "https://www.geseke.de/", "startUrls": ["https://www.example.org/"]}, "startUrls"),
        ({"baseUrl": "ftp://www.geseke.de/", "startUrls": []}, "baseUrl"),
        (
            {"baseUrl": "https://www.geseke.de/", "startUrls": ["https://www.geseke.de/"], "recrawlHours": 0},
            "recrawlHours",
        ),
        ({"baseUrl": "https://www.geseke.de/", "startUrls": ["https://www.geseke.de/"], "depth": 9}, "depth"),
        ({"baseUrl": "https://user@www.geseke.de/", "startUrls": ["https://user@www.geseke.de/"]}, "baseUrl"),
    ):
        response = await register(client, world, GESEKE, "town-admin", body)
        assert response.status_code in (400, 422), (body, response.text)
        assert field in response.text, (field, response.text)
    good = {"baseUrl": "https://www.geseke.invalid/", "startUrls": ["https://www.geseke.invalid/"]}
    assert (await register(client, world, GESEKE, "agent", good)).status_code == 403
    assert (await register(client, world, GESEKE, "editor", good)).status_code == 403
    # Another town's admin cannot reach Geseke: it looks missing.
    other = await client.post(
        f"/v1/tenants/{world.slug(GESEKE)}/web-sites", json=good, headers=world.headers(SOEST, "town-admin")
    )
    assert other.status_code == 404, other.text
    assert (await register(client, world, GESEKE, "town-admin", good)).status_code == 201
    again = await register(client, world, GESEKE, "town-admin", good)
    assert again.status_code == 409, again.text
    graphql = await gql(
        client,
        world.headers(GESEKE, "town-admin"),
        """mutation($t: String!) { registerWebSite(tenant: $t, input: {baseUrl: "https://127.0.0.1/", startUrls: []}) {
             site { id } errors { code field } } }""",
        t=world.slug(GESEKE),
    )
    assert graphql["data"]["registerWebSite"] == {
        "site": None,
        "errors": [{"code": "VALIDATION_FAILED", "field": "baseUrl"}],
    }


async def test_the_first_fetch_keeps_to_the_rules(crawled: dict[str, Any], town_sites: TownSites) -> None:
    report = crawled["geseke"]["lastReport"]
    assert report["new"] == 5, report  # three demo pages, events, the page that will vanish
    problems = "\n".join(report["problems"])
    assert "/intern/personalrat.html: robots.txt disallows it" in problems
    assert f"redirects to {OTHER_HOST}:{town_sites.port}, which is not allowed" in problems
    assert "/haushaltsplan.html: larger than 1000000 bytes" in problems
    assert "/satzung-abfall.pdf: not HTML (application/pdf)" in problems
    geseke_paths = [seen.path for seen in town_sites.requests(GESEKE_HOST)]
    assert "/intern/personalrat.html" not in geseke_paths  # robots.txt asked first, page never requested
    assert geseke_paths.count("/robots.txt") == 1
    assert town_sites.requests(OTHER_HOST) == []  # the redirect was not followed
    # The Soest site was found from its start URL by following its link.
    assert "/sperrmuell" in [seen.path for seen in town_sites.requests(SOEST_HOST)]
    assert all("Buergerservice" in seen.headers["user-agent"] for seen in town_sites.requests())


async def test_pages_are_found_next_to_articles_for_their_town_only(
    client: Client, world: World, crawled: dict[str, Any], town_sites: TownSites
) -> None:
    found = await search(client, world, GESEKE, "Sperrmüll Geseke")
    pages = found["webPages"]
    assert pages[0]["url"] == town_sites.url(GESEKE_HOST, "/leben/abfall/sperrmuell.html")
    assert pages[0]["title"] == "Sperrmüll anmelden"
    assert pages[0]["ageDays"] == 0 and "<mark>" in pages[0]["snippet"]
    assert all(p.get("url") != pages[0]["url"] for p in found["items"])  # never among the articles
    urls = {p["url"] for p in pages}
    assert town_sites.url(SOEST_HOST, "/sperrmuell") not in urls  # Soest's page stays Soest's
    soest = await search(client, world, SOEST, "Sperrmüll")
    assert [p["url"] for p in soest["webPages"]] == [town_sites.url(SOEST_HOST, "/sperrmuell")]
    # What is to be done says nothing of the page: "Hund anmelden" is not the bulky-waste page
    # ("Sperrmüll anmelden"), only the dog-tax one; the knowledge side still reads the verb.
    dog = await search(client, world, GESEKE, "wo kann ich meinen Hund anmelden")
    assert [p["title"] for p in dog["webPages"]] == ["Hundesteuer"], dog["webPages"]
    # The operator's page is shared with the towns it serves, like its shared articles.
    shared = await search(client, world, GESEKE, "Schadstoffmobil Batterien")
    assert [p["tenantId"] for p in shared["webPages"]] == [crawled["kreis"]["tenantId"]]
    # GraphQL: the same pages, and the page search of its own.
    graphql = await gql(
        client,
        world.headers(KREIS, "agent"),
        """query($t: String!) { knowledgeSearch(query: "Hundesteuer", tenant: $t) { webPages { url title ageDays } }
             webPageSearch(tenant: $t, query: "Öffnungszeiten Bürgerbüro") { url } }""",
        t=world.slug(GESEKE),
    )
    assert graphql["data"]["knowledgeSearch"]["webPages"][0]["title"] == "Hundesteuer"
    assert graphql["data"]["webPageSearch"][0]["url"] == town_sites.url(GESEKE_HOST, "/buergerbuero.html")
    # A Soest agent asking for Geseke's pages: Geseke is out of reach.
    refused = await client.get(
        f"/v1/tenants/{world.slug(GESEKE)}/web-pages", params={"q": "Sperrmüll"}, headers=world.headers(SOEST, "agent")
    )
    assert refused.status_code == 404, refused.text


@pytest.fixture(scope="module")
async def refetched(
    client: Client, world: World, crawled: dict[str, Any], town_sites: TownSites, pages_worker: WebPagesWorker
) -> dict[str, Any]:
    """Geseke's events page changed and an old page removed, then the site fetched again."""
    site = town_sites.sites[GESEKE_HOST]
    site["/veranstaltungen.html"] = Resource(
        page("Veranstaltungen", "Veranstaltungen in Geseke", "Der Weihnachtsmarkt beginnt am 4. Dezember am Rathaus.")
    )
    del site["/altes-angebot.html"]
    before = len(town_sites.requests(GESEKE_HOST))
    due = await client.post(
        f"/v1/tenants/{world.slug(GESEKE)}/web-sites/{crawled['geseke']['id']}/fetch",
        headers=world.headers(GESEKE, "town-admin"),
    )
    assert due.status_code == 200, due.text
    rounds = await crawl_all(pages_worker)
    sites = await client.get(f"/v1/tenants/{world.slug(GESEKE)}/web-sites", headers=world.headers(GESEKE, "town-admin"))
    return {"rounds": rounds, "requests": town_sites.requests(GESEKE_HOST)[before:], "site": sites.json()[0]}


async def test_a_refetch_asks_conditionally_sees_changes_and_marks_vanished_pages(
    client: Client, world: World, refetched: dict[str, Any]
) -> None:
    assert refetched["rounds"] == 1
    sperrmuell = next(s for s in refetched["requests"] if s.path == "/leben/abfall/sperrmuell.html")
    assert sperrmuell.headers.get("if-none-match") and sperrmuell.status == 304
    assert sperrmuell.headers.get("if-modified-since") == "Mon, 30 Nov 2026 08:00:00 GMT"
    report = refetched["site"]["lastReport"]
    assert (report["new"], report["changed"], report["unchanged"], report["gone"]) == (0, 1, 3, 1), report
    assert (await search(client, world, GESEKE, "Weihnachtsmarkt"))["webPages"][0]["url"].endswith(
        "/veranstaltungen.html"
    )
    assert (await search(client, world, GESEKE, "Hellweg-Markt"))["webPages"] == []
    assert (await search(client, world, GESEKE, "Altkleidersammlung"))["webPages"] == []  # vanished: out of search


async def test_an_editor_turns_a_page_into_an_article_draft_once(
    client: Client, world: World, crawled: dict[str, Any], town_sites: TownSites
) -> None:
    hit = (await search(client, world, GESEKE, "Hundesteuer"))["webPages"][0]
    url = f"/v1/tenants/{world.slug(GESEKE)}/web-pages/{hit['id']}/article-draft"
    draft = await client.post(url, headers=world.headers(GESEKE, "editor"))
    assert draft.status_code == 200, draft.text
    article = draft.json()
    assert article["status"] == "draft" and article["kind"] == "local"
    assert article["latest"]["title"] == "Hundesteuer"
    assert (
        town_sites.url(GESEKE_HOST, "/rathaus/steuern/hundesteuer.html") in article["latest"]["sections"]["description"]
    )
    again = await client.post(url, headers=world.headers(GESEKE, "editor"))
    assert again.status_code == 200 and again.json()["id"] == article["id"]
    assert (await client.post(url, headers=world.headers(GESEKE, "agent"))).status_code == 403
    # Soest's editor: Geseke is not theirs; Geseke's page under Soest's name is not found.
    assert (await client.post(url, headers=world.headers(SOEST, "editor"))).status_code == 404
    soest_url = f"/v1/tenants/{world.slug(SOEST)}/web-pages/{hit['id']}/article-draft"
    assert (await client.post(soest_url, headers=world.headers(SOEST, "editor"))).status_code == 404
    # The draft is not published: agents do not find it as an article.
    assert all(
        i["title"] != "Hundesteuer" or i["status"] != "draft"
        for i in (await search(client, world, GESEKE, "Hundesteuer"))["items"]
    )
    graphql = await gql(
        client,
        world.headers(GESEKE, "editor"),
        """mutation($t: String!, $p: UUID!) { articleDraftFromWebPage(tenant: $t, pageId: $p) {
             article { id status } errors { code } } }""",
        t=world.slug(GESEKE),
        p=hit["id"],
    )
    assert graphql["data"]["articleDraftFromWebPage"]["article"]["id"] == article["id"]


async def test_private_addresses_are_refused_unless_allowed(
    world: World, town_sites: TownSites, crawled: dict[str, Any]
) -> None:
    """Production's rule without the allowed network: the town's name resolves to loopback, refused."""
    from backend.db.tenancy import all_tenants_transaction
    from backend.webpages import repository

    async with all_tenants_transaction(world.state.pool) as conn:
        site = await repository.find_site(conn, world.tenant_ids[GESEKE], crawled["geseke"]["id"])
    assert site is not None
    http = crawl_client(OutboundPolicy((), allow_loopback=False))
    try:
        result = await Crawler(http, site, LIMITS).crawl({})
    finally:
        await http.aclose()
    assert result.pages == [] and result.problems
    assert "address not allowed for outbound requests (loopback)" in result.problems[0]


async def test_requests_to_one_host_are_paced(world: World, town_sites: TownSites, crawled: dict[str, Any]) -> None:
    from backend.db.tenancy import all_tenants_transaction
    from backend.webpages import repository

    async with all_tenants_transaction(world.state.pool) as conn:
        site = await repository.find_site(conn, world.tenant_ids[GESEKE], crawled["geseke"]["id"])
    assert site is not None
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    http = crawl_client(OutboundPolicy(("127.0.0.0/8",), allow_loopback=False))
    try:
        result = await Crawler(http, site, CrawlLimits(delay_seconds=30.0, max_bytes=1_000_000), sleep=sleep).crawl({})
    finally:
        await http.aclose()
    requests = 2 + len(result.pages)  # robots.txt, the sitemap, the pages (the refused ones were not requested)
    assert len(waits) >= requests - 3 and all(0 < w <= 30.0 for w in waits), waits


async def test_bad_questions_and_vanished_pages_are_refused_clearly(
    client: Client, world: World, crawled: dict[str, Any], refetched: dict[str, Any], town_sites: TownSites
) -> None:
    pages = f"/v1/tenants/{world.slug(GESEKE)}/web-pages"
    agent = world.headers(KREIS, "agent")
    too_long = await client.get(pages, params={"q": "Sperrmüll " * 60}, headers=agent)
    assert too_long.status_code in (400, 422) and "q" in too_long.text, too_long.text
    graphql = await gql(
        client,
        agent,
        """query($t: String!) { webPageSearch(tenant: $t, query: "Sperrmüll", first: 0) { url } }""",
        t=world.slug(GESEKE),
    )
    assert graphql["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED", graphql
    # Only punctuation: nothing to search for, nothing found, no error.
    empty = await client.get(pages, params={"q": "?!"}, headers=agent)
    assert empty.status_code == 200 and empty.json() == []
    from backend.db.tenancy import all_tenants_transaction
    from backend.webpages import repository

    async with all_tenants_transaction(world.state.pool) as conn:
        stored = await repository.list_pages(conn, world.tenant_ids[GESEKE], crawled["geseke"]["id"])
    gone = [p for p in stored if p.gone_at is not None]
    assert [p.url for p in gone] == [town_sites.url(GESEKE_HOST, "/altes-angebot.html")]
    draft = await client.post(f"{pages}/{gone[0].id}/article-draft", headers=world.headers(GESEKE, "editor"))
    assert draft.status_code == 422 and draft.json()["errors"][0]["field"] == "pageId", draft.text
