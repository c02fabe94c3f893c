"""`loesche` entries of XZuFi messages (decision 024): what they name is archived, never
deleted — a service's article, an office's department (made inactive), the received object
itself — and a responsibility is detached from its routes. The real feed sends very many
deletions for things a receiver never had: those are counted, not errors."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from uuid import UUID

from auth.permissions import Operation
from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.knowledge import service, xzufi, xzufi_links
from backend.knowledge import xzufi_repository as store
from backend.knowledge.schemas import ArticleStatus
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tenants import service as tenants
from backend.tenants.schemas import DepartmentInput


class Archived(enum.Enum):
    ARCHIVED = "archived"  # a received object and what it became
    DETACHED = "detached"  # a responsibility taken off its routes
    UNKNOWN = "unknown"  # never received: counted
    ALREADY = "already"  # archived by an earlier deletion


async def archive(uow: UnitOfWork, operator_id: UUID, now: datetime, deletion: xzufi.Deletion, note: str) -> Archived:
    """Archive what one `loesche` entry names, in the operator's received objects."""
    # The import's start passed this door already; a deletion is never made from anywhere else.
    if operator_id not in reach.reachable(uow, Operation.XZUFI_IMPORT):
        raise ValidationFailed(_l("only an operator imports XZuFi messages; sign in as its platform admin"))
    conn = uow.conn
    if deletion.kind == "zustaendigkeit":
        gone = await xzufi_links.detach(conn, operator_id, now, deletion.xzufi_id)
        return Archived.DETACHED if gone else Archived.UNKNOWN
    stored = (await store.objects_by_ids(conn, operator_id, deletion.kind, [deletion.xzufi_id])).get(deletion.xzufi_id)
    if stored is None:
        return Archived.UNKNOWN
    if stored.status == "archived":
        return Archived.ALREADY
    if stored.article_id is not None:
        article = await service.article_state(uow, stored.article_id)
        if article.status is ArticleStatus.PUBLISHED:
            await service.change_status(uow, article.id, ArticleStatus.ARCHIVED, article.latest_version, note)
    if stored.department_id is not None:
        town = (await tenants.tenants_by_ids(uow, [stored.target_tenant_id]))[stored.target_tenant_id]
        departments = {d.id: d for d in await tenants.tenant_departments(uow, town.slug)}
        department = departments.get(stored.department_id)
        if department is not None and department.active:
            data = DepartmentInput(name=department.name, email=department.email, phone=department.phone, active=False)
            await tenants.update_department(uow, town.slug, department.id, data)
    await store.save_object(conn, operator_id, dataclasses.replace(stored, status="archived"), now)
    return Archived.ARCHIVED
