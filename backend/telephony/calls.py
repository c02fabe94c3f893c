"""Calls: recorded from the telephone system's events or complete records (idempotent on
source system and external id), read, given an outcome, linked to a ticket, assigned to a town
(115), and their caller numbers erased after the tenant's retention. The bulk import of a day's
records is `call_import`.

Work inside a unit of work routes with `conn=uow.conn`: it holds a connection and never waits for
a second one (decision 013).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from auth.permissions import Operation, require
from auth.principal import Principal
from backend import clock, cursors
from backend.centre import events as centre_events
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.telephony import cache, calls_reassigned, events, repository
from backend.telephony.numbers import normalise_caller, normalise_dialled
from backend.telephony.schemas import (
    DEFAULT_CALLER_RETENTION_DAYS,
    Call,
    CallEventInput,
    CallEventType,
    CallOutcomeInput,
    CallRecordInput,
    CallTenantInput,
    Outcome,
    Purpose,
    ResolvedBy,
)
from backend.tenants import reach

MAX_PAGE_SIZE = 100
CALLER_RETENTION_DAYS = DEFAULT_CALLER_RETENTION_DAYS  # without tenant settings: caller numbers erased after this


# --- recording calls -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallSource:
    tenant_id: UUID
    system: str


def call_source(principal: Principal) -> CallSource:
    # The telephony system is the OAuth client; its ids are unique only within its tenant's issuer.
    return CallSource(principal.tenant_id, principal.client_id or principal.subject)


def aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(_l("give times with a time zone offset"), field=field)
    return value


# Longest a call may last, offer to end (as the `Seconds` fields allow): a garbled timestamp is one
# bad record, not seconds that overflow the table's integer columns.
LONGEST_CALL = timedelta(days=7)


def check_times(offered: datetime, answered: datetime | None, ended: datetime | None) -> None:
    if answered is not None and answered < offered:
        raise ValidationFailed(_l("a call is answered after it was offered"), field="answeredAt")
    if ended is not None and ended < (answered or offered):
        raise ValidationFailed(_l("a call ends after it was offered and answered"), field="endedAt")
    for field, at in (("answeredAt", answered), ("endedAt", ended)):
        if at is not None and at - offered > LONGEST_CALL:
            raise ValidationFailed(
                _l("a call lasts at most {days} days from its offer", days=LONGEST_CALL.days), field=field
            )


def _derived(
    offered: datetime, answered: datetime | None, ended: datetime | None, wait_derived: bool, outcome_recorded: bool
) -> dict[str, Any]:
    """The computed figures of a call, from its times as they stand now: talk seconds always,
    the wait unless the system reported one, `abandoned` (or no outcome) unless an agent
    recorded one. Raw seconds (billing rounds them). Recomputed whenever a time arrives, so the
    order in which events arrive does not matter; never compared as facts (decision 006)."""
    derived: dict[str, Any] = {"talk_seconds": int((ended - answered).total_seconds()) if answered and ended else None}
    if wait_derived:
        until = answered or ended
        derived["wait_seconds"] = int((until - offered).total_seconds()) if until else None
    if not outcome_recorded:
        derived["outcome"] = Outcome.ABANDONED.value if ended and not answered else None
    return derived


async def _resolve_call(
    uow: UnitOfWork, acting: frozenset[UUID], dialled: str, caller: str | None, offered_at: datetime
) -> dict[str, Any]:
    # On the unit of work's own connection: it holds one, and must never wait for another.
    compiled, _ = await cache.routing_for(uow.app, acting, dialled, conn=uow.conn)
    found = compiled.tenant_of_call(dialled, caller, offered_at, acting)
    if found is None:
        raise ValidationFailed(_l("the dialled number was not ours when the call started"), field="dialled")
    entry, tenant_id, resolved_by = found
    return {
        "tenant_id": tenant_id,
        "service_number_id": entry.id,
        "purpose": entry.purpose.value,
        "resolved_by": resolved_by.value,
    }


async def _apply(uow: UnitOfWork, external_id: str, facts: dict[str, Any]) -> Call:
    """Create the call or add what is new; a reported fact that differs from the stored one is
    a conflict (409) and nothing changes. The same facts again change nothing. A reported wait
    replaces a computed one; computed figures follow the times (`_derived`)."""
    acting = require(uow.principal, Operation.CALL_WRITE)
    source = call_source(uow.principal)
    facts = {k: v for k, v in facts.items() if v is not None}
    found = await repository.find_call_by_source(
        uow.conn, source.tenant_id, source.system, external_id, list(acting), for_update=True
    )
    if found is None:
        if "offered_at" not in facts or "dialled" not in facts:
            raise NotFound(_l("call not found; post its `offered` event (or the complete record) first"))
        check_times(facts["offered_at"], facts.get("answered_at"), facts.get("ended_at"))
        wait_derived = "wait_seconds" not in facts
        values = {
            **facts,
            **await _resolve_call(uow, acting, facts["dialled"], facts.get("caller"), facts["offered_at"]),
            **_derived(facts["offered_at"], facts.get("answered_at"), facts.get("ended_at"), wait_derived, False),
        }
        values.update(id=uuid4(), source_system=source.system, external_id=external_id, wait_derived=wait_derived)
        created = await repository.insert_call(uow.conn, source.tenant_id, values)
        if created is not None:
            uow.after_commit(lambda: events.publish_call(uow.app, "offered", created))
            return created
        # Someone else inserted it meanwhile (committed by now): compare with theirs.
        found = await repository.find_call_by_source(
            uow.conn, source.tenant_id, source.system, external_id, list(acting), for_update=True
        )
        if found is None:
            raise Conflict(_l("the call was recorded for a tenant you no longer act for"))
    call = found.call
    wait_derived = found.wait_derived or call.wait_seconds is None  # no wait is no reported wait
    changes: dict[str, Any] = {}
    conflicts: list[str] = []
    for key, value in facts.items():
        if key == "caller" and found.caller_erased_at is not None:
            continue
        stored = getattr(call, key)
        if key == "wait_seconds" and wait_derived:
            changes.update(wait_seconds=value, wait_derived=False)  # reported replaces computed
        elif stored is None:
            changes[key] = value
        elif stored != value:
            conflicts.append(key)
    if conflicts:
        names = ", ".join(sorted(_camel(k) for k in conflicts))
        raise Duplicate(
            _l(
                "call {external_id!r} was already recorded with other values ({names})",
                external_id=external_id,
                names=names,
            )
        )
    if not changes:
        return call
    merged = {**msgspec.structs.asdict(call), **changes}
    check_times(merged["offered_at"], merged["answered_at"], merged["ended_at"])
    wait_derived = changes.get("wait_derived", wait_derived)
    derived = _derived(
        merged["offered_at"], merged["answered_at"], merged["ended_at"], wait_derived, found.outcome_recorded
    )
    stored_outcome = call.outcome.value if call.outcome is not None else None
    changes.update({k: v for k, v in derived.items() if v != (stored_outcome if k == "outcome" else getattr(call, k))})
    updated = await repository.update_call(uow.conn, call.tenant_id, call.id, changes)
    kind = "ended" if "ended_at" in changes else "answered" if "answered_at" in changes else "updated"
    uow.after_commit(lambda: events.publish_call(uow.app, kind, updated))
    return updated


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def record_call(uow: UnitOfWork, data: CallRecordInput) -> Call:
    """A complete record (or its first part), idempotent on (source system, external id)."""
    return await _apply(
        uow,
        data.external_id,
        {
            "dialled": normalise_dialled(data.dialled),
            "caller": normalise_caller(data.caller),
            "queue": data.queue,
            "offered_at": aware(data.offered_at, "offeredAt"),
            "answered_at": aware(data.answered_at, "answeredAt"),
            "ended_at": aware(data.ended_at, "endedAt"),
            "agent": data.agent,
            "wait_seconds": data.wait_seconds,
        },
    )


async def record_call_event(uow: UnitOfWork, data: CallEventInput) -> Call:
    at = aware(data.at, "at")
    facts: dict[str, Any]
    if data.type is CallEventType.OFFERED:
        if data.dialled is None:
            raise ValidationFailed(_l("an offered event names the dialled number"), field="dialled")
        facts = {
            "dialled": normalise_dialled(data.dialled),
            "caller": normalise_caller(data.caller),
            "queue": data.queue,
            "offered_at": at,
        }
    elif data.type is CallEventType.ANSWERED:
        facts = {"answered_at": at, "agent": data.agent, "wait_seconds": data.wait_seconds}
    else:
        facts = {"ended_at": at}
    return await _apply(uow, data.external_id, facts)


async def call(uow: UnitOfWork, call_id: UUID, *, lock: bool = False) -> Call:
    """`lock`: held until the transaction ends, for a change that depends on what the call is
    linked to (a message's retry answers the ticket the call names)."""
    reachable = require(uow.principal, Operation.CALL_READ)
    found = await repository.find_call(uow.conn, call_id, list(reachable), for_update=lock)
    if found is None:
        raise NotFound(_l("call not found"))
    return found


@dataclass(frozen=True, slots=True)
class CallPage:
    items: list[Call]
    next_cursor: str | None


async def list_calls(
    uow: UnitOfWork,
    tenant_slug: str | None,
    since: datetime | None,
    until: datetime | None,
    first: int = 50,
    after: str | None = None,
) -> CallPage:
    reachable = reach.reachable(uow, Operation.CALL_READ)
    tenant = await reach.reach_optional(uow, tenant_slug, Operation.CALL_READ)
    first = max(1, min(first, MAX_PAGE_SIZE))
    rows = await repository.list_calls(
        uow.conn, [tenant.id] if tenant else list(reachable), since, until, cursors.decode(after), first + 1
    )
    items = rows[:first]
    last = items[-1] if len(rows) > first else None
    return CallPage(items=items, next_cursor=cursors.encode(last.offered_at, last.id) if last else None)


async def record_outcome(uow: UnitOfWork, call_id: UUID, data: CallOutcomeInput) -> Call:
    reachable = require(uow.principal, Operation.CALL_OUTCOME_WRITE)
    # Locked, as a ticket from the call locks it: an outcome recorded at the moment a ticket is
    # made from the call waits, then sees the ticket (and is refused), where it overwrote
    # "forwarded as ticket" and the call counted as settled with a ticket open.
    current = await repository.find_call(uow.conn, call_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("call not found"))
    department_id = data.department_id
    if data.outcome is Outcome.TRANSFERRED_TO_DEPARTMENT:
        department_id = await _transferred_to(uow, current, data)
    elif data.department_id is not None:
        raise ValidationFailed(_l("a department is given only for transferred calls"), field="departmentId")
    elif data.person_id is not None or data.transfer_taken is not None:
        raise ValidationFailed(_l("a person and whether it was taken are given only for transfers"), field="personId")
    if data.outcome is not Outcome.ABANDONED and current.answered_at is None and current.ended_at is not None:
        raise ValidationFailed(_l("the call was never answered"), field="outcome")
    if current.ticket_id is not None and data.outcome is not Outcome.FORWARDED_AS_TICKET:
        raise InvalidTransition(
            _l("a ticket was created from this call; it stays forwarded as ticket"), field="outcome"
        )
    updated = await repository.set_call_outcome(
        uow.conn,
        current.tenant_id,
        current.id,
        data.outcome.value,
        department_id,
        data.note.strip() if data.note else None,
        uow.principal.log_id,
        data.person_id,
        data.transfer_taken,
    )
    assert updated is not None
    # The centre's live view counts outcomes (first-contact rate); the screen pop does not need them.
    uow.after_commit(lambda: centre_events.publish_change(uow.app, updated.tenant_id))
    return updated


async def _transferred_to(uow: UnitOfWork, current: Call, data: CallOutcomeInput) -> UUID:
    """The department a transferred call went to: the one named, or the directory person's
    (a person from the forwarding decision's options: an active one of the call's town, and the
    department named, if any, must be theirs)."""
    department_id = data.department_id
    if data.person_id is not None:
        found = await repository.find_transfer_person(uow.conn, current.tenant_id, data.person_id)
        if found is None:
            raise NotFound(_l("person not found in the town's directory"), field="personId")
        active, person_department = found
        if not active:
            raise ValidationFailed(_l("the person is no longer in the town's directory"), field="personId")
        if department_id is None:
            department_id = person_department
        elif person_department is not None and department_id != person_department:
            raise ValidationFailed(_l("the person works in another department"), field="departmentId")
        if department_id is None:
            raise ValidationFailed(
                _l("the person belongs to no department; name the department the call was transferred to"),
                field="departmentId",
            )
    if department_id is None:
        raise ValidationFailed(_l("name the department the call was transferred to"), field="departmentId")
    if not await repository.department_exists(uow.conn, current.tenant_id, department_id):
        raise NotFound(_l("department not found"), field="departmentId")
    return department_id


async def link_ticket(uow: UnitOfWork, tenant_id: UUID, call_id: UUID, ticket_id: UUID) -> Call:
    """A ticket was created from this call (same transaction): the call's outcome becomes
    "forwarded as ticket" with the link, so the agent needs no second step and the
    first-contact figures count it. One ticket per call; the call must be the ticket's town's
    (a 115 call still under the operator is assigned to the town first) and one the agent sees."""
    reachable = require(uow.principal, Operation.CALL_READ)
    current = await repository.find_call(uow.conn, call_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("call not found"), field="callId")
    if current.tenant_id != tenant_id:
        raise ValidationFailed(_l("the call is another tenant's; assign a 115 call to the town first"), field="callId")
    if current.ticket_id is not None:
        raise Duplicate(_l("a ticket was already created from this call"), field="callId")
    if current.answered_at is None and current.ended_at is not None:
        raise ValidationFailed(_l("the call was never answered"), field="callId")
    linked = await repository.link_ticket(uow.conn, tenant_id, call_id, ticket_id, uow.principal.log_id)
    assert linked is not None
    return linked


async def erase_expired_callers(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Caller numbers are kept only as long as needed: erase those of calls older than their
    tenant's retention (the background worker does this for every tenant, see `worker`)."""
    reachable = require(uow.principal, Operation.CALL_WRITE)
    return await repository.erase_caller_numbers(uow.conn, list(reachable), now or clock.now(), CALLER_RETENTION_DAYS)


async def assign_call_tenant(uow: UnitOfWork, call_id: UUID, data: CallTenantInput) -> Call:
    """115 with an ambiguous caller area: the call was stored under the operator, and the agent
    picks the town. Only a town the routing offered as a candidate for this call (as it was at
    its start), and only a town the agent acts for; recorded on the call. Once assigned, it
    moves again only with a reason and until invoiced (`calls_reassigned`)."""
    reachable = require(uow.principal, Operation.CALL_TENANT_ASSIGN)
    current = await repository.find_call(uow.conn, call_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("call not found"))
    if data.tenant_id not in reachable:
        raise NotFound(_l("tenant not found"), field="tenantId")
    if current.purpose is not Purpose.ONE_ONE_FIVE or current.resolved_by is not ResolvedBy.AMBIGUOUS_AREA_CODE:
        raise ValidationFailed(
            _l("only a 115 call whose caller area names several towns is assigned"), field="tenantId"
        )
    compiled, _ = await cache.routing_for(uow.app, reachable, current.dialled, conn=uow.conn)
    decision = compiled.decide(current.dialled, current.caller, current.offered_at, reachable)
    owner = compiled.owner_of(current.dialled, current.offered_at, reachable)
    if owner is None:
        raise InvalidTransition(_l("the call was already assigned to a town"))
    if owner[1].id != current.tenant_id or await calls_reassigned.assigned_before(uow, current):
        allowed = {owner[1].id, *(c.tenant.id for c in decision.candidates)}
        return await calls_reassigned.reassign(uow, current, data, allowed)
    if data.tenant_id not in {c.tenant.id for c in decision.candidates}:
        raise ValidationFailed(_l("the town is not one of the call's candidates"), field="tenantId")
    if data.tenant_id == current.tenant_id:
        raise ValidationFailed(_l("the call is already stored for that tenant"), field="tenantId")
    if current.ticket_id is not None or current.outcome_department_id is not None:
        raise InvalidTransition(
            _l("the call already names a ticket or department of its tenant; it can no longer move")
        )
    moved = await repository.assign_call_tenant(
        uow.conn, current.tenant_id, current.id, data.tenant_id, uow.principal.log_id
    )
    if moved is None:
        raise InvalidTransition(_l("the call was already assigned to a town"))
    uow.after_commit(lambda: events.publish_call(uow.app, "updated", moved))
    return moved
