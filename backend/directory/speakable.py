"""The forwarding decision in German sentences for screen readers and braille displays: names as
they are said ("Frau Müller"), times as they are said ("bis 14 Uhr 30"), extensions digit by
digit ("Durchwahl 1 2 3 4") so a speech synthesiser does not read "eintausendzweihundert…"."""

from __future__ import annotations

from datetime import datetime

from babel.dates import get_day_names, get_month_names

from backend.directory.schemas import Person, Presence, PresenceSource
from backend.tenants.calendar import WorkingCalendar

# Babel's CLDR names (already used for the error catalogues), not a second hand-written list;
# copied into plain dicts once: a look-up in babel's locale data costs ~5 µs each.
_WEEKDAYS = dict(get_day_names("wide", locale="de").items())  # 0 = Montag
_MONTHS = dict(get_month_names("wide", locale="de").items())  # 1 = Januar


def spoken_name(person: Person) -> str:
    if person.salutation.value:
        return f"{person.salutation.value} {person.family_name}"
    return f"{person.given_name} {person.family_name}".strip()


def display_name(person: Person) -> str:
    return f"{person.given_name} {person.family_name}".strip()


def spoken_clock(moment: datetime, calendar: WorkingCalendar, at: datetime) -> str:
    return spoken_local_clock(calendar.local(moment), calendar.local(at))


def spoken_local_clock(local: datetime, now: datetime) -> str:
    """`spoken_clock` of two moments already in the town's zone (the forwarding decision has
    its moment there already)."""
    clock = f"{local.hour} Uhr {local.minute}" if local.minute else f"{local.hour} Uhr"
    if local.date() == now.date():
        return clock
    return f"{_WEEKDAYS[local.weekday()]}, {local.day}. {_MONTHS[local.month]}, {clock}"


def digits(text: str) -> str:
    return " ".join(ch for ch in text if ch.isdigit())


def extension(number: str, base: str | None) -> str:
    """What to dial inside the town's exchange: the digits after the part shared with the
    department's general line (at least 6 shared, at most 5 left); else the national number."""
    if base:
        shared = 0
        for a, b in zip(number, base, strict=False):
            if a != b:
                break
            shared += 1
        rest = number[shared:]
        if shared >= 7 and 0 < len(rest) <= 5:
            return digits(rest)
    national = "0" + number[3:] if number.startswith("+49") else number
    return digits(national)


def presence_phrase(presence: Presence, calendar: WorkingCalendar) -> str:
    """ "ist bis 14 Uhr in einer Besprechung" — the verb phrase after the name."""
    until = spoken_clock(presence.until, calendar, presence.at) if presence.until else None
    state = presence.state
    if presence.source is PresenceSource.PHONE:
        return {
            "busy": "telefoniert gerade",
            "ringing": "wird gerade angerufen",
            "logged_off": "ist am Telefon abgemeldet",
        }.get(state, "ist erreichbar")
    if presence.source is PresenceSource.SWITCH:
        if state == "in_meeting":
            return f"ist bis {until} in einer Besprechung"
        if state == "away":
            return f"ist bis {until} nicht am Platz"
        return "ist erreichbar"
    if presence.source in (PresenceSource.DATED_ABSENCE, PresenceSource.WEEKLY_ABSENCE):
        return f"ist bis {until} abwesend"
    if presence.source is PresenceSource.CALENDAR:
        if state == "holiday":
            return "ist heute nicht im Dienst, es ist Feiertag"
        if state == "closing_day":
            return "ist heute nicht im Dienst, die Verwaltung ist geschlossen"
        return "ist außerhalb der Dienstzeit"
    return "ist erreichbar"
