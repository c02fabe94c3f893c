"""Fusing the lexical and the meaning retriever, and the confidence of the result (decision 026).
Pure functions, no database.

Fusion is weighted reciprocal rank fusion: a service ranked r by a retriever earns
weight / (RRF_K + r); ranks, not scores, so the two retrievers' scales need no calibration
against each other. Weights and the confidence thresholds were tuned on
tests/eval/questions_dev.jsonl only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 10  # small: the first places matter, the lists are short (a few dozen services)
LEXICAL_WEIGHT = 1.0
MEANING_WEIGHT = 0.8

# Confidence (calibrated on the dev set, decision 026):
MEANING_SURE = 0.50  # cosine at which the meaning retriever alone is trusted
MEANING_AGREES = 0.30  # cosine at which it confirms a lexical answer
MEANING_NOTHING = 0.22  # below this, with no confident lexical hit, the question is not ours


def reciprocal_rank_fusion(rankings: Sequence[tuple[Sequence[K], float]], k: float = RRF_K) -> list[tuple[K, float]]:
    """Items of several rankings (best first, each with the retriever's weight) by fused score;
    ties keep the order of the first ranking that has the item."""
    scores: dict[K, float] = {}
    first_seen: dict[K, tuple[int, int]] = {}
    for which, (ranking, weight) in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            first_seen.setdefault(item, (which, rank))
    return sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the retrievers say about one hit."""

    lexical_confident: bool  # the lexical judge: a service word said, enough of the question found
    lexical_rank: int | None  # 1 = the lexical retriever's best service
    meaning_rank: int | None
    similarity: float  # cosine of the question and the hit (0 when the meaning retriever has none)
    best_similarity: float  # the meaning retriever's best cosine for the question


def confident(e: Evidence) -> bool:
    """Whether the agent may trust this hit.

    - the lexical judge is sure and the meaning retriever does not contradict it (it finds the
      question about something else entirely: best cosine under MEANING_NOTHING), or
    - both retrievers put the hit first and the meaning agrees at MEANING_AGREES, or
    - the meaning retriever alone is sure (MEANING_SURE) and puts it first.
    """
    if e.lexical_confident and e.best_similarity >= MEANING_NOTHING:
        return True
    if e.lexical_rank == 1 and e.meaning_rank == 1 and e.similarity >= MEANING_AGREES:
        return True
    return e.meaning_rank == 1 and e.similarity >= MEANING_SURE
