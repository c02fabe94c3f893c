"""Offices (`organisationseinheit`) and responsibilities (`zustaendigkeit`) of XZuFi 2.2 messages
read into plain values (decision 024); `xzufi` reads the message around them.

What real messages carry, and how it is read here:
- a name per language (`name/name` with `languageCode`); German is taken;
- several addresses (`anschrift` with a `typ`: house, post box, delivery …); the one with a
  street that is not a post box gives the address, any of them the municipal key
  (`gemeindeschluessel` AGS or `regionalschluessel` ARS);
- `kommunikation` entries whose `kanal` code comes from one of two lists in use (the XÖV
  reachability list: 01 e-mail, 02 phone, 03 mobile, 04 fax, 09 web; and the older one our own
  samples follow: 01 phone, 03 e-mail, 04 web), so the value's shape decides first and the code
  only tells a fax from a phone;
- opening hours as weekday (code 1–7, "01", or a name) with one or more time windows (`von`/`bis`,
  `beginn`/`ende`, xs:time with seconds or a zone), besides free text (`beschreibung`);
- responsibilities inside the office, or sent apart as `zustaendigkeitTransferObjekt`
  (`uebergeordnetesObjektID` names the office), each with `leistungID`, `gebietID` (ARS, AGS or
  a leading part of the ARS) and a `rolle`. A responsibility that cannot be read is reported on
  its own; the office and its other responsibilities still go in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from backend.knowledge.xzufi_xml import (
    AREA,
    Bad,
    child,
    children,
    code,
    code_name,
    identifier,
    inhalt,
    line,
    local,
    municipal_key,
    path_text,
    prose,
    text,
    version_of,
)

_CLOCK = re.compile(
    r"^(?:\d{4}-\d\d-\d\dT)?([01]?[0-9]|2[0-4])[:.]([0-5][0-9])(?::[0-5][0-9](?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?$"
)
_DATE = re.compile(r"^\d{4}-\d\d-\d\d(Z|[+-]\d\d:\d\d)?$")
_PHONE_LABEL = re.compile(r"^(tel(efon)?|fon|phone)\.?\s*:?\s*", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()/\-.]{3,40}$")
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("montag", "mo", "mon", "monday"),
            ("dienstag", "di", "tue", "tuesday"),
            ("mittwoch", "mi", "wed", "wednesday"),
            ("donnerstag", "do", "thu", "thursday"),
            ("freitag", "fr", "fri", "friday"),
            ("samstag", "sa", "sat", "saturday", "sonnabend"),
            ("sonntag", "so", "sun", "sunday"),
        ),
        start=1,
    )
    for name in names
}
_DAY_ELEMENTS = ("wochentag", "tag")
_OPENS = ("von", "beginn", "uhrzeitVon", "zeitVon", "start", "oeffnet")
_CLOSES = ("bis", "ende", "uhrzeitBis", "zeitBis", "end", "schliesst")


@dataclass(frozen=True, slots=True)
class Responsibility:
    leistung_id: str
    area_ids: tuple[str, ...]
    role: str = ""  # rolle code (Zuständigkeitsrolle), kept as sent
    xzufi_id: str = ""  # the responsibility's own id, where it has one


@dataclass(slots=True)
class Office:
    xzufi_id: str
    version: str
    line: int
    name: str
    address: str
    municipality: str | None  # Gemeindeschlüssel (AGS) or Regionalschlüssel (ARS) of the address
    phone: str | None
    email: str | None
    url: str | None
    hours: list[dict[str, object]]
    hours_note: str
    responsibilities: list[Responsibility]
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class SentResponsibility:
    """A `zustaendigkeitTransferObjekt`: a responsibility sent apart from its office."""

    office_id: str
    responsibility: Responsibility
    line: int


@dataclass(frozen=True, slots=True)
class PartProblem:
    """One responsibility of an office that could not be read (the office still goes in)."""

    line: int
    xzufi_id: str | None
    message: str


def responsibility(element: etree._Element) -> Responsibility:
    """One `zustaendigkeit`: the service, the areas (ARS/AGS) and the role."""
    leistung = identifier(child(element, "leistungID"))
    areas = tuple(municipal_key(text(g)) for g in children(element, "gebietID") if text(g))
    for area in areas:
        if not AREA.match(area):
            raise Bad(f"zustaendigkeit: gebietID {area!r} is not a municipal key (ARS or AGS)")
    own_id = text(child(element, "id"))[:200]
    return Responsibility(
        leistung_id=leistung, area_ids=areas, role=code(child(element, "rolle"))[:20], xzufi_id=own_id
    )


def sent_responsibility(element: etree._Element) -> SentResponsibility:
    """`zustaendigkeitTransferObjekt`: `uebergeordnetesObjektID` (the office) and its `zustaendigkeit`."""
    office_id = identifier(child(element, "uebergeordnetesObjektID"))
    inner = child(element, "zustaendigkeit")
    if inner is None:
        raise Bad("zustaendigkeitTransferObjekt without a zustaendigkeit")
    return SentResponsibility(office_id=office_id, responsibility=responsibility(inner), line=line(element))


def _address(element: etree._Element) -> tuple[str, str | None]:
    """The visitors' address (a street, not a post box) and the municipal key of any address."""
    chosen = first = ""
    municipality = None
    for address in children(element, "anschrift"):
        coding = child(address, "verwaltungspolitischeKodierung")
        if coding is not None and municipality is None:
            key = code(child(coding, "gemeindeschluessel")) or code(child(coding, "regionalschluessel"))
            municipality = municipal_key(key) if AREA.match(key) else None
        kind_element = child(address, "typ") if child(address, "typ") is not None else child(address, "anschriftTyp")
        kind = f"{code(kind_element)} {code_name(kind_element)}".lower()
        if child(address, "postfach") is not None and not path_text(address, "strasse"):
            kind += " postfach"
        street = " ".join(filter(None, [path_text(address, "strasse"), path_text(address, "hausnummer")]))
        town = " ".join(filter(None, [path_text(address, "postleitzahl"), path_text(address, "ort")]))
        first = first or town  # an office with no street anywhere keeps its town, as it always did
        if not chosen and street and "post" not in kind:
            chosen = ", ".join(filter(None, [street, town]))
    return (chosen or first)[:300], municipality


