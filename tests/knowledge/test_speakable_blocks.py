"""Speakable text blocks: every piece of an article's text is read exactly once, in order.

Two agents hear articles through screen readers; a block that is dropped or read twice changes
what they tell the caller (pure functions, no database).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.knowledge.rendering import html_text_blocks, markdown_to_html
from backend.knowledge.schemas import Sections
from backend.knowledge.speakable import speakable_text


def blocks(markdown: str) -> list[str]:
    return html_text_blocks(markdown_to_html(markdown).html)


def words(text: str) -> list[str]:
    """The words of a text, without Markdown markers, list numbers or HTML tags."""
    return re.findall(r"[^\W\d_]+", re.sub(r"<[^>]*>", " ", text))


def test_a_loose_list_is_read_item_by_item() -> None:
    assert blocks("- Personalausweis\n\n- Meldebescheinigung") == ["Personalausweis", "Meldebescheinigung"]


def test_a_loose_list_of_documents_is_in_the_speakable_text() -> None:
    text = speakable_text("Ummelden", "", Sections(documents="- Personalausweis\n\n- Meldebescheinigung"))
    lines = text.splitlines()
    assert lines[lines.index("Unterlagen:") + 1 :] == ["Personalausweis", "Meldebescheinigung"]


def test_a_quote_is_read_whole_with_its_emphasis_inline() -> None:
    assert blocks("> Bitte **Termin** vereinbaren.") == ["Bitte Termin vereinbaren."]
    assert blocks("> Erstens *dies*.\n>\n> Zweitens das.") == ["Erstens dies.", "Zweitens das."]


def test_nested_list_items_are_blocks_of_their_own_read_once() -> None:
    source = "1. Antrag\n   - Foto\n   - **Ausweis** alt\n\n   Danach warten.\n2. Gebühr"
    assert blocks(source) == ["Antrag", "Foto", "Ausweis alt", "Danach warten.", "Gebühr"]
    assert blocks("1. Antrag\n   - Foto\n   - **Ausweis** alt") == ["Antrag", "Foto", "Ausweis alt"]


def test_links_and_code_stay_inline_in_paragraphs_and_list_items() -> None:
    paragraph = "Siehe [Termine](https://termine.soest.de/) und `Formular A`."
    assert blocks(paragraph) == ["Siehe Termine (Adresse: termine.soest.de) und Formular A."]
    loose = "- Online: [Termine](https://termine.soest.de/) mit `Vorgangsnummer`\n\n- Per [Mail](mailto:a@soest.de)"
    assert blocks(loose) == ["Online: Termine (Adresse: termine.soest.de) mit Vorgangsnummer", "Per Mail"]


def test_headings_end_in_a_colon_and_line_breaks_separate_words() -> None:
    assert blocks("# Gebühren\n\n> ## Ermäßigt\n> Nur mit Nachweis") == ["Gebühren:", "Ermäßigt:", "Nur mit Nachweis"]
    assert blocks("Markt eins  \nSoest") == ["Markt eins Soest"]


@pytest.mark.parametrize(
    "source",
    [
        "# Unterlagen\n\nBitte bringen Sie mit:\n\n- Personalausweis\n\n- Meldebescheinigung\n  oder Reisepass\n\n"
        "Danach *weiter* im Text.",
        "> Bitte **Termin** vereinbaren.\n>\n> - Online\n> - Telefonisch\n\nSonst warten.",
        "1. Antrag stellen\n   - Foto\n   - **Ausweis** alt\n\n     Hinweis zum Ausweis\n2. Gebühr zahlen\n\nEnde",
        "Adresse:  \nMarkt eins\\\nSoest\n\n```\nzeile eins\nzeile zwei\n```",
        "<dl><dt>Montag</dt><dd>vormittags</dd></dl>\n\nLose <em>Zeile</em> ohne Absatz<br>und weiter",
        "- außen\n  1. innen\n     > zitiert *hier*\n\n  danach außen\n- zuletzt `code` Wort",
    ],
)
def test_every_word_is_read_exactly_once_in_order(source: str) -> None:
    assert words(" ".join(blocks(source))) == words(source)


_WORD = st.sampled_from(["Antrag", "Ausweis", "Foto", "Gebühr", "Termin", "Bürgerbüro", "Frist", "Straße"])
_LINE = st.lists(
    st.tuples(_WORD, st.sampled_from(["{}", "**{}**", "*{}*", "`{}`"])).map(lambda t: t[1].format(t[0])),
    min_size=1,
    max_size=4,
).map(" ".join)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def _markdown(depth: int) -> st.SearchStrategy[str]:
    """Paragraphs, headings, tight and loose lists and quotes, nested up to `depth`."""
    if depth == 0:
        return _LINE
    inner = _markdown(depth - 1)
    items = st.lists(inner, min_size=1, max_size=3)
    return st.one_of(
        _LINE,
        _LINE.map(lambda line: "## " + line),
        st.tuples(items, st.sampled_from(["\n", "\n\n"])).map(
            lambda t: t[1].join("- " + _indent(item, "  ").lstrip() for item in t[0])
        ),
        items.map(lambda xs: "\n\n".join(f"1. {_indent(x, '   ').lstrip()}" for x in xs)),
        inner.map(lambda text: _indent(text, "> ").replace("\n\n", "\n>\n")),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_markdown(3), min_size=1, max_size=4).map("\n\n".join))
def test_every_word_of_generated_markdown_is_read_exactly_once_in_order(source: str) -> None:
    assert words(" ".join(blocks(source))) == words(source)
