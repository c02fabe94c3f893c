"""Reading XZuFi 2.2 elements (decision 024): the namespace, children by local name, multilingual
text, markup inside `inhalt`, code values, durations and amounts. No message logic here;
`xzufi` and `xzufi_office` read the objects with these.

Real messages differ in form, not in meaning, from one editorial system to the next: any
namespace prefix or the default namespace, code lists' `code` with or without the namespace,
`languageCode` as "de" or "de-DE", HTML escaped, in CDATA or as elements. These helpers accept
all of them, so the object readers only say which element means what.
"""

from __future__ import annotations

import html as htmllib
import re
import unicodedata
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree, html

NAMESPACE = "http://xoev.de/schemata/xzufi/2_2_0"
NS = "{" + NAMESPACE + "}"
# ARS (12 digits) and its leading parts (Land 2, Regierungsbezirk 3, Kreis 5, Gemeindeverband 9)
# as gebietID; the AGS (8 digits) as older systems send it. Germany as a whole is "0" or zeros.
AREA = re.compile(r"^(0|[0-9]{2}|[0-9]{3}|[0-9]{5}|[0-9]{8}|[0-9]{9}|[0-9]{12})$")
_PADDED_AGS = re.compile(r"^[0-9]{5}[0-4][0-9]{2}0000$")
_ISO_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def municipal_key(value: str) -> str:
    """An area key as sent, except an AGS padded with zeros to the ARS's 12 digits
    ("059740200000", Geseke), which becomes the AGS ("05974020"). An ARS has the municipality
    in its last 3 digits (a town in no Verband repeats it: "059740020020"), so a padded AGS is
    told by its last four zeros and a Verband part that is not "0000". Kreisfreie Städte read the
    same both ways ("051110000000"). Verband numbers of 5000 and above (Ämter, Samtgemeinden)
    stay ARS."""
    if _PADDED_AGS.match(value) and value[5:9] != "0000":
        return value[:8]
    return value


_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class Bad(Exception):
    """An object (or one part of it) that cannot be read; reported with its line and id."""


def local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Children named `name`, in the XZuFi namespace or none (code lists use unqualified `code`)."""
    yield from element.iterchildren(NS + name, name)  # lxml filters by tag in C: the parse's hot path


def child(element: etree._Element, name: str) -> etree._Element | None:
    return next(children(element, name), None)


def descendants(element: etree._Element, *names: str) -> Iterator[etree._Element]:
    """Elements below `element` with one of the local names, in document order (any depth)."""
    for found in element.iter():
        if found is not element and isinstance(found.tag, str) and local(found) in names:
            yield found


def all_text(element: etree._Element) -> str:
    return "".join(str(part) for part in element.itertext())


def line(element: etree._Element) -> int:
    number = element.sourceline
    return number if isinstance(number, int) else 0


def text(element: etree._Element | None) -> str:
    """An element's text, whitespace folded; a tag written into it ("Bürgerbüro &lt;b&gt;") goes,
    so that names, titles and addresses carry no markup into what an agent reads."""
    if element is None:
        return ""
    value = all_text(element)
    if "<" in value:
        value = _TAG.sub(" ", value)
    return " ".join((value if value.isascii() else _clean(value)).split())


def path_text(element: etree._Element, *names: str) -> str:
    current: etree._Element | None = element
    for name in names:
        if current is None:
            return ""
        current = child(current, name)
    return text(current)


def code(element: etree._Element | None) -> str:
    """The value of a code element: its `code` child (XÖV code types), else its own text."""
    if element is None:
        return ""
    found = path_text(element, "code")
    if found or len(element) == 0:
        return found or text(element)
    # `code` in a code list's own namespace (some systems qualify it so)
    return next((text(c) for c in element if isinstance(c.tag, str) and local(c) == "code"), "")


def code_name(element: etree._Element | None) -> str:
    """The readable name a code element may carry with its code (`name`)."""
    return path_text(element, "name") if element is not None else ""


# Elements whose content is no text for a caller: dropped with what they hold.
_HIDDEN = ("script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math")
_HIDDEN_HINT = re.compile(r"<(?:" + "|".join(_HIDDEN) + r")\b|<!--|<\?", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z!?/][^<>]{0,2000}>")
_ENTITY = re.compile(r"&(#\d{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]{2,10});")


def prose(raw: str) -> str:
    """`inhalt` carries text or XHTML: paragraphs, headings and list items become lines. What an
    agent reads (and speaks) holds no markup: scripts and styles go with their content, and text
    escaped twice by a sender ("&amp;lt;b&amp;gt;") is unescaped and stripped once more."""
    if "<" in raw:
        raw = _html_text(raw)
    if "&" in raw and _ENTITY.search(raw):
        raw = htmllib.unescape(raw)
    if "<" in raw and _TAG.search(raw):  # markup in the text itself: read as HTML once more
        raw = _TAG.sub(" ", _html_text(raw))
    if not raw.isascii():
        raw = _clean(raw)
    return "\n".join(" ".join(part.split()) for part in raw.splitlines() if part.strip())


# Soft hyphens and zero-width characters (editorial systems' HTML is full of `&shy;`) would split
# the words the search looks for ("Sperr\u00admüll"); decomposed umlauts (from some systems'
# export) would not match what an agent types.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def _clean(value: str) -> str:
    if _INVISIBLE.search(value):
        value = _INVISIBLE.sub("", value)
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def _html_text(raw: str) -> str:
    try:
        fragment = html.fragment_fromstring(raw, create_parent="div")
    except (etree.ParserError, ValueError):
        return _TAG.sub(" ", raw)
    if _HIDDEN_HINT.search(raw):  # one more walk of the tree only where there is something to drop
        for hidden in list(fragment.iter(*_HIDDEN, etree.Comment, etree.ProcessingInstruction)):
            if hidden.getparent() is not None:
                hidden.drop_tree()  # keeps the tail (the text after it)
    for item in fragment.iter("li"):
        item.text = "- " + (item.text or "")
    blocks = ("p", "li", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "tr", "table", "dd", "dt")
    for block in fragment.iter(*blocks):
        block.tail = "\n" + (block.tail or "")
    return str(fragment.text_content())


def _markup(element: etree._Element) -> str:
    """What an `inhalt` holds as text: escaped or CDATA markup is text already; markup sent as
    elements (XHTML inside the message, some systems do) is written back out without prefixes."""
    if len(element) == 0:
        return all_text(element)
    parts = [element.text or ""]
    for part in element:
        if isinstance(part.tag, str):
            parts.append(etree.tostring(part, encoding="unicode", with_tail=True))
        else:
            parts.append(part.tail or "")
    written = "".join(parts)
    written = re.sub(r"\sxmlns(:\w+)?=\"[^\"]*\"", "", written)
    return re.sub(r"<(/?)[\w.-]+:", r"<\1", written)


def inhalt(element: etree._Element, name: str = "inhalt", german_only: bool = False) -> str:
    """The German text of a multilingual element: one `name` per language, German wanted
    (`languageCode` "de", "de-DE", "ger" or `xml:lang`; none means German), else the first text
    there is."""
    value, german = inhalt_and_language(element, name)
    return value if german or not german_only else ""


def inhalt_and_language(element: etree._Element, name: str = "inhalt") -> tuple[str, bool]:
    """`inhalt`'s text and whether it is German (False: the first text in another language)."""
    fallback = ""
    for item in children(element, name):
        language = (item.get("languageCode") or item.get(_XML_LANG) or "de").lower()
        value = prose(_markup(item))
        if (language.startswith("de") or language == "ger") and value:
            return value, True
        fallback = fallback or value
    return fallback, False


