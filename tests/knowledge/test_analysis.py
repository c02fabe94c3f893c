"""The question analysis, LeiKa keys and the import parsers (pure functions, no database)."""

from __future__ import annotations

import json

import pytest

from backend.knowledge import analysis, leika
from backend.knowledge.importing import parse_import


def _alternatives(query: str) -> dict[str, set[tuple[str, ...]]]:
    plan = analysis.analyse(query)
    return {c.label: {a.words for a in c.strong} for c in plan.concepts}


def test_folding_matches_what_postgres_unaccent_does() -> None:
    assert analysis.fold("Straßenreinigung") == "strassenreinigung"
    assert analysis.fold("Kündigung ÄÖÜ ẞ é") == "kundigung aou ss e"
    assert analysis.umlaut_variants("kuendigung") == ["kundigung"]
    assert analysis.umlaut_variants("fuehrerschein") == ["fuhrerschein"]
    assert analysis.umlaut_variants("personalausweis") == []


def test_compounds_split_into_known_parts() -> None:
    vocabulary = analysis.default_lexicon().vocabulary
    assert analysis.split_compound("hundesteuer", vocabulary) == ["hunde", "steuer"]
    assert analysis.split_compound("strassenreinigungsgebuhr", vocabulary) == ["strassenreinigung", "gebuhr"]
    assert analysis.split_compound("parkplatzabsperrung", vocabulary) == ["parkplatz", "absperrung"]
    assert analysis.split_compound("erteilung", vocabulary) is None
    assert set(analysis.decompose("hundesteuerbescheid", vocabulary)) >= {"hundesteuer", "hunde", "steuer", "bescheid"}


def test_stop_words_and_aspects_are_not_searched() -> None:
    plan = analysis.analyse("Hallo, was kostet denn eigentlich ein Reisepass und wann haben Sie geöffnet?")
    assert [c.label for c in plan.concepts] == ["reisepass"]
    assert plan.aspects == ["fees", "opening_hours"]


@pytest.mark.parametrize("article", ["nen", "'nen", "nem", "ner"])
def test_the_article_as_said_on_the_phone_is_not_searched(article: str) -> None:
    # Without it, "nen" (einen) was looked up as a word and matched "betriebenen".
    plan = analysis.analyse(f"Ich hab {article} Betrieb")
    assert [c.label for c in plan.concepts] == ["betrieb"]


@pytest.mark.parametrize("contraction", ["fürs", "aufs", "übers", "fürn"])
def test_a_preposition_with_its_article_as_said_is_not_searched(contraction: str) -> None:
    # "brauche nen termin fürs bürgerbüro" searched "furs" as a word.
    plan = analysis.analyse(f"brauche nen termin {contraction} bürgerbüro")
    assert [c.label for c in plan.concepts] == ["burgerburo"]


def test_a_comparative_is_not_searched_and_moving_out_is_a_move() -> None:
    # "größere" found Großhandel and Großraum; "ausgezogen" found the land register's Auszug.
    assert [c.label for c in analysis.analyse("ich brauche eine größere Mülltonne").concepts] == ["mulltonne"]
    assert ("umzug",) in _alternatives("mein Mann ist ausgezogen")["ausgezogen"]


def test_colloquial_words_get_the_official_terms() -> None:
    alternatives = _alternatives("Ich hab ein Knöllchen bekommen, und mein Sohn braucht Bafög")
    assert ("verwarnungsgeld",) in alternatives["knollchen"]
    assert ("ausbildungsforderung",) in alternatives["bafog"]
    # Typewriter umlauts find the same synonym.
    assert ("verwarnungsgeld",) in _alternatives("Knoellchen")["knoellchen"]


def test_phrases_and_prefix_keys() -> None:
    alternatives = _alternatives("Ich möchte mein Auto anmelden")
    assert ("kraftfahrzeug", "zulassung") in alternatives["auto anmelden"]
    assert ("ausstellung",) in _alternatives("Wie beantrage ich das")["beantrage"]


def test_separable_verbs_are_put_back_together() -> None:
    alternatives = _alternatives("Wie melde ich meinen alten Wagen ab, der ist Schrott")
    assert ("abmelde",) in alternatives["abmelde"] and ("abmeldung",) in alternatives["abmelde"]


