"""REST for partner systems (search and read articles with the `articles:read` scope), the JSON
import for towns migrating from another system, and the operator's LeiKa catalogue import."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import Parameter

from auth.principal import Principal
from backend.errors import ValidationFailed
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.i18n import _l
from backend.knowledge import importing, search, service
from backend.knowledge.schemas import (
    ArticleView,
    CatalogueReport,
    HitSource,
    ImportReport,
    LeikaService,
    SearchPage,
)
from backend.state import AppState, unit_of_work

PageSize = Annotated[int, Parameter(ge=1, le=50, description="page size (at most 50)")]
Tenant = Annotated[str | None, Parameter(description="slug of the town the question is for (default: my own)")]
MAX_BODY = 20 * 1024 * 1024


async def _text_body(request: Request[Any, Any, Any], key: str) -> str:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ValidationFailed(_l("the upload is larger than 20 MB"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(_l("the upload is not UTF-8 text")) from None
    if request.headers.get("content-type", "").startswith("application/json") and key:
        # Also accepted: {"<key>": "<text>"} (clients that can only send JSON objects).
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
        if isinstance(value, dict) and isinstance(value.get(key), str):
            return str(value[key])
    return text


class KnowledgeController(AuthenticatedController):
    path = "/v1"
    tags = ["knowledge"]

    @get(
        "/articles/search",
        summary="Search articles and the LeiKa catalogue in the caller's words",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def search(
        self,
        app_state: AppState,
        principal: Principal,
        q: Annotated[str, Parameter(min_length=1, max_length=500, description="the question, or a LeiKa key")],
        tenant: Tenant = None,
        first: PageSize = 10,
        after: str | None = None,
        leika_group: Annotated[str | None, Parameter(query="leikaGroup", pattern=r"^[0-9]{3}$")] = None,
        source: list[HitSource] | None = None,
    ) -> SearchPage:
        """Published articles valid today (a town's own version first) and catalogue entries
        without an article. `confident` is false when nothing answers the question."""
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await search.search(uow, q, tenant, first, after, leika_group, None, source)

    @get(
        "/articles/{article_id:uuid}",
        summary="An article as agents read it: structured, HTML and speakable",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_article(
        self, app_state: AppState, principal: Principal, article_id: UUID, tenant: Tenant = None
    ) -> ArticleView:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.article_for_agent(uow, article_id, tenant)

    @post(
        "/articles/import",
        summary="Import articles (JSON Lines or a JSON array); bad rows reported by line",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def import_articles(
        self,
        app_state: AppState,
        principal: Principal,
        request: Request[Any, Any, Any],
        publish: bool = False,
        tenant: Tenant = None,
    ) -> ImportReport:
        """Body: one article per line (`application/x-ndjson`) or a JSON array, each
        `{"externalId", "title", "summary", "leikaKey", "sections", "searchTerms", …}`. A row whose
        `externalId` was imported before updates that article. `publish=true` publishes at once."""
        text = await _text_body(request, "")
        async with unit_of_work(app_state, principal) as uow:
            return await importing.import_articles(uow, text, publish, tenant)

    @post(
        "/leika-catalogue",
        summary="Load or refresh the operator's LeiKa catalogue (CSV)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 422),
    )
    async def import_catalogue(
        self, app_state: AppState, principal: Principal, request: Request[Any, Any, Any]
    ) -> CatalogueReport:
        """Body: the catalogue as CSV (`text/csv`, header `leika_key,name,…` as in the KDN export),
        or `{"csv": "…"}`. Re-importing updates entries, never duplicates them."""
        text = await _text_body(request, "csv")
        async with unit_of_work(app_state, principal) as uow:
            return await importing.import_catalogue(uow, text)

    @get(
        "/leika-services/{leika_key:str}",
        summary="An entry of the LeiKa catalogue",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def get_leika_service(
        self, app_state: AppState, principal: Principal, leika_key: str, tenant: Tenant = None
    ) -> LeikaService:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await search.leika_service(uow, leika_key, tenant)
