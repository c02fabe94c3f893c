"""How callers say what the catalogue names in one word, and what they say around it.

Compounds a caller says in two words: "ein Feuer zu Ostern" is the catalogue's Osterfeuer,
"Steuer für den Hund" its Hundesteuer, "aus der Kirche austreten" its
Kirchenaustritt. The catalogue names services with compounds; callers take them apart. The
compound splitter (analysis.split_compound) goes the other way, from a compound said to its parts.

Pure functions on the question's words and the catalogue's vocabulary (generated from the LeiKa
names, `vocabulary_de.txt`), so a join is only ever a word the catalogue uses: no list of answers.
Words said after a preposition of place or time are where or when the matter happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Linking elements (Fugen) between modifier and head: Kirche-n-austritt, Leben-s-bescheinigung,
# Hund-e-steuer; and a modifier that drops its ending: Oster(n)feuer, Schul(e)weg.
LINKS = ("", "s", "n", "en", "es", "e", "er")
DROPPED = ("n", "e", "en")
MIN_JOINED = 8  # shorter joins are mostly accidents of two short words
MIN_WORD = 3


def modifier_forms(spellings: Iterable[str]) -> set[str]:
    """What a word can look like in front of a head (Ostern → ostern, oster, osterns …)."""
    forms: set[str] = set()
    for word in spellings:
        if len(word) < MIN_WORD:
            continue
        stems = {word} | {word[: -len(end)] for end in DROPPED if word.endswith(end) and len(word) - len(end) >= 3}
        forms |= {stem + link for stem in stems for link in LINKS}
    return forms


# Particles a caller's verb may carry that its agent noun drops: "mithelfen" → Helfer.
VERB_PARTICLES = ("mit", "ab", "an", "aus", "ein", "auf", "zu", "um", "vor", "nach", "weg")


def head_forms(spellings: Iterable[str]) -> set[str]:
    """What a word can look like as a compound's head: itself, a verb's noun (austreten →
    austretung is no word, but bescheinigen → bescheinigung is), and the one who does it (helfen →
    Helfer, halten → Halter: "bei der Wahl mithelfen" is the catalogue's Wahlhelfer), also without
    a separable particle. Only a compound of the catalogue's vocabulary is ever kept."""
    forms: set[str] = set()
    for word in spellings:
        if len(word) < MIN_WORD:
            continue
        forms.add(word)
        if word.endswith("en") and len(word) >= 6:
            forms.add(word[:-2] + "ung")
            verbs = {word} | {word[len(p) :] for p in VERB_PARTICLES if word.startswith(p) and len(word) - len(p) >= 6}
            forms |= {verb[:-2] + "er" for verb in verbs}
    return forms


def joined_compounds(words: Sequence[Sequence[str]], vocabulary: frozenset[str]) -> list[tuple[int, int, str]]:
    """(modifier index, head index, compound) for two different words of a question (each given as
    its spellings: as said, its dictionary forms) that make a compound the catalogue uses. Either
    order: callers say "Feuer zu Ostern" as well as "Osterfeuer". A join that is only the head
    word itself again is none."""
    heads = [head_forms(spellings) for spellings in words]
    modifiers = [modifier_forms(spellings) for spellings in words]
    found: list[tuple[int, int, str]] = []
    for m, mods in enumerate(modifiers):
        for h, tails in enumerate(heads):
            if m == h:
                continue
            for compound in sorted({mod + tail for mod in mods for tail in tails}):
                if len(compound) >= MIN_JOINED and compound in vocabulary and compound not in words[h]:
                    found.append((m, h, compound))
    return found


# Strong verbs name their deed with another vowel (ablaut): austreten → Austritt, umziehen →
# Umzug, abreißen → Abriss, verlieren → Verlust. German morphology, not the catalogue's services:
# the suffix rule (anmelden → Anmeldung) cannot make these, and the catalogue names services by
# them (Kirchenaustritt, Abbruchgenehmigung, Unterschrift, Abschrift).
ABLAUT = {
    "treten": "tritt",
    "ziehen": "zug",
    "geben": "gabe",
    "nehmen": "nahme",
    "schreiben": "schrift",
    "brechen": "bruch",
    "reissen": "riss",
    "schliessen": "schluss",
    "sehen": "sicht",
    "finden": "fund",
    "verlieren": "verlust",
    "fallen": "fall",
    "stehen": "stand",
    "werfen": "wurf",
    "sprechen": "spruch",
    "greifen": "griff",
    "fahren": "fahrt",
    "kommen": "kunft",
    "gehen": "gang",
    "weisen": "weis",
    "fliegen": "flug",
    "springen": "sprung",
}


def ablaut_noun(verb: str) -> str | None:
    """The noun of a strong verb (with its particle: austreten → austritt), None for others."""
    for ending, noun in ABLAUT.items():
        if verb.endswith(ending):
            return verb[: -len(ending)] + noun
    return None


# Prepositions of place and time: what follows them is where or when the caller's matter
# happens, seldom the matter ("Reisepass im Urlaub verloren", "beim Standesamt melden").
LOCATIVES = frozenset({"im", "beim", "am", "in", "auf", "bei"})


# The preposition of a purpose or beneficiary: after the thing asked for, what follows says what
# it is for ("die Heiratsurkunde für die Rentenversicherung", "eine Meldebescheinigung für den
# Arbeitgeber"), seldom which service.
PURPOSES = frozenset({"fur"})
# Nouns for what is asked, not which service: after them, "für …" names the service ("ein Antrag
# für Wohngeld", "einen Termin für den Personalausweis").
REQUEST_NOUNS = frozenset(
    {
        "antrag", "antrage", "formular", "formulare", "termin", "termine", "genehmigung", "erlaubnis",
        "bescheinigung", "nachweis", "zuschuss", "unterstutzung", "hilfe", "geld", "auskunft", "beratung",
        "informationen", "info", "infos", "unterlagen", "gebuhr", "gebuhren", "kosten", "frist", "zustandig",
    }
)  # fmt: skip


def after_locative(
    clause: Sequence[str], position: int, stopwords: frozenset[str], prepositions: frozenset[str] = LOCATIVES
) -> bool:
    """Whether the word at `position` follows such a preposition, with only stop words (articles,
    pronouns) between: "im Urlaub", "auf dem Möhnesee", "bei der Zulassungsstelle"."""
    for before in reversed(clause[max(0, position - 3) : position]):
        if before in prepositions:
            return True
        if before not in stopwords:
            return False
    return False