def test_verbs_find_the_catalogue_nouns() -> None:
    assert analysis.derived_forms("einburgern") == ["einburgerung"]
    assert analysis.derived_forms("verkauft") == ["verkauf"]
    assert analysis.derived_forms("gemeldet") == ["meld"]


def test_generic_words_are_not_topics() -> None:
    plan = analysis.analyse("neu beantragen")
    assert plan.concepts and not any(c.topic for c in plan.concepts)
    assert all(c.topic for c in analysis.analyse("Personalausweis verloren").concepts[:1])


def test_leika_keys_are_validated_and_found_in_text() -> None:
    assert leika.is_leika_key("99008001012000")
    assert leika.leika_key_problem("99008001012000") is None
    assert "14 digits" in str(leika.leika_key_problem("9900800101200"))
    assert "starts with 99" in str(leika.leika_key_problem("12008001012000"))
    assert "without separators" in str(leika.leika_key_problem("99 008 001 012 000"))
    assert leika.find_leika_key("Schlüssel 99 008 001 012 000 bitte") == "99008001012000"
    assert leika.leika_key_prefix("99008001") == "99008001"
    assert leika.leika_key_prefix("Personalausweis") is None
    plan = analysis.analyse("99008001012000")
    assert plan.leika_key == "99008001012000" and plan.concepts == []


def test_catalogue_rows_are_checked_and_reported_by_line() -> None:
    text = (
        "leika_key,name,typisierung,ozg_leistung\n"
        "99008001000000,Personalausweis,1,Personalausweis\n"
        "9900800100000,Zu kurz,1,x\n"
        '99008001012000,"Personalausweis\nAusstellung",1,Personalausweis\n'
        "99008001000000,Doppelt,1,x\n"
        "99008001011000,,1,x\n"
    )
    entries, problems = leika.parse_catalogue(text)
    assert [e.leika_key for e in entries] == ["99008001000000", "99008001012000"]
    assert entries[1].name == "Personalausweis Ausstellung"  # line breaks inside names are folded
    assert [(p.line, p.field) for p in problems] == [(3, "leika_key"), (6, "leika_key"), (7, "name")]
    _, missing = leika.parse_catalogue("key,title\n1,x\n")
    assert missing[0].line == 1 and "missing columns" in missing[0].message


@pytest.mark.parametrize("as_array", [False, True])
def test_json_imports_report_bad_rows_by_line(as_array: bool) -> None:
    good = {"externalId": "a-1", "title": "Sperrmüll", "summary": "Abholung", "leikaKey": "99001009004002"}
    rows = [
        good,
        {"externalId": "a-2", "title": "Hund", "summary": "x", "leikaKey": "12345"},
        {"externalId": "a-3", "title": "Pass", "summary": "x", "colour": "red"},
        {**good, "externalId": "a-4"},
    ]
    if as_array:
        text = "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"
        expected_lines = [2, 3, 4, 5]
    else:
        text = "\n".join(json.dumps(r) for r in rows[:2]) + "\n{not json\n" + "\n".join(json.dumps(r) for r in rows[2:])
        expected_lines = [1, 2, 3, 4, 5]
    parsed = parse_import(text)
    assert [line for line, _, _ in parsed] == expected_lines
    problems = {line: problem for line, row, problem in parsed if problem}
    ok = [row.external_id for _, row, _ in parsed if row]
    assert ok == ["a-1", "a-4"]
    key_line, unknown_line = (3, 4) if as_array else (2, 4)
    assert problems[key_line].field == "leikaKey"
    assert "colour" in problems[unknown_line].message
    if not as_array:
        assert problems[3].message.startswith("not JSON")


# ---------------------------------------------------------------------------------- lemmas, compounds, persons (026)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("abgemeldet", "abmelden"),
        ("geheiratet", "heiraten"),
        ("umgezogen", "umziehen"),
        ("parkausweise", "parkausweis"),
    ],
)
def test_a_word_is_also_searched_in_its_dictionary_form(word: str, expected: str) -> None:
    assert analysis.lemma(word) == expected
    concept = analysis.word_concept(word, analysis.default_lexicon())
    assert (expected,) in [a.words for a in concept.strong]


def test_a_separable_verb_is_searched_as_the_whole_verb() -> None:
    """ "Wie melde ich mein Auto ab?" — abmelden, as "abgemeldet" is."""
    concept = analysis.analyse("Wie melde ich mein Auto ab?").concepts[0]
    assert ("abmelden",) in [a.words for a in concept.strong]


