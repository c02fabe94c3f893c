"""The language of what clients read: error titles and messages in German or English.

Code writes messages in English and marks them: `_l("no cost base for {year}", year=2026)` for
a message with parameters (a `Message`, translated later), `N_("…")` for a plain text marked
where nothing from `backend` may be imported (`auth/`). `make messages` extracts the marked
texts with Babel into `backend/locale/messages.pot` and updates the gettext catalogues
`backend/locale/{de,en}/LC_MESSAGES/messages.po`; translators edit those. The msgid is the
English text, so the English catalogue may stay empty.

The `.po` files are the only copy: they are read and compiled in memory at import (Babel's
pofile/mofile, ~10 ms), so no compiled `.mo` binary is committed or can go stale (decision 017).

Translation happens at the boundary (problem+json, GraphQL errors and payloads), per request,
from `Accept-Language` with its q-values (werkzeug's parser); machine-readable fields (codes,
field names, parameters) never change with the language.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import structlog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LOCALES = ("de", "en")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
# Longer than any real Accept-Language header; werkzeug's parser is linear, this keeps it cheap.
MAX_HEADER_LENGTH = 1000

log = structlog.get_logger("i18n")


@dataclass(frozen=True, slots=True, eq=False)
class Message:
    """A marked message and its parameters, translated when the client's language is known.
    Parameters are values (numbers, dates, names), inserted as they are in every language."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        params = {name: render(value, locale) for name, value in self.params.items()}  # nested reasons
        return _format(translation(locale).gettext(self.msgid), self.msgid, params)

    def __str__(self) -> str:  # logs and exceptions: the English text
        return _format(self.msgid, self.msgid, self.params)


def _l(msgid: str, /, **params: Any) -> Message:
    """Mark a message for translation (extracted by `make messages`)."""
    return Message(msgid, params)


def N_(msgid: str) -> str:
    """Mark a plain text for translation; `render_text` translates it."""
    return msgid


def _format(text: str, msgid: str, params: Mapping[str, Any]) -> str:
    try:
        return text.format_map(params) if params else text
    except (KeyError, IndexError, ValueError):
        # A text naming a parameter the code does not pass (the catalogue test guards the
        # translations): the English text, or the bare msgid, rather than a failed error response.
        log.warning("message_unusable", msgid=msgid)
        try:
            return msgid.format_map(params)
        except (KeyError, IndexError, ValueError):
            return msgid


def placeholders(text: str) -> set[str]:
    """The parameter names a brace-format text uses (for the catalogue test)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _load(locale: str) -> NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: English until a translator confirms
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


_TRANSLATIONS: dict[str, NullTranslations] = {locale: _load(locale) for locale in LOCALES}


def translation(locale: str) -> NullTranslations:
    return _TRANSLATIONS.get(locale) or _TRANSLATIONS["en"]


def render_text(text: str, locale: str) -> str:
    """A plain marked text (N_) in the client's language."""
    return translation(locale).gettext(text)


def render(value: Any, locale: str) -> Any:
    """`value` with every Message in it (also inside lists and dicts) in the client's language."""
    if isinstance(value, Message):
        return value.render(locale)
    if isinstance(value, dict):
        return {key: render(item, locale) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, locale) for item in value]
    return value


def negotiate(accept_language: str | None, default: str) -> str:
    """The locale for an `Accept-Language` header: the supported language with the highest
    q-value, ties in the client's order (`de-DE` counts as `de`; `*`, `q=0`, unsupported or
    unparsable entries fall to `default`). werkzeug's own `best_match` prefers an exact tag at
    any q-value over a regional one (`de-AT, en;q=0.1` would be English), so the match is ours."""
    if not accept_language or len(accept_language) > MAX_HEADER_LENGTH:
        return default
    accepted = parse_accept_header(accept_language, LanguageAccept)
    # By q-value alone, highest first, stable (werkzeug also puts `*` last whatever its q-value).
    for tag, quality in sorted(accepted, key=lambda item: item[1], reverse=True):
        if quality <= 0:
            break
        language = tag.replace("_", "-").split("-", 1)[0].lower()
        if language in LOCALES:
            return language
        if tag == "*":
            return default
    return default


