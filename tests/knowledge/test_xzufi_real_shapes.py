"""The parser against XZuFi 2.2 as the network sends it (decision 024, amendment 2026-12-07):
our own messages in the real shapes (`xzufi_real_messages`), no database."""

from __future__ import annotations

import json

import pytest

from backend.knowledge import xzufi, xzufi_transfer
from tests.knowledge.xzufi_messages import leistung, message, office, suffix
from tests.knowledge.xzufi_real_messages import hundesteuer_befreiung, pvog_page


def test_a_pvog_page_in_the_default_namespace_reads_service_office_responsibilities_and_deletes() -> None:
    tag = suffix()
    read = xzufi.parse_message(pvog_page(tag).encode(), "page.xml")
    (service,) = read.services
    assert service.xzufi_id == f"L100040.LB.{tag}1"
    assert service.leika_key == "99037004000000"
    assert service.title == "Hundesteuer Anmeldung"
    assert service.version == "2026-11-02T09:15:00+01:00"  # no version number sent: the change time
    assert service.area_ids == ["059740040040"]
    assert service.origin_portal == "https://www.soest.de/"
    assert service.search_terms == ["Hundemarke"]  # the English term is not a German search's word
    description = str(service.sections["description"])
    assert "innerhalb von zwei Wochen anmelden.\n- Hundesteuermarke\n- Befreiung für Blindenführhunde" in description
    assert "Das Formular erhalten Sie im Steueramt.\nSie können es auch online ausfüllen." in description
    assert "<" not in description
    assert service.sections["deadlines"] == (
        "Die Anmeldung ist nach Beginn der Hundehaltung fällig.\n"
        "- Anmeldefrist: 2 Wochen\n"
        "- Abmeldung: vom 01.01.2027 bis 31.03.2027"
    )
    assert service.sections["fees"] == (
        "- erster Hund, im Jahr: 96,00 €\n- gefährliche Hunde, je nach Rasse: 120,00 € bis 1200,00 €"
    )
    assert service.sections["processing_time"] == "- 5 bis 10 Tage"

    (steueramt,) = read.offices
    assert steueramt.name == "Steueramt Soest"  # the German name, though English came first
    assert steueramt.address == "Am Vreithof 8, 59494 Soest"  # the visitors' address, not the post box
    assert steueramt.municipality == "059740040040"
    assert (steueramt.phone, steueramt.email, steueramt.url) == (
        "+49 2921 103-2201",  # the fax (04) is not the phone
        "steueramt@soest.de",  # 01 is e-mail in the XÖV list: the value decides
        "https://www.soest.de/steueramt",
    )
    assert steueramt.hours == [
        {"weekday": 1, "opens": "08:00", "closes": "12:30"},
        {"weekday": 4, "opens": "08:00", "closes": "12:00"},
        {"weekday": 4, "opens": "14:00", "closes": "17:30"},
    ]
    assert steueramt.hours_note == "Termine nach Vereinbarung."
    (duty,) = steueramt.responsibilities
    assert (duty.leistung_id, duty.area_ids, duty.role) == (f"L100040.LB.{tag}1", ("059740040040",), "01")

    (sent,) = read.responsibilities
    assert sent.office_id == f"L100040.OE.{tag}2"
    assert sent.responsibility.leistung_id == f"L100040.LB.{tag}6"
    assert sent.responsibility.xzufi_id == f"L100040.ZS.{tag}5"

    assert [(d.kind, d.xzufi_id) for d in read.deletions] == [
        ("leistung", f"L100040.LB.{tag}8"),
        ("zustaendigkeit", f"L100040.ZS.{tag}9"),
    ]
    assert read.unknown_elements == 2  # the onlinedienst and its deletion
    # The responsibility with an unreadable area is reported with its line and id; the office stays.
    (problem,) = read.problems
    assert (problem.kind, problem.xzufi_id) == ("zustaendigkeit", f"L100040.ZS.{tag}4")
    assert "gebietID 'Soest'" in problem.message
    assert pvog_page(tag).splitlines()[problem.line - 1].strip() == "<zustaendigkeit>"


