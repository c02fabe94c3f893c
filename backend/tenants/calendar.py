"""A tenant's working calendar: service hours, public holidays of its federal state, and its own
closing days — in its own time zone, correct across daylight-saving changes.

Shared by routing windows (does the centre take a call now?) and the callback deadline (when
is a ticket due?). Build one with `load_calendar(conn, tenant)` or `WorkingCalendar(...)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from importlib.metadata import version
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import holidays

from backend.tenants import repository
from backend.tenants.schemas import ClosingDay, ServiceInterval, Tenant


class ClosedReason(StrEnum):
    PUBLIC_HOLIDAY = "public_holiday"
    CLOSING_DAY = "closing_day"
    OUTSIDE_SERVICE_HOURS = "outside_service_hours"


@dataclass(frozen=True, slots=True)
class Openness:
    open: bool
    reason: ClosedReason | None = None
    detail: str | None = None  # e.g. the holiday's name ("Karfreitag")


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=1)
def _holidays_version() -> str:
    # Read from the package's metadata once: each read parsed it again (~10 ms, measured in
    # issue 16's bench, on every deadline computed).
    return version("holidays")


@lru_cache(maxsize=32)
def _state_holidays(federal_state: str) -> holidays.HolidayBase:
    """Observed holidays of a state; the package computes movable feasts (Easter, Pentecost) per
    year as they are asked for. One object per state and process: building one cost about a
    millisecond, and the forwarding decision built several per request (issue 16's bench)."""
    return holidays.country_holidays("DE", subdiv=federal_state, language="de")


@dataclass(frozen=True)
class WorkingCalendar:
    federal_state: str
    time_zone: str
    service_hours: tuple[ServiceInterval, ...]
    closing_days: dict[date, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tenant: Tenant, closing_days: Iterable[ClosingDay] = ()) -> WorkingCalendar:
        return cls(
            federal_state=tenant.federal_state,
            time_zone=tenant.time_zone,
            service_hours=tuple(tenant.service_hours),
            closing_days={c.day: c.name for c in closing_days},
        )

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def _holidays(self) -> holidays.HolidayBase:
        return _state_holidays(self.federal_state)

    @cached_property
    def version(self) -> str:
        """Fingerprint of everything a deadline depends on: stored with each deadline so a later
        calendar edit is visible, and never silently changes deadlines computed before."""
        parts = [
            self.federal_state,
            self.time_zone,
            ";".join(
                f"{s.weekday}{s.opens}-{s.closes}"
                for s in sorted(self.service_hours, key=lambda s: (s.weekday, s.opens))
            ),
            ";".join(f"{d.isoformat()}" for d in sorted(self.closing_days)),
            f"holidays-{_holidays_version()}",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime")
        return moment.astimezone(self.zone)

    def holiday_name(self, day: date) -> str | None:
        name = self._holidays.get(day)
        return str(name) if name else None

    def day_closed_reason(self, day: date) -> Openness | None:
        return self._day(day)[0]

    # Days asked for are remembered per calendar (it never changes; a changed calendar is a new
    # object): the forwarding decision asked each day's holiday and parsed its hours ~6 times per
    # decision, ~20 % of the decision's CPU (decision 040). Bounded: a horizon walk asks up to
    # 400 days, then the memo starts over.
    _DAYS_REMEMBERED = 512

    @cached_property
    def _days(self) -> dict[date, tuple[Openness | None, tuple[tuple[datetime, datetime], ...]]]:
        return {}

    def _day(self, day: date) -> tuple[Openness | None, tuple[tuple[datetime, datetime], ...]]:
        known = self._days.get(day)
        if known is None:
            closed = self._closed_reason(day)
            known = (closed, () if closed is not None else self._spans(day))
            if len(self._days) >= self._DAYS_REMEMBERED:
                self._days.clear()
            self._days[day] = known
        return known

    def _closed_reason(self, day: date) -> Openness | None:
        holiday = self.holiday_name(day)
        if holiday:
            return Openness(False, ClosedReason.PUBLIC_HOLIDAY, holiday)
        if day in self.closing_days:
            return Openness(False, ClosedReason.CLOSING_DAY, self.closing_days[day])
        return None

    def is_working_day(self, day: date) -> bool:
        """Mon–Fri, not a public holiday of the state, not one of the tenant's closing days."""
        return day.isoweekday() <= 5 and self.day_closed_reason(day) is None

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Service intervals of a day as aware datetimes (empty on holidays and closing days)."""
        return list(self._day(day)[1])

    def _spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        spans = sorted((s for s in self.service_hours if s.weekday == day.isoweekday()), key=lambda s: s.opens)
        return tuple(
            (datetime.combine(day, _clock(s.opens), self.zone), datetime.combine(day, _clock(s.closes), self.zone))
            for s in spans
        )

    def within_weekly_hours(self, moment: datetime) -> bool:
        """Within the weekday's service hours, whatever the day is (a closing day too)."""
        local = self.local(moment)
        day, clock = local.date(), local.time().replace(tzinfo=None)
        return any(
            s.weekday == day.isoweekday() and _clock(s.opens) <= clock < _clock(s.closes) for s in self.service_hours
        )

    def openness(self, moment: datetime) -> Openness:
        local = self.local(moment)
        closed = self.day_closed_reason(local.date())
        if closed is not None:
            return closed
        for start, end in self.intervals_on(local.date()):
            if start <= local < end:
                return Openness(True)
        return Openness(False, ClosedReason.OUTSIDE_SERVICE_HOURS)

    def next_service_start(self, moment: datetime, horizon_days: int = 400) -> datetime:
        """The first service-hours instant at or after `moment`."""
        local = self.local(moment)
        for offset in range(horizon_days):
            day = local.date() + timedelta(days=offset)
            for start, end in self.intervals_on(day):
                if local < end:
                    return max(start, local)
        raise ValueError("no service hours within the horizon")

    def next_working_day(self, day: date) -> date:
        """The first working day after `day` (Mon–Fri, no public holiday, no closing day)."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def working_day_start(self, day: date) -> datetime:
        """When a working day's service begins: its first service interval, or its local
        midnight when the tenant has no service hours that weekday (or none at all)."""
        spans = self.intervals_on(day)
        return spans[0][0] if spans else datetime.combine(day, time(0, 0), self.zone)

    def working_clock_start(self, moment: datetime) -> datetime:
        """Where "24 hours on working days" starts counting for something arriving at `moment`:
        at once on a working day; otherwise at the next working day's service start. Service
        hours on Saturdays or Sundays do not make those days working days."""
        local = self.local(moment)
        if self.is_working_day(local.date()):
            return local
        return self.working_day_start(self.next_working_day(local.date()))

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """Same local clock time `days` working days later (24 h on working days)."""
        local = self.local(moment)
        day = local.date()
        added = 0
        while added < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                added += 1
        return datetime.combine(day, local.time(), self.zone)

    def working_days_due(self, local: datetime) -> datetime:
        """`add_working_days(working_clock_start(local), 1)` for a moment already in the
        calendar's zone, without the steps between: the callback deadline of every forwarding
        decision (decision 040, 2026-12-07). The moment's day is looked up once (`_due_day`);
        the deadline itself is made from the moment each time, never kept."""
        day = local.date()
        known = self._due_days.get(day)
        if known is None:
            known = self._due_day(day)
            if len(self._due_days) >= self._DAYS_REMEMBERED:
                self._due_days.clear()
            self._due_days[day] = known
        due_day, start = known
        return datetime.combine(due_day, (start or local).time(), self.zone)

    @cached_property
    def _due_days(self) -> dict[date, tuple[date, datetime | None]]:
        return {}

    def _due_day(self, day: date) -> tuple[date, datetime | None]:
        """For a moment on `day`: the day its working-days deadline falls on, and where the
        clock starts when `day` is no working day (None: at the moment itself)."""
        if self.is_working_day(day):
            return self.next_working_day(day), None
        start = self.working_day_start(self.next_working_day(day))
        return self.next_working_day(start.date()), start

    def add_service_time(self, moment: datetime, duration: timedelta, horizon_days: int = 400) -> datetime:
        """`moment` plus `duration` counted only inside service hours."""
        remaining = duration
        local = self.local(moment)
        for offset in range(horizon_days):
            day = local.date() + timedelta(days=offset)
            for start, end in self.intervals_on(day):
                if end <= local:
                    continue
                begin = max(start, local)
                if begin + remaining <= end:
                    return begin + remaining
                remaining -= end - begin
        raise ValueError("duration exceeds the horizon")


async def load_calendar(conn: asyncpg.Connection, tenant: Tenant) -> WorkingCalendar:
    return WorkingCalendar.of(tenant, await repository.list_closing_days(conn, tenant.id))


async def load_calendar_of(conn: asyncpg.Connection, tenant_id: UUID) -> WorkingCalendar:
    """A town's calendar by its id, for background work that has no tenant record at hand."""
    return await load_calendar(conn, await repository.get_tenant(conn, tenant_id))
