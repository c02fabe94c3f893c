"""XZuFi 2.2 messages read into plain values (decision 024): service descriptions (`leistung`),
offices (`organisationseinheit`, read in `xzufi_office`) with their responsibilities
(`zustaendigkeit`, inside the office or sent apart), and deletions (`loesche`). No database
here; `xzufi_import` decides what the values become.

The input is hostile until proven otherwise (decision 019): lxml's parser is told to resolve no
entities, load no DTD and fetch nothing, a DOCTYPE is refused outright, and a message is size
limited before it is parsed. A message of another XZuFi version is refused as a whole; inside a
2.2 message an unknown element is skipped, and a bad object is reported with its line and id
while the rest of the message is still read.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec
from lxml import etree

from backend.i18n import Message, _l
from backend.knowledge.xzufi_office import (
    Office,
    PartProblem,
    Responsibility,
    SentResponsibility,
    sent_responsibility,
)
from backend.knowledge.xzufi_office import office as read_office
from backend.knowledge.xzufi_service import DESCRIPTION_MODULES, SECTION_MODULES, SERVICE_ELEMENTS, ServiceDescription
from backend.knowledge.xzufi_service import service as read_service
from backend.knowledge.xzufi_xml import (
    NAMESPACE,
    NS,
    Bad,
    child,
    children,
    code,
    line,
    local,
    text,
)

__all__ = [
    "DESCRIPTION_MODULES",
    "NAMESPACE",
    "SECTION_MODULES",
    "Office",
    "Responsibility",
    "SentResponsibility",
    "ServiceDescription",
]

SUPPORTED_VERSIONS = ("2.2", "2.2.0")
# 2.2 and its patch releases (2.2.1 …): XÖV keeps a minor version's namespace and schema compatible.
_SUPPORTED_VERSION = re.compile(r"^2\.2(\.\d{1,3})?$")
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_ZIP_BYTES = 64 * 1024 * 1024  # uncompressed, all members together
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed per member: beyond this a member is a bomb
_XZUFI_NAMESPACE = re.compile(r"^http://xoev\.de/schemata/xzufi/(\d+)_(\d+)_(\d+)$")
_OBJECTS = ("leistung", "organisationseinheit", "zustaendigkeitTransferObjekt")
# `loesche` names what it deletes by `klasse` (PVOG: Leistung, Organisationseinheit,
# Zustaendigkeit, Onlinedienst, LeistungSpezialisierung …); the ones we keep are these.
_DELETED_KINDS = {
    "leistung": "leistung",
    "organisationseinheit": "organisationseinheit",
    "zustaendigkeit": "zustaendigkeit",
}
_OFFICE_CHILDREN = frozenset(
    {
        "id", "idSekundaer", "kennung", "name", "kurzbeschreibung", "beschreibung", "anschrift",
        "kommunikation", "erreichbarkeit", "internetadresse", "oeffnungszeiten", "zustaendigkeit",
        "versionsinformation", "gueltigkeit", "kategorie", "bankverbindung", "synonym",
        "glaeubigerIdentifikationsnummer", "uebergeordneteOrganisationseinheitID", "sprachversion",
        "infoParkplatz", "infoOEPNV", "infoBarrierefreiheit", "zahlungsweise", "kennzeichenEinheitlicheStelle",
        "ansprechpunkt", "kontaktperson", "herausgeber", "alternativeRepraesentation", "vertrauensniveau",
    }
)  # fmt: skip
# Known children by their tag as lxml gives it: in the XZuFi namespace or none. A known name in
# another namespace (a vendor's extension) is unknown.
_KNOWN_CHILDREN = {
    "leistung": frozenset({*SERVICE_ELEMENTS, *(NS + n for n in SERVICE_ELEMENTS)}),
    "organisationseinheit": frozenset({*_OFFICE_CHILDREN, *(NS + n for n in _OFFICE_CHILDREN)}),
}


class XzufiRefused(Exception):
    """The whole message (or upload) cannot be read: wrong version, not XML, too big, a DTD."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


class XzufiTooLarge(XzufiRefused):
    """A message or zip beyond the size limits (HTTP 413 where it arrives by REST)."""


_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")


def text_message(xml: str) -> bytes:
    """A message that arrived as text (a JSON field, a GraphQL argument) is Unicode already,
    whatever its declaration says: the declaration goes, so that an "ISO-8859-15" one does not
    make lxml read the UTF-8 bytes as Latin-9 ("€" as "â¬")."""
    return _DECLARATION.sub("", xml, count=1).encode("utf-8")


