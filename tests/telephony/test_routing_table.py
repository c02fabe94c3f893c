"""The routing decision on a compiled table, without I/O: most-specific match, moves by date,
each routing window kind, holidays and closing days, daylight-saving days, and 115."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from backend.telephony.routing import CompiledRouting, compile_table, decode_table, encode_table
from backend.telephony.schemas import ResolvedBy, RoutingReason

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
KREIS, SOEST, GESEKE, OTHER = (uuid.uuid4() for _ in range(4))
ALL = frozenset({KREIS, SOEST, GESEKE})
DEPT = uuid.uuid4()
HOURS = [{"weekday": d, "opens": "08:00", "closes": "18:00"} for d in range(1, 6)]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def _number(
    tenant: UUID,
    number: str,
    kind: str = "number",
    purpose: str = "central",
    window: str = "service_hours",
    valid_from: date = date(2016, 1, 1),
    valid_until: date | None = None,
    department: UUID | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "id": uuid.uuid4(),
        "number": number,
        "kind": kind,
        "purpose": purpose,
        "department_id": department,
        "greeting": None,
        "routing_window": window,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def _tenant(tenant: UUID, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": tenant,
        "slug": name.lower().replace(" ", "-"),
        "name": name,
        "is_operator": tenant == KREIS,
        "federal_state": "NW",
        "time_zone": "Europe/Berlin",
        "service_hours": HOURS,
        "closing_days": extra.get("closing_days", []),
        "departments": extra.get("departments", []),
        "absence_weekly": extra.get("absence_weekly", []),
        "absence_dated": extra.get("absence_dated", []),
    }


def _area(code: str, ags: str, name: str, client: UUID | None) -> dict[str, Any]:
    return {"tenant_id": KREIS, "area_code": code, "ags": ags, "municipality": name, "client_tenant_id": client}


NUMBERS = [
    _number(KREIS, "+492921300"),
    _number(KREIS, "+49115", purpose="115"),
    _number(SOEST, "+4929211030"),
    _number(SOEST, "+492921103", kind="block"),
    _number(SOEST, "+49292110350", purpose="department", department=DEPT),
    _number(SOEST, "+4929211099", window="always"),
    _number(GESEKE, "+4929425000", window="operator_absent"),
    # Moved: Soest's until the end of 2025, Geseke's from 2026 on.
    _number(SOEST, "+4929211077", valid_until=date(2026, 1, 1)),
    _number(GESEKE, "+4929211077", valid_from=date(2026, 1, 1)),
]
TENANTS = [
    _tenant(KREIS, "Kreis Soest"),
    _tenant(
        SOEST,
        "Stadt Soest",
        closing_days=[{"day": "2026-12-24", "name": "Heiligabend"}],
        departments=[{"id": str(DEPT), "name": "Standesamt", "phone": None, "email": None}],
    ),
    _tenant(
        GESEKE,
        "Stadt Geseke",
        absence_weekly=[{"weekday": d, "starts": "12:30:00", "ends": "13:30:00"} for d in range(1, 6)],
        absence_dated=[{"starts": "2026-07-01T00:00:00+02:00", "ends": "2026-07-15T00:00:00+02:00"}],
    ),
]
AREAS = [
    _area("+492921", "05974040", "Soest", SOEST),
    _area("+492921", "05974008", "Bad Sassendorf", None),
    _area("+492942", "05974020", "Geseke", GESEKE),
    _area("+492941", "05974028", "Lippstadt", None),
]


@pytest.fixture(scope="module")
def table() -> CompiledRouting:
    return CompiledRouting(compile_table(NUMBERS, TENANTS, AREAS, time.time()))


MONDAY_10 = berlin(2026, 3, 2, 10, 0)


def test_most_specific_match_wins(table: CompiledRouting) -> None:
    department = table.decide("+49292110350", None, MONDAY_10, ALL)
    assert department.service_number is not None and department.service_number.purpose == "department"
    assert department.department is not None and department.department.name == "Standesamt"
    assert department.greeting == "Stadt Soest, Standesamt"
    extension = table.decide("+49292110351", None, MONDAY_10, ALL)  # a bare extension of the block
    assert extension.service_number is not None and extension.service_number.kind == "block"
    assert extension.tenant is not None and extension.tenant.id == SOEST
    central = table.decide("+4929211030", None, MONDAY_10, ALL)
    assert central.service_number is not None and central.service_number.kind == "number"
    assert central.greeting == "Stadt Soest" and central.takes_call


def test_unknown_numbers_and_other_tenants_numbers_are_not_ours(table: CompiledRouting) -> None:
    for dialled, acting in (
        ("+493012345678", ALL),
        ("+4929211030", frozenset({GESEKE})),
        ("+4929211030", frozenset({OTHER})),
    ):
        decision = table.decide(dialled, None, MONDAY_10, acting)
        assert not decision.ours and not decision.takes_call and decision.tenant is None
        assert decision.reason is RoutingReason.NOT_OURS and decision.departments == []


def test_a_moved_number_resolves_by_the_day_of_the_call(table: CompiledRouting) -> None:
    before = table.decide("+4929211077", None, berlin(2025, 12, 31, 23, 59), ALL)
    after = table.decide("+4929211077", None, berlin(2026, 1, 1, 0, 0), ALL)
    assert before.tenant is not None and before.tenant.id == SOEST
    assert after.tenant is not None and after.tenant.id == GESEKE
    assert before.service_number is not None and before.service_number.valid_to == date(2025, 12, 31)


@pytest.mark.parametrize(
    ("moment", "takes", "reason", "detail"),
    [
        (berlin(2026, 3, 2, 10, 0), True, RoutingReason.WITHIN_SERVICE_HOURS, None),
        (berlin(2026, 3, 2, 7, 59), False, RoutingReason.OUTSIDE_SERVICE_HOURS, None),
        (berlin(2026, 3, 2, 18, 0), False, RoutingReason.OUTSIDE_SERVICE_HOURS, None),
        (berlin(2026, 3, 7, 10, 0), False, RoutingReason.OUTSIDE_SERVICE_HOURS, None),  # Saturday
        (berlin(2026, 4, 3, 10, 0), False, RoutingReason.PUBLIC_HOLIDAY, "Karfreitag"),
        (berlin(2026, 6, 4, 10, 0), False, RoutingReason.PUBLIC_HOLIDAY, "Fronleichnam"),  # NW, not everywhere
        (berlin(2026, 12, 24, 10, 0), False, RoutingReason.CLOSING_DAY, "Heiligabend"),
    ],
)
def test_service_hours_window(
    table: CompiledRouting, moment: datetime, takes: bool, reason: RoutingReason, detail: str | None
) -> None:
    decision = table.decide("+4929211030", None, moment, ALL)
    assert (decision.takes_call, decision.reason, decision.reason_detail) == (takes, reason, detail)


def test_always_window_is_open_at_night_and_on_weekends_but_not_on_holidays(table: CompiledRouting) -> None:
    assert table.decide("+4929211099", None, berlin(2026, 3, 8, 3, 0), ALL).reason is RoutingReason.ALWAYS_OPEN
    holiday = table.decide("+4929211099", None, berlin(2026, 12, 25, 3, 0), ALL)
    assert (holiday.takes_call, holiday.reason, holiday.reason_detail) == (
        False,
        RoutingReason.PUBLIC_HOLIDAY,
        "Erster Weihnachtstag",
    )


@pytest.mark.parametrize(
    ("moment", "takes", "reason"),
    [
        (berlin(2026, 3, 2, 10, 0), False, RoutingReason.OPERATOR_PRESENT),
        (berlin(2026, 3, 2, 12, 45), True, RoutingReason.OPERATOR_ABSENT),  # lunch break
        (berlin(2026, 3, 2, 13, 30), False, RoutingReason.OPERATOR_PRESENT),
        (berlin(2026, 7, 2, 10, 0), True, RoutingReason.OPERATOR_ABSENT),  # on leave
        (berlin(2026, 7, 15, 10, 0), False, RoutingReason.OPERATOR_PRESENT),  # back
        (berlin(2026, 7, 4, 10, 0), False, RoutingReason.OUTSIDE_SERVICE_HOURS),  # Saturday during leave
        (berlin(2026, 6, 4, 12, 45), False, RoutingReason.PUBLIC_HOLIDAY),  # a Geseke holiday: Fronleichnam
    ],
)
def test_operator_absent_window(table: CompiledRouting, moment: datetime, takes: bool, reason: RoutingReason) -> None:
    decision = table.decide("+4929425000", None, moment, ALL)
    assert (decision.takes_call, decision.reason) == (takes, reason)
    assert decision.tenant is not None and decision.tenant.id == GESEKE


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        # Spring forward on Sunday 2026-03-29: 08:00 local is 07:00 UTC before, 06:00 UTC after.
        (datetime(2026, 3, 27, 6, 30, tzinfo=UTC), False),  # Friday 07:30 CET
        (datetime(2026, 3, 27, 7, 30, tzinfo=UTC), True),  # Friday 08:30 CET
        (datetime(2026, 3, 30, 6, 30, tzinfo=UTC), True),  # Monday 08:30 CEST
        (datetime(2026, 3, 30, 16, 30, tzinfo=UTC), False),  # Monday 18:30 CEST
        # Fall back on Sunday 2026-10-25: 18:00 local is 16:00 UTC before, 17:00 UTC after.
        (datetime(2026, 10, 23, 16, 30, tzinfo=UTC), False),  # Friday 18:30 CEST
        (datetime(2026, 10, 26, 16, 30, tzinfo=UTC), True),  # Monday 17:30 CET
        (datetime(2026, 10, 26, 17, 0, tzinfo=UTC), False),  # Monday 18:00 CET
    ],
)
def test_daylight_saving_days_follow_local_time(table: CompiledRouting, utc: datetime, open_: bool) -> None:
    assert table.decide("+4929211030", None, utc, ALL).takes_call is open_


@pytest.mark.parametrize(
    ("utc", "absent"),
    [
        (datetime(2026, 3, 23, 11, 45, tzinfo=UTC), True),  # Monday 12:45 CET: lunch
        (datetime(2026, 3, 30, 11, 45, tzinfo=UTC), False),  # Monday 13:45 CEST: back
        (datetime(2026, 3, 30, 10, 45, tzinfo=UTC), True),  # Monday 12:45 CEST: lunch
    ],
)
def test_weekly_absences_are_local_wall_clock_times_across_dst(
    table: CompiledRouting, utc: datetime, absent: bool
) -> None:
    assert table.decide("+4929425000", None, utc, ALL).takes_call is absent


def test_115_unique_area_code_names_the_town(table: CompiledRouting) -> None:
    decision = table.decide("+49115", "+492942123456", MONDAY_10, ALL)
    assert decision.resolved_by is ResolvedBy.CALLER_AREA_CODE
    assert decision.tenant is not None and decision.tenant.id == GESEKE and decision.candidates == []
    lippstadt = table.decide("+49115", "+49294155555", MONDAY_10, ALL)  # no client: the operator answers
    assert lippstadt.resolved_by is ResolvedBy.CALLER_AREA_CODE
    assert lippstadt.tenant is not None and lippstadt.tenant.id == KREIS


def test_115_ambiguous_area_code_lists_the_candidates(table: CompiledRouting) -> None:
    decision = table.decide("+49115", "+49292112345", MONDAY_10, ALL)
    assert decision.resolved_by is ResolvedBy.AMBIGUOUS_AREA_CODE and decision.tenant is None
    assert [(c.municipality, c.tenant.id) for c in decision.candidates] == [("Bad Sassendorf", KREIS), ("Soest", SOEST)]
    assert decision.takes_call and decision.reason is RoutingReason.WITHIN_SERVICE_HOURS


@pytest.mark.parametrize("caller", [None, "+31201234567", "+491711234567", "+49301234567"])
def test_115_hidden_foreign_mobile_or_unknown_area_falls_back_to_the_operator(
    table: CompiledRouting, caller: str | None
) -> None:
    decision = table.decide("+49115", caller, MONDAY_10, ALL)
    assert decision.resolved_by is ResolvedBy.OPERATOR_FALLBACK
    assert decision.tenant is not None and decision.tenant.id == KREIS


def test_115_candidates_outside_my_tenants_are_answered_by_the_operator(table: CompiledRouting) -> None:
    decision = table.decide("+49115", "+492942123456", MONDAY_10, frozenset({KREIS, SOEST}))
    assert decision.tenant is not None and decision.tenant.id == KREIS


def test_the_table_survives_the_trip_through_redis(table: CompiledRouting) -> None:
    copy = CompiledRouting(decode_table(encode_table(table.table)))
    assert copy.table == table.table
    for dialled, caller, moment in (
        ("+49115", "+49292112345", MONDAY_10),
        ("+4929425000", None, berlin(2026, 7, 2, 10, 0)),
    ):
        assert copy.decide(dialled, caller, moment, ALL) == table.decide(dialled, caller, moment, ALL)
