"""The rules of telephony: service numbers, routing windows, 115, routing decisions, calls.

Every write registers `cache.routing_changed` with `uow.after_commit`, so the shared routing
table is replaced on every instance once (and only once) the change is committed. The routing
decision is the hot path: it reads the cached table and opens no transaction unless Redis is
down. Work inside a unit of work (calls, imports, assignment) routes with `conn=uow.conn`: it
holds a connection and never waits for a second one (decision 013). A tenant the principal
may not reach looks exactly like one that does not exist.

Over 700 lines for now: calls and their bulk import belong in a module of their own (issue 13;
left whole while the one-connection work of decision 013 settled).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.permissions import Operation, require
from auth.principal import Principal
from backend import clock, cursors
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from backend.generations import Generations
from backend.i18n import _l
from backend.state import AppState, UnitOfWork
from backend.telephony import cache, events, imports, repository
from backend.telephony.numbers import (
    normalise_area_code,
    normalise_block,
    normalise_caller,
    normalise_dialled,
    normalise_number,
)
from backend.telephony.routing import BERLIN, CompiledRouting
from backend.telephony.schemas import (
    DEFAULT_CALLER_RETENTION_DAYS,
    Absences,
    AreaCode,
    AreaCodeInput,
    Call,
    CallEventInput,
    CallEventType,
    CallOutcomeInput,
    CallRecordInput,
    CallTenantInput,
    DatedAbsence,
    DatedAbsenceInput,
    ImportProblem,
    ImportReport,
    NumberKind,
    Outcome,
    Purpose,
    ResolvedBy,
    RoutingDecision,
    ServiceNumber,
    ServiceNumberCreate,
    ServiceNumberMove,
    ServiceNumberMoved,
    ServiceNumberUpdate,
    TelephonySettings,
    TelephonySettingsInput,
    WeeklyAbsence,
    WeeklyAbsenceInput,
)
from backend.tenants import reach

_UNRESOLVED: Any = object()
MAX_PAGE_SIZE = 100
MAX_REPORTED_PROBLEMS = 1000
CALLER_RETENTION_DAYS = DEFAULT_CALLER_RETENTION_DAYS  # without tenant settings: caller numbers erased after this


# --- the routing decision ------------------------------------------------------------------


async def routing_decision(
    app: AppState,
    principal: Principal,
    dialled: str,
    caller: str | None,
    at: datetime | None = None,
    read: Generations | None = None,
) -> RoutingDecision:
    """For whom is a call to `dialled` (from `caller`) at `at`, and does the centre take it now?
    `read`: the generations the request read at sign-in (spares the hot path a round trip)."""
    acting = require(principal, Operation.ROUTING_READ)
    moment = at or clock.now()
    if moment.tzinfo is None:
        raise ValidationFailed(_l("give `at` with a time zone offset"), field="at")
    number = normalise_dialled(dialled)
    compiled, _ = await cache.routing_for(app, acting, number, read)
    return compiled.decide(number, normalise_caller(caller), moment, acting)


async def screen_pop_decision(
    app: AppState, principal: Principal, call: Call, read: Generations | None = None
) -> RoutingDecision:
    """The routing decision of a recorded call as it was at its start, for the agent's screen.
    `read`: the generations the subscription's sign-in check just read (None: read them here)."""
    reachable = require(principal, Operation.CALL_READ)
    compiled, _ = await cache.routing_for(app, reachable, call.dialled, read)
    return compiled.decide(call.dialled, call.caller, call.offered_at, reachable)


def screen_pop_tenants(principal: Principal) -> frozenset[UUID]:
    """The tenants whose calls pop up on this principal's screen (the screen pop subscription)."""
    return require(principal, Operation.CALL_READ)


# --- service numbers -------------------------------------------------------------------------


def _normalise_for(kind: NumberKind, raw: str) -> str:
    return normalise_block(raw) if kind is NumberKind.BLOCK else normalise_number(raw)


async def _insert_number(uow: UnitOfWork, tenant_id: UUID, **values: Any) -> ServiceNumber:
    try:
        async with uow.conn.transaction():
            return await repository.insert_service_number(uow.conn, tenant_id, uuid4(), **values)
    except asyncpg.ExclusionViolationError as error:
        # Never name the other owner: the message must not leak another tenant's numbers.
        if "one_owner" in (error.constraint_name or ""):
            raise Conflict(
                _l("this number overlaps a number another tenant owns in that period"), field="number"
            ) from None
        raise Conflict(_l("the tenant already has this number or block in that period"), field="number") from None
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(_l("department not found"), field="departmentId") from None