@pytest.mark.parametrize(
    ("word", "parts"),
    [("bewohnerparkausweis", ["bewohner", "parkausweis"]), ("anwohnerparkausweis", ["anwohner", "parkausweis"])],
)
def test_a_compound_with_a_modifier_only_the_dictionary_knows_splits(word: str, parts: list[str]) -> None:
    assert analysis.split_compound(word, analysis.default_lexicon().vocabulary) == parts
    assert {"parkausweis", "ausweis"} <= set(analysis.compound_parts(word))


def test_compound_parts_fold_umlauts_and_sharp_s() -> None:
    """ "Straßenführerschein" and "Strassenfuehrerschein" are the same word to the index."""
    assert analysis.words("Bewohnerparkausweis Straße Führerschein") == [
        "bewohnerparkausweis",
        "strasse",
        "fuhrerschein",
    ]
    concept = analysis.word_concept("bewohnerparkausweis", analysis.default_lexicon())
    assert ("bewohner", "parkausweis") in [a.words for a in concept.strong]


@pytest.mark.parametrize(
    ("question", "person"),
    [
        ("stellen Sie mich zu Herrn Schulte durch", True),
        ("Können Sie mich bitte mit Frau Schneider vom Bauamt verbinden?", True),
        ("Ich möchte mit Herrn Müller sprechen", True),
        ("Wer ist der Sachbearbeiter für Wohngeld?", True),
        ("Meine Frau braucht einen neuen Pass", False),
        ("Meine Mutter Frau Meier braucht Pflegegeld", False),
        ("Geben Sie mir bitte Herrn Schmidt", True),
        ("Ich hätte gern Herrn Becker vom Ordnungsamt", True),
        ("Ist Frau Kaiser heute im Büro?", True),
        ("Haben Sie die Nummer vom Hausarzt Dr. Meier?", True),
        ("Ich hätte gern einen Pass für meine Frau Anna", False),
        ("Wie melde ich mein Auto ab?", False),
    ],
)
def test_a_question_for_a_person_is_recognised(question: str, person: bool) -> None:
    assert analysis.asks_for_person(question) is person


@pytest.mark.parametrize(
    ("question", "offices"),
    [
        ("wann hat das bürgerbüro auf", ["bürgerbüro"]),
        ("Wann ist das Standesamt offen?", ["Standesamt"]),
        ("telefonnummer vom straßenverkehrsamt", ["straßenverkehrsamt"]),
        ("ist das ordnungsamt samstags geöffnet", ["ordnungsamt"]),
        ("wie erreiche ich das jugendamt", ["jugendamt"]),
        ("wo finde ich die zulassungsstelle", ["zulassungsstelle"]),
        ("ich möchte einen termin im bürgerbüro", ["bürgerbüro"]),
        ("Termin beim Straßenverkehrsamt", ["Straßenverkehrsamt"]),
        ("termin für einen personalausweis", []),
        # a service named beside the office, or no office at all: not for the directory
        ("Wo ist das Fundbüro? Ich hab meinen Schlüssel verloren", []),
        ("wie lange dauert der bauantrag beim bauamt", []),
        ("wann hat der baumarkt offen", []),
        ("Personalausweis beantragen", []),
        ("bauamt", []),
    ],
)
def test_a_question_for_an_offices_hours_or_number_names_the_office(question: str, offices: list[str]) -> None:
    plan = analysis.analyse(question, analysis.default_lexicon())
    assert [o.casefold() for o in analysis.office_named(plan)] == [o.casefold() for o in offices]


# ------------------------------------------------------------------- noun lemmas, loose compounds (issue 15)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("tische", "tisch"), ("steuern", "steuer"), ("urkunden", "urkunde"), ("papiere", "papier")],
)
def test_a_word_typed_in_lower_case_is_also_searched_as_its_noun(word: str, expected: str) -> None:
    """simplemma reads a lower-case word as a verb (tische → tischen); callers type in lower case."""
    assert analysis.lemma(word) != expected
    assert analysis.lemmas(word) == [expected]
    concept = analysis.word_concept(word, analysis.default_lexicon())
    assert (expected,) in [a.words for a in concept.strong]


