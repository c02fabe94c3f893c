"""What a caller's question means for the search: pure functions, no database.

The search runs in PostgreSQL with a `german` configuration that removes accents before
stemming (`kb_german`: unaccent + german_stem), so `Straße`, `Strasse` and `strasse` meet.
This module prepares the question for it:

- folding: lower case, umlauts and ß as PostgreSQL's unaccent writes them (ä → a, ß → ss);
  `ae`/`oe`/`ue` spellings get an umlaut variant (`Kuendigung` also searches `Kündigung`);
- words that say nothing about the service are dropped (stop words); words about what the
  caller wants to know (fees, opening hours …) become aspects;
- synonyms and colloquial terms (Knöllchen → Verwarnungsgeld) add alternatives;
- compound words are split into their parts (Hundesteuerbescheid → hund + steuer + bescheid),
  in the question and in the indexed titles, so either spelling finds the other.

Typo tolerance needs the index's vocabulary and happens in the service (trigram similarity).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import simplemma

from backend.knowledge import joining
from backend.knowledge.leika import find_leika_key, leika_key_prefix
from backend.knowledge.lexicon import (
    DATA,
    ENDINGS,
    MIN_PART,
    WORD,
    Lexicon,
    SynonymRule,
    default_lexicon,
    fold,
    lines_of,
    parse_synonym_line,
    rules_from,
    tokens,
    umlaut_variants,
    words,
)

# The lexicon's names are looked up here too (analysis.fold, analysis.default_lexicon …).
__all__ = [
    "DATA",
    "ENDINGS",
    "MIN_PART",
    "Lexicon",
    "SynonymRule",
    "default_lexicon",
    "fold",
    "lines_of",
    "parse_synonym_line",
    "rules_from",
    "tokens",
    "umlaut_variants",
    "words",
]

# Linking elements between compound parts (Fugenelemente) and inflection endings of the head.
LINKERS = ("s", "es", "n", "en", "e", "er", "ns")
SHORT_PARTS = frozenset({"amt", "bau", "tag", "see", "rad", "weg", "bus", "gas", "eis", "ehe", "tod", "bio", "kfz"})
MAX_COMPOUND_PARTS = 4
MIN_LOOSE = 6  # both parts of a split whose second part is not a known word
SUFFIXES = frozenset({"schaft", "schaften", "heit", "heiten", "keit", "keiten", "ungen", "lichkeit", "nisse"})


# ---------------------------------------------------------------------------------- lemmas


def is_german_word(word: str) -> bool:
    """Whether simplemma's German dictionary knows the word (as typed: it does not know folded
    umlauts, "schlussel" for "schlüssel")."""
    return len(word) >= MIN_PART and bool(simplemma.is_known(word, lang="de"))


# Per-word caches are bounded: every caller's words pass through them for an instance's life,
# so typed nonsense must not grow them without end.
WORD_CACHE = 65_536


@lru_cache(maxsize=WORD_CACHE)
def lemma(word: str) -> str:
    """The dictionary form of a folded word (abgemeldet → abmelden, parkausweise → parkausweis),
    folded again; the word itself when simplemma does not know it."""
    return fold(simplemma.lemmatize(word, lang="de")) if len(word) >= MIN_PART else word


@lru_cache(maxsize=WORD_CACHE)
def noun_lemma(word: str) -> str:
    """The dictionary form of a folded word read as a noun (tische → tisch, urkunden → urkunde,
    steuern → steuer). simplemma reads case: a lower-case word is lemmatised as a verb or an
    adjective (tische → tischen, papiere → papieren), and callers often type all in lower case."""
    return fold(simplemma.lemmatize(word.capitalize(), lang="de")) if len(word) >= MIN_PART else word


def lemmas(word: str, noun: bool = True, typed: str | None = None) -> list[str]:
    """The dictionary forms (folded) to search a folded word by: as a noun first (unless the
    question's casing says it is not one), and as a verb when reading it as a noun changes nothing
    (abgemeldet → abmelden). `typed`: the word as typed, with its umlauts (antrage → antrag needs
    "anträge"); the dictionary does not know folded words."""
    spelled = (typed or word).lower()
    if not noun:
        form = lemma(spelled)
    elif noun_lemma(spelled) != fold(spelled):
        form = noun_lemma(spelled)
    elif len(spelled) >= MIN_PART and simplemma.is_known(spelled.capitalize(), lang="de"):
        return []  # a noun in its dictionary form already (Garten, not the verb "garen")
    else:
        form = lemma(spelled)
    return [form] if form != word and form.isalpha() else []


def as_typed(text: str) -> dict[str, str]:
    """Each folded word of `text` and the word as typed, in lower case with its umlauts."""
    return {fold(raw): raw.lower() for raw in WORD.findall(text)}


# ---------------------------------------------------------------------------------- compounds


def _part_ok(part: str, vocabulary: frozenset[str]) -> bool:
    return (len(part) >= MIN_PART or part in SHORT_PARTS) and part in vocabulary


# No linking s after a hissing sound (Bus|fahrer, Glas|scheibe, not Bus|s|geld): the "ss" of a
# folded ß ("bussgeld", Bußgeld) is the word's own.
SIBILANTS = ("s", "x", "z")


def _linked(segment: str, linker: str) -> str | None:
    """The modifier in front of a linking element, when German would link it so."""
    stem = segment[: -len(linker)]
    if not segment.endswith(linker) or (linker in ("s", "es") and stem.endswith(SIBILANTS)):
        return None
    return stem


def _base_of_modifier(segment: str, vocabulary: frozenset[str]) -> str | None:
    if _part_ok(segment, vocabulary):
        return segment
    for linker in LINKERS:
        if (stem := _linked(segment, linker)) and _part_ok(stem, vocabulary):
            return stem
    return None


def _base_of_head(segment: str, vocabulary: frozenset[str]) -> str | None:
    if _part_ok(segment, vocabulary):
        return segment
    for ending in ENDINGS:
        if segment.endswith(ending) and _part_ok(segment[: -len(ending)], vocabulary):
            return segment[: -len(ending)]
    return next((m for m in masculine_forms(segment) if _part_ok(m, vocabulary)), None)


FEMININE = ("innen", "in")


def masculine_forms(word: str) -> list[str]:
    """The forms a feminine person noun (folded) is derived from: schulerin → schuler, anwaltin →
    anwalt, zeugin → zeuge, physiotherapeutinnen → physiotherapeut. Callers say the feminine
    ("als Anwältin", "Austauschschülerin"); the catalogue names the person once, in the masculine
    or with both ("Logopädin / Logopäde"). Candidates only: the caller checks them against a
    vocabulary or the index."""
    for ending in FEMININE:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= MIN_PART:
            return [stem, stem + "e"]
    return []


def split_compound(word: str, vocabulary: frozenset[str], loose: bool = True) -> list[str] | None:
    """The parts of a compound word (fewest parts wins), or None when it does not split.

    >>> split_compound("hundesteuer", frozenset({"hund", "steuer"}))
    ['hund', 'steuer']
    """
    n = len(word)
    if n < 2 * MIN_PART - 1 or n > 60:
        return None
    # best[i]: the fewest parts covering word[i:], as a list; computed from the end.
    best: list[list[str] | None] = [None] * (n + 1)
    for i in range(n - 3, -1, -1):
        head = _base_of_head(word[i:], vocabulary)
        candidates: list[list[str]] = [[head]] if head and i > 0 else []
        for j in range(i + 3, n - 2):
            rest = best[j]
            if rest is None or len(rest) >= MAX_COMPOUND_PARTS:
                continue
            modifier = _base_of_modifier(word[i:j], vocabulary)
            if modifier:
                candidates.append([modifier, *rest])
        if candidates:
            best[i] = min(candidates, key=lambda parts: (len(parts), -len(parts[-1])))
    result = best[0]
    if result and len(result) >= 2:
        return result
    if not loose:
        return None
    # A word the lemma dictionary knows in front of a known head: bewohner + parkausweis. The
    # catalogue's vocabulary lacks words like "Bewohner"; simplemma's German dictionary has them.
    for cut in range(MIN_LOOSE, n - MIN_PART + 1):
        head = _base_of_head(word[cut:], vocabulary)
        if head and len(head) >= MIN_LOOSE and is_german_word(word[:cut]):
            return [word[:cut], head]
    # Last resort: a long known first part (or a compound of known words) and a rest, preferring
    # a rest the dictionary knows: studentenbude → student + bude, not student + enbude;
    # parkplatzabsperrung → parkplatz + absperrung.
    loose_split: list[str] | None = None
    for cut in range(n - MIN_PART, MIN_LOOSE - 1, -1):
        modifier = _base_of_modifier(word[:cut], vocabulary)
        if modifier is None and split_compound(word[:cut], vocabulary, loose=False):
            modifier = word[:cut]
        tail = word[cut:]
        if not modifier or len(modifier) < MIN_LOOSE or tail in SUFFIXES:
            continue
        if is_german_word(tail):
            return [modifier, tail]
        if loose_split is None and len(tail) >= MIN_LOOSE:
            loose_split = [modifier, tail]
    if loose_split is None:
        # Two words the dictionary knows, neither in the catalogue's vocabulary: imbiss + wagen,
        # angel + schein. The longest head first (schein rather than hein).
        for cut in range(MIN_LOOSE - 1, n - MIN_PART + 1):
            head, modifier_word = word[cut:], word[:cut]
            if head in SUFFIXES or not is_german_word(head):
                continue
            base = next(
                (
                    m
                    for m in (modifier_word, *filter(None, (_linked(modifier_word, x) for x in LINKERS)))
                    if len(m) >= MIN_LOOSE - 1 and is_german_word(m)
                ),
                None,
            )
            if base:
                return [base, head]
    return loose_split


def decompose(word: str, vocabulary: frozenset[str], depth: int = 0) -> list[str]:
    """All parts of a compound at every level: hundesteuerbescheid → hundesteuer, hunde, steuer, bescheid."""
    split = split_compound(word, vocabulary) if depth < 3 else None
    if not split:
        return []
    parts: list[str] = []
    for part in split:
        parts.append(part)
        parts.extend(decompose(part, vocabulary, depth + 1))
    return parts


def compound_parts(text: str, vocabulary: frozenset[str] | None = None) -> list[str]:
    """Every compound part of every word of `text` (for indexing titles and search terms)."""
    vocab = default_lexicon().vocabulary if vocabulary is None else vocabulary
    parts: list[str] = []
    for word in words(text):
        parts.extend(_word_parts(word, vocab))
    return list(dict.fromkeys(parts))


@lru_cache(maxsize=WORD_CACHE)
def _word_parts(word: str, vocabulary: frozenset[str]) -> tuple[str, ...]:
    """`decompose`, remembered: splitting is dynamic programming over the word with dictionary
    look-ups (profiled: a third of the XZuFi bulk import's own CPU per new service), and service
    descriptions use the same words again and again. The vocabulary is one frozenset per lexicon
    (its hash is computed once); 65,536 words are a few MB."""
    return tuple(decompose(word, vocabulary))


# ---------------------------------------------------------------------------------- questions


@dataclass(frozen=True, slots=True)
class Alternative:
    """Words that must all match (AND) for the alternative to count."""

    words: tuple[str, ...]
    origin: str  # query | variant | synonym | thesaurus | compound | derived | unparticled


@dataclass(slots=True)
class Concept:
    """One thing the caller said; any of its alternatives finds it."""

    label: str
    strong: list[Alternative] = field(default_factory=list)
    from_synonym: bool = False
    topic: bool = True  # names a service (not only what to do with it: apply, renew …)
    noun: bool = True  # written with a capital in a question that capitalises nouns
    parts: list[str] = field(default_factory=list)  # compound parts, searched when the word is unknown
    typed: str = ""  # the word as typed, with umlauts (the dictionary does not know folded words)
    adjunct: bool = False  # said as where or when ("im Urlaub", "beim Standesamt"): a circumstance

    @property
    def known_word(self) -> bool:
        """Whether the German dictionary knows the word (then it is no typo)."""
        return is_german_word(self.typed or self.label)

    def add(self, alternative: Alternative) -> None:
        if all(a.words != alternative.words for a in self.strong):
            self.strong.append(alternative)

    def all_words(self) -> set[str]:
        return {w for alt in self.strong for w in alt.words}


@dataclass(slots=True)
class QueryPlan:
    text: str
    concepts: list[Concept]
    aspects: list[str]
    leika_key: str | None = None
    leika_prefix: str | None = None


# Particles of separable verbs: "Wie melde ich mein Auto ab?" means abmelden.
PARTICLES = frozenset({"ab", "an", "um", "aus", "ein", "zu", "auf", "nach", "vor", "zuruck", "weg", "fest", "mit"})
# Articles and possessives (folded): the word after one is a noun, written small or not — in
# "mein laden zieht um" the verb is "zieht" (umziehen), not "laden" (umladen).
DETERMINERS = frozenset(
    {
        "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines",
        "kein", "keine", "keinen", "keinem", "keiner", "mein", "meine", "meinen", "meinem", "meiner",
        "meines", "dein", "deine", "deinen", "deinem", "deiner", "sein", "seine", "seinen", "seinem",
        "seiner", "ihr", "ihre", "ihren", "ihrem", "ihrer", "unser", "unsere", "unseren", "unserem",
        "unserer", "euer", "eure",
    }
)  # fmt: skip


# A time of day ("bis drei Uhr", "um 8 Uhr"): "Uhr" after a number is when, not a clock to repair.
# Digits are no words, so "um 8 Uhr" reads "um uhr": a preposition of time right before it.
HOURS = frozenset(
    {"eins", "ein", "zwei", "drei", "vier", "funf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwolf", "halb"}
    | {"um", "bis", "ab", "gegen", "vor", "nach", "zwischen"}
)


def _time_of_day(clause: Sequence[str], position: int) -> bool:
    return clause[position] == "uhr" and position > 0 and clause[position - 1] in HOURS


def derived_forms(word: str) -> list[str]:
    """Nouns and stems of a verb (anmelden → anmeldung, einbürgern → einbürgerung, verkauft →
    verkauf): the catalogue names services with nouns, callers use verbs."""
    forms: list[str] = []
    if len(word) >= 7:
        for ending in ("ern", "eln", "en", "e"):
            if word.endswith(ending):
                stem = word[:-1] if ending in ("ern", "eln") else word[: -len(ending)]
                if not stem.endswith("ung"):
                    forms.append(stem + "ung")
                break
        if word.endswith("ieren"):  # Latin verbs name their noun otherwise: adoptieren → adoption
            forms += [word[:-5] + "ion", word[:-5] + "ation"]
    if len(word) >= 6 and word.endswith("t"):
        # Participles: verkauft → verkauf, beantragt → beantrag, gemeldet → meld, gekauft → kauf.
        stem = word[:-2] if word.endswith("et") else word[:-1]
        if word.startswith("ge") and len(stem) >= 6:
            stem = stem[2:]
        if len(stem) >= 4:
            forms.append(stem)
    return forms


def _masculine(word: str, vocabulary: frozenset[str]) -> str | None:
    """The masculine a feminine person noun is made from, when the catalogue's vocabulary has it
    or the dictionary has it as a noun in its dictionary form (zeugin → zeuge, not zeug; anwaltin →
    anwalt, not the plural anwalte)."""
    forms = masculine_forms(word)
    known = [m for m in forms if m in vocabulary]
    if known:
        return known[0]
    nouns = [m for m in reversed(forms) if is_german_word(m) and noun_lemma(m) == m]
    return nouns[0] if nouns else None


def _single_word_rule(word: str, lex: Lexicon) -> SynonymRule | None:
    return next((r for r in lex.rules_for(word) if len(r.key) == 1 and r.matches([word], 0)), None)


def _exact_single_word_rule(word: str, lex: Lexicon) -> bool:
    """A stop word that is a written synonym key as such ("gefunden" → Fundsachen), not by a prefix;
    OpenThesaurus' rules do not overrule the stop list ("extra" → Zusatz, Ergänzung)."""
    return any(
        len(r.key) == 1 and not r.prefix and not r.thesaurus and r.matches([word], 0) for r in lex.rules_for(word)
    )


def word_concept(
    word: str, lex: Lexicon, particle: str | None = None, noun: bool = True, typed: str | None = None
) -> Concept:
    """The concept of one word: itself, its umlaut spellings, its dictionary form, synonyms,
    compound parts, its noun; with the particle of a separable verb in front when one
    was split off. `noun`: False when the question's casing says the word is no noun."""
    concept = Concept(label=word if particle is None else f"{particle}{word}")
    if typed:
        concept.typed = typed if particle is None else particle + typed
    spellings = [word, *umlaut_variants(word)]
    if particle is not None:
        spellings = [particle + w for w in spellings] + spellings
    for spelling in spellings:
        if particle is not None and not spelling.startswith(particle):
            concept.add(Alternative((spelling,), "unparticled"))  # in case the particle was no particle
        else:
            concept.add(Alternative((spelling,), "query" if spelling == spellings[0] else "variant"))
    # Its dictionary form (abgemeldet → abmelden, gestorben → sterben, tische → tisch): searched
    # like a spelling.
    bases = (
        lemmas(spellings[0], noun, typed)
        if particle is None
        else lemmas(particle + word, noun=False, typed=particle + typed if typed else None)
    )
    for base in bases:
        concept.add(Alternative((base,), "variant"))
    # A feminine person noun is also searched as the one it is made from (Anwältin → Anwalt), when
    # the catalogue's vocabulary or the dictionary knows that word (not Termin → Term).
    if masculine := _masculine(spellings[0], lex.vocabulary):
        concept.add(Alternative((masculine,), "variant"))
    # A separated particle makes another verb: "melden … an" is anmelden, not melden. The
    # dictionary form finds synonyms too: "zieht … um" is umziehen.
    synonym_spellings = [s for s in [*spellings, *bases] if particle is None or s.startswith(particle)]
    # A written rule for any spelling wins over the thesaurus' ("abgegeben" → abgeben).
    found = [r for spelling in synonym_spellings if (r := _single_word_rule(spelling, lex)) is not None]
    if rule := min(found, key=lambda r: r.thesaurus, default=None):
        concept.from_synonym = True
        concept.topic = not rule.generic
        for expansion in rule.expansions:
            concept.add(Alternative(expansion, "thesaurus" if rule.thesaurus else "synonym"))
    for spelling in spellings:
        for derived in derived_forms(spelling):
            concept.add(Alternative((derived,), "derived"))
    for base in {*spellings, *bases}:
        if noun_of_verb := joining.ablaut_noun(base):
            concept.add(Alternative((noun_of_verb,), "derived"))
    for spelling in spellings:
        parts = split_compound(spelling, lex.vocabulary)
        if parts:
            concept.parts = parts
            concept.add(Alternative(tuple(parts), "compound"))
            break
    return concept


CLAUSE_BREAK = re.compile(r"[,.;:!?()\n]+|\b(?:und|oder|aber|weil|dass|damit|denn|sondern)\b", re.IGNORECASE)


def _clauses(text: str) -> list[list[str]]:
    return [words(part) for part in CLAUSE_BREAK.split(text) if words(part)]


def _capitalised(text: str) -> set[str]:
    """Folded words written with a capital other than at the start of a clause — German nouns —
    when the question capitalises some but not all words; empty when casing tells nothing."""
    nouns: set[str] = set()
    lower = 0
    for part in CLAUSE_BREAK.split(text):
        for position, raw in enumerate(WORD.findall(part)):
            if raw[:1].isupper() and position > 0:
                nouns.add(fold(raw))
            elif raw[:1].islower():
                lower += 1
    return nouns if nouns and lower else set()


def analyse(text: str, lexicon: Lexicon | None = None) -> QueryPlan:
    """Concepts of a question: words without stop words, each with its alternatives."""
    lex = lexicon or default_lexicon()
    plan = QueryPlan(
        text=text, concepts=[], aspects=[], leika_key=find_leika_key(text), leika_prefix=leika_key_prefix(text)
    )
    seen: set[str] = set()
    nouns = _capitalised(text)
    typed = as_typed(text)
    for clause in _clauses(text):
        first = len(plan.concepts)
        # A separable verb's particle closes the clause; the verb is among its first words.
        particle = clause[-1] if len(clause) > 2 and clause[-1] in PARTICLES else None
        # Not a word the casing marks as a noun: "Mein Laden zieht … um" is umziehen, not umladen.
        verb_at = next(
            (
                n
                for n, w in enumerate(clause[:3])
                if w not in lex.aspects
                and not (n > 0 and (w in nouns or clause[n - 1] in DETERMINERS))
                and (w not in lex.stopwords or (particle is not None and _separable_verb(particle, w)))
            ),
            None,
        )
        i = 0
        while i < len(clause):
            rule = next((r for r in lex.rules_for(clause[i]) if len(r.key) > 1 and r.matches(clause, i)), None)
            if rule is not None:
                matched = clause[i : i + len(rule.key)]
                i += len(rule.key)
                label = " ".join(matched)
                concept = Concept(
                    label=label,
                    from_synonym=True,
                    topic=not rule.generic,
                    noun=not nouns or any(w in nouns or w == clause[0] for w in matched),
                )
                content = tuple(w for w in matched if w not in lex.stopwords and w not in lex.aspects)
                if content:
                    concept.add(Alternative(content, "query"))
                for expansion in rule.expansions:
                    concept.add(Alternative(expansion, "synonym"))
                if label not in seen:
                    seen.add(label)
                    plan.concepts.append(concept)
                continue
            word = clause[i]
            position = i
            i += 1
            if word in lex.aspects:
                if lex.aspects[word] not in plan.aspects:
                    plan.aspects.append(lex.aspects[word])
                continue
            if len(word) < 2 or word in seen or _time_of_day(clause, position):
                continue
            # A verb of everyday speech is searched only with its particle: "gebe … ab", "läuft … ab".
            joins = particle is not None and position == verb_at
            if joins and word in lex.stopwords and (aspect := _aspect_of_verb(particle or "", word, lex)):
                # "Wann macht das Bürgerbüro auf": aufmachen asks for the opening hours.
                if aspect not in plan.aspects:
                    plan.aspects.append(aspect)
                continue
            if word in lex.stopwords and not joins and not _exact_single_word_rule(word, lex):
                continue
            seen.add(word)
            noun = not nouns or word in nouns or position == 0
            concept = word_concept(word, lex, particle if position == verb_at else None, noun, typed.get(word))
            concept.noun = noun
            concept.adjunct = joining.after_locative(clause, position, lex.stopwords) or (
                # "für …" after a service word of the same clause: what it is for, not which service.
                joining.after_locative(clause, position, lex.stopwords, joining.PURPOSES)
                and any(
                    c.topic and c.noun and not c.adjunct and c.label not in joining.REQUEST_NOUNS
                    for c in plan.concepts[first:]
                )
            )
            plan.concepts.append(concept)
        _join(plan.concepts[first:], lex.vocabulary)  # a compound's parts are said in one clause
    return plan


def _separable_verb(particle: str, word: str) -> bool:
    """Whether the particle and the word make a verb the dictionary knows (ab + gebe → abgeben,
    ab + läuft → ablaufen; not ab + wie)."""
    return any(is_german_word(form) for form in lemmas(particle + word, noun=False))


def _aspect_of_verb(particle: str, word: str, lex: Lexicon) -> str | None:
    """The aspect a separable verb names (auf + macht → aufmachen: opening hours), if any."""
    return next((lex.aspects[f] for f in lemmas(particle + word, noun=False) if f in lex.aspects), None)


def _join(concepts: Sequence[Concept], vocabulary: frozenset[str]) -> None:
    """Two words of the question that make a compound the catalogue uses ("Feuer zu Ostern" →
    osterfeuer): the compound becomes a synonym of both, so the service counts as saying each."""
    single = [c for c in concepts if " " not in c.label]
    said = [
        [c.label, *(a.words[0] for a in c.strong if a.origin in ("variant", "derived") and len(a.words) == 1)]
        for c in single
    ]
    for m, h, compound in joining.joined_compounds(said, vocabulary):
        for concept in (single[m], single[h]):
            concept.add(Alternative((compound,), "synonym"))


# A question for a person or an office rather than a service: "stellen Sie mich zu Herrn Schulte
# durch", "verbinden Sie mich mit Frau Schneider", "wer ist der Sachbearbeiter für …".
_PERSON = re.compile(r"\b(?:herrn?|frau|dr)\.?\s+[a-z]{2,}", re.IGNORECASE)
_PUT_THROUGH = re.compile(
    r"\b(?:verbinden|durchstellen|stellen\s+sie\s+mich\b.*\bdurch|weiterverbinden|durchwahl|sprechen\s+mit"
    r"|sachbearbeiter(?:in)?|ansprechpartner(?:in)?|zustandige[nr]?\s+(?:person|mitarbeiter(?:in)?))\b",
)


# What a caller says around a person's name when the person is what they want: "geben Sie mir
# Herrn Becker", "ich hätte gern Frau Kaiser", "ist Frau Kaiser im Büro", "die Nummer von Dr. Meier".
_FOR_A_PERSON = frozenset(
    {"sprechen", "erreichen", "anrufen", "geben", "gern", "gerne", "nummer", "telefonnummer", "buro", "erreichbar"}
)
_POSSESSIVES = frozenset({"mein", "meine", "meiner", "meinem", "meinen", "seine", "ihre", "unsere", "deine", "eure"})


def asks_for_person(text: str) -> bool:
    """Whether the caller wants a person or an office put through, not a service explained."""
    folded = fold(text)
    put_through = bool(_PUT_THROUGH.search(folded))
    return put_through or (_names_a_person(folded) and bool(_FOR_A_PERSON & set(words(folded))))


def _names_a_person(folded: str) -> bool:
    """Herr, Frau or Dr. with a name; not after a possessive ("meine Frau braucht …": a relation)."""
    for match in _PERSON.finditer(folded):
        before = folded[: match.start()].split()
        if not before or before[-1] not in _POSSESSIVES:
            return True
    return False


# A question for an office's hours, number or whereabouts and nothing of a service: "Wann hat das
# Bürgerbüro auf?", "Telefonnummer Straßenverkehrsamt", "ist das Ordnungsamt samstags geöffnet".
_OFFICE_ENDINGS = ("amt", "amter", "buro", "stelle", "behorde", "verwaltung", "kasse")
_OFFICE_ASPECTS = frozenset({"opening_hours", "responsible_office", "contacts", "appointments", "processing_time"})
_WHEN_AND_HOW = frozenset(
    w + ending
    for w in ("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "feiertag", "abend")
    for ending in ("", "s", "en")
) | frozenset({"wochenende", "vormittags", "nachmittags", "mittags", "heute"})


def office_named(plan: QueryPlan) -> list[str]:
    """The offices a question names when it asks only when they are open, how to reach them,
    where they are or for an appointment there (as typed); else none. Such a question is for the
    contact directory unless an article is about that office (decision 038)."""
    aspects = set(plan.aspects)
    if not aspects or not aspects <= _OFFICE_ASPECTS or aspects == {"processing_time"}:
        return []
    offices = [c.typed or c.label for c in plan.concepts if c.label.endswith(_OFFICE_ENDINGS)]
    other = [c for c in plan.concepts if not c.label.endswith(_OFFICE_ENDINGS) and c.label not in _WHEN_AND_HOW]
    return offices if not other else []


def _word_runs(said: Sequence[str], longest: int = 3) -> set[str]:
    """Runs of two and three words as said ("hund anmelden", "möbel entsorgen"): the imported
    search terms of several words, looked up whole by the same index as the single words."""
    return {" ".join(said[i : i + n]) for n in range(2, longest + 1) for i in range(len(said) - n + 1)}


def question_words(query: str) -> list[str]:
    """The words and runs of words of the question that may be imported search terms (decision
    024's `modulBegriffImKontext`): "Perso" then also finds the town's own Personalausweis article,
    which never listed the word. Only these are looked up (one indexed query), not every term."""
    said = re.findall(r"\w+", query.lower())
    return sorted({w for w in said if len(w) >= 3} | _word_runs(said))


def topical_words(plan: QueryPlan) -> list[str]:
    """The words of a question that name a thing, as typed: a town's web pages are matched by
    these, not by what is to be done with it ("anmelden" found the bulky-waste page for "Hund
    anmelden"). A word is a verb or an adjective when simplemma leaves it as it is, small (its
    nouns come back capitalised: hund → Hund; garten → garen and müll → müllen are no verbs then)."""
    said = [w for c in plan.concepts if c.topic for w in (c.typed or c.label).split()]
    return [w for w in said if not _as_is_and_small(w.lower())]


@lru_cache(maxsize=WORD_CACHE)
def _as_is_and_small(word: str) -> bool:
    found = simplemma.lemmatize(word, lang="de") if len(word) >= MIN_PART else word
    return found == word and found[:1].islower() and is_german_word(word)  # a typo is kept


def tsquery_term(lexeme: str, prefix: bool = False) -> str:
    """A lexeme quoted for to_tsquery/::tsquery text."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")


def any_of(groups: Sequence[Sequence[str]]) -> str | None:
    """tsquery text: any group, each group's terms all (AND)."""
    parts = []
    for group in groups:
        if not group:
            continue
        parts.append(group[0] if len(group) == 1 else "(" + " & ".join(group) + ")")
    unique = list(dict.fromkeys(parts))
    return " | ".join(unique) if unique else None
