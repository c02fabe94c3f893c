"""Figures for supervisors and finance: the 115 figures per tenant and period from the daily
rollups (with ticket figures from the tickets service), the tenants' first-contact targets, and
the agreements' term ends and notice deadlines."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from auth.permissions import Operation
from backend import clock
from backend.billing import rating, repository
from backend.billing.schemas import (
    AgreementTerm,
    Figures,
    FigureScope,
    FiguresReport,
    FigureTargets,
    FigureTargetsInput,
)
from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.telephony import service_level
from backend.telephony.service_level import ServiceLevelCounts, ServiceLevelSettings
from backend.tenants import service as tenants_service
from backend.tenants.reach import reach, reach_optional, reachable
from backend.tickets import reports as tickets_reports

DEFAULT_FIRST_CONTACT_TARGET = Decimal("0.60")
DEFAULT_FIRST_CONTACT_TARGET_115 = Decimal("0.65")
# The 115 standard's "75/30", hang-ups within 5 s left out; callbacks within the promise: 90 %.
DEFAULT_SERVICE_LEVEL_TARGET = Decimal("0.75")
DEFAULT_SERVICE_LEVEL_SECONDS = 30
DEFAULT_SHORT_ABANDON_SECONDS = 5
DEFAULT_CALLBACK_TARGET = Decimal("0.90")
MAX_FIGURE_DAYS = 3 * 366 + 1
SHARE = Decimal("0.0001")
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2998, 12, 31)


# --- first-contact targets ------------------------------------------------------------------------


async def set_figure_targets(uow: UnitOfWork, tenant: str, data: FigureTargetsInput) -> FigureTargets:
    found = await reach(uow, tenant, Operation.FIGURES_CONFIGURE)
    for value, field in (
        (data.first_contact_target, "firstContactTarget"),
        (data.first_contact_target_115, "firstContactTarget115"),
        (data.service_level_target, "serviceLevelTarget"),
        (data.callback_target, "callbackTarget"),
    ):
        if not (value.is_finite() and 0 <= value <= 1 and value == value.quantize(SHARE)):
            raise ValidationFailed(_l("a share between 0 and 1 with at most 4 places"), field=field)
    return await repository.upsert_targets(uow.conn, found.id, data)


async def figure_targets(uow: UnitOfWork, tenant_ids: list[UUID]) -> dict[UUID, FigureTargets]:
    """Each tenant's targets and service-level thresholds (the defaults where none are set);
    tenants out of the principal's figures reach are left out."""
    visible = reachable(uow, Operation.FIGURES_READ)
    wanted = sorted(t for t in set(tenant_ids) if t in visible)
    found = await repository.list_targets(uow.conn, wanted) if wanted else {}
    return {t: found.get(t) or _default_targets(t) for t in wanted}


# --- agreement terms ------------------------------------------------------------------------------


async def agreement_terms(
    uow: UnitOfWork, on: date | None = None, within_days: int | None = None
) -> list[AgreementTerm]:
    """Each agreement's current term end and last day to give notice (for the earliest end still
    reachable); with `within_days`, only those whose notice deadline falls in the next N days."""
    if within_days is not None and not 0 <= within_days <= 3660:
        raise ValidationFailed(_l("withinDays between 0 and 3660"), field="withinDays")
    reachable(uow, Operation.AGREEMENT_READ)  # the door; the agreements come from the tenants service
    views = await tenants_service.list_agreements(uow, on)
    day = on or clock.today()
    names = await tenants_service.tenants_by_ids(uow, sorted({v.agreement.tenant_id for v in views}))
    terms = []
    for view in views:
        a = view.agreement
        days = (view.notice_deadline - day).days if view.notice_deadline is not None else None
        if within_days is not None and (days is None or not 0 <= days <= within_days):
            continue
        terms.append(
            AgreementTerm(
                agreement_id=a.id,
                client_tenant_id=a.tenant_id,
                client_name=names[a.tenant_id].name if a.tenant_id in names else str(a.tenant_id),
                operator_tenant_id=a.operator_tenant_id,
                starts_on=a.starts_on,
                ends_on=a.ends_on,
                on=view.on,
                active=view.active,
                current_term_end=view.current_term_end,
                notice_deadline=view.notice_deadline,
                days_to_notice_deadline=days,
                notice_term_end=view.notice_term_end,
            )
        )
    terms.sort(key=lambda t: (t.notice_deadline or date.max, t.client_name))
    return terms


