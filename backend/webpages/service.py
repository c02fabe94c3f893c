"""The towns' web pages (decision 025): registering a site, searching its pages next to the
articles, and turning a page into an article draft. The fetching itself is the worker's
(`backend/webpages/worker.py`); no HTTP here."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg

from auth.permissions import Operation
from backend import clock
from backend.errors import Duplicate, NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import service as knowledge
from backend.knowledge.context import town_context
from backend.knowledge.schemas import ArticleInput, ArticleState, Sections
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.webpages import repository
from backend.webpages.schemas import WebPageHit, WebSite, WebSiteInput
from backend.webpages.search import PAGE_HITS, matching_pages

TITLE_LENGTH, SUMMARY_LENGTH, TEXT_LENGTH = 200, 500, 20_000  # the article's limits


def _host(url: str, field: str) -> str:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = parts.netloc.lower()
        _ = parts.port  # a port that is not a number is refused here
    except ValueError:
        raise ValidationFailed(_l("not a valid URL"), field=field) from None
    if not host or "@" in netloc:
        raise ValidationFailed(_l("not a valid URL"), field=field)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return netloc
    # Like issuers and webhooks (decision 014): names only; where a name leads is judged on connect.
    raise ValidationFailed(_l("a web site is named by its host name, not an address"), field=field)


def _checked(data: WebSiteInput) -> tuple[list[str], list[str]]:
    """The allowed hosts (the base URL's first) and the start URLs, each on an allowed host."""
    hosts = [_host(data.base_url, "baseUrl"), *(h.lower() for h in data.allowed_hosts)]
    hosts = list(dict.fromkeys(hosts))
    if data.sitemap_url is None and not data.start_urls:
        raise ValidationFailed(_l("name a sitemap or at least one start URL"), field="startUrls")
    for field, urls in (("sitemapUrl", [data.sitemap_url] if data.sitemap_url else []), ("startUrls", data.start_urls)):
        for url in urls:
            if _host(url, field) not in hosts:
                raise ValidationFailed(_l("{url} is not on an allowed host", url=url), field=field)
    return hosts, list(dict.fromkeys(data.start_urls))


async def register_site(uow: UnitOfWork, tenant_slug: str, data: WebSiteInput) -> WebSite:
    """A town admin (or the operator) registers a site of the tenant; the worker fetches it soon."""
    tenant = await reach.reach(uow, tenant_slug, Operation.WEB_SITE_MANAGE)
    hosts, start_urls = _checked(data)
    try:
        async with uow.conn.transaction():
            return await repository.insert_site(
                uow.conn,
                tenant.id,
                uuid4(),
                data.base_url,
                data.sitemap_url,
                start_urls,
                hosts,
                data.recrawl_hours,
                clock.now(),
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("this site is already registered"), field="baseUrl") from None


async def sites(uow: UnitOfWork, tenant_slug: str) -> list[WebSite]:
    tenant = await reach.reach(uow, tenant_slug, Operation.WEB_SITE_MANAGE)
    return await repository.list_sites(uow.conn, tenant.id)


async def fetch_soon(uow: UnitOfWork, tenant_slug: str, site_id: UUID) -> WebSite:
    """Ask the worker to fetch the site at its next round instead of waiting for its turn."""
    tenant = await reach.reach(uow, tenant_slug, Operation.WEB_SITE_MANAGE)
    if not await repository.set_site_due(uow.conn, tenant.id, site_id, clock.now()):
        raise NotFound(_l("web site not found"))
    site = await repository.find_site(uow.conn, tenant.id, site_id)
    assert site is not None
    return site


async def search_pages(
    uow: UnitOfWork, query: str, tenant_slug: str | None = None, first: int = PAGE_HITS
) -> list[WebPageHit]:
    """Web pages for the town the call is for, best first (the search beside the articles')."""
    if not 1 <= first <= 100:
        raise ValidationFailed(_l("first must be between 1 and {max_page_size}", max_page_size=100), field="first")
    if len(query) > 500:
        raise ValidationFailed(
            _l("the question is longer than {max_query_length} characters", max_query_length=500), field="query"
        )
    ctx = await town_context(uow, Operation.ARTICLE_READ, tenant_slug)
    return await matching_pages(uow.conn, ctx, query, first)


# ---------------------------------------------------------------------------------- drafts


def _summary(text: str) -> str:
    first = text.strip().split("\n", 1)[0]
    return first if len(first) <= SUMMARY_LENGTH else first[: SUMMARY_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def _draft(title: str, text: str, url: str) -> ArticleInput:
    body = text[: TEXT_LENGTH - 200]
    return ArticleInput(
        title=(title or url)[:TITLE_LENGTH],
        summary=_summary(text),
        sections=Sections(description=f"{body}\n\nQuelle: <{url}>"),
        change_note=f"aus der Webseite {url}"[:500],
    )


async def article_draft_from_page(uow: UnitOfWork, tenant_slug: str, page_id: UUID) -> ArticleState:
    """One call for an editor: the page's title and main text as a new local article draft of the
    page's town (with the page's URL as source). Again for the same page: the same draft."""
    ctx = await town_context(uow, Operation.ARTICLE_WRITE, tenant_slug)
    page = await repository.find_page(uow.conn, [ctx.town_id], page_id, for_update=True)
    if page is None:
        raise NotFound(_l("web page not found"))
    if page.article_id is not None:
        return await knowledge.article_state(uow, page.article_id)
    if page.gone_at is not None:
        raise ValidationFailed(_l("the page has vanished from the site"), field="pageId")
    state = await knowledge.create_article(uow, _draft(page.title, page.text, page.url), tenant_slug=tenant_slug)
    await repository.set_article(uow.conn, ctx.town_id, page.id, state.id)
    return state
