"""XZuFi 2.2 messages read into plain values (decision 024): service descriptions (`leistung`),
offices (`organisationseinheit`) with their responsibilities (`zustaendigkeit`), and deletions
(`loesche`). No database here; `xzufi_import` decides what the values become.

The input is hostile until proven otherwise (decision 019): lxml's parser is told to resolve no
entities, load no DTD and fetch nothing, a DOCTYPE is refused outright, and a message is size
limited before it is parsed. A message of another XZuFi version is refused as a whole; inside a
2.2 message an unknown element is skipped, and a bad object is reported with its line and id
while the rest of the message is still read.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import msgspec
from lxml import etree, html

from backend.i18n import Message, _l

NAMESPACE = "http://xoev.de/schemata/xzufi/2_2_0"
NS = "{" + NAMESPACE + "}"
SUPPORTED_VERSIONS = ("2.2", "2.2.0")
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_ZIP_BYTES = 64 * 1024 * 1024  # uncompressed, all members together
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed per member: beyond this a member is a bomb
_XZUFI_NAMESPACE = re.compile(r"^http://xoev\.de/schemata/xzufi/(\d+)_(\d+)_(\d+)$")
_ARS = re.compile(r"^[0-9]{5}([0-9]{3})?$|^[0-9]{12}$")
_LEIKA = re.compile(r"^99[0-9]{12}$")
_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])(:[0-5][0-9])?$")

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


class XzufiRefused(Exception):
    """The whole message (or upload) cannot be read: wrong version, not XML, too big, a DTD."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True, slots=True)
class Problem:
    """A bad object inside an otherwise readable message: where it is and what it is."""

    line: int
    kind: str
    xzufi_id: str | None
    message: str


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


@dataclass(frozen=True, slots=True)
class Responsibility:
    leistung_id: str
    area_ids: tuple[str, ...]


@dataclass(slots=True)
class Office:
    xzufi_id: str
    version: str
    line: int
    name: str
    address: str
    municipality: str | None  # Gemeindeschlüssel of the address
    phone: str | None
    email: str | None
    url: str | None
    hours: list[dict[str, object]]
    hours_note: str
    responsibilities: list[Responsibility]
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: str  # "leistung" | "organisationseinheit"
    xzufi_id: str
    line: int


@dataclass(slots=True)
class XzufiMessage:
    name: str
    services: list[ServiceDescription] = field(default_factory=list)
    offices: list[Office] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unknown_elements: int = 0


class _Bad(Exception):
    pass


