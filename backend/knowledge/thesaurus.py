"""Synonym rules derived from OpenThesaurus, restricted to the catalogue's words (issue 15).

Callers name a service in words neither the LeiKa catalogue nor the hand-written synonyms use
("Knast", "Köter", "Sprössling"). OpenThesaurus (LGPL-2.1, openthesaurus.de, Debian package
`openthesaurus-de-text`) groups German words of one meaning, one group a line, terms separated by
";", marks in parentheses ("(ugs.)", "(derb)", "(veraltet)"). This module turns it into rules
"caller word => catalogue words", only where the right side is a word of the catalogue's names
(so a caller word lands on a catalogue word, not on more words the index lacks) and the left side
is not (the catalogue already speaks it: not a word of its names nor of the compound vocabulary):

    make thesaurus   # apt-get download openthesaurus-de-text, then
    python -m backend.knowledge.thesaurus /usr/share/openthesaurus-de/openthesaurus.txt

writes `data/thesaurus_de.txt` (rules in `synonyms_de.txt`'s format), which the default lexicon
loads after the hand-written synonyms: a hand-written rule for a word always wins, and the search
counts a thesaurus expansion less than one of them (search.THESAURUS_WEIGHT). The figures that
chose the limits below: docs/decisions/026-search-meaning-fusion-confidence.md.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.knowledge import analysis, meaning

OUTPUT = analysis.DATA / "thesaurus_de.txt"
CATALOGUE = analysis.DATA / "leika_kdn_ozgdb_nrw.csv"
DEFAULT_SOURCE = Path("/usr/share/openthesaurus-de/openthesaurus.txt")

MAX_GROUP = 12  # a larger group is a loose field of meaning ("Sache", "machen"), not synonyms
MAX_SENSES = 3  # a caller word in more groups than this means too many things to expand
MAX_TARGET_NAMES = 40  # a catalogue word in more names is generic ("Erteilung", "Antrag")
MAX_TARGETS = 3  # catalogue words per caller word
MIN_COSINE = 0.30  # the encoder's cosine between caller word and catalogue word, see keep_close
MIN_LENGTH = 4
# A shorter caller word meets other words by an inflection ending (a rule for "Grab" answers
# "graben"): rules match a word with an ending more or less (analysis.SynonymRule.matches).
MIN_KEY_LENGTH = 5
# A caller word so marked is not expanded: said in another sense, or hardly said at all.
SKIPPED_KEY_MARKS = frozenset(
    {"derb", "vulg.", "veraltet", "veraltend", "fig.", "ironisch", "abwertend", "scherzhaft", "Spruch", "selten"}
)
# A catalogue word so marked is no target: the index has it in the catalogue's sense.
SKIPPED_TARGET_MARKS = SKIPPED_KEY_MARKS | {"ugs.", "salopp", "Jargon"}
_MARKS = re.compile(r"\(([^)]*)\)")
_SINGLE_WORD = re.compile(r"[^\W\d_]+")
_VERB = re.compile(r"(?:en|ern|eln)$")


@dataclass(frozen=True, slots=True)
class Term:
    word: str  # as written, without marks
    marks: frozenset[str]

    @property
    def folded(self) -> str:
        return analysis.fold(self.word)

    @property
    def word_class(self) -> str | None:
        """noun (capitalised) or verb (lower case, -en/-ern/-eln); the dump has no word class,
        and German casing gives it. Adjectives, adverbs and phrases: None (not used)."""
        if not _SINGLE_WORD.fullmatch(self.word) or len(self.word) < MIN_LENGTH:
            return None
        if self.word[0].isupper():
            return "noun"
        return "verb" if _VERB.search(self.word) else None


def parse_term(raw: str) -> Term:
    marks = {mark.strip() for group in _MARKS.findall(raw) for mark in group.split(",")}
    return Term(_MARKS.sub("", raw).strip(), frozenset(m for m in marks if m))


def groups_of(lines: Iterable[str]) -> list[list[Term]]:
    return [[parse_term(t) for t in line.strip().split(";")] for line in lines if line.strip() and line[0] != "#"]


class CatalogueWords:
    """The catalogue's words (folded): those of its names, and the compound vocabulary's parts
    (Lärm of Lärmbelästigung, indexed with the title's compound parts); and in how many names each
    occurs (a part: in how many names a word contains it)."""

    def __init__(self, names: Iterable[str], parts: Iterable[str] = ()) -> None:
        self.names: Counter[str] = Counter(w for name in names for w in set(analysis.words(name)))
        self.parts = frozenset(parts)
        self._named: dict[str, int] = {}

    def find(self, word: str) -> str | None:
        """The catalogue's form of a folded word: itself or with an inflection ending."""
        forms = (word, *(word + e for e in analysis.ENDINGS))
        return next((w for w in forms if w in self.names), None) or next((w for w in forms if w in self.parts), None)

    def named(self, form: str) -> int:
        """In how many names the word is, as a word or as a part of one."""
        if form not in self._named:
            self._named[form] = self.names[form] or sum(n for word, n in self.names.items() if form in word)
        return self._named[form]


def derive_rules(
    groups: Sequence[Sequence[Term]], catalogue: CatalogueWords, lexicon: analysis.Lexicon
) -> dict[str, list[str]]:
    """Caller word → the catalogue words of the same word class from the groups both are in, as
    written (the encoder hears umlauts and capitals); the rule file folds them."""
    written = {rule.key[0] for rule in lexicon.synonyms if len(rule.key) == 1 and not rule.thesaurus}
    senses: Counter[str] = Counter(t.folded for group in groups for t in group if t.word_class)
    rules: defaultdict[str, list[str]] = defaultdict(list)
    for group in groups:
        if len(group) > MAX_GROUP:
            continue
        for word_class in ("noun", "verb"):
            terms = [t for t in group if t.word_class == word_class]
            targets = [
                t.word
                for t in terms
                if (found := catalogue.find(t.folded))
                and catalogue.named(found) <= MAX_TARGET_NAMES
                and t.folded not in lexicon.stopwords
                and not t.marks & SKIPPED_TARGET_MARKS
            ]
            if not targets:
                continue
            for term in terms:
                key = term.folded
                if (
                    len(key) < MIN_KEY_LENGTH
                    or catalogue.find(key)
                    or key in lexicon.vocabulary
                    or key in lexicon.stopwords
                    or key in written
                    or senses[key] > MAX_SENSES
                    or term.marks & SKIPPED_KEY_MARKS
                ):
                    continue
                rules[term.word].extend(t for t in targets if t not in rules[term.word])
    return dict(rules)


Similarity = Callable[[Sequence[tuple[str, str]]], Sequence[float]]


def encoder_similarity(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Cosine of each pair of words by the meaning retriever's encoder (unit vectors)."""
    words = sorted({w for pair in pairs for w in pair})
    vectors = dict(zip(words, meaning.embed(words), strict=True))
    return [float(vectors[a] @ vectors[b]) for a, b in pairs]


def keep_close(rules: dict[str, list[str]], similarity: Similarity) -> dict[str, list[str]]:
    """Folded rules with only the catalogue words the encoder finds close to the caller word: a
    group names one sense of a word, the caller may mean another ("Schlüssel" is in OpenThesaurus
    only as an identifier: cosine 0.23 to "Identifikationsnummer"; "Köter"/"Hund" 0.52). The
    closest first, at most MAX_TARGETS; a word written twice (Kiez, kiez) gets one rule."""
    pairs = [(key, target) for key, targets in rules.items() for target in targets]
    close: defaultdict[str, list[tuple[float, str]]] = defaultdict(list)
    for (key, target), cosine in zip(pairs, similarity(pairs), strict=True):
        if cosine >= MIN_COSINE:
            close[analysis.fold(key)].append((-cosine, analysis.fold(target)))
    return {key: list(dict.fromkeys(t for _, t in sorted(found)))[:MAX_TARGETS] for key, found in sorted(close.items())}


HEADER = """\
# Generated by `make thesaurus` (backend/knowledge/thesaurus.py) from OpenThesaurus {version}
# (openthesaurus.de, Debian package openthesaurus-de-text), LGPL-2.1: see thesaurus_de.LICENSE.txt.
# Do not edit: change the limits in thesaurus.py and build again. Caller words (not words of the
# LeiKa names) => catalogue words of the same meaning; loaded after synonyms_de.txt, which wins.
# Limits: groups of at most {max_group} terms; a caller word in at most {max_senses} groups; catalogue
# words in at most {max_target_names} names, at encoder cosine {min_cosine} or more, {max_targets} per caller word.
"""


def build(source: Path, output: Path = OUTPUT, version: str = "", similarity: Similarity = encoder_similarity) -> int:
    """Write the rules; returns how many."""
    with CATALOGUE.open(encoding="utf-8") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    lexicon = analysis.default_lexicon()
    catalogue = CatalogueWords(names, lexicon.vocabulary)
    groups = groups_of(source.read_text(encoding="utf-8").splitlines())
    rules = keep_close(derive_rules(groups, catalogue, lexicon), similarity)
    header = HEADER.format(
        version=version or source.name,
        max_group=MAX_GROUP,
        max_senses=MAX_SENSES,
        max_target_names=MAX_TARGET_NAMES,
        max_targets=MAX_TARGETS,
        min_cosine=MIN_COSINE,
    )
    body = "".join(f"{key} => {', '.join(targets)}\n" for key, targets in rules.items())
    output.write_text(header + body, encoding="utf-8")
    return len(rules)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE, help="openthesaurus.txt")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--version", default="", help="the dump's version, for the header")
    args = parser.parse_args(argv)
    count = build(args.source, args.output, args.version)
    print(f"{count} rules → {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