def check_size(data: bytes) -> None:
    """Refuse, before anything is parsed or unpacked, an upload over the limits: one message over
    8 MB, or a zip whose directory declares a member over 8 MB or more than 64 MB together (the
    members' real sizes are checked again as they are read)."""
    if not data.startswith(b"PK"):
        if len(data) > MAX_MESSAGE_BYTES:
            raise XzufiTooLarge(_l("{name}: a message may be at most 8 MB", name="upload.xml"))
        return
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        return  # refused as unreadable where it is read
    if any(m.file_size > MAX_MESSAGE_BYTES for m in members) or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        raise XzufiTooLarge(_l("the zip unpacks to more than 64 MB (or a message over 8 MB)"))


@dataclass(frozen=True, slots=True)
class Problem:
    """A bad object inside an otherwise readable message: where it is and what it is."""

    line: int
    kind: str
    xzufi_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: str  # "leistung" | "organisationseinheit" | "zustaendigkeit"
    xzufi_id: str
    line: int


@dataclass(slots=True)
class XzufiMessage:
    name: str
    services: list[ServiceDescription] = field(default_factory=list)
    offices: list[Office] = field(default_factory=list)
    responsibilities: list[SentResponsibility] = field(default_factory=list)  # sent apart from their office
    deletions: list[Deletion] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unknown_elements: int = 0


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


def _fingerprint(value: object) -> str:
    return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()


def check_version(root: etree._Element) -> None:
    """Refuse a message of another XZuFi version (by namespace and by `xzufiVersion`, or the
    XÖV `standard`/`version` attributes some systems send instead)."""
    tag = root.tag if isinstance(root.tag, str) else ""
    namespace = tag[1:].partition("}")[0] if tag.startswith("{") else ""
    found = _XZUFI_NAMESPACE.match(namespace)
    if found is None:
        raise XzufiRefused(_l("not an XZuFi message (namespace {namespace!r})", namespace=namespace[:200]))
    if namespace != NAMESPACE:
        version = ".".join(found.groups())
        raise XzufiRefused(_l("a message of XZuFi {version}; only XZuFi 2.2 is read", version=version))
    declared = root.get("xzufiVersion")
    if declared is None and "xzufi" in (root.get("standard") or "").lower():
        declared = root.get("version")
    if declared is not None and not _SUPPORTED_VERSION.match(declared.strip()):
        raise XzufiRefused(_l("a message of XZuFi {version}; only XZuFi 2.2 is read", version=declared[:20]))


def parse_message(data: bytes, name: str = "message.xml", limit: int = MAX_MESSAGE_BYTES) -> XzufiMessage:
    """One XZuFi 2.2 message. Raises `XzufiRefused` for what cannot be read at all. A transfer
    page (one document for the whole page) has the page's own, larger `limit`."""
    message, root = open_message(data, name, limit)
    for _ in read_objects(message, root):
        pass
    drop_repeated(message)
    return message


def open_message(
    data: bytes, name: str = "message.xml", limit: int = MAX_MESSAGE_BYTES
) -> tuple[XzufiMessage, etree._Element]:
    """A message checked as a whole (size, no DTD or entities, well-formed, XZuFi 2.2) and its
    root, its objects not read yet (`read_objects`). Raises `XzufiRefused`."""
    if len(data) > limit:
        raise XzufiTooLarge(_l("{name}: a message may be at most 8 MB", name=name))
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise XzufiRefused(_l("{name}: a message with a DTD or entities is refused", name=name))
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise XzufiRefused(_l("{name}: not well-formed XML (line {line})", name=name, line=error.lineno or 0)) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise XzufiRefused(_l("{name}: a message with a DTD or entities is refused", name=name))
    check_version(root)
    return XzufiMessage(name=name), root


def read_objects(message: XzufiMessage, root: etree._Element) -> Iterator[None]:
    """Reads the objects of an opened message into `message`, one step per object: the import
    reads between the statements of its start (`xzufi_bulk.import_message`). A service id's
    repeats are left in; `drop_repeated` reports them."""
    if local(root) in _OBJECTS:  # one object, as the transfer sends them
        _read_object(message, root)
        yield
        return
    for part in root:
        if not isinstance(part.tag, str):
            continue
        name_here = local(part)
        if name_here == "schreibe":  # PVOG pages send one object per `schreibe`, messages many
            for item in part:
                _read_object(message, item)
                yield
        elif name_here == "loesche":
            _read_deletions(message, part)
        elif name_here in _OBJECTS:
            _read_object(message, part)  # a message carrying objects without the schreibe wrapper
            yield
        elif name_here not in ("nachrichtenkopf", "transaktionID", "transaktionPosition"):
            message.unknown_elements += 1