# ---------------------------------------------------------------------------------- the parser


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Children named `name`, in the XZuFi namespace or none (code lists use unqualified `code`)."""
    for child in element:
        if isinstance(child.tag, str) and _local(child) == name and child.tag in (NS + name, name):
            yield child


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next(_children(element, name), None)


def _all_text(element: etree._Element) -> str:
    return "".join(str(part) for part in element.itertext())


def _line(element: etree._Element) -> int:
    line = element.sourceline
    return line if isinstance(line, int) else 0


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return " ".join(_all_text(element).split())


def _path_text(element: etree._Element, *names: str) -> str:
    current: etree._Element | None = element
    for name in names:
        if current is None:
            return ""
        current = _child(current, name)
    return _text(current)


def _prose(raw: str) -> str:
    """`inhalt` carries text or escaped XHTML: paragraphs and list items become lines."""
    if "<" in raw:
        try:
            fragment = html.fragment_fromstring(raw, create_parent="div")
        except (etree.ParserError, ValueError):
            raw = re.sub(r"<[^>]*>", " ", raw)
        else:
            for item in fragment.iter("li"):
                item.text = "- " + (item.text or "")
            for block in fragment.iter("p", "li", "br", "div", "h1", "h2", "h3", "h4", "ul", "ol"):
                block.tail = "\n" + (block.tail or "")
            raw = fragment.text_content()
    return "\n".join(" ".join(line.split()) for line in raw.splitlines() if line.strip())


def _inhalt(element: etree._Element, name: str = "inhalt") -> str:
    """The German text of a multilingual element: one `inhalt` per language, German wanted."""
    fallback = ""
    for item in _children(element, name):
        language = (item.get("languageCode") or "de").lower()
        text = _prose(_all_text(item))
        if language.startswith("de"):
            return text
        fallback = fallback or text
    return fallback


def _identifier(element: etree._Element | None) -> str:
    value = _text(element)
    if not value or len(value) > 200:
        raise _Bad("missing or overlong id")
    return value


def _version(element: etree._Element) -> str:
    info = _child(element, "versionsinformation")
    if info is None:
        return ""
    return _path_text(info, "version") or _path_text(info, "geaendertDatumZeit")


def _links(element: etree._Element) -> list[dict[str, str]]:
    links = []
    for link in _children(element, "weiterfuehrenderLink"):
        url = _path_text(link, "uri")
        title = _path_text(link, "titel") or url
        if url.startswith(("http://", "https://")) and len(url) <= 1000:
            links.append({"title": title[:300], "url": url})
    return links


def _amount(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _fees(element: etree._Element) -> str:
    lines = []
    for cost in _children(element, "kosten"):
        description = _inhalt(cost, "beschreibung")
        amount_text = _path_text(cost, "betrag")
        amount = _amount(amount_text) if amount_text else None
        if amount_text and amount is None:
            raise _Bad(f"modulKosten: {amount_text!r} is not an amount")
        if amount is not None:
            euros = f"{amount:.2f}".replace(".", ",")
            lines.append(f"- {description}: {euros} €" if description else f"- {euros} €")
        elif description:
            lines.append(f"- {description}")
    general = _inhalt(element, "beschreibung")
    return "\n".join([general, *lines] if general else lines)


def _leistung(element: etree._Element) -> ServiceDescription:
    xzufi_id = _identifier(_child(element, "id"))
    leika = _path_text(element, "referenzLeiKa", "code")
    if not _LEIKA.match(leika):
        raise _Bad(f"referenzLeiKa {leika!r} is not a LeiKa key (14 digits, starting 99)")
    modules: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for modul in _children(element, "modulText"):
        code = _path_text(modul, "leikaTextmodul", "code")
        if code:
            modules[code] = (_inhalt(modul), _links(modul))
    title = (modules.get("03") or modules.get("02") or ("", []))[0].replace("\n", " ")
    if not title:
        raise _Bad("no service name (text module 02 or 03)")
    if len(title) > 200:  # catalogue names run to 250 characters; an article title holds 200
        title = title[:197].rsplit(" ", 1)[0] + " …"
    summary = (modules.get("05") or modules.get("24") or ("", []))[0]
    if len(summary) > 500:
        summary = summary[:497].rsplit(" ", 1)[0] + " …"
    parts = []
    for code, heading in DESCRIPTION_MODULES.items():
        text = modules.get(code, ("", []))[0]
        if text:
            parts.append(f"### {heading}\n{text}" if heading else text)
    sections: dict[str, object] = {"description": "\n\n".join(parts)}
    for code, section in SECTION_MODULES.items():
        sections[section] = modules.get(code, ("", []))[0]
    for name, section in (("modulFrist", "deadlines"), ("modulBearbeitungsdauer", "processing_time")):
        found = _child(element, name)
        sections[section] = _inhalt(found, "beschreibung") if found is not None else ""
    costs = _child(element, "modulKosten")
    sections["fees"] = _fees(costs) if costs is not None else ""
    forms = modules.get("14", ("", []))[1]
    sections["forms"] = forms[:50]
    for section, value in sections.items():
        if isinstance(value, str) and len(value) > 20_000:
            raise _Bad(f"the section {section} is longer than 20,000 characters")
    terms: list[str] = []
    for modul in _children(element, "modulBegriffImKontext"):
        for begriff in _children(modul, "begriffImKontext"):
            term = " ".join(_inhalt(begriff, "begriff").split())
            if 1 <= len(term) <= 100 and term not in terms:
                terms.append(term)
    portal = _path_text(element, "modulUrsprungsportal", "uri") or None
    areas = [_text(g) for g in _children(element, "gueltigkeitGebietID") if _text(g)]
    for area in areas:
        if not _ARS.match(area):
            raise _Bad(f"gueltigkeitGebietID {area!r} is not a municipal key (AGS or ARS)")
    return ServiceDescription(
        xzufi_id=xzufi_id,
        version=_version(element),
        line=_line(element),
        leika_key=leika,
        title=title,
        summary=summary,
        sections=sections,
        search_terms=terms[:50],
        origin_portal=portal if portal and portal.startswith(("http://", "https://")) else None,
        area_ids=areas,
    )


def _hours(element: etree._Element) -> tuple[list[dict[str, object]], str]:
    hours: list[dict[str, object]] = []
    for times in _children(element, "oeffnungszeiten"):
        for period in _children(times, "zeitraum"):
            day_text = _path_text(period, "wochentag", "code") or _path_text(period, "wochentag")
            opens, closes = _path_text(period, "von"), _path_text(period, "bis")
            if not day_text.isdigit() or not 1 <= int(day_text) <= 7:
                raise _Bad(f"oeffnungszeiten: weekday {day_text!r} is not 1 (Monday) … 7")
            match_open, match_close = _CLOCK.match(opens), _CLOCK.match(closes)
            if match_open is None or match_close is None:
                raise _Bad(f"oeffnungszeiten: {opens!r}–{closes!r} is not a time range")
            start = f"{int(match_open[1]):02d}:{match_open[2]}"
            end = f"{int(match_close[1]):02d}:{match_close[2]}"
            if start >= end:
                raise _Bad(f"oeffnungszeiten: {start}–{end} closes before it opens")
            hours.append({"weekday": int(day_text), "opens": start, "closes": end})
    note = " ".join(_inhalt(t, "beschreibung") for t in _children(element, "oeffnungszeiten")).strip()
    hours.sort(key=lambda h: (h["weekday"], h["opens"]))
    return hours, note


def _organisationseinheit(element: etree._Element) -> Office:
    xzufi_id = _identifier(_child(element, "id"))
    name_element = _child(element, "name")
    name = (_path_text(name_element, "name") or _text(name_element)) if name_element is not None else ""
    if not 1 <= len(name) <= 200:
        raise _Bad("an office needs a name of 1 to 200 characters")
    address = _child(element, "anschrift")
    address_text = ""
    municipality = None
    if address is not None:
        street = " ".join(filter(None, [_path_text(address, "strasse"), _path_text(address, "hausnummer")]))
        town = " ".join(filter(None, [_path_text(address, "postleitzahl"), _path_text(address, "ort")]))
        address_text = ", ".join(filter(None, [street, town]))[:300]
        coding = _child(address, "verwaltungspolitischeKodierung")
        if coding is not None:
            municipality = _path_text(coding, "gemeindeschluessel", "code") or _path_text(coding, "gemeindeschluessel")
            municipality = municipality or None
    phone = email = url = None
    for channel in _children(element, "kommunikation"):
        kind = _path_text(channel, "kanal", "code")
        value = _path_text(channel, "kennung")
        if not value:
            continue
        if kind == "03" or ("@" in value and kind in ("", "03")):
            email = email or (value if re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value) else None)
        elif kind == "04" or value.startswith(("http://", "https://")):
            url = url or (value if value.startswith(("http://", "https://")) and len(value) <= 1000 else None)
        elif kind in ("01", ""):
            phone = phone or value[:40]
    hours, note = _hours(element)
    responsibilities = []
    for zustaendigkeit in _children(element, "zustaendigkeit"):
        leistung = _identifier(_child(zustaendigkeit, "leistungID"))
        areas = tuple(_text(g) for g in _children(zustaendigkeit, "gebietID") if _text(g))
        for area in areas:
            if not _ARS.match(area):
                raise _Bad(f"zustaendigkeit: gebietID {area!r} is not a municipal key (AGS or ARS)")
        responsibilities.append(Responsibility(leistung_id=leistung, area_ids=areas))
    return Office(
        xzufi_id=xzufi_id,
        version=_version(element),
        line=_line(element),
        name=name,
        address=address_text,
        municipality=municipality,
        phone=phone,
        email=email,
        url=url,
        hours=hours,
        hours_note=note[:2000],
        responsibilities=responsibilities,
    )


def _fingerprint(value: object) -> str:
    return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()


def check_version(root: etree._Element) -> None:
    """Refuse a message of another XZuFi version (by namespace and by `xzufiVersion`)."""
    tag = root.tag if isinstance(root.tag, str) else ""
    namespace = tag[1:].partition("}")[0] if tag.startswith("{") else ""
    found = _XZUFI_NAMESPACE.match(namespace)
    if found is None:
        raise XzufiRefused(_l("not an XZuFi message (namespace {namespace!r})", namespace=namespace[:200]))
    if namespace != NAMESPACE:
        version = ".".join(found.groups())
        raise XzufiRefused(_l("a message of XZuFi {version}; only XZuFi 2.2 is read", version=version))
    declared = root.get("xzufiVersion")
    if declared is not None and declared not in SUPPORTED_VERSIONS:
        raise XzufiRefused(_l("a message of XZuFi {version}; only XZuFi 2.2 is read", version=declared[:20]))


def parse_message(data: bytes, name: str = "message.xml") -> XzufiMessage:
    """One XZuFi 2.2 message. Raises `XzufiRefused` for what cannot be read at all."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise XzufiRefused(_l("{name}: a message may be at most 8 MB", name=name))
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise XzufiRefused(_l("{name}: a message with a DTD or entities is refused", name=name))
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise XzufiRefused(_l("{name}: not well-formed XML (line {line})", name=name, line=error.lineno or 0)) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise XzufiRefused(_l("{name}: a message with a DTD or entities is refused", name=name))
    check_version(root)
    message = XzufiMessage(name=name)
    if _local(root) in ("leistung", "organisationseinheit"):  # one object, as the transfer sends them
        _read_object(message, root)
        return message
    for part in root:
        if not isinstance(part.tag, str):
            continue
        local = _local(part)
        if local == "schreibe":
            for item in part:
                _read_object(message, item)
        elif local == "loesche":
            _read_deletions(message, part)
        elif local in ("leistung", "organisationseinheit"):
            _read_object(message, part)  # a message carrying objects without the schreibe wrapper
        elif local not in ("nachrichtenkopf", "transaktionID", "transaktionPosition"):
            message.unknown_elements += 1
    _drop_repeated_services(message)
    return message


