"""The lexicon a town's searches analyse questions with (the default rules, the synonyms of the
town and of the operators serving it, the town's name as stop words), kept in process per town
scope while the `knowledge` generation stands (decision 009): setting or removing a synonym bumps
it after commit, so every instance reads the synonyms again at its next search. Without Redis the
generation is unknown and every search reads them (correct, one statement more).

Measured (decision 035): reading the synonyms was one of a search's statements, and building the
lexicon from them ~1 ms of CPU per search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from backend.knowledge import analysis, repository

Pairs = list[tuple[str, list[str]]]


@dataclass(frozen=True, slots=True)
class TownLexicon:
    generation: int
    own: Pairs  # the synonyms (term, expansions) of the town and its operators, as read
    town_words: tuple[str, ...]  # "in Soest" says nothing on a Soest call
    lexicon: analysis.Lexicon

    def with_imported(self, imported: Pairs) -> analysis.Lexicon:
        """With a question's imported search terms (decision 024), after the town's own rules."""
        if not imported:
            return self.lexicon
        return build(self.own, imported, self.town_words)


def build(own: Pairs, imported: Pairs, town_words: Sequence[str]) -> analysis.Lexicon:
    return analysis.default_lexicon().with_rules(analysis.rules_from([*own, *imported])).with_stopwords(town_words)


class TownLexicons:
    """Lexicons per town scope (town + the operators whose shared synonyms it sees)."""

    def __init__(self, capacity: int = 64) -> None:
        self._lexicons: dict[tuple[UUID, tuple[UUID, ...]], TownLexicon] = {}
        self._capacity = capacity

    def get(self, town_id: UUID, owner_ids: Sequence[UUID], generation: int | None) -> TownLexicon | None:
        found = self._lexicons.get((town_id, tuple(sorted(owner_ids))))
        if found is None or generation is None or found.generation != generation:
            return None
        return found

    def put(self, town_id: UUID, owner_ids: Sequence[UUID], lexicon: TownLexicon) -> None:
        key = (town_id, tuple(sorted(owner_ids)))
        if key not in self._lexicons and len(self._lexicons) >= self._capacity:
            self._lexicons.pop(next(iter(self._lexicons)))
        self._lexicons[key] = lexicon


LEXICONS = TownLexicons()


async def town_lexicon(
    conn: asyncpg.Connection, town_id: UUID, owner_ids: Sequence[UUID], town_name: str, generation: int | None
) -> TownLexicon:
    """The town scope's lexicon: from memory while the generation stands, else read (one statement).
    The generation is read before the synonyms, so a change committed in between reloads next time."""
    found = LEXICONS.get(town_id, owner_ids, generation)
    if found is not None:
        return found
    own: Pairs = [(s.term, list(s.synonyms)) for s in await repository.list_synonyms(conn, town_id, owner_ids)]
    town_words = tuple(analysis.words(town_name))
    made = TownLexicon(generation or 0, own, town_words, build(own, [], town_words))
    if generation is not None:
        LEXICONS.put(town_id, owner_ids, made)
    return made