def test_a_word_the_casing_marks_as_no_noun_keeps_its_verb_form() -> None:
    """In "Wir wollen Tische stellen" the capitals mark nouns: "stellen" is a verb, not Stelle."""
    assert analysis.lemmas("papiere", noun=False) == ["papieren"]
    plan = analysis.analyse("Wir wollen Tische auf den Gehweg stellen")
    stellen = next(c for c in plan.concepts if c.label == "stellen")
    assert ("stelle",) not in [a.words for a in stellen.strong]
    tische = next(c for c in plan.concepts if c.label == "tische")
    assert ("tisch",) in [a.words for a in tische.strong]


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("studentenbude", ["student", "bude"]),  # a rest the dictionary knows, not "enbude"
        ("imbisswagen", ["imbiss", "wagen"]),  # two dictionary words, neither in the catalogue's names
        ("angelschein", ["angel", "schein"]),
        ("kirchenaustritt", ["kirche", "austritt"]),
        ("parkplatzabsperrung", ["parkplatz", "absperrung"]),
    ],
)
def test_a_compound_of_words_only_the_dictionary_knows_splits_at_a_word(word: str, parts: list[str]) -> None:
    assert analysis.split_compound(word, analysis.default_lexicon().vocabulary) == parts


@pytest.mark.parametrize("word", ["verloren", "beantragen", "abgemeldet", "kantine", "internet", "morgen"])
def test_a_plain_word_does_not_split(word: str) -> None:
    assert analysis.split_compound(word, analysis.default_lexicon().vocabulary) is None


@pytest.mark.parametrize(
    ("word", "known"), [("tische", True), ("betreiben", True), ("persnalausweis", False), ("hundesteur", False)]
)
def test_the_dictionary_tells_a_word_from_a_typo(word: str, known: bool) -> None:
    """The typo correction leaves words the dictionary knows alone (search._correct_typos)."""
    assert analysis.is_german_word(word) is known


def test_a_separable_verbs_particle_joins_the_verb_not_a_noun_before_it() -> None:
    """ "Mein Laden zieht in eine andere Straße um": umziehen (and its synonyms), and the shop is
    a Laden, not "umladen"."""
    concepts = {
        c.label: [a.words for a in c.strong]
        for c in analysis.analyse("Mein Laden zieht in eine andere Straße um, was muss ich melden?").concepts
    }
    assert ("umziehen",) in concepts["umzieht"]
    assert ("umzug",) in concepts["umzieht"]  # the synonyms of the dictionary form
    assert ("gewerbe",) in concepts["laden"]
    assert "umladen" not in concepts


def test_after_an_article_or_possessive_comes_a_noun_in_lower_case_too() -> None:
    """Typed all small, "mein laden zieht um" has no casing to tell the noun: the word after
    "mein" is one, so the particle joins "zieht" (umziehen), and the shop stays a Laden."""
    concepts = {c.label: [a.words for a in c.strong] for c in analysis.analyse("mein laden zieht um").concepts}
    assert ("umziehen",) in concepts["umzieht"]
    assert ("gewerbe",) in concepts["laden"]
    assert "umladen" not in concepts
    # Without a determiner before it, the first word still may be the verb: "melde das Auto ab".
    assert ("abmelden",) in _alternatives("melde das auto ab")["abmelde"]


def test_a_verb_of_everyday_speech_counts_only_with_its_particle() -> None:
    """ "Wie läuft das mit der Hochzeit" asks about the wedding, not about running (it found the
    Kreislaufwirtschaftsgesetz); "mein Pass läuft bald ab" is ablaufen, "wo gebe ich … ab" abgeben;
    "wann macht das Bürgerbüro auf" asks for the opening hours, not to open a business."""
    assert list(_alternatives("wie läuft das mit der Hochzeit")) == ["hochzeit"]
    assert ("ablaufen",) in _alternatives("Mein Pass läuft bald ab")["ablauft"]
    assert ("abgeben",) in _alternatives("wo gebe ich meinen alten Pass ab")["abgebe"]
    plan = analysis.analyse("wann macht das Bürgerbüro auf")
    assert [c.label for c in plan.concepts] == ["burgerburo"] and plan.aspects == ["opening_hours"]
    # A function word before the particle's verb is no verb: "wie melde ich … ab" stays abmelden.
    assert ("abmelden",) in _alternatives("wie melde ich mein Auto ab")["abmelde"]


