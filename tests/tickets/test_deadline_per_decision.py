"""The forwarding decision's callback deadline (`CallbackRule.due_at`, decision 040's amendment of
2026-12-07) is the ticket's (`callback_deadline`) to the microsecond: across a year of moments,
weekends, holidays, a town's closing days, towns without or with weekend service hours, and
daylight-saving changes (one of them at midnight on a working day)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from backend.directory.speakable import spoken_clock
from backend.tenants.calendar import WorkingCalendar
from backend.tenants.schemas import DEFAULT_SERVICE_HOURS, ServiceInterval
from backend.tickets.deadline import CallbackRule, callback_deadline
from backend.tickets.schemas import DeadlineRule

MONDAY_TO_SATURDAY_WITH_A_BREAK = tuple(
    ServiceInterval(weekday=d, opens=opens, closes=closes)
    for d in range(1, 7)
    for opens, closes in (("07:30", "12:00"), ("13:00", "16:45"))
)

CALENDARS = {
    "Soest": WorkingCalendar("NW", "Europe/Berlin", DEFAULT_SERVICE_HOURS),
    "closing days": WorkingCalendar(
        "BY",
        "Europe/Berlin",
        DEFAULT_SERVICE_HOURS,
        {date(2026, 12, 24): "Heiligabend", date(2026, 12, 31): "Silvester", date(2026, 5, 15): "Brückentag"},
    ),
    "no service hours": WorkingCalendar("NW", "Europe/Berlin", ()),
    "Saturday hours with a break": WorkingCalendar("SN", "Europe/Berlin", MONDAY_TO_SATURDAY_WITH_A_BREAK),
    # Summer time begins at midnight on a Friday (2026-04-24): a working day's own midnight
    # does not exist there.
    "Cairo": WorkingCalendar("NW", "Africa/Cairo", ()),
}


def _moments() -> list[datetime]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    every = [start + timedelta(minutes=97 * i, microseconds=7 * i) for i in range(5_500)]  # ~a year
    # Around the changes (Berlin 29 March and 25 October, Cairo 23/24 April), minute by minute.
    for first in (datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 10, 24, 22, tzinfo=UTC)):
        every += [first + timedelta(minutes=m) for m in range(0, 6 * 60, 7)]
    every += [datetime(2026, 4, 23, 19, tzinfo=UTC) + timedelta(minutes=m) for m in range(0, 8 * 60, 7)]
    return every


@pytest.mark.parametrize("name", list(CALENDARS))
@pytest.mark.parametrize("rule", [DeadlineRule.WORKING_DAYS_24H, DeadlineRule.SERVICE_HOURS_24H])
def test_the_decisions_deadline_is_the_tickets(name: str, rule: DeadlineRule) -> None:
    calendar = CALENDARS[name]
    callback = CallbackRule(rule, ())
    checked = 0
    for at in _moments():
        expected = callback_deadline(calendar, at, rule).due_at
        assert callback.due_at(calendar, at) == expected, at
        local = calendar.local(at)
        same = callback.due_at(calendar, at, local)
        assert (same, same.utcoffset()) == (expected, expected.utcoffset()), at
        # The decision says it in the town's clock from the same two moments.
        assert spoken_clock(same, calendar, at) == spoken_clock(expected, calendar, at)
        checked += 1
    assert checked > 5_000


def test_moments_of_one_day_get_deadlines_of_their_own() -> None:
    """The day is looked up once; the deadline is the moment's (nothing kept by time)."""
    calendar = WorkingCalendar("NW", "Europe/Berlin", DEFAULT_SERVICE_HOURS)
    callback = CallbackRule(DeadlineRule.WORKING_DAYS_24H, ())
    friday_morning = datetime(2026, 3, 6, 8, 15, 0, 123, tzinfo=UTC)
    friday_evening = datetime(2026, 3, 6, 19, 59, 59, 999_999, tzinfo=UTC)
    assert callback.due_at(calendar, friday_morning) == datetime(2026, 3, 9, 8, 15, 0, 123, tzinfo=UTC)
    assert callback.due_at(calendar, friday_evening) == datetime(2026, 3, 9, 19, 59, 59, 999_999, tzinfo=UTC)
    saturday_a, saturday_b = datetime(2026, 3, 7, 9, tzinfo=UTC), datetime(2026, 3, 7, 17, 30, tzinfo=UTC)
    # On a day off the clock starts at the next working day's service start, whenever it came.
    assert callback.due_at(calendar, saturday_a) == callback.due_at(calendar, saturday_b)
    assert callback.due_at(calendar, saturday_a) == datetime(2026, 3, 10, 7, tzinfo=UTC)  # 08:00 CET


def test_a_changed_calendar_is_asked_again() -> None:
    """A closing day added makes a new calendar (as `load_calendar` does): its deadlines move."""
    callback = CallbackRule(DeadlineRule.WORKING_DAYS_24H, ())
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    before = WorkingCalendar("NW", "Europe/Berlin", DEFAULT_SERVICE_HOURS)
    assert callback.due_at(before, monday) == datetime(2026, 3, 3, 9, tzinfo=UTC)
    after = WorkingCalendar("NW", "Europe/Berlin", DEFAULT_SERVICE_HOURS, {date(2026, 3, 3): "Betriebsausflug"})
    assert callback.due_at(after, monday) == datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert callback.due_at(before, monday) == datetime(2026, 3, 3, 9, tzinfo=UTC)
