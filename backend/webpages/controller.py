"""REST for the towns' web pages: registering a site (town admin, operator), searching its pages,
and turning a page into an article draft (editors). Thin: parse → service → response."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import get, post
from litestar.params import Parameter

from auth.principal import Principal
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.knowledge.schemas import ArticleState
from backend.state import AppState, unit_of_work
from backend.webpages import service
from backend.webpages.schemas import WebPageHit, WebSite, WebSiteInput

SITES = "/tenants/{slug:str}/web-sites"
PAGES = "/tenants/{slug:str}/web-pages"


class WebPagesController(AuthenticatedController):
    path = "/v1"
    tags = ["knowledge"]

    @get(
        SITES,
        summary="The tenant's registered web sites, with the last fetch's report",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_sites(self, app_state: AppState, principal: Principal, slug: str) -> list[WebSite]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.sites(uow, slug)

    @post(
        SITES,
        summary="Register a web site whose pages the worker fetches (town admin, operator)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def register_site(self, app_state: AppState, principal: Principal, slug: str, data: WebSiteInput) -> WebSite:
        async with unit_of_work(app_state, principal) as uow:
            return await service.register_site(uow, slug, data)

    @post(
        SITES + "/{site_id:uuid}/fetch",
        summary="Fetch the site at the worker's next round instead of at its turn",
        responses=problem_responses(400, 401, 403, 404),
        status_code=200,
    )
    async def fetch_soon(self, app_state: AppState, principal: Principal, slug: str, site_id: UUID) -> WebSite:
        async with unit_of_work(app_state, principal) as uow:
            return await service.fetch_soon(uow, slug, site_id)

    @get(
        PAGES,
        summary="Search the web pages a town sees (its own and its operator's)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def search_pages(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        q: Annotated[str, Parameter(min_length=1, max_length=500, description="the question")],
        first: Annotated[int, Parameter(ge=1, le=50)] = 10,
    ) -> list[WebPageHit]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.search_pages(uow, q, slug, first)

    @post(
        PAGES + "/{page_id:uuid}/article-draft",
        summary="Turn a web page into a local article draft (editors); again: the same draft",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        status_code=200,
    )
    async def article_draft(self, app_state: AppState, principal: Principal, slug: str, page_id: UUID) -> ArticleState:
        async with unit_of_work(app_state, principal) as uow:
            return await service.article_draft_from_page(uow, slug, page_id)