# --- 115 figures ----------------------------------------------------------------------------------


def _default_targets(tenant_id: UUID) -> FigureTargets:
    return FigureTargets(
        tenant_id=tenant_id,
        first_contact_target=DEFAULT_FIRST_CONTACT_TARGET,
        first_contact_target_115=DEFAULT_FIRST_CONTACT_TARGET_115,
        service_level_target=DEFAULT_SERVICE_LEVEL_TARGET,
        service_level_seconds=DEFAULT_SERVICE_LEVEL_SECONDS,
        short_abandon_seconds=DEFAULT_SHORT_ABANDON_SECONDS,
        callback_target=DEFAULT_CALLBACK_TARGET,
    )


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / whole).quantize(SHARE, rounding=ROUND_HALF_UP) if whole else None


def _met(value: Decimal | None, target: Decimal | None) -> bool | None:
    return None if value is None or target is None else value >= target


def _figures(
    tenant_id: UUID | None,
    name: str,
    scope: FigureScope,
    start: date,
    last: date,
    sums: dict[str, int],
    goals: FigureTargets,
    tickets: dict[str, int] | None,
    level: ServiceLevelCounts,
) -> Figures:
    settled, forwarded, transferred = (sums["settled_first_contact"], sums["forwarded_as_ticket"], sums["transferred"])
    handled = settled + forwarded + transferred
    rate = _share(settled, handled)
    target = goals.first_contact_target if scope is FigureScope.ALL else goals.first_contact_target_115
    callbacks = None
    if tickets is not None:
        callbacks = _share(tickets["callbacks_on_time"], tickets["callbacks_on_time"] + tickets["callbacks_late"])
    callback_target = goals.callback_target if tickets is not None else None
    return Figures(
        tenant_id=tenant_id,
        tenant_name=name,
        scope=scope,
        period_from=start,
        period_to=last,
        offered=sums["offered"],
        answered=sums["answered"],
        abandoned=sums["abandoned"],
        answered_within_30s=sums["answered_within_30s"],
        wait_reported=sums["wait_reported"],
        share_answered_within_30s=_share(sums["answered_within_30s"], sums["wait_reported"]),
        settled_first_contact=settled,
        forwarded_as_ticket=forwarded,
        transferred_to_department=transferred,
        first_contact_rate=rate,
        first_contact_target=target,
        meets_first_contact_target=_met(rate, target),
        transfers_taken=level.transfers_taken,
        transfers_not_taken=level.transfers_not_taken,
        qualified_transfer_rate=_share(level.transfers_taken, handled),
        settled_rate=_share(settled + level.transfers_taken, handled),
        talk_seconds=sums["talk_seconds"],
        talk_minutes=rating.minutes(sums["talk_seconds"]),
        billable_seconds=sums["billable_seconds"],
        billed_minutes=rating.minutes(sums["billable_seconds"]),
        unrated_calls=sums["unrated_calls"],
        tickets_forwarded=tickets["tickets_forwarded"] if tickets is not None else None,
        callbacks_on_time=tickets["callbacks_on_time"] if tickets is not None else None,
        callbacks_late=tickets["callbacks_late"] if tickets is not None else None,
        service_level_seconds=goals.service_level_seconds,
        short_abandon_seconds=goals.short_abandon_seconds,
        abandoned_short=level.abandoned_short,
        service_level_offered=level.counted,
        service_level_answered=level.answered_in_time,
        service_level=level.service_level,
        service_level_target=goals.service_level_target,
        meets_service_level_target=_met(level.service_level, goals.service_level_target),
        callback_on_time_rate=callbacks,
        callback_target=callback_target,
        meets_callback_target=_met(callbacks, callback_target),
    )


FIGURE_KEYS = (
    "offered",
    "answered",
    "abandoned",
    "answered_within_30s",
    "wait_reported",
    "settled_first_contact",
    "forwarded_as_ticket",
    "transferred",
    "talk_seconds",
    "billable_seconds",
    "unrated_calls",
)
# From the tickets domain, on the all-calls rows only.
TICKET_KEYS = ("tickets_forwarded", "callbacks_on_time", "callbacks_late")


