# ruff: noqa: E501  (XML in the parameters: a line is what a sender writes)
"""The parser against XZuFi 2.2 messages written as senders we have not seen write them, and
against hostile input (decision 024, amendment "robustness"): what an agent then reads, no
database."""

from __future__ import annotations

import pytest

from backend.knowledge import xzufi
from backend.knowledge.xzufi_xml import municipal_key
from tests.knowledge.xzufi_heldout_messages import NS, gestattung
from tests.knowledge.xzufi_messages import leistung, message, suffix, zipped


def test_a_held_out_message_reads_as_an_agent_needs_it() -> None:
    tag = suffix()
    read = xzufi.parse_message(gestattung(tag).encode())
    assert read.problems == []
    # a future module, a vendor's note (another namespace), a future office element
    assert read.unknown_elements == 3
    (service,) = read.services
    assert (service.xzufi_id, service.version, service.leika_key) == (f"L100012.LB.{tag}1", "4", "99025002056000")
    assert service.title == "Ausschank beim Schützenfest gestatten lassen"  # 03 (the citizens' name) before 02
    assert service.summary.startswith("Für den Ausschank von Alkohol")
    assert service.sections["description"] == (
        "Vereine, die beim Schützenfest Getränke ausschenken, beantragen die Gestattung beim Ordnungsamt.\n"
        "Bitte beachten Sie die Sperrzeit ab 1 Uhr.\n\n"
        "### Barrierefreiheit\nDas Rathaus ist über einen Aufzug am Seiteneingang barrierefrei erreichbar.\n\n"
        "### Gültigkeit\nGültig vom 01.01.2026 bis 31.12.2027."
    )
    assert "Schulte" not in str(service.sections)  # 19, who released the text, is not for callers
    assert "nicht veröffentlichen" not in str(service.sections)  # the vendor's note is skipped
    assert service.sections["fees"] == (
        "Die Gebühr (ab 20 €) richtet sich nach Dauer und Umfang des Ausschanks.\n"
        "- je Veranstaltungstag: 20,00 € bis 250,00 €"
    )
    assert (
        service.sections["deadlines"]
        == "- Antragsfrist: 2 Wochen, vor dem Fest\n- Stichtag Schützenfest: am 14.05.2027"
    )
    assert service.sections["processing_time"] == "Planen Sie genug Zeit vor dem Fest ein.\n- 3 Tage bis 2 Wochen"
    assert service.sections["forms"] == [
        {"title": "Antrag auf Gestattung (PDF)", "url": "https://www.geseke.de/formulare/gestattung.pdf"}
    ]
    assert service.origin_portal == "https://www.geseke.de/"
    assert (service.valid_from, service.valid_until) == ("2026-01-01", "2027-12-31")
    assert service.area_ids == ["05974020"]  # Geseke's AGS, sent padded to 12 digits

    (office,) = read.offices
    assert office.xzufi_id == f"L100012.OE.{tag}2"  # named by `kennung`
    assert office.name == f"Ordnungsamt Geseke {tag}"
    assert office.address == "Bachstraße 3, 59590 Geseke"  # the house address, not the post box
    assert office.municipality == "05974020"
    assert (office.phone, office.email) == ("+49 2942 500-320", "ordnungsamt@geseke.de")  # not the fax
    assert (office.hours, office.hours_note) == ([], "Mo-Fr 8:30-12:00 Uhr, Do 14:00-17:30 Uhr")
    (duty,) = office.responsibilities
    assert (duty.leistung_id, duty.area_ids) == (f"L100012.LB.{tag}1", ("05974020",))


@pytest.mark.parametrize("prefix", ["xzufi", "", "ns1"])
@pytest.mark.parametrize(
    ("encoding", "codec", "start"),
    [("UTF-8", "utf-8", b"\xef\xbb\xbf"), ("ISO-8859-15", "iso-8859-15", b""), ("UTF-16", "utf-16", b"")],
)
def test_encodings_and_prefixes_read_the_same(prefix: str, encoding: str, codec: str, start: bytes) -> None:
    plain = xzufi.parse_message(gestattung("e").encode())
    read = xzufi.parse_message(start + gestattung("e", encoding, prefix).encode(codec))
    assert [s.content_hash for s in read.services] == [s.content_hash for s in plain.services]
    assert [o.content_hash for o in read.offices] == [o.content_hash for o in plain.offices]
    assert "(ab 20 €)" in str(read.services[0].sections["fees"])


def test_a_message_sent_as_text_is_read_whatever_its_declaration_says() -> None:
    as_text = gestattung("t", "ISO-8859-15")  # a JSON field or GraphQL argument: Unicode already
    garbled = xzufi.parse_message(as_text.encode("utf-8"))
    assert "(ab 20 €)" not in str(garbled.services[0].sections["fees"])  # what lxml makes of it otherwise
    read = xzufi.parse_message(xzufi.text_message(as_text))
    assert "(ab 20 €)" in str(read.services[0].sections["fees"])
    assert read.services[0].title == "Ausschank beim Schützenfest gestatten lassen"


