"""Markdown to safe, semantic HTML and to speakable text (pure functions, no database)."""

from __future__ import annotations

import itertools

import lxml.html

from backend.knowledge.rendering import article_html, markdown_to_html
from backend.knowledge.schemas import Contact, Link, OpeningHours, Sections
from backend.knowledge.speakable import short_lines, speak_phone, speakable_line, speakable_text


def test_script_tags_and_their_content_are_removed() -> None:
    html = markdown_to_html(
        "Vorher <script>alert('x')</script> nachher\n\n<script src=https://evil.example/x.js></script>"
    ).html
    assert "<script" not in html.lower() and "alert" not in html and "evil.example" not in html
    assert "Vorher" in html and "nachher" in html


def test_event_handlers_and_styles_are_removed() -> None:
    html = markdown_to_html(
        '<p onclick="steal()" style="color:red">Text</p> <img src=x onerror="steal()"> '
        '<a href="https://soest.de" onmouseover="steal()">Stadt Soest</a>'
    ).html
    assert "onclick" not in html and "onerror" not in html and "onmouseover" not in html
    assert "style=" not in html and "<img" not in html and "steal" not in html
    assert '<a href="https://soest.de"' in html


def test_javascript_and_data_links_are_removed() -> None:
    for source in (
        "[Klick](javascript:alert(1))",
        '<a href="javascript:alert(1)">Klick</a>',
        '<a href="JaVaScRiPt:alert(1)">Klick</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">Klick</a>',
        '<a href="vbscript:msgbox">Klick</a>',
    ):
        html = markdown_to_html(source).html
        root = lxml.html.fragment_fromstring(html, create_parent="div")
        assert [a.get("href") for a in root.iter("a")] == [], source  # no link survives
        assert "Klick" in root.text_content()  # the text stays


def test_allowed_links_keep_their_target_and_get_rel() -> None:
    html = markdown_to_html("[Termin buchen](https://termine.soest.de) oder [Mail](mailto:info@soest.de)").html
    assert 'href="https://termine.soest.de"' in html and 'href="mailto:info@soest.de"' in html
    assert 'rel="noopener noreferrer"' in html


def test_links_always_have_a_text_and_vague_texts_are_reported() -> None:
    rendered = markdown_to_html("Siehe [](https://www.geseke.de/abfall) und [hier](https://www.soest.de).")
    root = lxml.html.fragment_fromstring(rendered.html, create_parent="div")
    texts = [a.text_content().strip() for a in root.iter("a")]
    assert texts == ["www.geseke.de/abfall", "hier"]
    assert any("without text" in w for w in rendered.warnings)
    assert any("'hier'" in w for w in rendered.warnings)


def test_layout_tables_and_images_are_not_rendered() -> None:
    rendered = markdown_to_html("<table><tr><td>links</td><td>rechts</td></tr></table>\n\n![Foto](https://x/y.png)")
    assert "<table" not in rendered.html and "<td" not in rendered.html and "<img" not in rendered.html
    assert any("tables" in w for w in rendered.warnings) and any("images" in w for w in rendered.warnings)


def _heading_levels(html: str) -> list[int]:
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    return [
        int(el.tag[1]) for el in root.iter() if isinstance(el.tag, str) and el.tag in {f"h{i}" for i in range(1, 7)}
    ]


def test_headings_start_below_the_section_and_never_skip_a_level() -> None:
    html = markdown_to_html("# Erstens\n\n#### Viel zu tief\n\n## Zweitens\n\n###### Ganz tief\n\n<h1>Roh</h1>").html
    levels = _heading_levels(html)
    assert levels[0] == 3
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    assert min(levels) >= 3


