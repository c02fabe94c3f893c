"""Callback deadlines as a finance/ops person checks them ("the department calls back within 24
hours on working days"), table-driven on the NW calendar: weekends, every NW public holiday,
24/31 December, both DST weekends, a town's own closing days, the last second of a day.
(End to end through Open311's `expected_datetime`: tests/open311/test_outsider_clients.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.tenants.calendar import WorkingCalendar
from backend.tenants.schemas import DEFAULT_SERVICE_HOURS
from backend.tickets.deadline import callback_deadline
from backend.tickets.schemas import DeadlineRule

pytestmark = pytest.mark.clock
BERLIN = ZoneInfo("Europe/Berlin")
WORKING = DeadlineRule.WORKING_DAYS_24H


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def nw(closing: dict[date, str] | None = None) -> WorkingCalendar:
    return WorkingCalendar(
        federal_state="NW", time_zone="Europe/Berlin", service_hours=DEFAULT_SERVICE_HOURS, closing_days=closing or {}
    )


@pytest.mark.parametrize(
    ("created", "expected", "why"),
    [
        ("2026-03-13T15:00", "2026-03-16T15:00", "Friday 15:00 → Monday 15:00"),
        ("2026-03-14T09:00", "2026-03-17T08:00", "Saturday: the clock starts Monday 8:00 (service start)"),
        ("2026-03-15T23:59:59", "2026-03-17T08:00", "Sunday's last second: still Monday 8:00 + 24 h"),
        ("2026-03-13T23:59:59", "2026-03-16T23:59:59", "Friday's last second: Monday's last second"),
        ("2026-03-16T23:59:59", "2026-03-17T23:59:59", "Monday's last second: Tuesday's"),
        ("2026-03-16T00:00", "2026-03-17T00:00", "Monday's first second counts on Monday"),
        ("2026-04-30T10:00", "2026-05-04T10:00", "1 May 2026 is a Friday"),
        ("2027-05-26T10:00", "2027-05-28T10:00", "Fronleichnam 2027 (Thursday)"),
        ("2027-10-29T12:00", "2027-11-02T12:00", "Allerheiligen 2027 is a Monday (and the DST weekend)"),
        ("2026-12-24T10:00", "2026-12-28T10:00", "24 December works; 25/26 December, weekend"),
        ("2026-12-31T10:00", "2027-01-04T10:00", "31 December works; New Year is a Friday"),
        ("2027-03-25T10:00", "2027-03-30T10:00", "Good Friday, Easter (DST night), Easter Monday"),
        ("2027-05-14T10:00", "2027-05-18T10:00", "Whit Monday 2027"),
        ("2028-10-02T10:00", "2028-10-04T10:00", "German Unity Day 2028 (Tuesday)"),
        ("2026-10-02T16:00", "2026-10-05T16:00", "German Unity Day 2026 is a Saturday: no effect"),
        ("2028-12-22T11:00", "2028-12-27T11:00", "Friday, weekend, Christmas on Monday and Tuesday"),
        ("2027-12-31T23:59:59", "2028-01-03T23:59:59", "New Year's Eve's last second, a Friday"),
    ],
)
def test_nw_working_day_cases(created: str, expected: str, why: str) -> None:
    deadline = callback_deadline(nw(), at(created), WORKING)
    assert deadline.due_at.astimezone(BERLIN) == at(expected), why


@pytest.mark.parametrize(
    ("created_utc", "due_utc", "real_hours", "why"),
    [
        # The same local clock time: across the 23-hour Sunday 71 real hours, the 25-hour one 73.
        ("2027-03-25T09:00:00+00:00", "2027-03-30T08:00:00+00:00", 119, "Thu 10:00 CET → Tue 10:00 CEST over Easter"),
        ("2027-03-26T09:00:00+00:00", "2027-03-31T06:00:00+00:00", 0, "on Good Friday: from Tue 8:00 CEST"),
        ("2027-10-29T08:00:00+00:00", "2027-11-02T09:00:00+00:00", 97, "Fri 10:00 CEST → Tue 10:00 CET"),
        ("2027-03-28T01:30:00+00:00", "2027-03-31T06:00:00+00:00", 0, "created at 03:30 CEST on the change night"),
        ("2027-10-31T00:30:00+00:00", "2027-11-03T07:00:00+00:00", 0, "created in the repeated hour (02:30 CEST)"),
        ("2027-10-31T01:30:00+00:00", "2027-11-03T07:00:00+00:00", 0, "… and in its second pass (02:30 CET)"),
    ],
)
def test_daylight_saving_weekends(created_utc: str, due_utc: str, real_hours: int, why: str) -> None:
    deadline = callback_deadline(nw(), datetime.fromisoformat(created_utc), WORKING)
    assert deadline.due_at == datetime.fromisoformat(due_utc), why
    if real_hours:
        assert deadline.due_at - datetime.fromisoformat(created_utc) >= timedelta(hours=real_hours), why


def test_a_towns_own_closing_days() -> None:
    town = nw({date(2027, 2, 8): "Rosenmontag", date(2027, 5, 28): "Brückentag"})
    assert callback_deadline(town, at("2027-02-05T11:00"), WORKING).due_at.astimezone(BERLIN) == at("2027-02-09T11:00")
    # Fronleichnam, then the town's bridge day, then the weekend.
    assert callback_deadline(town, at("2027-05-26T10:00"), WORKING).due_at.astimezone(BERLIN) == at("2027-05-31T10:00")
    # Another town without those closing days is not affected.
    assert callback_deadline(nw(), at("2027-02-05T11:00"), WORKING).due_at.astimezone(BERLIN) == at("2027-02-08T11:00")


def test_deadlines_never_move_backwards_within_working_or_non_working_days() -> None:
    """Every 7 minutes over a week with a closing day and a DST change (2027-10-27 … 11-03)."""
    calendar = nw({date(2027, 11, 2): "Betriebsausflug"})
    moment, previous = datetime(2027, 10, 27, tzinfo=UTC), None
    while moment < datetime(2027, 11, 4, tzinfo=UTC):
        due = callback_deadline(calendar, moment, WORKING).due_at
        working = calendar.is_working_day(moment.astimezone(BERLIN).date())
        assert due > moment
        if previous is not None and previous[0] == working:
            assert due >= previous[1], moment
        previous, moment = (working, due), moment + timedelta(minutes=7)


def test_the_first_minutes_of_a_working_day_are_due_before_the_last_of_a_closed_one() -> None:
    """The rule as the glossary states it, and its surprise (decision 041): a ticket from the
    weekend starts at Monday's service start, one from Monday 00:01 at once, so the later one is
    due first (Tuesday 00:01 against Tuesday 8:00)."""
    sunday = callback_deadline(nw(), at("2026-03-15T23:59"), WORKING).due_at.astimezone(BERLIN)
    monday = callback_deadline(nw(), at("2026-03-16T00:01"), WORKING).due_at.astimezone(BERLIN)
    assert (sunday, monday) == (at("2026-03-17T08:00"), at("2026-03-17T00:01"))