def _with_text(full_text: str) -> xzufi.ServiceDescription:
    raw = f'<x:modulText><x:leikaTextmodul><code>06</code></x:leikaTextmodul><x:inhalt languageCode="de">{full_text}</x:inhalt></x:modulText>'
    (service,) = xzufi.parse_message(message(leistung("H1", "Sperrmüll", extra=raw)).encode()).services
    return service


@pytest.mark.parametrize(
    "hostile",
    [
        "&lt;p&gt;Sperrmüll&lt;/p&gt;&lt;script&gt;alert('evil')&lt;/script&gt;",
        "<![CDATA[<p>Sperrmüll</p><img src=x onerror=alert('evil')><iframe src='https://evil.example'>evil</iframe>]]>",
        "&lt;p&gt;Sperrmüll &amp;lt;script&amp;gt;alert('evil')&amp;lt;/script&amp;gt;&lt;/p&gt;",
        "<![CDATA[<style>body{background:url(evil)}</style><!-- evil --><p>Sperrmüll</p>]]>",
        '<p xmlns="http://www.w3.org/1999/xhtml">Sperrmüll<script>alert("evil")</script></p>',
        "Sperrmüll &lt;b onclick=&quot;evil()&quot;&gt;",
    ],
)
def test_markup_in_a_text_never_reaches_what_an_agent_reads(hostile: str) -> None:
    description = str(_with_text(hostile).sections["description"])
    assert "Sperrmüll" in description
    assert "<" not in description and ">" not in description and "evil" not in description


def test_html_structure_becomes_lines_and_entities_characters() -> None:
    description = str(
        _with_text(
            "&lt;h3&gt;Abholung&lt;/h3&gt;&lt;p&gt;Zweimal im Jahr&amp;nbsp;kostenlos&lt;/p&gt;"
            "&lt;ul&gt;&lt;li&gt;Möbel&lt;/li&gt;&lt;li&gt;Matratzen &amp;amp; Teppiche&lt;/li&gt;&lt;/ul&gt;"
        ).sections["description"]
    )
    assert description == "Abholung\nZweimal im Jahr kostenlos\n- Möbel\n- Matratzen & Teppiche"


def test_a_very_large_text_module_is_reported_and_the_rest_goes_in() -> None:
    huge = "Sperrmüll wird abgeholt. " * 40_000  # ~1 MB of text in one module
    text = message(leistung("BIG1", "Sperrmüll", description=huge), leistung("SMALL1", "Fundsachen"))
    read = xzufi.parse_message(text.encode())
    assert [s.xzufi_id for s in read.services] == ["SMALL1"]
    (problem,) = read.problems
    assert (problem.xzufi_id, problem.kind) == ("BIG1", "leistung") and "20,000" in problem.message
    assert problem.line > 0


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("059740200000", "05974020"),  # Geseke's AGS padded to 12 digits
        ("059740400000", "05974040"),  # Soest's
        ("059740020020", "059740020020"),  # Geseke's ARS stays
        ("051110000000", "051110000000"),  # Düsseldorf: the same both ways
        ("059740000000", "059740000000"),  # Kreis Soest as a whole
        ("071315001000", "071315001000"),  # a Verbandsgemeinde's ARS
        ("05974020", "05974020"),
    ],
)
def test_area_keys_padded_or_not(sent: str, read: str) -> None:
    assert municipal_key(sent) == read


def test_a_leika_reference_in_its_variants() -> None:
    variants = [
        '<x:referenzLeiKa listURI="urn:de:fim:leika:leistung"><code>99025002056000</code></x:referenzLeiKa>',
        "<x:referenzLeiKa>99025002056000</x:referenzLeiKa>",
        "<x:referenzLeiKa><x:code>99 025 002 056 000</x:code></x:referenzLeiKa>",
        "<x:referenzLeiKa>12345</x:referenzLeiKa><x:referenzLeiKa>99025002056000</x:referenzLeiKa>",
        "<x:struktur><x:leistungsschluessel>99025002056000</x:leistungsschluessel></x:struktur>",
    ]
    for variant in variants:
        text = message(leistung("K1", "Gestattung", key="99000000000000")).replace(
            "<x:referenzLeiKa><code>99000000000000</code></x:referenzLeiKa>", variant
        )
        assert variant in text
        (service,) = xzufi.parse_message(text.encode()).services
        assert service.leika_key == "99025002056000", variant