def _dialable(value: str, kind: str) -> bool:
    """A phone number: its shape, or digits with a note ("02942 500-0 Zentrale") on a phone code."""
    return bool(_PHONE.match(value)) or (kind in ("", "01", "02", "03") and sum(c.isdigit() for c in value) >= 5)


def _channels(element: etree._Element) -> tuple[str | None, str | None, str | None]:
    phone = email = url = None
    channels = [*children(element, "kommunikation"), *children(element, "erreichbarkeit")]
    for channel in channels:
        medium = child(channel, "kanal") if child(channel, "kanal") is not None else child(channel, "typ")
        kind, name = code(medium), code_name(medium).lower()
        value = _PHONE_LABEL.sub("", path_text(channel, "kennung") or path_text(channel, "wert"))
        if not value:
            continue
        if "@" in value:
            email = email or (value.removeprefix("mailto:") if _EMAIL.match(value.removeprefix("mailto:")) else None)
        elif value.startswith(("http://", "https://")):
            url = url or (value if len(value) <= 1000 else None)
        elif _dialable(value, kind) and "fax" not in name and not (kind == "04" and "web" not in name):
            phone = phone or value[:40]
    for link in children(element, "internetadresse"):
        address = path_text(link, "uri")
        if url is None and address.startswith(("http://", "https://")) and len(address) <= 1000:
            url = address
    return phone, email, url


def _weekday(value: str) -> int | None:
    value = value.strip().lower().rstrip(".")
    if value.isdigit():
        number = int(value) or 7  # 0 is Sunday where a system counts from it
        return number if 1 <= number <= 7 else None
    return _WEEKDAYS.get(value)


