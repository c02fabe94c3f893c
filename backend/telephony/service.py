"""The rules of telephony: service numbers, routing windows, 115, routing decisions, settings
(calls: `calls`, their bulk import: `call_import`).

Every write registers `cache.routing_changed` with `uow.after_commit`, so the shared routing
table is replaced on every instance once (and only once) the change is committed. The routing
decision is the hot path: it reads the cached table and opens no transaction unless Redis is
down. Work inside a unit of work (calls, imports, assignment) routes with `conn=uow.conn`: it
holds a connection and never waits for a second one (decision 013). A tenant the principal
may not reach looks exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from auth.permissions import Operation, require
from auth.principal import Principal
from backend import clock
from backend.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from backend.generations import Generations
from backend.i18n import _l
from backend.state import AppState, UnitOfWork
from backend.telephony import cache, repository
from backend.telephony.calls import CALLER_RETENTION_DAYS
from backend.telephony.numbers import (
    normalise_area_code,
    normalise_block,
    normalise_caller,
    normalise_dialled,
    normalise_number,
)
from backend.telephony.schemas import (
    Absences,
    AreaCode,
    AreaCodeInput,
    Call,
    DatedAbsence,
    DatedAbsenceInput,
    NumberKind,
    Purpose,
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
    await repository.lock_number_writes(uow.conn)
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
        answer_on_closing_days=data.answer_on_closing_days,
    )
    uow.after_commit(lambda: cache.routing_changed(uow.app))
    return created


async def update_service_number(uow: UnitOfWork, number_id: UUID, data: ServiceNumberUpdate) -> ServiceNumber:
    reachable = require(uow.principal, Operation.SERVICE_NUMBER_WRITE)
    await repository.lock_number_writes(uow.conn)  # before the row: the order of every number write
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
                data.answer_on_closing_days,
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
    await repository.lock_number_writes(uow.conn)
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
        answer_on_closing_days=current.answer_on_closing_days,
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
