"""Synonym rules from OpenThesaurus (backend/knowledge/thesaurus.py; decision 026's amendment of
2026-12-07): built only onto the catalogue's words, weaker than written rules, and no generic word
explodes a question. Pure functions, no database; the build's encoder is replaced by a table."""

from __future__ import annotations

from collections.abc import Sequence

from backend.knowledge import analysis, search, thesaurus

# A made-up dump in OpenThesaurus' format: one group a line, marks in parentheses.
DUMP = """\
# OpenThesaurus - German Thesaurus in text format
Gefängnis;Knast (ugs.);Haftanstalt;Kittchen (ugs.);Bau (ugs.)
Hund;Köter (derb);Wauwau (ugs.);Fellnase (ugs.)
Sache;Ding;Gegenstand;Objekt;Teil;Zeug;Artikel;Element;Stück;Kram;Krempel;Dings;Etwas
einsperren;einbuchten (ugs.);inhaftieren
Erteilung;Vergabe;Verleihung
Pfarrer;Pastor;Geistlicher
Schlüssel;Identifikationsnummer;Kennung
"""
CATALOGUE = thesaurus.CatalogueWords(
    [
        "Haftanstalt Besuchserlaubnis",
        "Hundesteuer Hund Anmeldung",
        "Inhaftieren Anzeige",
        "Identifikationsnummer Vergabe",
        *(f"Erlaubnis {n} Erteilung" for n in range(thesaurus.MAX_TARGET_NAMES + 1)),
    ]
)
CLOSE = {("Knast", "Haftanstalt"): 0.62, ("Kittchen", "Haftanstalt"): 0.5, ("einbuchten", "inhaftieren"): 0.45}


def _encoder(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Stands in for the sentence encoder: the pairs above are close, every other is far."""
    return [CLOSE.get(pair, 0.1) for pair in pairs]


def _rules() -> dict[str, list[str]]:
    groups = thesaurus.groups_of(DUMP.splitlines())
    return thesaurus.keep_close(thesaurus.derive_rules(groups, CATALOGUE, analysis.default_lexicon()), _encoder)


def test_a_caller_word_reaches_the_catalogue_word() -> None:
    rules = _rules()
    assert rules["knast"] == ["haftanstalt"]
    assert rules["kittchen"] == ["haftanstalt"]
    assert rules["einbuchten"] == ["inhaftieren"]  # verbs onto verbs


def test_only_catalogue_words_are_targets_and_catalogue_words_are_no_keys() -> None:
    rules = _rules()
    assert "pfarrer" not in rules and "pastor" not in rules  # no catalogue word in the group
    assert "haftanstalt" not in rules  # the catalogue speaks it already
    assert all(len(targets) <= thesaurus.MAX_TARGETS for targets in rules.values())


def test_noise_is_left_out() -> None:
    rules = _rules()
    assert "bau" not in rules  # shorter than a key may be ("graben" would meet "Grab")
    assert "koter" not in rules  # marked derb
    assert not {"ding", "zeug", "kram"} & set(rules)  # a group too large to be synonyms
    assert "vergabe" not in rules and "verleihung" not in rules  # "Erteilung" is in too many names
    assert "schlussel" not in rules  # another sense of the word: the encoder finds it far
    assert "wauwau" not in rules  # far by the (stand-in) encoder too: filtered the same way


def test_marks_and_word_classes_are_read() -> None:
    term = thesaurus.parse_term("Kittchen (ugs., veraltend)")
    assert term.word == "Kittchen" and term.marks == {"ugs.", "veraltend"}
    assert term.word_class == "noun"
    assert thesaurus.parse_term("(sich) einbuchten").word_class == "verb"
    assert thesaurus.parse_term("hinter Gitter bringen").word_class is None  # phrases are not used
    assert thesaurus.parse_term("schnell").word_class is None  # nor adjectives


def test_the_shipped_rules_expand_a_caller_word_onto_the_catalogue() -> None:
    concepts = {c.label: c for c in analysis.analyse("Mein Köter ist weggelaufen").concepts}
    assert ("hund",) in {a.words for a in concepts["koter"].strong if a.origin == "thesaurus"}


def test_a_written_rule_wins_and_a_rule_matches_only_its_word() -> None:
    lexicon = analysis.default_lexicon()
    written = {rule.key for rule in lexicon.synonyms if not rule.thesaurus}
    shipped = [rule for rule in lexicon.synonyms if rule.thesaurus]
    assert shipped and not written & {rule.key for rule in shipped}
    # Written rules come first, so the first rule for a word is a written one when there is one.
    first_thesaurus = next(n for n, rule in enumerate(lexicon.synonyms) if rule.thesaurus)
    assert all(rule.thesaurus for rule in lexicon.synonyms[first_thesaurus:])
    # "will" is not "Wille" (an ending more, as written rules allow): a thesaurus key is a word.
    wille = analysis.SynonymRule(("wille",), False, (("beschluss",),), thesaurus=True)
    assert not wille.matches(["will"], 0) and wille.matches(["wille"], 0)


def test_a_generic_word_does_not_explode_the_query() -> None:
    plan = analysis.analyse("Ich muss da mal was machen wegen der Sache mit dem Ding und so Zeug")
    expansions = [a for c in plan.concepts for a in c.strong if a.origin == "thesaurus"]
    assert expansions == []
    lines = list(analysis.lines_of(thesaurus.OUTPUT))
    assert all(len(line.partition("=>")[2].split(",")) <= thesaurus.MAX_TARGETS for line in lines)


def test_thesaurus_words_stand_in_only_for_a_word_the_index_lacks() -> None:
    lexicon = analysis.default_lexicon()
    concept = analysis.word_concept("koter", lexicon)
    # The index lacks "koter": its thesaurus word is searched, weighted below a written synonym.
    lacking = {"hund": [("hund", 40)]}
    [resolved] = search._resolve(concept, lacking, 5000, lexicon)
    assert resolved.synonym == [["hund"]]
    written = analysis.word_concept("koter", lexicon)  # the same, as if a written synonym said it
    written.strong = [
        analysis.Alternative(a.words, "synonym") if a.origin == "thesaurus" else a for a in written.strong
    ]
    assert resolved.weight == search._resolve(written, lacking, 5000, lexicon)[0].weight * search.THESAURUS_WEIGHT
    # A word the index has (another sense, often): the thesaurus' words are not searched.
    having = {"koter": [("kot", 2)], "hund": [("hund", 40)]}
    [resolved] = search._resolve(concept, having, 5000, lexicon)
    assert resolved.synonym == [] and resolved.exact == [["kot"]]


def test_a_part_of_the_catalogues_compounds_is_a_catalogue_word() -> None:
    catalogue = thesaurus.CatalogueWords(["Anzeige wegen Lärmbelästigung", "Verkehrslärm"], {"larm"})
    assert catalogue.find("larm") == "larm"  # indexed with the titles' compound parts
    assert catalogue.named("larm") == 2  # generic or not by the names that contain it
    assert catalogue.find("krach") is None