def _clock(value: str) -> str | None:
    """ "08:00", "8.00", "08:00:00+01:00" → "08:00"; midnight at the end of the day ("24:00") → "23:59"."""
    found = _CLOCK.match(value.strip())
    if found is None or (found[1] == "24" and found[2] != "00"):
        return None
    return "23:59" if found[1] == "24" else f"{int(found[1]):02d}:{found[2]}"


def _first_time(element: etree._Element, names: tuple[str, ...]) -> str | None:
    """The first of the named children that is a time of day: a `beginn` that is a date (the
    series' validity, not the hours) is passed over."""
    for name in names:
        value = path_text(element, name) if child(element, name) is not None else None
        if value is not None and not _DATE.match(value):
            return value
    return None


def _window(element: etree._Element) -> tuple[str, str] | None:
    opens, closes = _first_time(element, _OPENS), _first_time(element, _CLOSES)
    if opens is None and closes is None:
        return None
    start, end = _clock(opens or ""), _clock(closes or "")
    if start is None or end is None:
        raise Bad(f"oeffnungszeiten: {opens!r}–{closes!r} is not a time range")
    if start >= end:
        raise Bad(f"oeffnungszeiten: {start}–{end} closes before it opens")
    return start, end


def _hours(element: etree._Element) -> tuple[list[dict[str, object]], str]:
    """Weekday and time windows wherever they sit under `oeffnungszeiten`: an element that names
    weekdays (one or more) holds its windows directly or in child elements (one per window)."""
    hours: list[dict[str, object]] = []
    for times in children(element, "oeffnungszeiten"):
        for period in times.iter():
            if not isinstance(period.tag, str):
                continue
            days = [d for d in period if isinstance(d.tag, str) and local(d) in _DAY_ELEMENTS]
            if not days:
                continue
            numbers = []
            for day in days:
                value = code(day) or code_name(day)
                number = _weekday(value)
                if number is None:
                    raise Bad(f"oeffnungszeiten: weekday {value!r} is not 1 (Monday) … 7")
                numbers.append(number)
            windows = [w for w in [_window(period)] if w is not None]
            for part in period:
                if isinstance(part.tag, str) and local(part) not in _DAY_ELEMENTS:
                    found = _window(part)
                    if found is not None:
                        windows.append(found)
            hours += [{"weekday": n, "opens": w[0], "closes": w[1]} for n in numbers for w in windows]
    note = " ".join(_hours_text(t) for t in children(element, "oeffnungszeiten")).strip()
    hours.sort(key=lambda h: (h["weekday"], h["opens"]))
    return hours, note


def _hours_text(times: etree._Element) -> str:
    """Opening hours in words: `beschreibung` per language, or (some systems) the element's own text."""
    described = inhalt(times, "beschreibung")
    if described or len(times):
        return described
    return prose(times.text or "")


def office(element: etree._Element) -> tuple[Office, list[PartProblem]]:
    xzufi_id = identifier(child(element, "id") if child(element, "id") is not None else child(element, "kennung"))
    name_element = child(element, "name")
    name = (inhalt(name_element, "name") or text(name_element)) if name_element is not None else ""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise Bad("an office needs a name of 1 to 200 characters")
    address, municipality = _address(element)
    phone, email, url = _channels(element)
    hours, note = _hours(element)
    responsibilities = []
    problems = []
    for duty in children(element, "zustaendigkeit"):
        try:
            responsibilities.append(responsibility(duty))
        except Bad as error:
            problems.append(PartProblem(line(duty), text(child(duty, "id"))[:200] or None, str(error)))
    value = Office(
        xzufi_id=xzufi_id,
        version=version_of(element),
        line=line(element),
        name=name,
        address=address,
        municipality=municipality,
        phone=phone,
        email=email,
        url=url,
        hours=hours,
        hours_note=note[:2000],
        responsibilities=responsibilities,
    )
    return value, problems