@pytest.mark.parametrize(
    "question",
    [
        "meine mutter braucht einen blauen parkausweis",
        "gibt es einen blauen Parkausweis",
        "mit einem blauem Parkausweis",
        "ein blaues Parkausweis",  # as typed, wrong or not
    ],
)
def test_a_phrase_rule_matches_its_adjective_in_every_case(question: str) -> None:
    """The rule says "blauer parkausweis"; the caller says it in the case the sentence needs."""
    (concept,) = [c for c in analysis.analyse(question).concepts if "parkausweis" in c.label]
    assert concept.from_synonym and ("parkausweis", "fur", "schwerbehinderte") in {a.words for a in concept.strong}


def test_an_adjective_ending_is_not_a_one_word_rules_ending() -> None:
    """Only a phrase's words swap an adjective's ending: one word stays as ENDINGS allow
    (a rule for "parken" takes "parke", not "parkem")."""
    rule = analysis.SynonymRule(("parken",), False, (("parken",),))
    assert rule.matches(["parke"], 0) and not rule.matches(["parkem"], 0)
    phrase = analysis.SynonymRule(("blauer", "parkausweis"), False, (("parkausweis",),))
    assert phrase.matches(["blauem", "parkausweis"], 0) and phrase.matches(["blaues", "parkausweis"], 0)
    assert not phrase.matches(["grauen", "parkausweis"], 0)


def test_the_dictionary_is_asked_with_the_umlauts_as_typed() -> None:
    """The search folds umlauts (Schlüssel → schlussel), the dictionary does not know folded
    words: it is asked with the word as typed, so "Schlüssel" is a word (no typo to correct)
    and "Anträge" is searched as Antrag."""
    concepts = {c.label: c for c in analysis.analyse("Ich habe meinen Schlüssel verloren, und die Anträge?").concepts}
    assert concepts["schlussel"].typed == "schlüssel"
    assert concepts["schlussel"].known_word
    assert not analysis.is_german_word("schlussel")
    assert ("antrag",) in [a.words for a in concepts["antrage"].strong]
    assert analysis.lemmas("garten") == []  # a noun in its dictionary form, not the verb "garen"


# ------------------------------------------------------------------- feminine person nouns (issue 15)


@pytest.mark.parametrize(
    ("word", "masculine"),
    [
        ("anwaltin", "anwalt"),  # not the plural "anwälte"
        ("zeugin", "zeuge"),  # not "Zeug"
        ("physiotherapeutin", "physiotherapeut"),
        ("sachbearbeiterin", "sachbearbeiter"),
        ("arztin", "arzt"),
    ],
)
def test_a_feminine_person_noun_is_also_searched_as_the_masculine(word: str, masculine: str) -> None:
    """Callers say "als Anwältin", the catalogue "Rechtsanwalt"."""
    concept = analysis.word_concept(word, analysis.default_lexicon())
    alternatives = [a.words for a in concept.strong]
    assert (masculine,) in alternatives
    assert len([a for a in alternatives if len(a) == 1 and a[0] != word]) == 1


@pytest.mark.parametrize("word", ["medizin", "berlin", "kamin", "vitamin"])
def test_a_word_ending_in_in_that_names_no_woman_gets_no_masculine(word: str) -> None:
    concept = analysis.word_concept(word, analysis.default_lexicon())
    assert [a.words for a in concept.strong] == [(word,)]


def test_a_compound_with_a_feminine_head_splits_at_the_masculine() -> None:
    """ "Austauschschülerin" meets the catalogue's "Schüleraustausch"."""
    vocabulary = analysis.default_lexicon().vocabulary
    assert analysis.split_compound("austauschschulerin", vocabulary) == ["austausch", "schuler"]


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("wo kann ich meinen hund anmelden", ["hund"]),
        ("ich will ein gewerbe anmelden", ["gewerbe"]),
        ("hab meinen perso verloren", ["perso"]),  # not the participle
        ("Persnalausweis beantragen", ["persnalausweis"]),  # a typo is no verb: kept
        ("mein garten", ["garten"]),  # simplemma's garten → garen does not make it a verb
        ("heiraten", []),
    ],
)
def test_the_words_that_name_a_thing(question: str, words: list[str]) -> None:
    """What a town's web pages are matched by (decision 025): not the verbs and adjectives."""
    plan = analysis.analyse(question, analysis.default_lexicon())
    assert [w.lower() for w in analysis.topical_words(plan)] == words


