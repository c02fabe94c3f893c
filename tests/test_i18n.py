"""The message catalogues (decision 017): every marked message has a German translation that
uses the same parameters, and the extracted template is current (`make messages`)."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from backend.i18n import LOCALE_DIR, Message, _l, marked_messages, negotiate, placeholders, untranslated


def _catalogue(locale: str) -> dict[str, str]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po, locale=locale) if isinstance(m.id, str) and m.id}


def test_every_marked_message_has_a_german_translation() -> None:
    """Walks the messages marked in the code now (not a file someone may have forgotten to
    regenerate): `make messages` adds new ones to the catalogue, a person translates them."""
    missing = untranslated("de")
    assert missing == [], f"run `make messages` and translate in backend/locale/de: {missing}"


def test_translations_use_the_parameters_of_their_message() -> None:
    for msgid, text in _catalogue("de").items():
        assert placeholders(text) == placeholders(msgid), (msgid, text)


def test_the_template_is_the_extraction_of_today() -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as pot:
        template = {m.id for m in read_po(pot) if isinstance(m.id, str) and m.id}
    assert template == marked_messages(), "run `make messages`"
    assert set(_catalogue("de")) == set(_catalogue("en")) == template


def test_a_message_renders_its_parameters_in_either_language() -> None:
    message = _l("no cost base for {year}", year=2031)
    assert (message.render("de"), message.render("en"), str(message)) == (
        "Keine Kostenbasis für 2031",
        "no cost base for 2031",
        "no cost base for 2031",
    )
    # Parameters that do not fit the text: the bare text, not a failed error response.
    assert Message("no cost base for {year}", {"jahr": 2031}).render("de") == "no cost base for {year}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en;q=0.5, de;q=0.9", "de"),
        ("en, de", "en"),  # equal q-values: the client's order
        ("de-AT, en;q=0.1", "de"),
        ("de;q=0, en", "en"),
        ("fr;q=1, *;q=0.5, en;q=0.2", "de"),  # the wildcard outranks English here
        ("fr, en;q=0.3", "en"),
        ("fr", "de"),
        ("", "de"),
        (None, "de"),
        ("q=;;,;q=0.5", "de"),
        ("de;q=abc, en", "en"),
        ("EN_us", "en"),
    ],
)
def test_accept_language_is_negotiated_by_q_value(header: str | None, expected: str) -> None:
    assert negotiate(header, "de") == expected