def identifier(element: etree._Element | None) -> str:
    value = text(element)
    if not value or len(value) > 200:
        raise Bad("missing or overlong id")
    return value


def amount(value: str) -> Decimal | None:
    """A fee's amount: "37.00", "37,00", "1.234,50" or "1 234,50"."""
    cleaned = re.sub(r"(?i)(€|eur(o)?)$", "", value.replace("\u00a0", "").replace(" ", ""))
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        found = Decimal(cleaned)
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def euros(value: Decimal, currency: str = "EUR") -> str:
    shown = f"{value:.2f}".replace(".", ",")
    return f"{shown} {'€' if currency.upper() in ('EUR', '') else currency.upper()}"


# Time units as XZuFi systems send them: names, ISO 8601 letters, UN/ECE rec. 20 codes.
_UNITS = {
    "minute": ("Minute", "Minuten"),
    "min": ("Minute", "Minuten"),
    "stunde": ("Stunde", "Stunden"),
    "h": ("Stunde", "Stunden"),
    "hur": ("Stunde", "Stunden"),
    "tag": ("Tag", "Tage"),
    "tage": ("Tag", "Tage"),
    "d": ("Tag", "Tage"),
    "day": ("Tag", "Tage"),
    "werktag": ("Werktag", "Werktage"),
    "werktage": ("Werktag", "Werktage"),
    "arbeitstag": ("Arbeitstag", "Arbeitstage"),
    "woche": ("Woche", "Wochen"),
    "wochen": ("Woche", "Wochen"),
    "w": ("Woche", "Wochen"),
    "wk": ("Woche", "Wochen"),
    "wee": ("Woche", "Wochen"),
    "monat": ("Monat", "Monate"),
    "monate": ("Monat", "Monate"),
    "m": ("Monat", "Monate"),
    "mo": ("Monat", "Monate"),
    "mon": ("Monat", "Monate"),
    "jahr": ("Jahr", "Jahre"),
    "jahre": ("Jahr", "Jahre"),
    "y": ("Jahr", "Jahre"),
    "a": ("Jahr", "Jahre"),
    "ann": ("Jahr", "Jahre"),
}


def unit_words(unit: str, name: str, count: Decimal) -> str:
    words = _UNITS.get(unit.strip().lower()) or _UNITS.get(name.strip().lower())
    if words is None:
        return name or unit
    return words[0] if count == 1 else words[1]


def iso_duration(value: str) -> str:
    """ "P14D" → "14 Tage"; anything else is returned as it is."""
    found = _ISO_DURATION.match(value.strip().upper())
    if found is None or not any(found.groups()):
        return value
    units = ("y", "m", "w", "d", "h", "min")
    parts = []
    for unit, count in zip(units, found.groups(), strict=True):
        if count:
            parts.append(f"{int(count)} {unit_words(unit, '', Decimal(count))}")
    return " ".join(parts)


def german_date(value: str) -> str:
    """xs:date (with or without a zone) as "31.05.2027"; other text as it is."""
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return value
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


def version_of(element: etree._Element) -> str:
    """An object's version: its number, else when it was changed (PVOG often sends only that)."""
    info = child(element, "versionsinformation")
    if info is None:
        return ""
    return path_text(info, "version") or path_text(info, "geaendertDatumZeit") or path_text(info, "erstelltDatumZeit")