def request_locale(context: object) -> str:
    """The locale of a GraphQL request's context: `GraphQLContext.locale`; for another context
    (a schema served without ours) its request's header, German unless it asks for English."""
    locale = getattr(context, "locale", None)
    if isinstance(locale, str):
        return locale
    request = context.get("request") if isinstance(context, dict) else getattr(context, "request", None)
    headers = getattr(request, "headers", None)
    return negotiate(headers.get("accept-language") if headers is not None else None, FALLBACK_LOCALE)


FALLBACK_LOCALE = "de"

# msgspec's validation texts (REST bodies, query parameters, GraphQL inputs) as marked messages;
# the named groups are their parameters. Field names, types and operators stay as they are.
_VALIDATION_TEXTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), msgid)
    for pattern, msgid in (
        (r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`", N_("Expected `{expected}`, got `{got}`")),
        (r"Object missing required field `(?P<field>[^`]+)`", N_("Object missing required field `{field}`")),
        (r"Object contains unknown field `(?P<field>[^`]+)`", N_("Object contains unknown field `{field}`")),
        (r"Expected `(?P<type>[^`]+)` of length >= (?P<limit>\d+)", N_("Expected `{type}` of length >= {limit}")),
        (r"Expected `(?P<type>[^`]+)` of length <= (?P<limit>\d+)", N_("Expected `{type}` of length <= {limit}")),
        (r"Expected `(?P<type>[^`]+)` (?P<op>>=|<=|>|<) (?P<limit>\S+)", N_("Expected `{type}` {op} {limit}")),
        (r"Expected `(?P<type>[^`]+)` with a timezone component", N_("Expected `{type}` with a timezone component")),
        (r"Expected `str` matching regex (?P<pattern>.+)", N_("Expected `str` matching regex {pattern}")),
        (r"Invalid enum value (?P<value>.+)", N_("Invalid enum value {value}")),
        (r"Invalid RFC3339 encoded (?P<kind>datetime|date|time)", N_("Invalid RFC3339 encoded {kind}")),
        (r"Invalid UUID", N_("Invalid UUID")),
        (r"Invalid decimal string", N_("Invalid decimal string")),
        (
            r"`(?P<field>[^`]+)` must not contain control characters",
            N_("`{field}` must not contain control characters"),
        ),
        (
            r"`(?P<field>[^`]+)` must be a single line \(no line breaks or tabs\)",
            N_("`{field}` must be a single line (no line breaks or tabs)"),
        ),
    )
]


def validation_message(text: str) -> Message:
    """msgspec's English text as a marked message (the msgid is its own wording, so English
    answers are msgspec's); a text we do not know keeps its words after a translated lead
    (`invalid value: …`), so nothing is lost in either language."""
    for pattern, msgid in _VALIDATION_TEXTS:
        if match := pattern.fullmatch(text.strip()):
            return Message(msgid, match.groupdict())
    return _l("invalid value: {reason}", reason=text)


# Extraction, as `make messages` runs it: what the catalogue test and `make messages` compare.
KEYWORDS = {"_l": None, "N_": None}
SOURCE_DIRS = ("backend", "auth")


def marked_messages(root: Path = LOCALE_DIR.parent.parent) -> set[str]:
    """Every message id marked in the code (`_l`, `N_`), read from the source now."""
    from babel.messages.extract import extract_from_dir

    found: set[str] = set()
    for folder in SOURCE_DIRS:
        for _, _, msgid, _, _ in extract_from_dir(root / folder, keywords=KEYWORDS, comment_tags=()):
            found.add(msgid if isinstance(msgid, str) else msgid[0])
    return found


def untranslated(locale: str) -> list[str]:
    """Marked messages the locale's catalogue does not translate (missing, empty or fuzzy)."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale)
    done = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    return sorted(marked_messages() - done)


if __name__ == "__main__":  # `make messages`: say what still needs a German translation
    missing = untranslated("de")
    for msgid in missing:
        print(f"de: untranslated: {msgid}")
    print(f"de: {len(missing)} message(s) without a German translation in {LOCALE_DIR}/de/LC_MESSAGES/{DOMAIN}.po")
