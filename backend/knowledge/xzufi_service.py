"""Service descriptions (`leistung`) of XZuFi 2.2 messages read into plain values (decision 024);
`xzufi` reads the message around them, `xzufi_office` the offices.

What senders put into a `leistung`, and how it is read here: the LeiKa key (`referenzLeiKa` as a
code type or text, with or without `listURI`; the structure's key where no reference is sent);
text modules by their LeiKa code, German first (`languageCode` "de…", "ger", `xml:lang`), with
codes we do not map shown under their own name and the release/author codes left out; fees,
deadlines and processing times as structured modules and as prose modules (10, 12, 13); forms
from module 14's links, `modulDokument` and `modulFormular`; search terms; the origin portal;
the validity period (`gueltigkeit`) and areas (`gueltigkeitGebietID`, ARS or AGS, padded or not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from backend.knowledge.xzufi_xml import (
    AREA,
    Bad,
    amount,
    child,
    children,
    code,
    code_name,
    descendants,
    euros,
    german_date,
    identifier,
    inhalt,
    inhalt_and_language,
    iso_duration,
    line,
    local,
    municipal_key,
    path_text,
    text,
    unit_words,
    version_of,
)

_LEIKA = re.compile(r"^99[0-9]{12}$")
_ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d")

_AMOUNTS = {
    "betrag": "fix",
    "betragFix": "fix",
    "betragVon": "from",
    "betragMin": "from",
    "betragBis": "to",
    "betragMax": "to",
}

# The LeiKa text-module code list (urn:de:xzufi:codeliste:leistungstextmodulleika): which
# article section each module feeds. Codes not named here (18 Urheber …) are read but not shown.
DESCRIPTION_MODULES = {
    "06": "",
    "09": "Voraussetzungen",
    "11": "Verfahrensablauf",
    "16": "Hinweise",
    "25": "Rechtsbehelf",
    "15": "Weiterführende Informationen",
    "14": "Formulare",
    "23": "Ansprechpunkt",
}
SECTION_MODULES = {"08": "documents", "07": "legal_basis", "22": "responsible_office"}
# Fees, processing time and deadline as prose (codes 10, 12, 13): some editorial systems send them
# as text modules instead of (or besides) the structured modules; the text goes first.
TIMING_MODULES = {"10": "fees", "12": "processing_time", "13": "deadlines"}
# Codes about the description rather than the service (key, type, release, author): not shown.
# Any other code we do not know is shown under its `name` (or "Weitere Informationen").
_META_MODULES = frozenset({"01", "02", "03", "04", "05", "17", "18", "19", "20", "21", "24"})
_KNOWN_MODULES = frozenset({*DESCRIPTION_MODULES, *SECTION_MODULES, *TIMING_MODULES, *_META_MODULES})
# The children of a `leistung` the standard has (read or not); any
# other is counted as unknown, like unknown objects, and skipped.
SERVICE_ELEMENTS = frozenset(
    {
        "id", "idSekundaer", "kennung", "struktur", "referenzLeiKa", "referenzSDG", "referenzFIM",
        "modulText", "modulFrist", "modulKosten", "modulBearbeitungsdauer", "modulBegriffImKontext",
        "modulFachlicheFreigabe", "modulUrsprungsportal", "modulDokument", "modulFormular",
        "modulAuskunftshinweis", "modulZustaendigkeit", "modulOnlinedienst", "typisierung",
        "kennzeichenSchriftformerfordernis", "kennzeichenEA", "kennzeichenEinheitlicheStelle",
        "kategorie", "informationsbereichSDG", "gueltigkeitGebietID", "gueltigkeit", "versionsinformation",
        "sprachversion", "leistungsbezeichnung", "leistungsbezeichnungII", "herausgeber",
        "klassifizierung", "bezug", "relevantFuer", "zielgruppe", "anmerkung",
    }
)  # fmt: skip


@dataclass(slots=True)
class ServiceDescription:
    xzufi_id: str
    version: str
    line: int
    leika_key: str
    title: str
    summary: str
    sections: dict[str, object]
    search_terms: list[str]
    origin_portal: str | None
    area_ids: list[str]  # gebietID of the leistung's validity: one town's area makes it local
    content_hash: str = ""
    valid_from: str | None = None  # `gueltigkeit` (xs:date as sent), shown in the description too
    valid_until: str | None = None


def _links(element: etree._Element) -> list[dict[str, str]]:
    links = []
    for link in children(element, "weiterfuehrenderLink"):
        url = path_text(link, "uri")
        title = inhalt(link, "titel").replace("\n", " ") or url  # per language, markup read as such
        if url.startswith(("http://", "https://")) and len(url) <= 1000:
            links.append({"title": title[:300], "url": url})
    return links


def _documents(element: etree._Element) -> list[dict[str, str]]:
    """`modulDokument` / `modulFormular`: forms and documents as links (`dokument`, `formular`
    with `titel` or `bezeichnung` and `uri`, `link` or `url`)."""
    links = []
    for module in [*children(element, "modulDokument"), *children(element, "modulFormular")]:
        for document in descendants(module, "dokument", "formular", "weiterfuehrenderLink"):
            url = path_text(document, "uri") or path_text(document, "link") or path_text(document, "url")
            title = inhalt(document, "titel") or inhalt(document, "bezeichnung") or url
            if url.startswith(("http://", "https://")) and len(url) <= 1000:
                links.append({"title": title[:300], "url": url})
    return links


def _money(element: etree._Element) -> tuple[Decimal, str] | None:
    """An amount as sent: `<betragFix waehrung="EUR">37.00</betragFix>`, or with `betrag`/`wert`
    and `waehrung` inside; None when the element is empty."""
    raw = (
        (element.text or "").strip()
        if len(element) == 0
        else path_text(element, "betrag") or path_text(element, "wert")
    )
    if not raw:
        return None
    value = amount(raw)
    if value is None:
        raise Bad(f"modulKosten: {raw!r} is not an amount")
    currency = element.get("waehrung") or element.get("currencyID") or element.get("currency") or ""
    currency = currency or code(child(element, "waehrung"))
    parent = element.getparent()
    if not currency and parent is not None:
        currency = code(child(parent, "waehrung"))
    return value, currency or "EUR"


def _fee(cost: etree._Element) -> str:
    label = inhalt(cost, "beschreibung") or code_name(child(cost, "typ"))
    found: dict[str, tuple[Decimal, str]] = {}
    for element in descendants(cost, *_AMOUNTS):
        parent = element.getparent()
        if parent is not None and local(parent) in _AMOUNTS:
            continue  # the `betrag` inside a `betragFix`
        money = _money(element)
        if money is not None:
            found.setdefault(_AMOUNTS[local(element)], money)
    if "fix" in found:
        shown = euros(*found["fix"])
    elif "from" in found and "to" in found:
        shown = f"{euros(*found['from'])} bis {euros(*found['to'])}"
    elif "from" in found:
        shown = f"ab {euros(*found['from'])}"
    elif "to" in found:
        shown = f"bis {euros(*found['to'])}"
    else:
        return f"- {label}" if label else ""
    return f"- {label}: {shown}" if label else f"- {shown}"


def _fees(element: etree._Element) -> str:
    lines = [shown for cost in children(element, "kosten") if (shown := _fee(cost))]
    general = inhalt(element, "beschreibung")
    return "\n".join([general, *lines] if general else lines)


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f").replace(".", ",")


def _span(element: etree._Element) -> str:
    """A duration (`dauer` with `einheit`, up to `dauerBis` with its own `einheitBis`), a fixed
    date range (`von`/`bis` or `beginn`/`ende` dates, as `fristStichtag` sends them) or one date
    (`stichtag`), wherever it sits below `element`."""
    for holder in element.iter():
        if not isinstance(holder.tag, str):
            continue
        if child(holder, "dauer") is not None:
            return _duration(holder)
        starts = path_text(holder, "von") or path_text(holder, "beginn")
        ends = path_text(holder, "bis") or path_text(holder, "ende")
        if _ISO_DATE.match(starts or ends):
            if starts and ends:
                return f"vom {german_date(starts)} bis {german_date(ends)}"
            return f"ab {german_date(starts)}" if starts else f"bis {german_date(ends)}"
        day = path_text(holder, "stichtag") or path_text(holder, "datum")
        if _ISO_DATE.match(day):
            return f"am {german_date(day)}"
    return ""


def _duration(holder: etree._Element) -> str:
    count, upper = path_text(holder, "dauer"), path_text(holder, "dauerBis")
    number, top = amount(count), amount(upper) if upper else None
    if number is None:
        return iso_duration(count)
    unit, upper_unit = child(holder, "einheit"), child(holder, "einheitBis")
    if top is not None and upper_unit is not None and code(upper_unit) != code(unit):
        lower = unit_words(code(unit), code_name(unit), number)
        higher = unit_words(code(upper_unit), code_name(upper_unit), top)
        return f"{_number(number)} {lower} bis {_number(top)} {higher}"  # "2 Wochen bis 3 Monate"
    words = unit_words(code(unit), code_name(unit), top if top is not None else number)
    shown = f"{_number(number)} bis {_number(top)}" if top is not None else _number(number)
    return f"{shown} {words}".strip()


def _timing(module: etree._Element) -> str:
    """`modulFrist` / `modulBearbeitungsdauer`: the module's text, then each structured entry
    (`frist`, `bearbeitungsdauer` …: a type's name, a duration or dates, the entry's own text)."""
    general = inhalt(module, "beschreibung")
    skipped = {"beschreibung", "positionDarstellung", "weiterfuehrenderLink", "id"}
    direct = child(module, "dauer") is not None
    entries = [module] if direct else [e for e in module if isinstance(e.tag, str) and local(e) not in skipped]
    lines = []
    for entry in entries:
        label = code_name(child(entry, "typ"))
        span = _span(entry)
        note = "" if direct else inhalt(entry, "beschreibung")
        shown = ", ".join(filter(None, [span, note]))
        if shown:
            entry_line = f"- {label}: {shown}" if label else f"- {shown}"
            if entry_line not in lines:
                lines.append(entry_line)
    return "\n".join([general, *lines] if general else lines)


def _leika_key(element: etree._Element) -> str:
    """`referenzLeiKa` as a code type (`code`, with or without `listURI`) or as text; several
    are allowed, the first LeiKa key counts. Spaces inside a key ("99 037 004 000 000") go."""
    keys = ["".join(code(k).split()) for k in children(element, "referenzLeiKa")]
    if not keys:  # a description without the reference: its structure's key, where sent
        structure = child(element, "struktur")
        keys = ["".join(path_text(structure, "leistungsschluessel").split())] if structure is not None else []
    leika = next((k for k in keys if _LEIKA.match(k)), keys[0] if keys else "")
    if not _LEIKA.match(leika):
        raise Bad(f"referenzLeiKa {leika[:40]!r} is not a LeiKa key (14 digits, starting 99)")
    return leika


def _text_modules(
    element: etree._Element,
) -> tuple[dict[str, tuple[str, list[dict[str, str]]]], dict[str, str]]:
    """The text modules by LeiKa code, German text and links; a code we do not know is kept
    under the key "?" with its name as a heading, so an agent still reads it. Besides, the
    names (02, 03) where they are sent in German."""
    modules: dict[str, tuple[str, list[dict[str, str]]]] = {}
    names: dict[str, str] = {}
    for modul in children(element, "modulText"):
        kind = child(modul, "leikaTextmodul")
        module_code = code(kind)
        if not module_code:
            continue
        value, german = inhalt_and_language(modul)
        if german and module_code in ("02", "03"):  # in parts, as any module may be sent
            names[module_code] = " ".join(filter(None, [names.get(module_code), value]))
        found = (value, _links(modul))
        if module_code not in _KNOWN_MODULES:
            heading = code_name(kind) or "Weitere Informationen"
            found = (f"### {heading}\n{found[0]}" if found[0] else "", found[1])
            module_code = "?"
        previous = modules.get(module_code)
        if previous is not None:  # one module sent in parts (one per position)
            separator = "\n\n" if module_code == "?" else "\n"
            found = (separator.join(filter(None, [previous[0], found[0]])), previous[1] + found[1])
        modules[module_code] = found
    return modules, names


def _german_name(element: etree._Element, names: dict[str, str]) -> str:
    """The service's name in German: module 03 (the citizens' name), else 02; a name sent only in
    another language is the fallback, after a German `leistungsbezeichnung` element."""
    return (
        names.get("03")
        or names.get("02")
        or inhalt(element, "leistungsbezeichnungII", german_only=True)
        or inhalt(element, "leistungsbezeichnung", german_only=True)
    ).replace("\n", " ")


def _validity(element: etree._Element) -> tuple[str | None, str | None]:
    """`gueltigkeit` (`beginn`/`ende`, or `von`/`bis`): when the description applies."""
    period = child(element, "gueltigkeit")
    if period is None:
        return None, None
    starts = path_text(period, "beginn") or path_text(period, "von")
    ends = path_text(period, "ende") or path_text(period, "bis")
    return (starts[:10] if _ISO_DATE.match(starts) else None), (ends[:10] if _ISO_DATE.match(ends) else None)


def _validity_text(starts: str | None, ends: str | None) -> str:
    if starts and ends:
        return f"Gültig vom {german_date(starts)} bis {german_date(ends)}."
    return f"Gültig bis {german_date(ends)}." if ends else ""  # a start alone says nothing to a caller


def service(element: etree._Element) -> ServiceDescription:
    xzufi_id = identifier(child(element, "id") if child(element, "id") is not None else child(element, "kennung"))
    leika = _leika_key(element)
    modules, names = _text_modules(element)
    title = _german_name(element, names) or (modules.get("03") or modules.get("02") or ("", []))[0].replace("\n", " ")
    title = title or inhalt(element, "leistungsbezeichnungII") or inhalt(element, "leistungsbezeichnung")
    title = " ".join(title.split())
    if not title:
        raise Bad("no service name (text module 02 or 03, or leistungsbezeichnung)")
    if len(title) > 200:  # catalogue names run to 250 characters; an article title holds 200
        title = title[:197].rsplit(" ", 1)[0] + " …"
    summary = (modules.get("05") or modules.get("24") or ("", []))[0]
    if len(summary) > 500:
        summary = summary[:497].rsplit(" ", 1)[0] + " …"
    parts = []
    for module_code, heading in DESCRIPTION_MODULES.items():
        module_text = modules.get(module_code, ("", []))[0]
        if module_text:
            parts.append(f"### {heading}\n{module_text}" if heading else module_text)
    if modules.get("?", ("", []))[0]:
        parts.append(modules["?"][0])
    valid_from, valid_until = _validity(element)
    if validity := _validity_text(valid_from, valid_until):
        parts.append(f"### Gültigkeit\n{validity}")
    sections: dict[str, object] = {"description": "\n\n".join(parts)}
    for module_code, section in SECTION_MODULES.items():
        sections[section] = modules.get(module_code, ("", []))[0]
    for name, section in (("modulFrist", "deadlines"), ("modulBearbeitungsdauer", "processing_time")):
        timing = child(element, name)
        sections[section] = _timing(timing) if timing is not None else ""
    costs = child(element, "modulKosten")
    sections["fees"] = _fees(costs) if costs is not None else ""
    for module_code, section in TIMING_MODULES.items():
        prose_text = modules.get(module_code, ("", []))[0]
        if prose_text:
            sections[section] = "\n".join(filter(None, [prose_text, str(sections[section])]))
    forms = modules.get("14", ("", []))[1] + _documents(element)
    sections["forms"] = forms[:50]
    for section, value in sections.items():
        if isinstance(value, str) and len(value) > 20_000:
            raise Bad(f"the section {section} is longer than 20,000 characters")
    terms: list[str] = []
    for modul in children(element, "modulBegriffImKontext"):
        for begriff in children(modul, "begriffImKontext"):
            term = " ".join(inhalt(begriff, "begriff", german_only=True).split())  # German search
            if 1 <= len(term) <= 100 and term not in terms:
                terms.append(term)
    portals = [path_text(p, "uri") for p in children(element, "modulUrsprungsportal")]
    portal = next((p for p in portals if p.startswith(("http://", "https://")) and len(p) <= 1000), None)
    areas = [municipal_key(text(g)) for g in children(element, "gueltigkeitGebietID") if text(g)]
    for area in areas:
        if not AREA.match(area):
            raise Bad(f"gueltigkeitGebietID {area!r} is not a municipal key (ARS or AGS)")
    return ServiceDescription(
        xzufi_id=xzufi_id,
        version=version_of(element),
        line=line(element),
        leika_key=leika,
        title=title,
        summary=summary,
        sections=sections,
        search_terms=terms[:50],
        origin_portal=portal,
        area_ids=areas,
        valid_from=valid_from,
        valid_until=valid_until,
    )