@pytest.mark.parametrize("prefix", ["xz", "xzufi22", "ns0"])
def test_one_object_as_its_own_message_under_any_prefix(prefix: str) -> None:
    read = xzufi.parse_message(hundesteuer_befreiung("p", prefix).encode())
    (service,) = read.services
    assert (service.title, service.sections["fees"]) == (
        "Hundesteuer Befreiung beantragen",
        "- Antrag auf Befreiung: 0,00 €",
    )
    assert not read.problems


def test_older_deletions_by_kind_of_id_still_read() -> None:
    text = message(deletions=[("leistung", "GES-ALT-1"), ("organisationseinheit", "GES-OE-ALT")])
    read = xzufi.parse_message(text.encode())
    assert [(d.kind, d.xzufi_id) for d in read.deletions] == [
        ("leistung", "GES-ALT-1"),
        ("organisationseinheit", "GES-OE-ALT"),
    ]


@pytest.mark.parametrize(
    ("area", "readable"),
    [
        ("05974020", True),  # AGS
        ("059740020020", True),  # ARS
        ("05974", True),  # Kreis
        ("05", True),  # Land
        ("0", True),  # Germany
        ("059740000000", True),  # Kreis as a padded ARS
        ("5974020", False),
        ("DE-NW", False),
    ],
)
def test_area_keys_of_every_level_are_read_and_others_reported(area: str, readable: bool) -> None:
    read = xzufi.parse_message(message(leistung("A-1", "Sperrmüll", areas=(area,))).encode())
    assert bool(read.services) is readable
    assert bool(read.problems) is not readable


def test_a_message_declaring_another_version_by_the_xoev_attributes_is_refused() -> None:
    text = message(leistung("V-1", "Sperrmüll")).replace('xzufiVersion="2.2.0"', 'standard="XZuFi" version="2.3.0"')
    with pytest.raises(xzufi.XzufiRefused) as refused:
        xzufi.parse_message(text.encode())
    assert "2.3.0" in str(refused.value)


def test_a_fee_that_is_not_an_amount_is_still_reported_in_the_new_shapes() -> None:
    extra = "<x:modulKosten><x:kosten><x:betragFix>zehn Euro</x:betragFix></x:kosten></x:modulKosten>"
    read = xzufi.parse_message(message(leistung("K-1", "Gewerbe", extra=extra)).encode())
    assert not read.services
    assert "zehn Euro" in read.problems[0].message


def test_hours_with_a_day_name_and_a_bad_time_are_reported_with_the_office() -> None:
    text = message(office("O-1", "Bürgerbüro", ags="05974020", hours=((1, "8 Uhr", "12:00"),)))
    read = xzufi.parse_message(text.encode())
    assert not read.offices
    assert read.problems[0].kind == "organisationseinheit" and "time range" in read.problems[0].message


def test_a_pvog_transfer_page_carries_its_objects_as_one_xml_string() -> None:
    tag = suffix()
    page_xml = pvog_page(tag).replace('encoding="UTF-8"', 'encoding="ISO-8859-15"')
    body = json.dumps(
        {
            "xzufiObjekte": page_xml,
            "vollstaendig": False,
            "naechsterIndex": 7,
            "naechsteAnfrageUrl": "https://pvog.test/?i=7",
        }
    ).encode()
    messages, deletions, problems, page = xzufi_transfer.read_page(body, 3)
    (read,) = messages
    assert read.name == "page 3"
    assert [s.title for s in read.services] == ["Hundesteuer Anmeldung"]  # umlauts intact despite the declaration
    assert read.offices[0].name == "Steueramt Soest"
    assert len(read.responsibilities) == 1 and len(read.deletions) == 2
    assert (deletions, problems, page.naechster_index) == ([], [], 7)


def test_the_entry_list_transfer_page_still_reads() -> None:
    entry = hundesteuer_befreiung("e")
    body = json.dumps({"xzufiObjekte": [{"schreibe": entry}, {"loesche": {"typ": "leistung", "id": "X-1"}}]}).encode()
    messages, deletions, problems, _ = xzufi_transfer.read_page(body, 1)
    assert [m.services[0].title for m in messages] == ["Hundesteuer Befreiung beantragen"]
    assert [(d.kind, d.xzufi_id) for d in deletions] == [("leistung", "X-1")] and problems == []