async def list_service_numbers(uow: UnitOfWork, tenant_slug: str | None, on: date | None) -> list[ServiceNumber]:
    reachable = reach.reachable(uow, Operation.SERVICE_NUMBER_READ)
    tenant = await reach.reach_optional(uow, tenant_slug, Operation.SERVICE_NUMBER_READ)
    return await repository.list_service_numbers(uow.conn, [tenant.id] if tenant else list(reachable), on)


async def service_number(uow: UnitOfWork, number_id: UUID) -> ServiceNumber:
    reachable = require(uow.principal, Operation.SERVICE_NUMBER_READ)
    number = await repository.find_service_number(uow.conn, number_id, list(reachable))
    if number is None:
        raise NotFound(_l("service number not found"))
    return number


async def create_service_number(uow: UnitOfWork, data: ServiceNumberCreate) -> ServiceNumber:
    await reach.reach_id(uow, data.tenant_id, Operation.SERVICE_NUMBER_WRITE)
    number = _normalise_for(data.kind, data.number)
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise ValidationFailed(_l("validTo is before validFrom"), field="validTo")
    if data.purpose is Purpose.DEPARTMENT and data.department_id is None:
        raise ValidationFailed(_l("a department line names its department"), field="departmentId")
    if data.purpose is Purpose.ONE_ONE_FIVE and number != normalise_number("115"):
        raise ValidationFailed(_l("purpose 115 is for the number 115"), field="purpose")
    created = await _insert_number(
        uow,
        data.tenant_id,
        number=number,
        kind=data.kind.value,
        purpose=data.purpose.value,
        department_id=data.department_id,
        greeting=data.greeting,
        routing_window=data.routing_window.value,
        valid_from=data.valid_from,
        valid_to=data.valid_to,
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return created


async def update_service_number(uow: UnitOfWork, number_id: UUID, data: ServiceNumberUpdate) -> ServiceNumber:
    reachable = require(uow.principal, Operation.SERVICE_NUMBER_WRITE)
    current = await repository.find_service_number(uow.conn, number_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("service number not found"))
    fields = data.__struct_fields__
    given = {f for f in fields if getattr(data, f) is not None}
    valid_to = data.valid_to if "valid_to" in given else current.valid_to
    if valid_to is not None and valid_to < current.valid_from:
        raise ValidationFailed(_l("validTo is before validFrom"), field="validTo")
    try:
        async with uow.conn.transaction():
            updated = await repository.update_service_number(
                uow.conn,
                current.tenant_id,
                current.id,
                (data.routing_window or current.routing_window).value,
                data.greeting if "greeting" in given else current.greeting,
                valid_to,
                data.version,
            )
    except asyncpg.ExclusionViolationError:
        raise Conflict(
            _l("this number overlaps a number another tenant owns in that period"), field="validTo"
        ) from None
    if updated is None:
        raise VersionConflict(_l("the service number was changed by someone else; reload and try again"))
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return updated


async def move_service_number(uow: UnitOfWork, number_id: UUID, data: ServiceNumberMove) -> ServiceNumberMoved:
    """From `on`, the number belongs to another tenant; before it, to the old one (old calls
    still resolve to their owner at the time)."""
    reachable = require(uow.principal, Operation.SERVICE_NUMBER_WRITE)
    if data.to_tenant_id not in reachable:
        raise NotFound(_l("tenant not found"), field="toTenantId")
    current = await repository.find_service_number(uow.conn, number_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("service number not found"))
    if current.tenant_id == data.to_tenant_id:
        raise ValidationFailed(_l("the number already belongs to that tenant"), field="toTenantId")
    if not (current.valid_from < data.on and (current.valid_to is None or data.on <= current.valid_to)):
        raise ValidationFailed(
            _l("the move day must lie after the number's first day and within its validity"), field="on"
        )
    if current.purpose is Purpose.DEPARTMENT and data.department_id is None:
        raise ValidationFailed(_l("a department line names its department at the new owner"), field="departmentId")
    ended = await repository.update_service_number(
        uow.conn,
        current.tenant_id,
        current.id,
        current.routing_window.value,
        current.greeting,
        data.on - timedelta(days=1),
        None,
    )
    assert ended is not None
    started = await _insert_number(
        uow,
        data.to_tenant_id,
        number=current.number,
        kind=current.kind.value,
        purpose=current.purpose.value,
        department_id=data.department_id if current.purpose is Purpose.DEPARTMENT else None,
        greeting=None,
        routing_window=(data.routing_window or current.routing_window).value,
        valid_from=data.on,
        valid_to=current.valid_to,
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return ServiceNumberMoved(previous=ended, current=started)


# --- absences of the town's own operator ----------------------------------------------------


async def absences(uow: UnitOfWork, tenant_slug: str) -> Absences:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.SERVICE_NUMBER_READ)).id
    return Absences(
        weekly=await repository.list_weekly_absences(uow.conn, tenant_id),
        dated=await repository.list_dated_absences(uow.conn, tenant_id),
    )


