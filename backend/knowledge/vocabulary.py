"""The compound vocabulary (`data/vocabulary_de.txt`): words and frequent compound modifiers of the
LeiKa catalogue's names, against which analysis.split_compound splits words. A build step, like
thesaurus.py: run when the catalogue changes, the output is shipped."""

from __future__ import annotations

from collections.abc import Iterable

from backend.knowledge import analysis


def vocabulary_from_names(names: Iterable[str], min_count: int = 2) -> set[str]:
    """Words and frequent compound modifiers of the catalogue's names (to build vocabulary_de.txt).

    A modifier (`hunde` in `hundehaltung`, `hundesteuer`) counts when it begins at least
    `min_count` words whose rest is a word of its own.
    """
    vocabulary = {w for name in names for w in analysis.words(name) if len(w) >= analysis.MIN_PART}
    modifiers: dict[str, int] = {}
    for word in vocabulary:
        for cut in range(3, len(word) - analysis.MIN_PART + 1):
            if word[cut:] in vocabulary:
                modifiers[word[:cut]] = modifiers.get(word[:cut], 0) + 1
    stop = analysis.default_lexicon().stopwords
    not_words = {
        "ver",
        "ent",
        "ein",
        "aus",
        "auf",
        "bei",
        "mit",
        "vor",
        "uber",
        "unter",
        "durch",
        "gegen",
        "nicht",
        "ruck",
        "wieder",
        "voll",
        "zwischen",
        "fort",
        "weiter",
        "selbst",
        "voran",
        "erst",
        "teil",
        "gen",
        "gew",
        "unt",
        "betr",
        "allgem",
        "berufsaus",
        "zweig",
        "eigen",
        "dritt",
        "fern",
        "forder",
        "harte",
    }
    for modifier, count in modifiers.items():
        if (
            count >= min_count
            and len(modifier) >= analysis.MIN_PART
            and modifier not in not_words
            and modifier not in stop
        ):
            vocabulary.add(modifier)
    return vocabulary