def drop_repeated(message: XzufiMessage) -> None:
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
    kind = local(item)
    if kind not in _OBJECTS or not item.tag.startswith(NS):
        message.unknown_elements += 1  # onlinedienst, spezialisierung, … and anything newer
        return
    known = _KNOWN_CHILDREN.get(kind)
    if known is not None:  # elements the standard does not have are skipped, and counted
        message.unknown_elements += sum(1 for c in item if isinstance(c.tag, str) and c.tag not in known)
    try:
        if kind == "leistung":
            _add_service(message, read_service(item))
        elif kind == "organisationseinheit":
            value, parts = read_office(item)
            _add_office(message, value, parts)
        else:
            message.responsibilities.append(sent_responsibility(item))
    except Bad as error:
        id_element = child(item, "id") if kind != "zustaendigkeitTransferObjekt" else _inner_id(item)
        message.problems.append(Problem(line(item), _kind_name(kind), text(id_element)[:200] or None, str(error)))


def _kind_name(kind: str) -> str:
    return "zustaendigkeit" if kind == "zustaendigkeitTransferObjekt" else kind


def _inner_id(item: etree._Element) -> etree._Element | None:
    inner = child(item, "zustaendigkeit")
    return child(inner, "id") if inner is not None else None


def _add_service(message: XzufiMessage, value: ServiceDescription) -> None:
    value.content_hash = _fingerprint(
        [value.leika_key, value.title, value.summary, value.sections, value.search_terms, value.area_ids]
    )
    message.services.append(value)


def _add_office(message: XzufiMessage, value: Office, parts: list[PartProblem]) -> None:
    for part in parts:
        message.problems.append(Problem(part.line, "zustaendigkeit", part.xzufi_id or value.xzufi_id, part.message))
    # The role and the responsibility's own id count only where sent, so that offices read
    # before they were known keep their fingerprints (and re-imports stay "unchanged").
    responsibilities: list[object] = [
        [r.leistung_id, list(r.area_ids), *([r.role, r.xzufi_id] if r.role or r.xzufi_id else [])]
        for r in value.responsibilities
    ]
    value.content_hash = _fingerprint(
        [value.name, value.address, value.municipality, value.phone, value.email, value.url, value.hours]
    ) + _fingerprint([value.hours_note, responsibilities])
    message.offices.append(value)


def _read_deletions(message: XzufiMessage, part: etree._Element) -> None:
    """`loesche` as PVOG sends it (`klasse` and the object's `id`), or naming the object by a
    kind of id (`leistungID`, `organisationseinheitID`, `zustaendigkeitID`)."""
    klasse = (part.get("klasse") or code(child(part, "klasse"))).strip().lower()
    if klasse:
        kind = _DELETED_KINDS.get(klasse)
        ids = list(children(part, "id")) or ([part] if len(part) == 0 else [])
        if kind is None:
            message.unknown_elements += 1  # Onlinedienst, LeistungSpezialisierung …: we keep none
            return
        for ident in ids:
            _add_deletion(message, kind, ident)
        return
    for item in part:
        if not isinstance(item.tag, str):
            continue
        kind = _DELETED_KINDS.get(local(item).removesuffix("ID").lower())
        if kind is None or not local(item).endswith("ID"):
            message.unknown_elements += 1
            continue
        _add_deletion(message, kind, item)


def _add_deletion(message: XzufiMessage, kind: str, item: etree._Element) -> None:
    value = text(item)
    if not value or len(value) > 200:
        message.problems.append(Problem(line(item), kind, None, "a deletion without a valid id"))
        return
    message.deletions.append(Deletion(kind=kind, xzufi_id=value, line=line(item)))


# ---------------------------------------------------------------------------------- uploads


def parse_soon(member: tuple[str, bytes]) -> asyncio.Future[XzufiMessage | XzufiRefused]:
    """A member parsed (or its refusal) in a thread, starting now."""
    return asyncio.ensure_future(asyncio.to_thread(_parse_or_refusal, *member))


async def parse_in_turn(
    members: Sequence[tuple[str, bytes]],
    *,
    ahead: bool,
    first: asyncio.Future[XzufiMessage | XzufiRefused] | None = None,
) -> AsyncIterator[tuple[str, XzufiMessage | XzufiRefused]]:
    """Each member parsed (or its refusal), in order. With `ahead`, the next member is parsed in a
    thread while the caller works on this one: an import's statements wait on the database most of
    the time, and the parse (~0.4 ms a service) fills that wait (decision 024's third amendment).
    `first`: the first member's parse, already under way (`parse_soon`)."""
    pending = first
    try:
        for position, (name, content) in enumerate(members):
            parsed = await pending if pending is not None else _parse_or_refusal(name, content)
            pending = None
            if ahead and position + 1 < len(members):
                pending = parse_soon(members[position + 1])
            yield name, parsed
    finally:
        if pending is not None:
            pending.cancel()


def _parse_or_refusal(name: str, content: bytes) -> XzufiMessage | XzufiRefused:
    try:
        return parse_message(content, name)
    except XzufiRefused as refused:
        return refused


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
            raise XzufiTooLarge(_l("the zip unpacks to more than 64 MB (or a message over 8 MB)"))
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
            raise XzufiTooLarge(_l("{name}: a message may be at most 8 MB", name=member.filename[:200]))
        yield member.filename, content
