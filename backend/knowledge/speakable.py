"""A speakable plain-text version of an article, for screen readers and braille displays.

Summary first, then section by section; one sentence or list item a line, lines short enough
for a braille display to show whole; no markup. Phone numbers are spelled digit by digit in
their groups ("0 2 9 2 1, 1 0 3, 0"), dates and times as they are said ("24. Dezember 2026",
"8 Uhr bis 12 Uhr 30"), amounts in euro ("28 Euro 80"), abbreviations expanded ("z. B." →
"zum Beispiel", "§" → "Paragraf").
"""

from __future__ import annotations

import re
import textwrap
from datetime import date

import phonenumbers

from backend.knowledge.rendering import SECTION_TITLES, WEEKDAYS, e164, html_text_blocks, markdown_to_html
from backend.knowledge.schemas import Contact, OpeningHours, Sections

LINE_WIDTH = 80
MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)
_WEEKDAY_ABBREVIATIONS = {"mo": 0, "di": 1, "mi": 2, "do": 3, "fr": 4, "sa": 5, "so": 6}
SPOKEN_SECTION_TITLES = dict(SECTION_TITLES) | {"documents": "Unterlagen", "online_service": "Online erledigen"}

# Abbreviations as written in administrative German, expanded the way they are said.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    (r"z\.\s?B\.", "zum Beispiel"),
    (r"d\.\s?h\.", "das heißt"),
    (r"u\.\s?a\.", "unter anderem"),
    (r"i\.\s?V\.\s?m\.", "in Verbindung mit"),
    (r"u\.\s?U\.", "unter Umständen"),
    (r"o\.\s?ä\.", "oder ähnliches"),
    (r"usw\.", "und so weiter"),
    (r"bzw\.", "beziehungsweise"),
    (r"ggf\.", "gegebenenfalls"),
    (r"evtl\.", "eventuell"),
    (r"inkl\.", "inklusive"),
    (r"zzgl\.", "zuzüglich"),
    (r"ca\.", "circa"),
    (r"bspw\.", "beispielsweise"),
    (r"sog\.", "sogenannte"),
    (r"vgl\.", "vergleiche"),
    (r"gem\.", "gemäß"),
    (r"lt\.", "laut"),
    (r"max\.", "höchstens"),
    (r"mind\.", "mindestens"),
    (r"etc\.", "und so weiter"),
    (r"Nr\.", "Nummer"),
    (r"Tel\.", "Telefon"),
    (r"Str\.", "Straße"),
    (r"Abs\.", "Absatz"),
    (r"Art\.", "Artikel"),
    (r"S\.", "Satz"),
    (r"Std\.", "Stunden"),
    (r"Min\.", "Minuten"),
    (r"Hr\.", "Herr"),
    (r"Fa\.", "Firma"),
    (r"Kfz", "Kraftfahrzeug"),
    (r"KFZ", "Kraftfahrzeug"),
    (r"Pkw", "Personenkraftwagen"),
    (r"PKW", "Personenkraftwagen"),
    (r"ÖPNV", "öffentlicher Nahverkehr"),
    (r"EUR", "Euro"),
    (r"€", "Euro"),
    (r"§§", "Paragrafen"),
    (r"§", "Paragraf"),
    (r"Jan\.", "Januar"),
    (r"Feb\.", "Februar"),
    (r"Aug\.", "August"),
    (r"Sept?\.", "September"),
    (r"Okt\.", "Oktober"),
    (r"Nov\.", "November"),
    (r"Dez\.", "Dezember"),
)
_ABBREVIATION_RES = tuple(
    (re.compile(r"(?<![\wÄÖÜäöüß])" + pattern + (r"(?![\wÄÖÜäöüß])" if pattern[-1].isalnum() else "")), spoken)
    for pattern, spoken in ABBREVIATIONS
)
_PHONE = re.compile(r"(?<![\w+])(?:\+49 ?|0049 ?|0)[1-9][0-9]{1,5}(?:[ /\-–]?\(?[0-9]+\)?)*(?:[ \-–][0-9]+)?(?!\w)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_GERMAN_DATE = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.(\d{4}|\d{2})?(?!\d)")
_TIME_RANGE = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s?(?:Uhr\s?)?[-–]\s?(\d{1,2})(?:[:.](\d{2}))?\s?Uhr\b")
_TIME_RANGE_CLOCK = re.compile(r"\b(\d{1,2})[:.](\d{2})\s?[-–]\s?(\d{1,2})[:.](\d{2})(?:\s?Uhr)?\b")
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2})(?:\s?Uhr)?|\.(\d{2})\s?Uhr)\b")
_WEEKDAY_RANGE = re.compile(r"\b(Mo|Di|Mi|Do|Fr|Sa|So)\.?\s?[-–]\s?(Mo|Di|Mi|Do|Fr|Sa|So)\.?(?=[\s,:]|$)")
_WEEKDAY = re.compile(r"\b(Mo|Di|Mi|Do|Fr|Sa|So)\.(?=[\s,:]|$)")
_MONEY = re.compile(r"(\d{1,3}(?:\.\d{3})*|\d+)(?:,(\d{2}|-{1,2}))?\s?(?:€|EUR|Euro)(?!\w)")
_URL = re.compile(r"https?://")


def speak_phone(number: str) -> str:
    """`02921 103-0` → `0 2 9 2 1, 1 0 3, 0`: digit by digit, in the groups as written."""
    written = number.strip()
    international = re.match(r"^(?:\+|00)49\s?(?:\(0\)\s?)?", written)
    if international:
        written = "0" + written[international.end() :]
    groups = [g for g in re.split(r"[^0-9]+", written) if g]
    if len(groups) == 1:
        try:
            parsed = phonenumbers.parse(number, "DE")
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            groups = [g for g in re.split(r"[^0-9]+", national) if g]
        except phonenumbers.NumberParseException:
            pass
    return ", ".join(" ".join(group) for group in groups)