async def add_weekly_absence(uow: UnitOfWork, tenant_slug: str, data: WeeklyAbsenceInput) -> WeeklyAbsence:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.ABSENCE_WRITE)).id
    starts, ends = time.fromisoformat(data.starts), time.fromisoformat(data.ends)
    if starts >= ends:
        raise ValidationFailed(_l("an absence starts before it ends"), field="ends")
    absence = await repository.insert_weekly_absence(
        uow.conn, tenant_id, uuid4(), data.weekday, starts, ends, data.note.strip()
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return absence


async def add_dated_absence(uow: UnitOfWork, tenant_slug: str, data: DatedAbsenceInput) -> DatedAbsence:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.ABSENCE_WRITE)).id
    if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None:
        raise ValidationFailed(_l("give times with a time zone offset"), field="startsAt")
    if data.starts_at >= data.ends_at:
        raise ValidationFailed(_l("an absence starts before it ends"), field="endsAt")
    for name, moment in (("startsAt", data.starts_at), ("endsAt", data.ends_at)):
        if moment.second or moment.microsecond:
            raise ValidationFailed(_l("absences start and end on a whole minute"), field=name)
    absence = await repository.insert_dated_absence(
        uow.conn, tenant_id, uuid4(), data.starts_at, data.ends_at, data.note.strip()
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return absence


async def remove_absence(uow: UnitOfWork, tenant_slug: str, absence_id: UUID) -> None:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.ABSENCE_WRITE)).id
    if not await repository.delete_absence(uow.conn, tenant_id, absence_id):
        raise NotFound(_l("absence not found"))
    uow.after_commit(lambda: cache.routing_changed(uow.app))


# --- 115 area codes --------------------------------------------------------------------------------


async def area_codes(uow: UnitOfWork, operator_slug: str) -> list[AreaCode]:
    operator_id = (await reach.reach_seen(uow, operator_slug, Operation.SERVICE_NUMBER_READ)).id
    return await repository.list_area_codes(uow.conn, operator_id)


async def set_area_code(uow: UnitOfWork, operator_slug: str, data: AreaCodeInput) -> AreaCode:
    reachable = reach.reachable(uow, Operation.AREA_CODE_WRITE)
    operator_id = (await reach.reach(uow, operator_slug, Operation.AREA_CODE_WRITE)).id
    if data.client_tenant_id is not None and data.client_tenant_id not in reachable:
        raise NotFound(_l("tenant not found"), field="clientTenantId")
    entry = await repository.upsert_area_code(
        uow.conn,
        operator_id,
        normalise_area_code(data.area_code),
        data.ags,
        data.municipality.strip(),
        data.client_tenant_id,
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return entry


async def remove_area_code(uow: UnitOfWork, operator_slug: str, area_code: str, ags: str) -> None:
    operator_id = (await reach.reach(uow, operator_slug, Operation.AREA_CODE_WRITE)).id
    if not await repository.delete_area_code(uow.conn, operator_id, normalise_area_code(area_code), ags):
        raise NotFound(_l("area code not found"))
    uow.after_commit(lambda: cache.routing_changed(uow.app))


# --- calls -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    tenant_id: UUID
    system: str


def _source(principal: Principal) -> _Source:
    # The telephony system is the OAuth client; its ids are unique only within its tenant's issuer.
    return _Source(principal.tenant_id, principal.client_id or principal.subject)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(_l("give times with a time zone offset"), field=field)
    return value


# Longest a call may last, offer to end (as the `Seconds` fields allow): a garbled timestamp is one
# bad record, not seconds that overflow the table's integer columns.
LONGEST_CALL = timedelta(days=7)


def _check_times(offered: datetime, answered: datetime | None, ended: datetime | None) -> None:
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
    source = _source(uow.principal)
    facts = {k: v for k, v in facts.items() if v is not None}
    found = await repository.find_call_by_source(
        uow.conn, source.tenant_id, source.system, external_id, list(acting), for_update=True
    )
    if found is None:
        if "offered_at" not in facts or "dialled" not in facts:
            raise NotFound(_l("call not found; post its `offered` event (or the complete record) first"))
        _check_times(facts["offered_at"], facts.get("answered_at"), facts.get("ended_at"))
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
    _check_times(merged["offered_at"], merged["answered_at"], merged["ended_at"])
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
            "offered_at": _aware(data.offered_at, "offeredAt"),
            "answered_at": _aware(data.answered_at, "answeredAt"),
            "ended_at": _aware(data.ended_at, "endedAt"),
            "agent": data.agent,
            "wait_seconds": data.wait_seconds,
        },
    )


