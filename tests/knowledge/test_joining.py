"""Compounds said as two words, the nouns of strong verbs, and words said as where or when
(pure functions, no database; decision 026's amendment of 2026-12-07)."""

from __future__ import annotations

from backend.knowledge import analysis, joining, search


def _alternatives(query: str) -> dict[str, set[tuple[str, ...]]]:
    return {c.label: {a.words for a in c.strong} for c in analysis.analyse(query).concepts}


def test_two_words_of_a_clause_make_the_catalogues_compound() -> None:
    alternatives = _alternatives("Dürfen wir Ostern im Dorf wieder ein großes Feuer machen?")
    assert ("osterfeuer",) in alternatives["ostern"]
    assert ("osterfeuer",) in alternatives["feuer"]
    # Either order, with the linking element: Geld für ein Kind is Kindergeld.
    assert ("kindergeld",) in _alternatives("Gibt es Geld für mein Kind?")["geld"]


def test_words_of_different_clauses_are_not_joined() -> None:
    alternatives = _alternatives("Der Vater zahlt nicht für die Kinder, bekomme ich Geld?")
    assert ("kindergeld",) not in alternatives["geld"]


def test_only_words_the_catalogue_uses_are_made() -> None:
    vocabulary = frozenset({"osterfeuer", "hundesteuer"})
    assert joining.joined_compounds([["feuer"], ["ostern"]], vocabulary) == [(1, 0, "osterfeuer")]
    assert joining.joined_compounds([["hund"], ["steuer"]], vocabulary) == [(0, 1, "hundesteuer")]
    assert joining.joined_compounds([["katze"], ["steuer"]], vocabulary) == []
    # A word is not joined with itself, nor made into the word it already is.
    assert joining.joined_compounds([["hundesteuer"]], vocabulary) == []


def test_strong_verbs_find_their_nouns() -> None:
    assert joining.ablaut_noun("austreten") == "austritt"
    assert joining.ablaut_noun("umziehen") == "umzug"
    assert joining.ablaut_noun("abreissen") == "abriss"
    assert joining.ablaut_noun("verlieren") == "verlust"
    assert joining.ablaut_noun("anmelden") is None
    alternatives = _alternatives("Wie trete ich aus der Kirche aus?")
    assert ("austritt",) in alternatives["austrete"]
    assert ("kirchenaustritt",) in alternatives["kirche"]


def test_latin_verbs_find_their_nouns() -> None:
    assert "adoption" in analysis.derived_forms("adoptieren")
    assert "reklamation" in analysis.derived_forms("reklamieren")


def test_words_said_as_where_or_when_count_less() -> None:
    plan = analysis.analyse("Ich habe meinen Reisepass im Urlaub verloren")
    adjunct = {c.label: c.adjunct for c in plan.concepts}
    assert adjunct == {"reisepass": False, "urlaub": True, "verloren": False}
    said = analysis.analyse("Was muss ich beim Standesamt melden?").concepts
    assert [c.label for c in said if c.adjunct] == ["standesamt"]
    assert not any(c.adjunct for c in analysis.analyse("Ich brauche einen neuen Reisepass").concepts)
    # The weight a word counts in the search, said plainly and said as where.
    found = {"urlaub": [("urlaub", 3)]}
    lexicon = analysis.default_lexicon()
    plain = analysis.word_concept("urlaub", lexicon)
    where = analysis.word_concept("urlaub", lexicon)
    where.adjunct = True
    weight = search._resolve(plain, found, 5000, lexicon)[0].weight
    assert search._resolve(where, found, 5000, lexicon)[0].weight == weight * search.ADJUNCT_WEIGHT < weight


def test_the_one_who_does_it_joins_a_compound() -> None:
    vocabulary = frozenset({"wahlhelfer", "hundehalter"})
    assert (0, 1, "wahlhelfer") in joining.joined_compounds([["wahl"], ["mithelfen"]], vocabulary)
    assert (0, 1, "hundehalter") in joining.joined_compounds([["hund"], ["halten"]], vocabulary)
    assert joining.joined_compounds([["wahl"], ["laufen"]], vocabulary) == []  # no such compound
