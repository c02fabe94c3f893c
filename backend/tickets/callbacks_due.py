"""Callbacks falling due and overdue now, per town: for the centre's live view (issue 17 §5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from auth.permissions import Operation
from backend import clock
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tickets import repository
from backend.tickets.schemas import OPEN_STATUSES


async def callbacks_due(
    uow: UnitOfWork, tenant_ids: list[UUID], now: datetime | None = None, within: timedelta = timedelta(hours=1)
) -> dict[UUID, tuple[int, int]]:
    """Per tenant (due in the next `within`, overdue): open tickets by their callback deadline.
    Tenants out of the principal's figures reach are left out."""
    visible = reach.reachable(uow, Operation.FIGURES_READ)
    wanted = sorted(t for t in set(tenant_ids) if t in visible)
    if not wanted:
        return {}
    moment = now or clock.now()
    open_statuses = sorted(s.value for s in OPEN_STATUSES)
    return await repository.callbacks_due(uow.conn, wanted, moment, moment + within, open_statuses)