async def record_call_event(uow: UnitOfWork, data: CallEventInput) -> Call:
    at = _aware(data.at, "at")
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


async def call(uow: UnitOfWork, call_id: UUID) -> Call:
    reachable = require(uow.principal, Operation.CALL_READ)
    found = await repository.find_call(uow.conn, call_id, list(reachable))
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
    current = await repository.find_call(uow.conn, call_id, list(reachable))
    if current is None:
        raise NotFound(_l("call not found"))
    if data.outcome is Outcome.TRANSFERRED_TO_DEPARTMENT:
        if data.department_id is None:
            raise ValidationFailed(_l("name the department the call was transferred to"), field="departmentId")
        if not await repository.department_exists(uow.conn, current.tenant_id, data.department_id):
            raise NotFound(_l("department not found"), field="departmentId")
    elif data.department_id is not None:
        raise ValidationFailed(_l("a department is given only for transferred calls"), field="departmentId")
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
        data.department_id,
        data.note.strip() if data.note else None,
        uow.principal.log_id,
    )
    assert updated is not None
    return updated


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
    its start), only once, and only a town the agent acts for; recorded on the call."""
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
    if owner is None or owner[1].id != current.tenant_id:
        raise InvalidTransition(_l("the call was already assigned to a town"))
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


# --- per-tenant settings ---------------------------------------------------------------------------


async def telephony_settings(uow: UnitOfWork, tenant_slug: str) -> TelephonySettings:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.TELEPHONY_SETTINGS)).id
    found = await repository.find_telephony_settings(uow.conn, tenant_id)
    return found or TelephonySettings(tenant_id=tenant_id, caller_retention_days=CALLER_RETENTION_DAYS)


async def set_telephony_settings(uow: UnitOfWork, tenant_slug: str, data: TelephonySettingsInput) -> TelephonySettings:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.TELEPHONY_SETTINGS)).id
    return await repository.upsert_telephony_settings(
        uow.conn, tenant_id, data.caller_retention_days, uow.principal.log_id
    )


# --- bulk import ---------------------------------------------------------------------------------------


def _staging_rows(
    compiled: CompiledRouting,
    acting: frozenset[UUID],
    source: _Source,
    lines: Iterator[imports.ParsedLine],
    problems: list[ImportProblem],
) -> Iterator[tuple[Any, ...]]:
    owners: dict[tuple[str, date], Any] = {}
    for parsed in lines:
        record = parsed.record
        if record is None:
            problems.append(
                ImportProblem(line=parsed.line, message=parsed.error or "invalid", external_id=parsed.external_id)
            )
            continue
        try:
            offered = _aware(record.offered_at, "offeredAt")
            answered = _aware(record.answered_at, "answeredAt")
            ended = _aware(record.ended_at, "endedAt")
            assert offered is not None
            _check_times(offered, answered, ended)
            dialled = normalise_dialled(record.dialled)
        except ValidationFailed as error:
            problems.append(ImportProblem(line=parsed.line, message=str(error.message), external_id=record.external_id))
            continue
        caller = normalise_caller(record.caller)
        # Resolved once per (dialled number, Berlin day): only 115 depends on the caller too.
        key = (dialled, offered.astimezone(BERLIN).date())
        found = owners.get(key, _UNRESOLVED)
        if found is _UNRESOLVED:
            found = owners[key] = compiled.tenant_of_call(dialled, None, offered, acting)
        if found is not None and found[0].purpose is Purpose.ONE_ONE_FIVE:
            found = compiled.tenant_of_call(dialled, caller, offered, acting)
        if found is None:
            problems.append(
                ImportProblem(
                    line=parsed.line,
                    external_id=record.external_id,
                    message="the dialled number was not ours when the call started",
                )
            )
            continue
        entry, tenant_id, resolved_by = found
        wait_seconds = record.wait_seconds  # as `_derived`, inline: this loop is per line
        wait_derived = wait_seconds is None
        until = answered or ended
        if wait_derived and until is not None:
            wait_seconds = int((until - offered).total_seconds())
        talk_seconds = int((ended - answered).total_seconds()) if answered and ended else None
        yield (
            parsed.line,
            tenant_id,
            source.system,
            record.external_id,
            entry.id,
            dialled,
            entry.purpose.value,
            resolved_by.value,
            caller,
            record.queue,
            offered,
            answered,
            ended,
            record.agent,
            wait_seconds,
            talk_seconds,
            Outcome.ABANDONED.value if ended is not None and answered is None else None,
            wait_derived,
        )


IMPORT_CHUNK_ROWS = 10_000
_PARSE_SLICE = 250  # rows parsed between chances for the chunk being written to make progress


async def _parse_chunk(rows: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The next chunk of parsed rows; hands the event loop back every few hundred rows, so a
    chunk being written (its COPY, INSERT and conflict check) moves on meanwhile."""
    chunk: list[tuple[Any, ...]] = []
    while len(chunk) < IMPORT_CHUNK_ROWS:
        piece = list(itertools.islice(rows, min(_PARSE_SLICE, IMPORT_CHUNK_ROWS - len(chunk))))
        chunk += piece
        if len(piece) < _PARSE_SLICE:
            break
        await asyncio.sleep(0)
    return chunk


