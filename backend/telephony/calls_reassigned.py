"""A 115 call assigned to the wrong town moves again (issue 17 §3): to another of its candidate
towns, or back to the operator, with a reason, until an issued invoice covers its day. Each move
is an event naming who, when and why (`call_reassignments`); the billing triggers move the
call's rollups and charge with it."""

from __future__ import annotations

from uuid import UUID

from auth.permissions import Operation, require
from backend import clock
from backend.db.rows import row_to
from backend.errors import InvalidTransition, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.telephony import centre_repository, events, repository
from backend.telephony.schemas import Call, CallReassignment, CallTenantInput


async def assigned_before(uow: UnitOfWork, current: Call) -> bool:
    """Whether the call was assigned to a town before (it may be back with the operator now)."""
    require(uow.principal, Operation.CALL_TENANT_ASSIGN)
    return await centre_repository.assigned_before(uow.conn, current.tenant_id, current.id)


async def reassign(uow: UnitOfWork, current: Call, data: CallTenantInput, allowed: set[UUID]) -> Call:
    """`current` was assigned before (the caller, `assign_call_tenant`, checked the principal and
    locked the call); `allowed`: the call's candidate towns and the number's owner."""
    reachable = require(uow.principal, Operation.CALL_TENANT_ASSIGN)
    if data.tenant_id == current.tenant_id:
        raise InvalidTransition(_l("the call was already assigned to a town"))
    reason = (data.reason or "").strip()
    if not reason:
        raise ValidationFailed(_l("say why the call moves to another town"), field="reason")
    if data.tenant_id not in allowed or data.tenant_id not in reachable:
        raise ValidationFailed(_l("the town is not one of the call's candidates"), field="tenantId")
    if current.ticket_id is not None or current.outcome_department_id is not None:
        raise InvalidTransition(
            _l("the call already names a ticket or department of its tenant; it can no longer move")
        )
    if await centre_repository.call_invoiced(uow.conn, current.tenant_id, current.id):
        raise InvalidTransition(_l("the call's day is already invoiced to its town; it can no longer move"))
    moved_id = await centre_repository.reassign_call(
        uow.conn, current.tenant_id, current.id, data.tenant_id, uow.principal.log_id, reason, clock.now()
    )
    moved = await repository.find_call(uow.conn, current.id, list(reachable)) if moved_id else None
    if moved is None:
        raise InvalidTransition(_l("the call was moved by someone else; reload and try again"))
    uow.after_commit(lambda: events.publish_call(uow.app, "updated", moved))
    return moved


async def reassignments(uow: UnitOfWork, call_id: UUID) -> list[CallReassignment]:
    """The moves of a call after its first assignment, oldest first (those the principal sees)."""
    reachable = require(uow.principal, Operation.CALL_READ)
    if await repository.find_call(uow.conn, call_id, list(reachable)) is None:
        raise NotFound(_l("call not found"))
    return [
        row_to(CallReassignment, r)
        for r in await centre_repository.list_reassignments(uow.conn, list(reachable), call_id)
    ]
