"""The words of the search's language: folding, the data files (stop words, aspects, synonyms,
the catalogue's vocabulary, the thesaurus) and the synonym rules that match a question's words
(`analysis` reads questions with them). Pure, no database."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
ENDINGS = ("e", "en", "n", "s", "es", "er", "ern", "nen")
# An adjective's endings by case and gender: "ein blauer Parkausweis", "einen blauen", "mit einem blauem".
ADJECTIVE_ENDINGS = ("e", "em", "en", "er", "es")
MIN_PART = 4


def fold(text: str) -> str:
    """Lower case without accents, ß as ss: what PostgreSQL's unaccent makes of German text."""
    text = text.lower().replace("ß", "ss").replace("ẞ", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Folded words (letters only; numbers and punctuation separate words)."""
    return WORD.findall(fold(text))


def tokens(text: str) -> list[str]:
    """Folded words and numbers, in order."""
    return _TOKEN.findall(fold(text))


def umlaut_variants(word: str) -> list[str]:
    """`kuendigung` → [`kundigung`]: ae/oe/ue as a typewriter writes ä/ö/ü (folded: a/o/u)."""
    if not any(pair in word for pair in ("ae", "oe", "ue")):
        return []
    variants = {
        re.sub(r"(?<=[^aeiou])(a|o|u)e", r"\1", word),
        word.replace("ae", "a").replace("oe", "o").replace("ue", "u"),
    }
    variants.discard(word)
    return sorted(variants)


# ---------------------------------------------------------------------------------- data files


def _entries(line: str) -> list[str]:
    return [part.strip() for part in line.split(",") if part.strip()]


def _lines(name: str) -> Iterable[str]:
    yield from lines_of(DATA / name)


def lines_of(path: Path) -> Iterable[str]:
    """The lines of a data file without comments and blank lines."""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            yield line


@dataclass(frozen=True, slots=True)
class SynonymRule:
    """`key` (folded words; the last may be a prefix) finds each of `expansions`."""

    key: tuple[str, ...]
    prefix: bool
    expansions: tuple[tuple[str, ...], ...]
    generic: bool = False  # about what the caller wants done, not which service
    thesaurus: bool = False  # derived from OpenThesaurus (thesaurus_de.txt): counts less than a written rule

    def _same_word(self, actual: str, expected: str) -> bool:
        """Equal, an ending more or less, or — in a phrase — the adjective in another case: the
        caller says "einen blauen Parkausweis" where the rule says "blauer Parkausweis"."""
        if _ending_apart(actual, expected):
            return True
        stem = adjective_stem(actual)
        return len(self.key) > 1 and stem is not None and stem == adjective_stem(expected)

    def matches(self, sequence: Sequence[str], at: int) -> bool:
        if at + len(self.key) > len(sequence):
            return False
        if self.thesaurus:  # a dictionary form, met as said or as the word's: "will" is no "Wille"
            return tuple(sequence[at : at + len(self.key)]) == self.key
        for offset, expected in enumerate(self.key):
            actual = sequence[at + offset]
            last = offset == len(self.key) - 1
            if last and self.prefix:
                if not actual.startswith(expected):
                    return False
            elif not self._same_word(actual, expected):
                return False
        return True


def _ending_apart(actual: str, expected: str) -> bool:
    return actual == expected or any(actual == expected + e or expected == actual + e for e in ENDINGS)


def adjective_stem(word: str) -> str | None:
    """The word without an adjective's ending (blauen, blauer, blaues → blau), or None."""
    for ending in ADJECTIVE_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_PART:
            return word[: -len(ending)]
    return None


def parse_synonym_line(
    left: Iterable[str], right: Iterable[str], generic: bool = False, thesaurus: bool = False
) -> list[SynonymRule]:
    expansions = tuple(tuple(words(term)) for term in right if words(term))
    rules = []
    for term in left:
        prefix = term.endswith("*")
        key = tuple(words(term.rstrip("*")))
        if key and expansions:
            rules.append(SynonymRule(key, prefix, expansions, generic, thesaurus))
    return rules


def rules_from(pairs: Iterable[tuple[str, Sequence[str]]]) -> list[SynonymRule]:
    """Rules from (term, synonyms) pairs, e.g. a tenant's own additions."""
    rules: list[SynonymRule] = []
    for term, synonyms in pairs:
        rules.extend(parse_synonym_line([term], synonyms))
    return rules


@dataclass(frozen=True)
class Lexicon:
    stopwords: frozenset[str]
    aspects: dict[str, str]
    synonyms: tuple[SynonymRule, ...]
    vocabulary: frozenset[str]

    def with_stopwords(self, extra: Iterable[str]) -> Lexicon:
        added = frozenset(extra) - self.stopwords
        if not added:
            return self
        return Lexicon(self.stopwords | added, self.aspects, self.synonyms, self.vocabulary)

    def with_rules(self, extra: Sequence[SynonymRule]) -> Lexicon:
        if not extra:
            return self
        added = {w for rule in extra for expansion in rule.expansions for w in expansion}
        return Lexicon(self.stopwords, self.aspects, tuple(extra) + self.synonyms, self.vocabulary | added)

    def rules_for(self, word: str) -> list[SynonymRule]:
        """The rules whose first key word could match `word` (as `SynonymRule.matches` compares
        it: equal, an ending more or less, or a prefix of it), in the lexicon's order; the
        caller still asks `matches`. Scanning all ~800 rules at every word of a question cost
        30–70 ms per question (profiled); this looks up a few keys."""
        by_word, by_prefix = self._rule_index
        keys = {word, *(word + e for e in ENDINGS), *(word[: -len(e)] for e in ENDINGS if word.endswith(e))}
        if stem := adjective_stem(word):
            keys.update(stem + e for e in ADJECTIVE_ENDINGS)
        found = {n for key in keys for n in by_word.get(key, ())}
        found.update(n for end in range(1, len(word) + 1) for n in by_prefix.get(word[:end], ()))
        return [self.synonyms[n] for n in sorted(found)]

    @cached_property
    def _rule_index(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Rule positions by first key word; a one-word prefix rule ("perso*") by its prefix."""
        by_word: dict[str, list[int]] = {}
        by_prefix: dict[str, list[int]] = {}
        for n, rule in enumerate(self.synonyms):
            index = by_prefix if rule.prefix and len(rule.key) == 1 else by_word
            index.setdefault(rule.key[0], []).append(n)
        return by_word, by_prefix


@cache
def default_lexicon() -> Lexicon:
    stopwords: set[str] = set()
    aspects: dict[str, str] = {}
    for line in _lines("stopwords_de.txt"):
        if line.startswith("aspect "):
            name, _, rest = line[len("aspect ") :].partition(":")
            for term in _entries(rest):
                for word in words(term):
                    aspects[word] = name.strip()
        else:
            stopwords.update(w for term in _entries(line) for w in words(term))
    rules: list[SynonymRule] = []
    for line in _lines("synonyms_de.txt"):
        generic = line.startswith("~")
        left, arrow, right = line.lstrip("~").partition("=>")
        if arrow:
            rules.extend(parse_synonym_line(_entries(left), _entries(right), generic))
    # Longest keys first: "auto anmelden" wins over "auto".
    rules.sort(key=lambda r: -len(r.key))
    vocabulary: set[str] = set()
    for name in ("base_words_de.txt", "vocabulary_de.txt"):
        if (DATA / name).exists():
            for line in _lines(name):
                vocabulary.update(w for term in _entries(line) for w in words(term) if len(w) >= 3)
    for rule in rules:
        for expansion in rule.expansions:
            vocabulary.update(w for w in expansion if len(w) >= MIN_PART)
    # The thesaurus' rules after the written ones; their words are the catalogue's already.
    for line in _lines("thesaurus_de.txt") if (DATA / "thesaurus_de.txt").exists() else ():
        left, _, right = line.partition("=>")
        rules.extend(parse_synonym_line(_entries(left), _entries(right), thesaurus=True))
    return Lexicon(frozenset(stopwords), aspects, tuple(rules), frozenset(vocabulary - stopwords))