def test_article_html_is_one_h1_then_h2_sections_in_reading_order() -> None:
    sections = Sections(
        description="## Ablauf\n\nSie kommen vorbei.\n\n#### Details\n\nMehr.",
        documents="- Ausweis\n- Foto",
        fees="37,00 €",
        opening_hours=[OpeningHours(weekday=1, opens="08:00", closes="12:00")],
        contacts=[Contact(label="Bürgerbüro", phone="02921 103-0")],
        online_service=Link(title="Termin online buchen", url="https://termine.soest.de"),
    )
    rendered = article_html("Personalausweis <beantragen>", "Kurz & knapp.", sections)
    levels = _heading_levels(rendered.html)
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    assert "&lt;beantragen&gt;" in rendered.html and "Kurz &amp; knapp." in rendered.html
    assert "<table" not in rendered.html and "<dl>" in rendered.html  # opening hours: a list, no layout table
    assert 'href="tel:+4929211030"' in rendered.html
    order = [
        rendered.html.index(h)
        for h in ("Beschreibung", "Erforderliche Unterlagen", "Gebühren", "Öffnungszeiten", "Kontakt", "Online-Dienst")
    ]
    assert order == sorted(order)


def test_phone_numbers_are_spelt_digit_by_digit_in_their_groups() -> None:
    assert speak_phone("02921 103-0") == "0 2 9 2 1, 1 0 3, 0"
    assert speak_phone("+49 2942 500-0") == "0 2 9 4 2, 5 0 0, 0"
    assert speak_phone("+4929211030") == "0 2 9 2 1, 1 0 3 0"
    assert "0 2 9 2 1, 3 0, 0" in speakable_line("Rufen Sie 02921 30-0 an.")


def test_dates_times_money_and_abbreviations_are_written_as_spoken() -> None:
    line = speakable_line(
        "Am 24.12.2026 und 2027-01-02 geschlossen, Mo–Fr 8:00–12:30 Uhr, z. B. 28,80 € gem. § 5 Abs. 2."
    )
    assert "24. Dezember 2026" in line and "2. Januar 2027" in line
    assert "Montag bis Freitag 8 Uhr bis 12 Uhr 30" in line
    assert "zum Beispiel" in line and "28 Euro 80" in line and "gemäß Paragraf 5 Absatz 2" in line
    assert "€" not in line and "z. B." not in line and "§" not in line


def test_speakable_text_starts_with_the_summary_and_has_short_plain_lines() -> None:
    sections = Sections(
        description="Der **Ausweis** ist zehn Jahre gültig. Bei Verlust melden Sie ihn sofort. " * 3,
        documents="- bisheriger Ausweis\n- ein biometrisches Foto",
        opening_hours=[
            OpeningHours(weekday=1, opens="08:00", closes="12:30"),
            OpeningHours(weekday=1, opens="14:00", closes="18:00"),
        ],
        contacts=[Contact(label="Bürgerbüro Soest", phone="02921 103-0", email="buergerbuero@soest.example")],
        online_service=Link(title="Termin buchen", url="https://termine.soest.example/"),
    )
    text = speakable_text("Personalausweis beantragen", "Sie beantragen den Ausweis im Bürgerbüro.", sections)
    lines = text.splitlines()
    assert lines[0] == "Personalausweis beantragen"
    assert lines[1] == "Sie beantragen den Ausweis im Bürgerbüro."  # the summary comes first
    assert max(len(line) for line in lines) <= 80
    assert "Montag: 8 Uhr bis 12 Uhr 30 und 14 Uhr bis 18 Uhr." in lines
    assert "bisheriger Ausweis" in lines and "Unterlagen:" in lines
    assert "Bürgerbüro Soest: Telefon 0 2 9 2 1, 1 0 3, 0." in text
    assert "Termin buchen: termine.soest.example" in lines
    assert not any(marker in text for marker in ("**", "<", ">", "https://", "- "))


def test_short_lines_break_long_sentences_at_words() -> None:
    lines = short_lines("Dies ist ein sehr langer Satz, " * 8, width=40)
    assert all(len(line) <= 40 for line in lines) and len(lines) > 3