def test_an_office_with_a_time_series_and_reachability_entries() -> None:
    geseke_office = (
        "<x:organisationseinheit><x:id>L100040.OE.ges1</x:id>"
        '<x:name><x:name languageCode="de">Bürgerbüro Geseke</x:name></x:name>'
        "<x:anschrift><x:strasse>Bachstraße</x:strasse><x:hausnummer>1</x:hausnummer>"
        "<x:postleitzahl>59590</x:postleitzahl><x:ort>Geseke</x:ort><x:verwaltungspolitischeKodierung>"
        "<x:gemeindeschluessel><code>05974020</code></x:gemeindeschluessel></x:verwaltungspolitischeKodierung>"
        "</x:anschrift>"
        "<x:erreichbarkeit><x:kanal><code>02</code></x:kanal><x:kennung>Tel.: 02942 500-120</x:kennung>"
        "</x:erreichbarkeit>"
        "<x:erreichbarkeit><x:kanal><code>09</code></x:kanal><x:kennung>https://www.geseke.de/buergerbuero</x:kennung>"
        "</x:erreichbarkeit>"
        "<x:oeffnungszeiten><x:zeitserie><x:beginn>2026-01-01</x:beginn><x:wochentag><code>2</code></x:wochentag>"
        "<x:wochentag><code>3</code></x:wochentag><x:uhrzeitVon>07:30:00</x:uhrzeitVon><x:uhrzeitBis>12:30:00</x:uhrzeitBis>"
        "</x:zeitserie></x:oeffnungszeiten></x:organisationseinheit>"
    )
    read = xzufi.parse_message(message(geseke_office).encode())
    assert not read.problems
    (buergerbuero,) = read.offices
    assert (buergerbuero.phone, buergerbuero.url) == ("02942 500-120", "https://www.geseke.de/buergerbuero")
    assert buergerbuero.hours == [
        {"weekday": 2, "opens": "07:30", "closes": "12:30"},
        {"weekday": 3, "opens": "07:30", "closes": "12:30"},
    ]


def test_documents_become_form_links_and_amounts_may_name_their_currency() -> None:
    extra = (
        "<x:modulKosten><x:kosten><x:betrag>37,00 EUR</x:betrag>"
        '<x:beschreibung languageCode="de">ab 24 Jahren</x:beschreibung></x:kosten></x:modulKosten>'
        "<x:modulDokument><x:dokument>"
        '<x:titel languageCode="de">Antrag auf Befreiung von der Hundesteuer</x:titel>'
        "<x:uri>https://www.soest.de/formulare/hundesteuer-befreiung.pdf</x:uri>"
        "</x:dokument></x:modulDokument>"
    )
    read = xzufi.parse_message(message(leistung("D-1", "Hundesteuer Befreiung", extra=extra)).encode())
    (service,) = read.services
    assert service.sections["fees"] == "- ab 24 Jahren: 37,00 €"
    assert service.sections["forms"] == [
        {
            "title": "Antrag auf Befreiung von der Hundesteuer",
            "url": "https://www.soest.de/formulare/hundesteuer-befreiung.pdf",
        }
    ]


def test_a_transfer_entry_deleting_by_klasse_is_read() -> None:
    body = json.dumps({"xzufiObjekte": [{"loesche": {"klasse": "Zustaendigkeit", "id": "L100040.ZS.1"}}]}).encode()
    _, deletions, problems, _ = xzufi_transfer.read_page(body, 1)
    assert [(d.kind, d.xzufi_id) for d in deletions] == [("zustaendigkeit", "L100040.ZS.1")] and problems == []


def test_hours_in_other_spellings_read_the_same() -> None:
    text = message(
        office("O-2", "Wertstoffhof Geseke", ags="05974020", hours=((0, "8.00", "24:00"), (6, "9:00", "13:00")))
    )
    (wertstoffhof,) = xzufi.parse_message(text.encode()).offices
    assert wertstoffhof.hours == [
        {"weekday": 6, "opens": "09:00", "closes": "13:00"},
        {"weekday": 7, "opens": "08:00", "closes": "23:59"},  # 0 counted as Sunday, midnight as the day's end
    ]