def test_no_linking_s_after_a_hissing_sound() -> None:
    """Bußgeld folds to "bussgeld": its "ss" is the word's own, no bus + s + geld (a question about
    the bus found the fines). A linking s after s, x or z is no German."""
    vocabulary = analysis.default_lexicon().vocabulary
    assert analysis.split_compound("bussgeld", vocabulary) is None
    assert "bus" not in analysis.compound_parts("Bußgeldverfahren Bußgelder")
    assert analysis.split_compound("busfahrer", vocabulary) == ["bus", "fahrer"]
    assert analysis.split_compound("geburtsurkunde", vocabulary) == ["geburts", "urkunde"]


def test_what_a_service_is_for_is_a_circumstance() -> None:
    """A "für …" after a service word of the same clause says what it is for, not which service;
    after a word for what is asked (Antrag, Termin) it names the service."""
    plan = analysis.analyse("Ich brauche die Heiratsurkunde noch mal für die Rentenversicherung")
    assert [(c.label, c.adjunct) for c in plan.concepts] == [("heiratsurkunde", False), ("rentenversicherung", True)]
    plan = analysis.analyse("Ich brauche einen Antrag für Wohngeld")
    assert [(c.label, c.adjunct) for c in plan.concepts] == [("antrag", False), ("wohngeld", False)]
    plan = analysis.analyse("Wohngeld für Rentner")  # the first word: nothing before "für"
    assert plan.concepts[0].adjunct is False


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("Ich habe ein Reh angefahren", ("wildunfall",)),
        ("Mir ist eine Katze zugelaufen", ("freilaufende", "haustiere")),
        ("Die Fahrbahn ist kaputt", ("strasse",)),
        ("Da ist ein Loch in der Straße", ("strassenschaden",)),
    ],
)
def test_what_callers_say_finds_the_catalogue_s_words(question: str, words: tuple[str, ...]) -> None:
    """Vocabulary of the third probe (decision 026, search8): a deer hit on the road is a
    Wildunfall, a cat that turned up a freilaufendes Haustier, the carriageway a street."""
    assert any(words in alternatives for alternatives in _alternatives(question).values())


def test_uhr_after_a_number_is_a_time_of_day() -> None:
    """Times like "bis drei Uhr", "um 8 Uhr" say when; "Uhr" searched found "Störung von öffentlichen Uhren"."""
    labels = [c.label for c in analysis.analyse("Die Nachbarn machen Party bis drei Uhr").concepts]
    assert "uhr" not in labels
    assert "uhr" not in [c.label for c in analysis.analyse("Ich komme um 8 Uhr").concepts]
    assert [c.label for c in analysis.analyse("Die Uhr am Rathaus geht falsch").concepts] == ["uhr"]


def test_noise_from_the_neighbours_finds_the_catalogue_s_word() -> None:
    """The catalogue says "Anzeige Aufnahme wegen Lärmbelästigung"; callers say Krach, so laut."""
    for question in ("Die Nachbarn machen so einen Krach", "Bei den Nachbarn ist es nachts so laut"):
        assert any(("larmbelastigung",) in alternatives for alternatives in _alternatives(question).values())


def test_fillers_and_months_are_not_searched() -> None:
    """Saying "extra anmelden" is anmelden (OpenThesaurus' extra → Zusatz does not overrule the stop list);
    a month says when."""
    assert [c.label for c in analysis.analyse("Müssen wir den extra anmelden?").concepts] == ["anmelden"]
    labels = [c.label for c in analysis.analyse("Sie wird erst im Oktober sechs, darf sie in die Schule?").concepts]
    assert labels == ["schule"]


@pytest.mark.parametrize(
    ("question", "expansion"),
    [
        ("wann wird der gelbe sack abgeholt", "wertstoffe"),  # the catalogue's name for what it collects
        ("vor unserem haus liegt eine tote katze", "tierkorper"),
        ("wer holt tierkadaver ab", "tierkorper"),
    ],
)
def test_what_callers_call_the_yellow_bag_and_a_dead_animal(question: str, expansion: str) -> None:
    plan = analysis.analyse(question, analysis.default_lexicon())
    assert any(expansion in c.all_words() for c in plan.concepts), [(c.label, c.all_words()) for c in plan.concepts]