def speak_date(day: date) -> str:
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def _speak_time(hours: str, minutes: str | None) -> str:
    h = int(hours)
    return f"{h} Uhr" if not minutes or minutes == "00" else f"{h} Uhr {int(minutes)}"


def _money(match: re.Match[str]) -> str:
    euros = match.group(1).replace(".", "")
    cents = match.group(2)
    if cents and cents.isdigit() and cents != "00":
        return f"{int(euros)} Euro {int(cents)}"
    return f"{int(euros)} Euro"


def _german_date(match: re.Match[str]) -> str:
    day, month, year = int(match.group(1)), int(match.group(2)), match.group(3)
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return match.group(0)
    spoken = f"{day}. {MONTHS[month - 1]}"
    if year:
        spoken += f" {int(year) + 2000 if len(year) == 2 else int(year)}"
    return spoken


def _iso_date(match: re.Match[str]) -> str:
    try:
        return speak_date(date(int(match.group(1)), int(match.group(2)), int(match.group(3))))
    except ValueError:
        return match.group(0)


def speakable_line(text: str) -> str:
    """One line of text as it should be read aloud."""
    text = _URL.sub("", text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _GERMAN_DATE.sub(_german_date, text)
    text = _WEEKDAY_RANGE.sub(
        lambda m: (
            f"{WEEKDAYS[_WEEKDAY_ABBREVIATIONS[m.group(1).lower()]]} bis "
            f"{WEEKDAYS[_WEEKDAY_ABBREVIATIONS[m.group(2).lower()]]}"
        ),
        text,
    )
    text = _WEEKDAY.sub(lambda m: WEEKDAYS[_WEEKDAY_ABBREVIATIONS[m.group(1).lower()]], text)
    text = _TIME_RANGE_CLOCK.sub(
        lambda m: f"{_speak_time(m.group(1), m.group(2))} bis {_speak_time(m.group(3), m.group(4))}", text
    )
    text = _TIME_RANGE.sub(
        lambda m: f"{_speak_time(m.group(1), m.group(2))} bis {_speak_time(m.group(3), m.group(4))}", text
    )
    text = _TIME.sub(lambda m: _speak_time(m.group(1), m.group(2) or m.group(3)), text)
    text = _MONEY.sub(_money, text)
    text = _PHONE.sub(lambda m: speak_phone(m.group(0)) if e164(m.group(0)) else m.group(0), text)
    for pattern, spoken in _ABBREVIATION_RES:
        text = pattern.sub(spoken, text)
    return " ".join(text.split())


def _sentences(block: str) -> list[str]:
    """A block split after each sentence (not after abbreviations or ordinal numbers)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ])(?!(?:" + "|".join(MONTHS) + r")\b)", block)
    return [p.strip() for p in parts if p.strip()]


def short_lines(text: str, width: int = LINE_WIDTH) -> list[str]:
    lines: list[str] = []
    for sentence in _sentences(text):
        lines.extend(textwrap.wrap(sentence, width=width, break_long_words=False, break_on_hyphens=False) or [""])
    return lines


def _opening_hours_lines(hours: list[OpeningHours], note: str) -> list[str]:
    by_day: dict[int, list[str]] = {}
    for interval in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        opens, closes = interval.opens.split(":"), interval.closes.split(":")
        by_day.setdefault(interval.weekday, []).append(
            f"{_speak_time(opens[0], opens[1])} bis {_speak_time(closes[0], closes[1])}"
        )
    lines = [f"{WEEKDAYS[day - 1]}: {' und '.join(spans)}." for day, spans in sorted(by_day.items())]
    if note.strip():
        lines.extend(speakable_line(b) for b in html_text_blocks(markdown_to_html(note).html))
    return lines


def _contact_line(contact: Contact) -> str:
    bits = [contact.label + ":"]
    if contact.phone:
        bits.append(f"Telefon {speak_phone(contact.phone)}.")
    if contact.email:
        bits.append(f"E-Mail {contact.email}.")
    if contact.url:
        bits.append(f"Internet {_URL.sub('', contact.url).rstrip('/')}.")
    return " ".join(bits)


def section_lines(name: str, sections: Sections) -> list[str]:
    value = getattr(sections, name)
    if name == "opening_hours":
        return _opening_hours_lines(sections.opening_hours, sections.opening_hours_note)
    if name == "contacts":
        return [_contact_line(c) for c in value]
    if name == "online_service":
        return [f"{value.title}: {_URL.sub('', value.url).rstrip('/')}"] if value else []
    if name == "forms":
        return [f"{f.title}: {_URL.sub('', f.url).rstrip('/')}" for f in value]
    return [speakable_line(b) for b in html_text_blocks(markdown_to_html(value).html)]


def speakable_text(title: str, summary: str, sections: Sections, width: int = LINE_WIDTH) -> str:
    """The article as lines to be read aloud: title, the summary, then each filled section."""
    lines = short_lines(speakable_line(title), width)
    if summary.strip():
        lines.extend(short_lines(speakable_line(summary), width))
    for name, _ in SECTION_TITLES:
        content = section_lines(name, sections)
        if not content:
            continue
        lines.append("")
        lines.append(SPOKEN_SECTION_TITLES[name] + ":")
        for line in content:
            lines.extend(short_lines(line, width))
    return "\n".join(lines).strip() + "\n"
