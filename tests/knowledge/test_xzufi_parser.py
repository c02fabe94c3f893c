"""The XZuFi 2.2 parser on its own: what it reads, what it tolerates, what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.knowledge import xzufi
from tests.knowledge.xzufi_messages import leistung, message, office, zipped

SAMPLES = Path(xzufi.__file__).parent / "data" / "xzufi"


def test_the_shipped_samples_read_without_problems() -> None:
    read = [xzufi.parse_message(p.read_bytes(), p.name) for p in sorted(SAMPLES.glob("*.xml"))]
    assert [len(m.services) for m in read] == [4, 1, 1]
    assert all(m.problems == [] for m in read)
    personalausweis = read[0].services[0]
    assert personalausweis.leika_key == "99008001012000"
    assert personalausweis.title == "Personalausweis beantragen"  # German, not the English inhalt
    assert "- ab 24 Jahren: 37,00 €" in str(personalausweis.sections["fees"])
    assert "- ein aktuelles biometrisches Passfoto" in str(personalausweis.sections["documents"])  # <li> → line
    assert "### Voraussetzungen" in str(personalausweis.sections["description"])
    assert personalausweis.sections["forms"] == [
        {"title": "Personalausweisportal des Bundes", "url": "https://www.personalausweisportal.de/"}
    ]
    assert personalausweis.search_terms == ["Perso", "Ausweis", "Personalausweis verlängern"]
    abfall = read[1].offices[0]
    assert abfall.municipality == "05974020"
    assert abfall.hours[0] == {"weekday": 1, "opens": "08:00", "closes": "12:30"}
    assert abfall.email == "abfallberatung@geseke.de"
    assert [r.leistung_id for r in abfall.responsibilities] == ["GES-SPERRMUELL"]


def test_unknown_elements_are_skipped_and_counted() -> None:
    text = message(
        leistung("U1", "Sperrmüll", extra="<x:modulZukunft><x:neu>?</x:neu></x:modulZukunft>"),
        '<x:onlinedienst><x:id>OD1</x:id></x:onlinedienst><other:thing xmlns:other="urn:x"/>',
    ).replace("<x:schreibe>", "<x:kopfErweiterung>neu</x:kopfErweiterung><x:schreibe>")
    read = xzufi.parse_message(text.encode())
    assert [s.xzufi_id for s in read.services] == ["U1"]
    # the new header element, the service's new module, the online service, the foreign one
    assert read.unknown_elements == 4
    assert read.problems == []


@pytest.mark.parametrize(
    ("ns", "version", "named"),
    [
        ("http://xoev.de/schemata/xzufi/2_1_0", "2.1.0", "2.1.0"),
        ("http://xoev.de/schemata/xzufi/2_2_0", "2.3.0", "2.3.0"),
    ],
)
def test_a_message_of_another_version_is_refused_naming_it(ns: str, version: str, named: str) -> None:
    with pytest.raises(xzufi.XzufiRefused) as refused:
        xzufi.parse_message(message(leistung("V1", "Sperrmüll"), ns=ns, version=version).encode())
    assert named in str(refused.value) and "only XZuFi 2.2" in str(refused.value)


def test_a_bad_object_is_reported_with_line_and_id_and_the_rest_goes_in() -> None:
    text = message(
        leistung("GOOD-1", "Hundesteuer"),
        leistung("BAD-1", "Ohne Schlüssel", key="12345"),
        leistung("GOOD-2", "Gewerbe anmelden", fees=(("zehn", "Anmeldung"),)),
        office("O1", "Bürgerbüro", ags="05974020", hours=((9, "08:00", "12:00"),)),
    )
    read = xzufi.parse_message(text.encode(), "m.xml")
    assert [s.xzufi_id for s in read.services] == ["GOOD-1"]
    problems = {p.xzufi_id: p for p in read.problems}
    assert set(problems) == {"BAD-1", "GOOD-2", "O1"}
    lines = text.splitlines()
    assert "BAD-1" in lines[problems["BAD-1"].line - 1] or "<x:leistung>" in lines[problems["BAD-1"].line - 1]
    assert "referenzLeiKa" in problems["BAD-1"].message
    assert "amount" in problems["GOOD-2"].message
    assert "weekday" in problems["O1"].message


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b'<x:transfer xmlns:x="http://xoev.de/schemata/xzufi/2_2_0">&lol2;</x:transfer>',
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">'
        b'<x:transfer xmlns:x="http://xoev.de/schemata/xzufi/2_2_0"/>',
        b"not xml at all",
        b"<x:transfer xmlns:x='urn:something-else'/>",
    ],
)
def test_hostile_or_foreign_input_is_refused(hostile: bytes) -> None:
    with pytest.raises(xzufi.XzufiRefused):
        xzufi.parse_message(hostile)


def test_a_zip_of_messages_is_read_member_by_member() -> None:
    data = zipped({"b.xml": message(leistung("Z2", "B")).encode(), "a.xml": b"<x/>", "readme.txt": b"hi"})
    assert [name for name, _ in xzufi.messages_of_upload(data)] == ["a.xml", "b.xml"]


@pytest.mark.parametrize("name", ["../../etc/passwd.xml", "/abs/message.xml", "C:\\evil.xml", "a/../../b.xml"])
def test_zip_path_tricks_are_refused(name: str) -> None:
    with pytest.raises(xzufi.XzufiRefused):
        list(xzufi.messages_of_upload(zipped({name: b"<x/>"})))


def test_a_zip_bomb_is_refused_before_anything_is_unpacked() -> None:
    bomb = zipped({"bomb.xml": b"<a>" + b" " * (7 * 1024 * 1024) + b"</a>"})
    assert len(bomb) < 100_000
    with pytest.raises(xzufi.XzufiRefused) as refused:
        list(xzufi.messages_of_upload(bomb))
    assert "compressed suspiciously well" in str(refused.value)
