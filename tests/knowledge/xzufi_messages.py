"""XZuFi 2.2 messages for the tests, written here (realistic German content for Kreis Soest's
towns); ids carry a suffix so that tests sharing the session's world never meet."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterable
from xml.sax.saxutils import escape

NS = "http://xoev.de/schemata/xzufi/2_2_0"


def suffix() -> str:
    return uuid.uuid4().hex[:8]


def message(*objects: str, deletions: Iterable[tuple[str, str]] = (), version: str = "2.2.0", ns: str = NS) -> str:
    gone = "".join(
        f"<x:{'leistungID' if kind == 'leistung' else 'organisationseinheitID'}>{escape(ident)}"
        f"</x:{'leistungID' if kind == 'leistung' else 'organisationseinheitID'}>"
        for kind, ident in deletions
    )
    loesche = f"<x:loesche>{gone}</x:loesche>" if gone else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<x:transfer.schreibe xmlns:x="{ns}" xzufiVersion="{version}">\n'
        f"<x:nachrichtenkopf><x:nachrichtUUID>{uuid.uuid4()}</x:nachrichtUUID></x:nachrichtenkopf>\n"
        f"<x:schreibe>\n{''.join(objects)}</x:schreibe>\n{loesche}\n"
        "</x:transfer.schreibe>\n"
    )


def _module(code: str, text: str) -> str:
    return (
        f"<x:modulText><x:leikaTextmodul><code>{code}</code></x:leikaTextmodul>"
        f'<x:inhalt languageCode="de-DE">{escape(text)}</x:inhalt></x:modulText>\n'
    )


def leistung(
    ident: str,
    title: str,
    *,
    key: str = "99001009004002",
    summary: str = "",
    description: str = "",
    fees: Iterable[tuple[str, str]] = (),
    deadline: str = "",
    documents: str = "",
    legal: str = "",
    terms: Iterable[str] = (),
    areas: Iterable[str] = (),
    version: str = "1",
    extra: str = "",
) -> str:
    parts = [
        f"<x:leistung>\n<x:id>{escape(ident)}</x:id>",
        f"<x:versionsinformation><x:version>{version}</x:version></x:versionsinformation>",
        f"<x:referenzLeiKa><code>{key}</code></x:referenzLeiKa>",
        *(f"<x:gueltigkeitGebietID>{a}</x:gueltigkeitGebietID>" for a in areas),
        _module("02", title),
    ]
    if summary:
        parts.append(_module("05", summary))
    if description:
        parts.append(_module("06", description))
    if documents:
        parts.append(_module("08", documents))
    if legal:
        parts.append(_module("07", legal))
    if deadline:
        parts.append(
            f'<x:modulFrist><x:beschreibung languageCode="de-DE">{escape(deadline)}</x:beschreibung></x:modulFrist>'
        )
    if fees:
        costs = "".join(
            f'<x:kosten><x:betrag>{amount}</x:betrag><x:beschreibung languageCode="de-DE">{escape(what)}'
            "</x:beschreibung></x:kosten>"
            for amount, what in fees
        )
        parts.append(f"<x:modulKosten>{costs}</x:modulKosten>")
    if terms:
        begriffe = "".join(
            f'<x:begriffImKontext><x:begriff languageCode="de-DE">{escape(t)}</x:begriff></x:begriffImKontext>'
            for t in terms
        )
        parts.append(f"<x:modulBegriffImKontext>{begriffe}</x:modulBegriffImKontext>")
    parts.append(extra)
    parts.append("</x:leistung>\n")
    return "\n".join(parts)


def office(
    ident: str,
    name: str,
    *,
    ags: str,
    phone: str = "+49 2942 500-0",
    email: str = "",
    hours: Iterable[tuple[int, str, str]] = ((1, "08:00", "12:30"), (4, "14:00", "17:30")),
    responsible: Iterable[tuple[str, str]] = (),
    version: str = "1",
) -> str:
    channels = f"<x:kommunikation><x:kanal><code>01</code></x:kanal><x:kennung>{phone}</x:kennung></x:kommunikation>"
    if email:
        channels += (
            f"<x:kommunikation><x:kanal><code>03</code></x:kanal><x:kennung>{email}</x:kennung></x:kommunikation>"
        )
    periods = "".join(
        f"<x:zeitraum><x:wochentag><code>{day}</code></x:wochentag><x:von>{opens}</x:von><x:bis>{closes}</x:bis>"
        "</x:zeitraum>"
        for day, opens, closes in hours
    )
    duties = "".join(
        f"<x:zustaendigkeit><x:leistungID>{escape(lid)}</x:leistungID><x:gebietID>{area}</x:gebietID></x:zustaendigkeit>"
        for lid, area in responsible
    )
    return (
        f"<x:organisationseinheit><x:id>{escape(ident)}</x:id>"
        f"<x:versionsinformation><x:version>{version}</x:version></x:versionsinformation>"
        f"<x:name><x:name>{escape(name)}</x:name></x:name>"
        "<x:anschrift><x:strasse>Bachstraße</x:strasse><x:hausnummer>1</x:hausnummer>"
        "<x:postleitzahl>59590</x:postleitzahl><x:ort>Geseke</x:ort><x:verwaltungspolitischeKodierung>"
        f"<x:gemeindeschluessel><code>{ags}</code></x:gemeindeschluessel></x:verwaltungspolitischeKodierung>"
        f"</x:anschrift>{channels}<x:oeffnungszeiten>{periods}</x:oeffnungszeiten>{duties}"
        "</x:organisationseinheit>\n"
    )


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip upload of these members (name → bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
