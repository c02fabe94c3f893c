"""What the tickets domain reports: the audit log of personal-data reads and changes, and the
callback figures (forwarded tickets, callbacks on time or late) that billing's 115 figures read.
Split from `service` (the ticket's life), which it reads through; read only, no rules of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from auth.permissions import Operation
from backend import clock, cursors
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tickets import audit_repository, repository, service
from backend.tickets.schemas import OPEN_STATUSES, AuditEntry, CallbackFigures


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEntry]
    next_cursor: str | None


# --- audit ---------------------------------------------------------------------------------


async def audit_log(
    uow: UnitOfWork, tenant_slug: str, ticket_id: UUID | None = None, first: int = 50, after: str | None = None
) -> AuditPage:
    service.check_page(first)
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_AUDIT_READ)
    rows = await audit_repository.list_audit(uow.conn, tenant.id, ticket_id, cursors.decode(after), first + 1)
    items = rows[:first]
    more = len(rows) > first
    return AuditPage(items=items, next_cursor=cursors.encode(items[-1].at, items[-1].id) if more else None)


# --- figures -------------------------------------------------------------------------------


async def callback_figures(
    uow: UnitOfWork, tenant_ids: list[UUID], start: date, last: date, now: datetime | None = None
) -> dict[UUID, CallbackFigures]:
    """Tickets forwarded and callbacks on time vs late per tenant for the local days `start` …
    `last` (inclusive), for the 115 figures. Tenants out of the principal's reach are left out;
    every reachable tenant asked for gets a row (zeros when nothing happened)."""
    reachable = reach.reachable(uow, Operation.FIGURES_READ)
    wanted = sorted(t for t in set(tenant_ids) if t in reachable)
    if not wanted:
        return {}
    open_statuses = sorted(s.value for s in OPEN_STATUSES)
    return await repository.callback_figures(uow.conn, wanted, start, last, now or clock.now(), open_statuses)