async def _write_chunk(
    conn: asyncpg.Connection, chunk: list[tuple[Any, ...]], source_tenant_id: UUID
) -> tuple[int, int, list[Any]]:
    await repository.clear_import_staging(conn)
    staged = await repository.copy_into_staging(conn, chunk)
    inserted = await repository.insert_from_staging(conn, source_tenant_id)
    # Every row went in: none can conflict (this skips the join on a fresh file).
    conflicting = [] if inserted == staged else await repository.reconcile_staging(conn, source_tenant_id)
    return staged, inserted, conflicting


async def import_calls(uow: UnitOfWork, body: bytes, content_type: str) -> ImportReport:
    """A day's call detail records: parsed and resolved line by line, COPYed into a staging
    table, inserted idempotently. Bad lines are reported by number; the good ones go in."""
    acting = require(uow.principal, Operation.CALL_WRITE)
    source = _source(uow.principal)
    compiled = await cache.cached_routing(uow.app, wait=False)
    if compiled is None:  # Redis is down, or the shared table is not at hand: my tenants' table,
        # on this unit of work's connection (it holds one, and must never wait for another)
        compiled = CompiledRouting(await cache.compile_on(uow.conn, sorted(acting)))
    problems: list[ImportProblem] = []
    rows = _staging_rows(compiled, acting, source, imports.parse(body, content_type), problems)
    await repository.create_import_staging(uow.conn)
    # In chunks, so that PostgreSQL inserts one chunk while Python parses the next: the two
    # halves of the work (about a third and two thirds of it) overlap instead of adding up.
    written: list[tuple[int, int, list[Any]]] = []
    writing: asyncio.Task[tuple[int, int, list[Any]]] | None = None
    try:
        while chunk := await _parse_chunk(rows):
            if writing is not None:
                written.append(await writing)
            writing = asyncio.create_task(_write_chunk(uow.conn, chunk, source.tenant_id))
        if writing is not None:
            written.append(await writing)
    except BaseException:
        if writing is not None:  # nothing may still use the connection when the transaction ends
            writing.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writing
        raise
    staged, inserted = sum(w[0] for w in written), sum(w[1] for w in written)
    for conflict in (c for w in written for c in w[2]):
        problems.append(
            ImportProblem(
                line=conflict["line"],
                external_id=conflict["external_id"],
                message="this call was already recorded with other values",
            )
        )
    problems.sort(key=lambda p: p.line)
    conflicts = sum(1 for p in problems if p.message.startswith("this call was already"))
    return ImportReport(
        rows=staged + len(problems) - conflicts,
        inserted=inserted,
        duplicates=staged - inserted - conflicts,
        errors=problems[:MAX_REPORTED_PROBLEMS],
        error_count=len(problems),
    )
