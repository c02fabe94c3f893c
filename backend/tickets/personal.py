"""The citizen's data on tickets: contact data, internal comments and callback notes. Every
read is audited in the same transaction (no read without its record), and every answer that
carries such data is noted for the idempotency record (`disclosed`), so that sending it again
is audited too (`audit_replay`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from uuid import UUID

from auth.errors import Forbidden
from auth.permissions import Operation
from backend import clock, disclosures
from backend.disclosures import Disclosure
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tickets import audit_repository, repository
from backend.tickets.schemas import AuditWhat, CallbackAttempt, Comment, PersonalData, Ticket, TicketDetail

# The operations whose answers carry the citizen's data: the personal reads, and the workflow
# (a comment or callback note in the answer repeats what was just written).
DISCLOSING = (Operation.TICKET_PERSONAL_READ, Operation.TICKET_WORK)


def _disclosing_reach(uow: UnitOfWork) -> frozenset[UUID]:
    """The tenants where the principal may do any operation that discloses (none: empty)."""
    tenants: frozenset[UUID] = frozenset()
    for operation in DISCLOSING:
        with contextlib.suppress(Forbidden):
            tenants |= reach.reachable(uow, operation)
    return tenants


async def _audit(uow: UnitOfWork, tickets: list[Ticket], via: str, what: AuditWhat) -> None:
    principal = uow.principal
    disclosed(tickets, what)
    await audit_repository.insert_audit(
        uow.conn,
        [(t.tenant_id, t.id) for t in tickets],
        actor_subject=principal.subject,
        actor_issuer=principal.issuer,
        actor_tenant_id=principal.tenant_id,
        via=via,
        what=what,
    )


def disclosed(tickets: list[Ticket], what: AuditWhat) -> None:
    """The response carries these tickets' personal data (for the idempotency record)."""
    disclosures.note(Disclosure(t.tenant_id, t.id, what.value) for t in tickets)


async def audit_replay(uow: UnitOfWork, stored: list[Disclosure], via: str) -> bool:
    """A stored answer that held the citizen's data is about to be sent again (an idempotent
    retry): that is a read, audited like one (per ticket and kind). False, with
    nothing audited, when a ticket's data has been erased since or is out of the caller's reach:
    then the answer is not sent again."""
    ids = list({d.ticket_id for d in stored})
    tickets = await repository.tickets_by_ids(uow.conn, sorted(_disclosing_reach(uow)), ids, clock.now())
    readable = {t.id: t for t in tickets if t.personal_data_erased_at is None}
    if set(readable) != set(ids):
        return False
    for what in sorted({d.what for d in stored}):
        tickets_read = [readable[t] for t in dict.fromkeys(d.ticket_id for d in stored if d.what == what)]
        await _audit(uow, tickets_read, via, AuditWhat(what))
    return True


async def personal_data(uow: UnitOfWork, ticket_ids: list[UUID], via: str) -> dict[UUID, PersonalData | None]:
    """The citizen's data of several tickets; one audit row per ticket read (same transaction:
    no read without its record). Needs a writable unit of work."""
    reachable = reach.reachable(uow, Operation.TICKET_PERSONAL_READ)
    tickets = await repository.tickets_by_ids(uow.conn, list(reachable), ticket_ids, clock.now())
    found = await repository.personal_data(uow.conn, list(reachable), [t.id for t in tickets])
    await _audit(uow, [t for t in tickets if t.id in found], via, AuditWhat.CONTACT)
    return {ticket_id: found.get(ticket_id) for ticket_id in ticket_ids}


async def ticket_detail(uow: UnitOfWork, ticket_id: UUID, via: str, now: datetime | None = None) -> TicketDetail:
    reachable = reach.reachable(uow, Operation.TICKET_PERSONAL_READ)
    ticket = await repository.get_ticket(uow.conn, list(reachable), ticket_id, now or clock.now())
    found = await repository.personal_data(uow.conn, [ticket.tenant_id], [ticket.id])
    if ticket.id in found:
        await _audit(uow, [ticket], via, AuditWhat.CONTACT)
    return TicketDetail(ticket=ticket, personal_data=found.get(ticket.id))


async def comments(uow: UnitOfWork, ticket_ids: list[UUID], via: str) -> dict[UUID, list[Comment]]:
    """Internal comments may hold personal data: reading them is audited too."""
    reachable = reach.reachable(uow, Operation.TICKET_PERSONAL_READ)
    tickets = await repository.tickets_by_ids(uow.conn, list(reachable), ticket_ids, clock.now())
    found = await repository.list_comments(uow.conn, list(reachable), [t.id for t in tickets])
    grouped: dict[UUID, list[Comment]] = {t: [] for t in ticket_ids}
    for comment in found:
        grouped[comment.ticket_id].append(comment)
    await _audit(uow, [t for t in tickets if grouped.get(t.id)], via, AuditWhat.COMMENTS)
    return grouped


async def callback_attempts(
    uow: UnitOfWork, ticket_ids: list[UUID], via: str, *, with_notes: bool
) -> dict[UUID, list[CallbackAttempt]]:
    """Channel, time and outcome are facts; the free-text notes are personal data (audited)."""
    operation = Operation.TICKET_PERSONAL_READ if with_notes else Operation.TICKET_READ
    reachable = reach.reachable(uow, operation)
    tickets = await repository.tickets_by_ids(uow.conn, list(reachable), ticket_ids, clock.now())
    found = await repository.list_callback_attempts(uow.conn, list(reachable), [t.id for t in tickets])
    grouped: dict[UUID, list[CallbackAttempt]] = {t: [] for t in ticket_ids}
    for attempt in found:
        if not with_notes:
            attempt = CallbackAttempt(**{**_fields(attempt), "note": None})
        grouped[attempt.ticket_id].append(attempt)
    if with_notes:
        noted = {a.ticket_id for a in found if a.note}
        await _audit(uow, [t for t in tickets if t.id in noted], via, AuditWhat.CALLBACK_NOTES)
    return grouped


def _fields(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}
