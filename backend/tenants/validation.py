"""Checks of official identifiers and settings, shared by create and update."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.tenants.schemas import ServiceInterval

_LEITWEG = re.compile(r"^(?P<coarse>[0-9]{2,12})(-(?P<fine>[A-Za-z0-9]{1,30}))?-(?P<check>[0-9]{2})$")
FEDERAL_STATES = frozenset(s for s in holidays.country_holidays("DE").subdivisions if len(s) == 2)


def leitweg_id_is_valid(value: str) -> bool:
    """Leitweg-ID (XRechnung BT-10): coarse-fine-check, check digits by ISO 7064 MOD 97-10."""
    match = _LEITWEG.match(value)
    if not match or len(value) > 46:
        return False
    body = match["coarse"] + (match["fine"] or "")
    digits = "".join(str(int(ch, 36)) for ch in body.upper()) + match["check"]
    return int(digits) % 97 == 1


def check_leitweg_id(value: str | None) -> None:
    if value is not None and not leitweg_id_is_valid(value):
        raise ValidationFailed(_l("not a valid Leitweg-ID (format or check digits)"), field="leitwegId")


def check_ags(value: str | None) -> None:
    # Amtlicher Gemeindeschlüssel: 8 digits for a municipality, 5 for a district (Kreis).
    if value is not None and not re.fullmatch(r"[0-9]{8}|[0-9]{5}", value):
        raise ValidationFailed(_l("AGS must have 8 digits (municipality) or 5 (district)"), field="ags")


def check_federal_state(value: str | None) -> None:
    if value is not None and value not in FEDERAL_STATES:
        raise ValidationFailed(_l("unknown federal state {value!r}; use e.g. NW", value=value), field="federalState")


def check_time_zone(value: str | None) -> None:
    if value is None:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(_l("unknown time zone {value!r}", value=value), field="timeZone") from None


def check_service_hours(intervals: list[ServiceInterval] | None) -> None:
    """Well-formed intervals, and at least one: routing windows and callback deadlines are
    computed from them (a tenant stored without any still gets working-day deadlines)."""
    if intervals is None:
        return
    if not intervals:
        raise ValidationFailed(_l("give at least one service interval"), field="serviceHours")
    by_day: dict[int, list[tuple[time, time]]] = {}
    for interval in intervals:
        opens = datetime.strptime(interval.opens, "%H:%M").time()
        closes = datetime.strptime(interval.closes, "%H:%M").time()
        if opens >= closes:
            raise ValidationFailed(_l("service hours must open before they close"), field="serviceHours")
        by_day.setdefault(interval.weekday, []).append((opens, closes))
    for spans in by_day.values():
        spans.sort()
        for (_, first_close), (second_open, _) in itertools.pairwise(spans):
            if second_open < first_close:
                raise ValidationFailed(_l("service hours of one day overlap"), field="serviceHours")


def leitweg_id_with_check_digits(coarse: str, fine: str = "") -> str:
    """Append ISO 7064 MOD 97-10 check digits (used for demo data and tests)."""
    body = coarse + fine
    digits = "".join(str(int(ch, 36)) for ch in body.upper()) + "00"
    check = 98 - int(digits) % 97
    return f"{coarse}-{fine}-{check:02d}" if fine else f"{coarse}-{check:02d}"
