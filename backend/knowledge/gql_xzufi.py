"""GraphQL for the XZuFi import (decision 024): the import, where sections came from, and the
editor's confirmation of a changed source. The transfer's settings are REST only (an operator's
configuration, not something the front ends show)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

import strawberry

from backend.api.context import Info
from backend.api.mapping import mirrors, shown_all
from backend.api.payloads import UserError, mutate
from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.knowledge import xzufi, xzufi_import, xzufi_sources
from backend.knowledge.xzufi_schemas import SectionOrigin, SectionSource, XzufiProblem, XzufiReport
from backend.state import UnitOfWork

strawberry.enum(SectionOrigin, name="SectionOrigin")


@mirrors(XzufiProblem)
@strawberry.type(name="XzufiProblem", description="An XZuFi object that did not go in: message, line, id, why")
class XzufiProblemGQL:
    message_name: str
    line: int
    kind: str
    xzufi_id: str | None
    message: str


@mirrors(XzufiReport)
@strawberry.type(name="XzufiImportReport")
class XzufiReportGQL:
    messages: int
    created: int
    updated: int
    unchanged: int
    archived: int
    deletes_unknown: int
    offices_created: int
    offices_updated: int
    offices_unchanged: int
    responsibilities: int
    unknown_elements: int
    errors: list[XzufiProblemGQL]


@mirrors(SectionSource)
@strawberry.type(name="SectionSource", description="Where one section of an article came from, and when")
class SectionSourceGQL:
    article_id: str
    section: str
    origin: SectionOrigin
    reference: str | None
    reference_version: str | None
    changed_at: datetime
    changed_by: str
    source_changed: bool
    source_changed_at: datetime | None


@strawberry.type(name="ImportXzufiPayload")
class ImportXzufiPayload:
    report: XzufiReportGQL | None
    errors: list[UserError]


@strawberry.type(name="ConfirmSourceChangesPayload")
class ConfirmSourceChangesPayload:
    sources: list[SectionSourceGQL] | None
    errors: list[UserError]


async def _import(uow: UnitOfWork, message: str | None, zip_base64: str | None) -> XzufiReport:
    if (message is None) == (zip_base64 is None):
        raise ValidationFailed(_l("send either `message` (XML) or `zipBase64`"), field="message")
    if message is not None:
        return await xzufi_import.import_upload(uow, xzufi.text_message(message), "message.xml")
    try:
        data = base64.b64decode(zip_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(_l("`zipBase64` is not base64"), field="zipBase64") from None
    return await xzufi_import.import_upload(uow, data, "upload.zip")


@strawberry.type
class XzufiQuery:
    @strawberry.field(
        description="Where each section of an article came from (XZuFi id and version, editor, web page) and "
        "when; for a shared article the town's overrides too, `sourceChanged` where the source changed since"
    )
    async def article_sources(self, info: Info, id: UUID, tenant: str | None = None) -> list[SectionSourceGQL]:
        async with info.context.uow() as uow:
            return shown_all(SectionSourceGQL, await xzufi_sources.section_sources(uow, id, tenant))


@strawberry.type
class XzufiMutation:
    @strawberry.mutation(
        description="Import XZuFi 2.2: one message as XML text, or a zip of messages as base64 "
        "(the operator's platform admins)"
    )
    async def import_xzufi(
        self, info: Info, message: str | None = None, zip_base64: str | None = None
    ) -> ImportXzufiPayload:
        return await mutate(info, ImportXzufiPayload, "report", lambda uow: _import(uow, message, zip_base64))

    @strawberry.mutation(description="Confirm a changed source under my overrides has been seen (empty: all)")
    async def confirm_source_changes(
        self, info: Info, article_id: UUID, sections: list[str] | None = None
    ) -> ConfirmSourceChangesPayload:
        return await mutate(
            info,
            ConfirmSourceChangesPayload,
            "sources",
            lambda uow: xzufi_sources.confirm_source_changes(uow, article_id, sections or []),
        )