def test_a_service_named_only_by_leistungsbezeichnung_elements() -> None:
    text = message(leistung("N1", "weg")).replace(
        '<x:modulText><x:leikaTextmodul><code>02</code></x:leikaTextmodul><x:inhalt languageCode="de-DE">weg</x:inhalt></x:modulText>',
        '<x:leistungsbezeichnung languageCode="en">Bulky waste</x:leistungsbezeichnung>'
        '<x:leistungsbezeichnung languageCode="ger">Sperrmüll Abholung</x:leistungsbezeichnung>',
    )
    assert "leistungsbezeichnung" in text
    (service,) = xzufi.parse_message(text.encode()).services
    assert service.title == "Sperrmüll Abholung"


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><x:transfer xmlns:x="' + NS.encode() + b'"><x:schreibe><x:leistung><x:id>1</x:id>',
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            f'<x:transfer xmlns:x="{NS}">&c;</x:transfer>'
        ).encode("utf-16"),
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x:transfer xmlns:x="{NS}">&e;</x:transfer>'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><x:transfer xmlns:x="{NS}"/>'.encode(),
    ],
    ids=["truncated", "entity-bomb-utf16", "external-entity", "parameter-entity"],
)
def test_truncated_and_entity_messages_are_refused(hostile: bytes) -> None:
    with pytest.raises(xzufi.XzufiRefused) as refused:
        xzufi.parse_message(hostile)
    assert "not well-formed" in str(refused.value) or "DTD or entities" in str(refused.value)


def test_sizes_are_checked_before_anything_is_parsed_or_unpacked() -> None:
    with pytest.raises(xzufi.XzufiTooLarge):
        xzufi.check_size(b"<" + b" " * (9 * 1024 * 1024))
    with pytest.raises(xzufi.XzufiTooLarge):
        xzufi.check_size(zipped({"a.xml": b" " * (9 * 1024 * 1024)}))
    xzufi.check_size(gestattung("s").encode())  # a normal message passes
    xzufi.check_size(zipped({"a.xml": gestattung("s").encode()}))


def test_the_german_name_wins_over_a_citizens_name_sent_only_in_english() -> None:
    text = message(
        leistung(
            "G1",
            "Gaststättengewerbe Gestattung",
            extra='<x:modulText><x:leikaTextmodul><code>03</code></x:leikaTextmodul><x:inhalt languageCode="en">Serving permit</x:inhalt></x:modulText>',
        )
    )
    (service,) = xzufi.parse_message(text.encode()).services
    assert service.title == "Gaststättengewerbe Gestattung"


def test_names_titles_and_addresses_carry_no_markup() -> None:
    text = message(
        leistung(
            "M1",
            "Sperrmüll",
            extra=(
                "<x:modulText><x:leikaTextmodul><code>14</code></x:leikaTextmodul>"
                '<x:inhalt languageCode="de">Formulare</x:inhalt><x:weiterfuehrenderLink>'
                "<x:uri>https://www.geseke.de/sperrmuell.pdf</x:uri><x:titel>Antrag &lt;script&gt;evil()&lt;/script&gt;</x:titel>"
                "</x:weiterfuehrenderLink></x:modulText>"
            ),
        )
    )
    (service,) = xzufi.parse_message(text.encode()).services
    assert service.sections["forms"] == [{"title": "Antrag", "url": "https://www.geseke.de/sperrmuell.pdf"}]


def test_soft_hyphens_and_decomposed_umlauts_do_not_split_the_words_an_agent_searches() -> None:
    decomposed = "Sperrmu\u0308ll"  # "Sperrmüll" as some exports write it: u and a combining diaeresis
    raw = (
        '<x:modulText><x:leikaTextmodul><code>06</code></x:leikaTextmodul><x:inhalt languageCode="de">'
        f"&lt;p&gt;Sperr&amp;shy;müll wird zweimal im Jahr abgeholt; {decomposed}karten im Bürger\u200bbüro.&lt;/p&gt;"
        "</x:inhalt></x:modulText>"
    )
    (service,) = xzufi.parse_message(message(leistung("S1", f"{decomposed} Abholung", extra=raw)).encode()).services
    assert service.title == "Sperrmüll Abholung"
    assert service.sections["description"] == "Sperrmüll wird zweimal im Jahr abgeholt; Sperrmüllkarten im Bürgerbüro."


def test_xml_lang_and_a_code_in_its_own_namespace_are_read() -> None:
    text = message(leistung("L1", "weg")).replace(
        '<x:modulText><x:leikaTextmodul><code>02</code></x:leikaTextmodul><x:inhalt languageCode="de-DE">weg</x:inhalt></x:modulText>',
        '<x:modulText><x:leikaTextmodul><lc:code xmlns:lc="urn:xoev-de:xzufi:codeliste">02</lc:code></x:leikaTextmodul>'
        '<x:inhalt xml:lang="en">Lost property</x:inhalt><x:inhalt xml:lang="de">Fundsachen abholen</x:inhalt></x:modulText>',
    )
    assert "xml:lang" in text
    (service,) = xzufi.parse_message(text.encode()).services
    assert service.title == "Fundsachen abholen"


@pytest.mark.parametrize(("declared", "read"), [("2.2.1", True), ("2.2", True), ("2.3.0", False), ("2.20", False)])
def test_patch_releases_of_2_2_are_read_and_other_versions_refused(declared: str, read: bool) -> None:
    text = message(leistung("V1", "Fundsachen"), version=declared)
    if read:
        assert len(xzufi.parse_message(text.encode()).services) == 1
    else:
        with pytest.raises(xzufi.XzufiRefused, match=declared):
            xzufi.parse_message(text.encode())