def _drop_repeated_services(message: XzufiMessage) -> None:
    """A service id a second time in one message is reported and left out; the first goes in.
    Both import paths then see each id once: one by one the second failed as a taken external
    id, while the bulk path took it for a re-import of the first and reported nothing."""
    first: dict[str, tuple[int, int]] = {}  # id → (position among the services, line)
    kept: list[ServiceDescription] = []
    for position, description in enumerate(message.services, start=1):
        seen = first.get(description.xzufi_id)
        if seen is None:
            first[description.xzufi_id] = (position, description.line)
            kept.append(description)
            continue
        message.problems.append(
            Problem(
                line=description.line,
                kind="leistung",
                xzufi_id=description.xzufi_id,
                message=(
                    f"service {position}: the service id appears twice in the message (first as service "
                    f"{seen[0]}, line {seen[1]}); this one is left out"
                ),
            )
        )
    message.services = kept


def _read_object(message: XzufiMessage, item: etree._Element) -> None:
    if not isinstance(item.tag, str):
        return
    local = _local(item)
    readers: dict[str, Callable[[etree._Element], ServiceDescription | Office]] = {
        "leistung": _leistung,
        "organisationseinheit": _organisationseinheit,
    }
    reader = readers.get(local)
    if reader is None or not item.tag.startswith(NS):
        message.unknown_elements += 1  # onlinedienst, spezialisierung, … and anything newer
        return
    try:
        value = reader(item)
    except _Bad as error:
        id_element = _child(item, "id")
        message.problems.append(
            Problem(
                line=_line(item),
                kind=local,
                xzufi_id=_text(id_element)[:200] or None,
                message=str(error),
            )
        )
        return
    if isinstance(value, ServiceDescription):
        value.content_hash = _fingerprint(
            [value.leika_key, value.title, value.summary, value.sections, value.search_terms, value.area_ids]
        )
        message.services.append(value)
    elif isinstance(value, Office):
        responsibilities: list[object] = [[r.leistung_id, list(r.area_ids)] for r in value.responsibilities]
        value.content_hash = _fingerprint(
            [value.name, value.address, value.municipality, value.phone, value.email, value.url, value.hours]
        ) + _fingerprint([value.hours_note, responsibilities])
        message.offices.append(value)