async def figures(
    uow: UnitOfWork, start: date, last: date, tenant: str | None = None, now: datetime | None = None
) -> FiguresReport:
    """115 figures per tenant for the days `start` … `last` (inclusive), for all calls and for 115
    calls (with their own first-contact target), and the total over the tenants in the report.
    The service level counts the offered calls, each town with its own thresholds (decision 029);
    every figure carries its target and whether it was met (the total: the default targets).
    Tickets forwarded and callbacks on time vs late come from the tickets domain (all-calls rows
    only: tickets are not split by the number dialled); `now` decides which open tickets are
    overdue."""
    visible = reachable(uow, Operation.FIGURES_READ)
    one = await reach_optional(uow, tenant, Operation.FIGURES_READ)
    if not (EARLIEST_DAY <= start <= LATEST_DAY and EARLIEST_DAY <= last <= LATEST_DAY):
        raise ValidationFailed(
            _l(
                "days between {earliest_day} and {latest_day}, please",
                earliest_day=EARLIEST_DAY.isoformat(),
                latest_day=LATEST_DAY.isoformat(),
            ),
            field="from",
        )
    if last < start:
        raise ValidationFailed(_l("the period ends on or after its first day"), field="to")
    if (last - start).days > MAX_FIGURE_DAYS:
        raise ValidationFailed(_l("at most three years at once"), field="to")
    ids = [one.id] if one else sorted(visible)
    names = await tenants_service.tenants_by_ids(uow, ids)
    targets = await repository.list_targets(uow.conn, ids)
    goals = {t: targets.get(t) or _default_targets(t) for t in ids}
    sums: dict[tuple[UUID, str], dict[str, int]] = {
        (r["tenant_id"], r["scope"]): {k: r[k] for k in FIGURE_KEYS}
        for r in await repository.figure_sums(uow.conn, ids, start, last + timedelta(days=1))
    }
    levels = await service_level.service_level_counts(
        uow,
        [
            ServiceLevelSettings(t, goals[t].service_level_seconds, goals[t].short_abandon_seconds)
            for t in ids
            if t in names
        ],
        start,
        last + timedelta(days=1),
        now,
    )
    tickets: dict[UUID, dict[str, int]] = {
        t: {k: getattr(f, k) for k in TICKET_KEYS}
        for t, f in (await tickets_reports.callback_figures(uow, list(names), start, last, now)).items()
    }
    zero = dict.fromkeys(FIGURE_KEYS, 0)
    no_tickets = dict.fromkeys(TICKET_KEYS, 0)
    no_calls = ServiceLevelCounts()
    rows: list[Figures] = []
    ticket_total = dict(no_tickets)
    totals = {FigureScope.ALL: dict(zero), FigureScope.ONE_ONE_FIVE: dict(zero)}
    level_totals = {FigureScope.ALL: no_calls, FigureScope.ONE_ONE_FIVE: no_calls}
    for tid in sorted(ids, key=lambda t: names[t].name if t in names else str(t)):
        if tid not in names:
            continue
        for scope in FigureScope:
            values = sums.get((tid, scope.value), zero)
            ticket_values = tickets.get(tid, no_tickets) if scope is FigureScope.ALL else None
            level = levels.get((tid, True), no_calls)
            if scope is FigureScope.ALL:
                level = level + levels.get((tid, False), no_calls)
            rows.append(_figures(tid, names[tid].name, scope, start, last, values, goals[tid], ticket_values, level))
            for key in FIGURE_KEYS:
                totals[scope][key] += values[key]
            level_totals[scope] = level_totals[scope] + level
        for key in TICKET_KEYS:
            ticket_total[key] += tickets.get(tid, no_tickets)[key]
    default = _default_targets(uuid.UUID(int=0))
    total = [
        _figures(
            None,
            "total",
            FigureScope.ALL,
            start,
            last,
            totals[FigureScope.ALL],
            default,
            ticket_total,
            level_totals[FigureScope.ALL],
        ),
        _figures(
            None,
            "total",
            FigureScope.ONE_ONE_FIVE,
            start,
            last,
            totals[FigureScope.ONE_ONE_FIVE],
            default,
            None,
            level_totals[FigureScope.ONE_ONE_FIVE],
        ),
    ]
    return FiguresReport(period_from=start, period_to=last, rows=rows, total=total)
