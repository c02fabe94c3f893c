"""Whether a person is reachable at a moment: the most specific source wins (decision 023).

1. the telephone system's latest event, while it has not expired (busy, ringing, idle, logged off):
   it is what the person's telephone says this minute;
2. the person's own switch (away / in a meeting / available until a moment);
3. a dated absence (leave, training) in the absence calendar;
4. a recurring weekly absence, in the town's local time (so 12:30–13:30 stays 12:30–13:30
   across daylight-saving changes);
5. the working calendar of the person's department: public holidays of the town's state, the
   town's closing days, and the department's hours (the town's service hours when it has none);
6. otherwise available.
Pure: the service gathers the rows, this decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from uuid import UUID

from backend.directory.schemas import PhoneState, Presence, PresenceSource, SwitchState
from backend.tenants.calendar import ClosedReason, WorkingCalendar
from backend.tenants.schemas import ServiceInterval

REACHABLE_PHONE_STATES = frozenset({PhoneState.IDLE})


@dataclass(frozen=True, slots=True)
class Sources:
    """The rows of every source for one person that may be in force at the moment."""

    phone: Any | None = None  # record: state, expires_at
    switch: Any | None = None  # record: state, until
    dated: Any | None = None  # record: ends_at, note
    weekly: tuple[Any, ...] = ()  # records: weekday, starts, ends, note


def department_calendar(town: WorkingCalendar, hours: Sequence[ServiceInterval] | None) -> WorkingCalendar:
    """The town's calendar with the department's own hours (None: the town's service hours)."""
    if hours is None:
        return town
    return WorkingCalendar(
        federal_state=town.federal_state,
        time_zone=town.time_zone,
        service_hours=tuple(hours),
        closing_days=town.closing_days,
    )


def _hhmm(moment: datetime, calendar: WorkingCalendar) -> str:
    return calendar.local(moment).strftime("%H:%M")


def _until_text(moment: datetime, at: datetime, calendar: WorkingCalendar) -> str:
    local, now = calendar.local(moment), calendar.local(at)
    return local.strftime("%H:%M") if local.date() == now.date() else local.strftime("%Y-%m-%d %H:%M")


def presence_of(person_id: UUID, sources: Sources, calendar: WorkingCalendar, at: datetime) -> Presence:
    def answer(reachable: bool, source: PresenceSource, state: str, reason: str, until: datetime | None) -> Presence:
        return Presence(
            person_id=person_id, reachable=reachable, source=source, state=state, until=until, reason=reason, at=at
        )

    if (phone := sources.phone) is not None:
        state = PhoneState(phone["state"])
        words = {
            PhoneState.IDLE: "available (telephone idle)",
            PhoneState.BUSY: "busy on the telephone",
            PhoneState.RINGING: "the telephone is ringing",
            PhoneState.LOGGED_OFF: "logged off the telephone",
        }
        return answer(state in REACHABLE_PHONE_STATES, PresenceSource.PHONE, state.value, words[state], None)
    if (switch := sources.switch) is not None:
        own = SwitchState(switch["state"])
        until = switch["until"]
        if own is SwitchState.AVAILABLE:
            return answer(True, PresenceSource.SWITCH, own.value, "available", until)
        label = "away" if own is SwitchState.AWAY else "in a meeting"
        return answer(
            False, PresenceSource.SWITCH, own.value, f"{label} until {_until_text(until, at, calendar)}", until
        )
    if (dated := sources.dated) is not None:
        ends = dated["ends_at"]
        return answer(
            False, PresenceSource.DATED_ABSENCE, "absent", f"absent until {_until_text(ends, at, calendar)}", ends
        )
    local = calendar.local(at)
    clock: time = local.time().replace(tzinfo=None)
    for weekly in sources.weekly:
        if weekly["weekday"] == local.isoweekday() and weekly["starts"] <= clock < weekly["ends"]:
            ends = datetime.combine(local.date(), weekly["ends"], calendar.zone)
            return answer(False, PresenceSource.WEEKLY_ABSENCE, "absent", f"absent until {_hhmm(ends, calendar)}", ends)
    openness = calendar.openness(at)
    if not openness.open:
        if openness.reason is ClosedReason.PUBLIC_HOLIDAY:
            return answer(False, PresenceSource.CALENDAR, "holiday", f"public holiday: {openness.detail}", None)
        if openness.reason is ClosedReason.CLOSING_DAY:
            return answer(False, PresenceSource.CALENDAR, "closing_day", f"closing day: {openness.detail}", None)
        return answer(False, PresenceSource.CALENDAR, "outside_hours", "outside the department's hours", None)
    return answer(True, PresenceSource.DEFAULT, "available", "available", None)