def _read_deletions(message: XzufiMessage, part: etree._Element) -> None:
    kinds = {"leistungID": "leistung", "organisationseinheitID": "organisationseinheit"}
    for item in part:
        if not isinstance(item.tag, str):
            continue
        kind = kinds.get(_local(item))
        if kind is None:
            message.unknown_elements += 1
            continue
        value = _text(item)
        if not value or len(value) > 200:
            message.problems.append(Problem(_line(item), kind, None, "a deletion without a valid id"))
            continue
        message.deletions.append(Deletion(kind=kind, xzufi_id=value, line=_line(item)))


# ---------------------------------------------------------------------------------- uploads


def messages_of_upload(data: bytes, name: str = "upload") -> Iterator[tuple[str, bytes]]:
    """The XML messages of an upload: the upload itself, or the `.xml` members of a zip. A zip
    bomb (too many members, too much uncompressed, an absurd ratio), nested archives and member
    names that climb out of the archive are refused before anything is imported."""
    if not data.startswith(b"PK"):
        yield name, data
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise XzufiRefused(_l("the upload is not a readable zip archive")) from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise XzufiRefused(_l("a zip may hold at most {limit} messages", limit=MAX_ZIP_MEMBERS))
    total = 0
    for member in members:
        parts = member.filename.replace("\\", "/").split("/")
        if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in member.filename:
            raise XzufiRefused(
                _l("the zip member {member!r} names a path outside the archive", member=member.filename[:200])
            )
        if member.flag_bits & 0x1:
            raise XzufiRefused(_l("encrypted zip members are refused"))
        total += member.file_size
        if total > MAX_ZIP_BYTES or member.file_size > MAX_MESSAGE_BYTES:
            raise XzufiRefused(_l("the zip unpacks to more than 64 MB (or a message over 8 MB)"))
        if member.compress_size and member.file_size / member.compress_size > MAX_ZIP_RATIO:
            raise XzufiRefused(
                _l("the zip member {member!r} is compressed suspiciously well", member=member.filename[:200])
            )
    for member in sorted(members, key=lambda m: m.filename):
        if not member.filename.lower().endswith(".xml"):
            continue
        with archive.open(member) as stream:
            content = stream.read(MAX_MESSAGE_BYTES + 1)  # the header's size may lie
        if len(content) > MAX_MESSAGE_BYTES:
            raise XzufiRefused(_l("{name}: a message may be at most 8 MB", name=member.filename[:200]))
        yield member.filename, content
