"""Telephone numbers in, E.164 out: `02921 30-0`, `+49 (0)2921 300`, `0049 2921 30-0` and
`+492921300` are one number. Parsed with `phonenumbers` in the German numbering plan.

Caller numbers are personal data: nothing here logs them, and errors never echo them.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from backend.errors import ValidationFailed
from backend.i18n import _l

DEFAULT_REGION = "DE"
GERMANY = "+49"
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_ALLOWED = re.compile(r"^[0-9+()\-/.\s]+$")
# What telephony systems send when the caller suppressed the number (CLIR) or it is unknown.
HIDDEN_CALLERS = frozenset({"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable", "clir"})


class NotANumber(ValidationFailed):
    def __init__(self, what: str, field: str) -> None:
        super().__init__(_l("{what} is not a telephone number", what=what), field=field)


def _parse(raw: str) -> phonenumbers.PhoneNumber | None:
    text = raw.strip()
    if not text or len(text) > 40 or not _ALLOWED.match(text) or text.count("+") > 1 or "+" in text[1:]:
        return None
    try:
        return phonenumbers.parse(text, DEFAULT_REGION)
    except NumberParseException:
        return None


def _e164(parsed: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def normalise_number(raw: str, field: str = "number") -> str:
    """A full number (central number, department line, 115) in E.164; raises NotANumber."""
    parsed = _parse(raw)
    if parsed is None or not (phonenumbers.is_possible_number(parsed) or phonenumbers.is_valid_short_number(parsed)):
        raise NotANumber(f"{field}", field)
    number = _e164(parsed)
    if not _E164.match(number):
        raise NotANumber(f"{field}", field)
    return number


def normalise_block(raw: str, field: str = "number") -> str:
    """The prefix of a number block (e.g. `02921 30` for every 02921 30-…) in E.164 form."""
    parsed = _parse(raw)
    if parsed is None:
        raise NotANumber(field, field)
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason not in (
        ValidationResult.IS_POSSIBLE,
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    ):
        raise NotANumber(field, field)
    number = _e164(parsed)
    if not _E164.match(number) or len(number) < 5:
        raise NotANumber(field, field)
    return number


def normalise_dialled(raw: str) -> str:
    """The number a caller dialled, as the telephony system reports it."""
    if _E164.match(raw):
        return raw
    return normalise_number(raw, "dialled")


def normalise_area_code(raw: str) -> str:
    """An area code (`02921`, `+49 2921`) as an E.164 prefix (`+492921`)."""
    return normalise_block(raw, "areaCode")


def normalise_caller(raw: str | None) -> str | None:
    """The caller's number in E.164, or None when hidden or not a number (never an error:
    a garbled caller id must not stop a call from being routed or recorded)."""
    if raw is None or raw.strip().lower() in HIDDEN_CALLERS:
        return None
    if _E164.match(raw):
        return raw
    parsed = _parse(raw)
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        return None
    number = _e164(parsed)
    return number if _E164.match(number) else None


def is_domestic(number: str) -> bool:
    return number.startswith(GERMANY)


def spoken(number: str | None) -> str | None:
    """A number written to be read aloud (screen readers, braille): national format with its
    digits in small groups, e.g. `0 2 9 2 1 – 3 0 0`. None stays None."""
    if number is None:
        return None
    try:
        parsed = phonenumbers.parse(number, DEFAULT_REGION)
    except NumberParseException:
        return None
    fmt = PhoneNumberFormat.NATIONAL if is_domestic(number) else PhoneNumberFormat.INTERNATIONAL
    text = phonenumbers.format_number(parsed, fmt)
    groups = [" ".join(part) for part in re.split(r"[\s\-/()]+", text) if part]
    return " – ".join(groups)
