"""GraphQL for the towns' web pages: sites (town admin, operator), page search, page → article
draft (editors). Thin: the types mirror their Structs, mutations go through `mutate`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from backend.api.context import Info
from backend.api.mapping import mirrors, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.knowledge.gql import EditorArticlePayload
from backend.webpages import schemas, service
from backend.webpages.gql_hits import WebPageHitGQL


@mirrors(schemas.CrawlReport)
@strawberry.type(name="WebCrawlReport", description="What the last fetch of a site found")
class CrawlReportGQL:
    at: datetime
    new: int
    changed: int
    unchanged: int
    gone: int = strawberry.field(description="pages that answered 404/410: marked, out of search")
    skipped: int = strawberry.field(description="refused (robots.txt, host, size, not HTML) or failed")
    problems: list[str]


@mirrors(schemas.WebSite)
@strawberry.type(name="WebSite", description="A tenant's web site whose pages the worker fetches")
class WebSiteGQL:
    tenant_id: UUID
    id: UUID
    base_url: str
    sitemap_url: str | None
    start_urls: list[str]
    allowed_hosts: list[str]
    recrawl_hours: int
    active: bool
    next_crawl_at: datetime
    last_crawl_at: datetime | None
    last_report: CrawlReportGQL | None
    created_at: datetime


@mirrors(schemas.WebSiteInput)
@strawberry.input(name="WebSiteInput")
class WebSiteInputGQL:
    base_url: str
    sitemap_url: str | None = None
    start_urls: list[str] = strawberry.field(default_factory=list)
    allowed_hosts: list[str] = strawberry.field(default_factory=list)
    recrawl_hours: int = 24


@strawberry.type(name="WebSitePayload")
class WebSitePayload:
    site: WebSiteGQL | None
    errors: list[UserError]


@strawberry.type
class WebPagesQuery:
    @strawberry.field(description="A tenant's registered web sites (town admin, operator)")
    async def web_sites(self, info: Info, tenant: str) -> list[WebSiteGQL]:
        async with info.context.uow() as uow:
            return shown_all(WebSiteGQL, await service.sites(uow, tenant))

    @strawberry.field(description="The web pages a town sees (its own and its operator's) for a question")
    async def web_page_search(self, info: Info, tenant: str, query: str, first: int = 10) -> list[WebPageHitGQL]:
        async with info.context.uow() as uow:
            return shown_all(WebPageHitGQL, await service.search_pages(uow, query, tenant, first))


@strawberry.type
class WebPagesMutation:
    @strawberry.mutation(description="Register a web site whose pages the worker fetches (town admin, operator)")
    async def register_web_site(self, info: Info, tenant: str, input: WebSiteInputGQL) -> WebSitePayload:
        return await mutate(
            info,
            WebSitePayload,
            "site",
            lambda uow: service.register_site(uow, tenant, to_input(schemas.WebSiteInput, input)),
        )

    @strawberry.mutation(description="Fetch a site at the worker's next round")
    async def fetch_web_site_soon(self, info: Info, tenant: str, id: UUID) -> WebSitePayload:
        return await mutate(info, WebSitePayload, "site", lambda uow: service.fetch_soon(uow, tenant, id))

    @strawberry.mutation(description="Turn a web page into a local article draft (editors); again: the same draft")
    async def article_draft_from_web_page(self, info: Info, tenant: str, page_id: UUID) -> EditorArticlePayload:
        return await mutate(
            info,
            EditorArticlePayload,
            "article",
            lambda uow: service.article_draft_from_page(uow, tenant, page_id),
        )


__all__ = ["WebPageHitGQL", "WebPagesMutation", "WebPagesQuery"]
