"""REST for the XZuFi import (decision 024): a file upload, where an article's sections came
from (and the editor's confirmation of a changed source), and the operator's transfer."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.errors import ErrorCode, HttpError, ValidationFailed
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.i18n import _l
from backend.knowledge import xzufi, xzufi_import, xzufi_sources, xzufi_transfer, xzufi_worker
from backend.knowledge.xzufi_schemas import (
    SectionSource,
    SourceConfirmation,
    TransferSettings,
    TransferSettingsInput,
    XzufiReport,
)
from backend.state import AppState, unit_of_work

MAX_UPLOAD = 64 * 1024 * 1024
Tenant = Annotated[str | None, Parameter(description="slug of the town whose version to show (default: my own)")]


class XzufiController(AuthenticatedController):
    path = "/v1/knowledge"
    tags = ["knowledge"]

    @post(
        "/xzufi-imports",
        summary="Import XZuFi 2.2 messages (one XML message, or a zip of them)",
        status_code=200,
        request_max_body_size=MAX_UPLOAD,  # a zip of messages; one message is refused beyond 8 MB
        responses=problem_responses(400, 401, 403, 422),
    )
    async def import_xzufi(
        self, app_state: AppState, principal: Principal, request: Request[Any, Any, Any]
    ) -> XzufiReport:
        """Body: an XZuFi 2.2 message (`application/xml`) or a zip of messages (`application/zip`).
        Services become shared articles (or a town's own, when valid for its area only), offices
        departments, responsibilities ticket routes and the town's contacts and opening hours.
        The report counts what was created, updated, unchanged and archived, deletes of things
        never received, and lists bad objects with message, line and id."""
        raw = await request.body()  # litestar answers 413 beyond MAX_UPLOAD
        if request.headers.get("content-type", "").startswith("application/json"):
            # Also accepted: {"message": "<XML>"} (clients that can only send JSON objects).
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            if not isinstance(value, dict) or not isinstance(value.get("message"), str):
                raise ValidationFailed(
                    _l("send the XML message, a zip, or a JSON object with the XML in `message`"), field="body"
                )
            raw = xzufi.text_message(value["message"])
        try:
            xzufi.check_size(raw)
        except xzufi.XzufiTooLarge as refused:
            raise HttpError(refused.message, ErrorCode.VALIDATION_FAILED, 413) from None
        name = "upload.zip" if raw.startswith(b"PK") else "upload.xml"
        async with unit_of_work(app_state, principal) as uow:
            return await xzufi_import.import_upload(uow, raw, name)

    @get(
        "/articles/{article_id:uuid}/sources",
        summary="Where each section of an article came from (XZuFi, editor, web page) and when",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def section_sources(
        self, app_state: AppState, principal: Principal, article_id: UUID, tenant: Tenant = None
    ) -> list[SectionSource]:
        """For a shared article, the town's local version's overrides follow the article's own
        sections; `sourceChanged` marks an override whose source changed since."""
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await xzufi_sources.section_sources(uow, article_id, tenant)

    @post(
        "/articles/{article_id:uuid}/sources/confirm",
        summary="Confirm that the changed source under an override has been seen",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def confirm_sources(
        self, app_state: AppState, principal: Principal, article_id: UUID, data: SourceConfirmation
    ) -> list[SectionSource]:
        """`article_id` is the editor's own article (a town's local version, or a local article);
        `sections` empty confirms all."""
        async with unit_of_work(app_state, principal) as uow:
            return await xzufi_sources.confirm_source_changes(uow, article_id, data.sections)

    @get(
        "/xzufi-transfer",
        summary="The operator's XZuFi transfer: settings, cursor and last run",
        responses=problem_responses(401, 403, 404),
    )
    async def transfer(self, app_state: AppState, principal: Principal) -> TransferSettings:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await xzufi_transfer.transfer_settings(uow)

    @put(
        "/xzufi-transfer",
        summary="Set up the operator's XZuFi transfer (URL, OAuth2 client credentials, schedule)",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def set_transfer(
        self, app_state: AppState, principal: Principal, data: TransferSettingsInput
    ) -> TransferSettings:
        """The background worker runs it every `intervalMinutes`; the cursor is kept between runs
        (`restart: true`, or a new URL, forgets it). The client secret is stored sealed. A run in
        progress stops before its next page."""
        async with unit_of_work(app_state, principal) as uow:
            return await xzufi_transfer.set_transfer(uow, data)

    @post(
        "/xzufi-transfer/run",
        summary="Run the operator's XZuFi transfer now",
        status_code=200,
        responses=problem_responses(401, 403, 404, 409),
    )
    async def run_transfer(self, app_state: AppState, principal: Principal) -> XzufiReport:
        """One run at a time: 409 CONFLICT while another (the worker's, or this button's) runs."""
        return await xzufi_worker.run_transfer(app_state, principal)
