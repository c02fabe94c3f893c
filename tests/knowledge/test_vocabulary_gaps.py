"""Callers' words for what the catalogue names otherwise (issue 15, decision 026's amendment of
2026-12-07 "the lexical side"): the everyday words of a LeiKa action (Verrichtung) as search
terms of its entries, and a synonym that answers one word of the question, not two."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.knowledge import leika, search
from tests.knowledge.conftest import KREIS, SOEST
from tests.knowledge.conftest import search as ask
from tests.support.world import World

Client = httpx.AsyncClient
AGENT = (KREIS, "agent")


def keys(result: dict[str, Any]) -> list[str | None]:
    return [n["leikaKey"] for n in result["nodes"]]


def test_an_action_has_the_words_callers_use_for_it() -> None:
    assert "umziehen" in leika.action_words("99050012071000")  # Gewerbe Ummeldung
    assert "verloren" in leika.action_words("99085001036002")  # Reisepass Ersatz wegen Verlust
    assert "auslaufen" in leika.action_words("99010001020000")  # Aufenthaltserlaubnis Verlängerung
    assert leika.action_words("99050012000000") == ()  # the object itself has no action
    assert leika.action_words("99050012104000") == ()  # Anmeldung: "anmelden" is derived already
    assert leika.action_words("not a key") == ()


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    ("query", "key"),
    [
        # The catalogue says Ummeldung, the caller that the shop moves.
        ("Unser Gewerbe zieht um", "99050012071000"),
        # The catalogue says Verlängerung, the caller that the permit runs out.
        ("Meine Aufenthaltserlaubnis läuft aus", "99010001020000"),
    ],
)
async def test_the_words_of_an_action_find_its_entry(client: Client, world: World, query: str, key: str) -> None:
    result = await ask(client, world, AGENT, query, SOEST)
    assert keys(result)[0] == key, (query, result["interpretedAs"], result["nodes"][:3])


def _resolved(label: str, exact: list[list[str]], synonym: list[list[str]], frequency: dict[str, int]) -> Any:
    groups = [*exact, *synonym]
    return search._Resolved(
        label,
        exact,
        synonym,
        search._idf(5000, max(frequency[g[0]] for g in groups)),
        True,
        [" ".join(g) for g in groups],
        shown_as={tuple(g): " ".join(g) for g in groups},
        frequency_of={tuple(g): frequency[g[0]] for g in groups},
    )


def test_a_synonym_answers_one_word_of_the_question() -> None:
    frequency = {"auto": 30, "kraftfahrzeug": 120, "abgeschleppt": 4, "verwahrung": 6}
    auto = _resolved("auto", [["auto"]], [["kraftfahrzeug"]], frequency)
    towed = _resolved("abgeschleppt", [["abgeschleppt"]], [["kraftfahrzeug"], ["verwahrung"]], frequency)
    before = towed.weight
    search._one_concept_per_synonym([auto, towed], 5000)
    assert auto.synonym == [["kraftfahrzeug"]]  # the first word keeps it
    assert towed.synonym == [["verwahrung"]] and "kraftfahrzeug" not in towed.shown
    # Without the broad synonym the word is as telling as its own alternatives.
    assert towed.weight == pytest.approx(before * search._idf(5000, 6) / search._idf(5000, 120))


def test_a_word_keeps_a_shared_synonym_when_it_has_nothing_else() -> None:
    frequency = {"auto": 30, "kraftfahrzeug": 120, "kfz": 50}
    auto = _resolved("auto", [["auto"]], [["kraftfahrzeug"]], frequency)
    only = _resolved("karre", [], [["kraftfahrzeug"]], frequency)
    search._one_concept_per_synonym([auto, only], 5000)
    assert only.synonym == [["kraftfahrzeug"]]


@pytest.mark.usefixtures("catalogue")
async def test_one_catalogue_word_does_not_answer_two_words_of_the_question(client: Client, world: World) -> None:
    # "Auto" and "abgeschleppt" both have Kraftfahrzeug as a synonym; counted twice, the entries
    # "Kraftfahrzeug …" kept "abgeschleppte Fahrzeuge" out of the top three.
    result = await ask(client, world, AGENT, "Mein Auto wurde abgeschleppt", SOEST)
    assert any((k or "").startswith("99108008") for k in keys(result)[:3]), (result["interpretedAs"], result["nodes"])


@pytest.mark.usefixtures("catalogue")
async def test_the_one_who_does_it_joins_a_compound_of_the_catalogue(client: Client, world: World) -> None:
    # "bei der Wahl mithelfen": helfen → Helfer, with Wahl the catalogue's Wahlhelfer.
    result = await ask(client, world, AGENT, "Ich möchte bei der Wahl mithelfen", SOEST)
    assert any((k or "").startswith("99128008") for k in keys(result)[:3]), (result["interpretedAs"], result["nodes"])
