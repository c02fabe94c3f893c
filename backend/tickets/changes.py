"""Recording a change to a ticket: one place for the change number, the event (who, when), the
outbox row and its webhook deliveries — all in the caller's transaction, so a change and its
notification commit or roll back together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from auth.principal import Principal
from backend.tickets import repository, webhook_repository
from backend.tickets.schemas import ActorKind, EventKind, Ticket, TicketChange, TicketStatus


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    subject: str | None
    tenant_id: UUID | None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        kind = ActorKind.MACHINE if principal.is_machine else ActorKind.PERSON
        return cls(kind, principal.subject, principal.tenant_id)


SYSTEM = Actor(ActorKind.SYSTEM, None, None)


def webhook_data(ticket: Ticket, change_seq: int, details: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a webhook and of the outbox row: ids, statuses and times only."""
    return {
        "ticketId": str(ticket.id),
        "tenantId": str(ticket.tenant_id),
        "number": ticket.number,
        "status": ticket.status.value,
        "departmentId": str(ticket.department_id),
        "priority": ticket.priority.value,
        "dueAt": ticket.due_at.isoformat(),
        "changeSeq": change_seq,
        **details,
    }


async def record_change(
    conn: asyncpg.Connection,
    tenant_ids: list[UUID],
    ticket_id: UUID,
    kind: EventKind,
    actor: Actor,
    now: datetime,
    *,
    changes: dict[str, Any] | None = None,
    from_status: TicketStatus | None = None,
    to_status: TicketStatus | None = None,
    details: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    bump_version: bool = True,
    change_seq: int | None = None,
) -> TicketChange | None:
    """Apply `changes` to the (already locked) ticket and record the change.

    Returns what to publish after commit, or None when `dedupe_key` says the event happened
    before (then nothing at all is written)."""
    details = details or {}
    if dedupe_key is not None and changes:
        raise ValueError("a deduplicated event cannot change the ticket")
    ticket = await repository.get_ticket(conn, tenant_ids, ticket_id, now)
    seq = change_seq if change_seq is not None else await repository.next_change_seq(conn, ticket.tenant_id)
    if change_seq is None and dedupe_key is None:
        await repository.update_ticket(
            conn, ticket.tenant_id, ticket.id, changes or {}, seq, now, bump_version=bump_version
        )
        ticket = await repository.get_ticket(conn, tenant_ids, ticket_id, now)
    event_id = await repository.insert_outbox(
        conn,
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        change_seq=seq,
        kind=kind,
        payload=webhook_data(ticket, seq, details),
        dedupe_key=dedupe_key,
        at=now,
    )
    if event_id is None:
        return None  # happened before: the ticket stays as it is
    if dedupe_key is not None:
        await repository.update_ticket(conn, ticket.tenant_id, ticket.id, {}, seq, now, bump_version=False)
    await repository.insert_event(
        conn,
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        change_seq=seq,
        kind=kind,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        actor_kind=actor.kind.value,
        actor_subject=actor.subject,
        actor_tenant_id=actor.tenant_id,
        details=details,
        at=now,
    )
    await webhook_repository.fan_out_deliveries(conn, ticket.tenant_id, event_id, ticket.id, seq, now)
    return TicketChange(
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        number=ticket.number,
        kind=kind,
        status=ticket.status,
        change_seq=seq,
        at=now,
    )
