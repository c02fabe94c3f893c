"""Would a learned order of the search's candidates beat the hand-made one? Measured on the
DEVELOPMENT sets only (decision 026, amendment "a learned order, measured and not taken"):

    uv run python -m tests.eval.learn tests/eval/questions_dev.jsonl tests/eval/questions_dev2.jsonl

Runs each question once through the app (`tune.collect`: what each retriever proposed, as
`search.EXPLAIN` records it; TUNE_CACHE/TUNE_REUSE as in `tune`), then fits a linear score over
FEATURES — a softmax over each in-scope question's candidates, the right services' share
maximised (gradient descent with L2 in numpy; scikit-learn is not installed) — and prints its
figures cross-validated within the given sets (5 folds by question) beside the hand-made order
(`fusion.placed`), for each feature group and penalty, the order learned everywhere and only where
the hand-made first is not confident (so the confidence cannot withhold more). Nothing is written:
on 2026-12-07 no variant beat the hand-made order clearly, so no model ships. Never give it the
test set.
"""

from __future__ import annotations

import argparse
import math
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backend.knowledge import fusion
from backend.knowledge.leika import service_object
from tests.eval.__main__ import Question, read_questions
from tests.eval.tune import evaluate, hand_made, records_of

FOLDS = 5
PENALTIES = (0.01, 0.1, 0.3, 1.0)
STEPS = 1500
Record = dict[str, Any]
Reorder = Callable[[Record, list[str]], list[str]]

FEATURES: tuple[str, ...] = (
    "placed_first",  # first in the hand-made order
    "placed_inverse",  # 1 / place in the hand-made order
    "lexical_in",  # in the lexical window
    "lexical_inverse",  # 1 / lexical rank
    "lexical_first",
    "final_share",  # lexical score over the best lexical score of the question
    "relevance",  # the share of the question's words found in title or search terms
    "relevance_gap",  # relevance less the best relevance of the question
    "lexical_confident",  # the lexical judge is sure of this candidate
    "meaning_in",  # among the meaning retriever's candidates
    "meaning_inverse",  # 1 / meaning rank
    "meaning_first",
    "similarity",  # cosine of the question (searched as) and the candidate
    "similarity_gap",  # cosine less the best cosine of the question
    "both_top3",  # both retrievers rank it in their first three
    "article",  # the town's (or an operator's) article, not a bare catalogue entry
    "twins",  # other candidates of the same service object (log 1 + n)
    "twin_of_lexical_first",  # a twin of the lexical retriever's first, not it
    "sure_and_lexical_first",  # the lexical judge is sure of its first, and this is it
)
GROUPS: dict[str, tuple[str, ...]] = {
    "all": FEATURES,
    "no placed": tuple(f for f in FEATURES if not f.startswith("placed")),
    "no twins": tuple(f for f in FEATURES if "twin" not in f),
    "ranks only": (
        "placed_first",
        "placed_inverse",
        "lexical_inverse",
        "meaning_inverse",
        "lexical_first",
        "meaning_first",
    ),
}


def features(r: Mapping[str, Any], placed: Sequence[str]) -> list[list[float]]:
    """One row of FEATURES per candidate of `placed` (the hand-made order), in that order, from
    what `search.EXPLAIN` records."""
    lexical: list[str] = r["lexical"]
    meaning: list[str] = r["meaning"]
    keys: Mapping[str, str | None] = r["keys"]
    final: Mapping[str, float] = r["final"]
    relevance: Mapping[str, float] = r["relevance"]
    similarity: Mapping[str, float] = r["similarity"]
    confident: Mapping[str, bool] = r["lexical_confident"]
    articles = set(r["articles"])
    lexical_rank = {g: n for n, g in enumerate(lexical, 1)}
    meaning_rank = {g: n for n, g in enumerate(meaning, 1)}
    best_final = max(final.values(), default=0.0) or 1.0
    best_relevance = max(relevance.values(), default=0.0)
    best_cosine = max(similarity.values(), default=0.0)
    objects: dict[str, int] = {}
    for g in placed:
        key = keys.get(g)
        if key:
            objects[service_object(key)] = objects.get(service_object(key), 0) + 1
    lexical_first = lexical[0] if lexical else None
    first_object = service_object(keys.get(lexical_first) or "") if lexical_first else ""
    sure = lexical_first is not None and bool(confident.get(lexical_first, False))
    rows = []
    for place, g in enumerate(placed, 1):
        lr = lexical_rank.get(g)
        mr = meaning_rank.get(g)
        key = keys.get(g) or ""
        cosine = similarity.get(g, 0.0)
        rel = relevance.get(g, 0.0)
        rows.append(
            [
                float(place == 1),
                1.0 / place,
                float(lr is not None),
                1.0 / lr if lr else 0.0,
                float(lr == 1),
                final.get(g, 0.0) / best_final,
                rel,
                rel - best_relevance,
                float(confident.get(g, False)),
                float(mr is not None),
                1.0 / mr if mr else 0.0,
                float(mr == 1),
                cosine,
                cosine - best_cosine if mr else -1.0,
                float((lr or 99) <= 3 and (mr or 99) <= 3),
                float(g in articles),
                math.log1p(objects.get(service_object(key), 1) - 1) if key else 0.0,
                float(bool(key) and g != lexical_first and service_object(key) == first_object),
                float(sure and g == lexical_first),
            ]
        )
    return rows


class Model:
    """A linear score over standardised features."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        self.weights, self.mean, self.scale = weights, mean, scale

    def ordered(self, r: Record, placed: list[str]) -> list[str]:
        """The candidates by score, best first; ties keep the hand-made order."""
        if len(placed) < 2:
            return placed
        scores = ((np.array(features(r, placed)) - self.mean) / self.scale) @ self.weights
        return [placed[i] for i in sorted(range(len(placed)), key=lambda i: (-scores[i], i))]


def examples(records: list[tuple[Question, Record]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per in-scope question whose right service is a candidate (not the only one): features, which are right."""
    out = []
    for question, r in records:
        if not question.expected:
            continue
        placed = hand_made(r)
        right = np.array([r["keys"][g] in question.acceptable for g in placed], dtype=float)
        if right.any() and not right.all():
            out.append((np.array(features(r, placed), dtype=float), right))
    return out


def fit(data: list[tuple[np.ndarray, np.ndarray]], penalty: float, mask: np.ndarray) -> Model:
    """Weights maximising the right candidates' softmax share per question (Adam on the mean loss)."""
    x = np.vstack([x for x, _ in data])
    y = np.concatenate([y for _, y in data])
    starts = np.cumsum([0] + [len(y) for _, y in data[:-1]])
    of = np.repeat(np.arange(len(data)), [len(y) for _, y in data])
    mean = x.mean(axis=0) * mask
    scale = x.std(axis=0)
    scale = np.where((scale > 1e-9) & (mask > 0), scale, 1.0)
    x = (x - mean) / scale * mask
    weights = np.zeros(len(mean))
    first = np.zeros_like(weights)
    second = np.zeros_like(weights)
    for step in range(1, STEPS + 1):
        s = x @ weights
        p = np.exp(s - np.maximum.reduceat(s, starts)[of])
        p /= np.add.reduceat(p, starts)[of]
        q = p * y / np.maximum(np.add.reduceat(p * y, starts), 1e-12)[of]
        gradient = penalty * weights + (p - q) @ x / len(data)
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        weights -= 0.05 * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return Model(weights * mask, mean, scale)


def first_confident(r: Record, placed: list[str]) -> bool:
    """`fusion.confident` for the first of `placed`, as the search and `tune.evaluate` judge it."""
    if not placed:
        return False
    g = placed[0]
    lexical = {x: n for n, x in enumerate(r["lexical"], 1)}
    meaning = {x: n for n, x in enumerate(r["meaning"], 1)}
    return fusion.confident(
        fusion.Evidence(
            lexical_confident=r["lexical_confident"].get(g, False),
            lexical_rank=lexical.get(g),
            meaning_rank=meaning.get(g),
            similarity=r["similarity"].get(g, 0.0),
            best_similarity=r["best"],
            elsewhere=r.get("elsewhere", 0.0),
            lexical_found=bool(r["lexical"]),
        )
    )


def reorder_with(model: Model, guarded: bool) -> Reorder:
    """The learned order; `guarded`: only where the hand-made first is not confident."""

    def reorder(r: Record, placed: list[str]) -> list[str]:
        return placed if guarded and first_confident(r, placed) else model.ordered(r, placed)

    return reorder


def figures(records: list[tuple[Question, Record]], reorder: Reorder | None = None) -> dict[str, float]:
    return evaluate(records, fusion.MEANING_WEIGHT, fusion.RRF_K, fusion.confident, reorder)


def cross_validated(
    records: list[tuple[Question, Record]], penalty: float, mask: np.ndarray, guarded: bool
) -> list[tuple[Question, Record, Reorder]]:
    """Each question with the order of the model fitted on the other folds (guarded: fitted on the
    questions whose hand-made first is not confident, the only ones it reorders)."""
    order = list(range(len(records)))
    random.Random(26).shuffle(order)
    held: list[tuple[Question, Record, Reorder]] = []
    for fold in range(FOLDS):
        test = set(order[fold::FOLDS])
        train = [records[i] for i in order if i not in test]
        if guarded:
            train = [(q, r) for q, r in train if not first_confident(r, hand_made(r))]
        reorder = reorder_with(fit(examples(train), penalty, mask), guarded)
        for i in test:
            held.append((*records[i], reorder))
    return held


def held_figures(held: list[tuple[Question, Record, Reorder]]) -> dict[str, float]:
    """Figures of held-out questions, each in its own fold's order."""
    n_in = sum(bool(q.expected) for q, _, _ in held)
    n_out = len(held) - n_in
    total: dict[str, float] = {}
    for q, r, reorder in held:
        for name, value in figures([(q, r)], reorder).items():
            weight = (not q.expected) if name == "declined" else bool(q.expected)
            total[name] = total.get(name, 0.0) + value * weight
    return {name: value / max(n_out if name == "declined" else n_in, 1) for name, value in total.items()}


def show(label: str, f: Mapping[str, float]) -> str:
    return f"{label:36} " + "  ".join(f"{n} {100 * v:5.1f}" for n, v in f.items())


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.eval.learn", description=__doc__)
    parser.add_argument(
        "files", nargs="*", default=["tests/eval/questions_dev.jsonl", "tests/eval/questions_dev2.jsonl"]
    )
    args = parser.parse_args()
    paths = [Path(p) for p in args.files]
    if any("test" in path.name for path in paths):
        raise SystemExit("train on the development sets only")
    records = records_of(paths, Path(os.environ.get("TUNE_CACHE", "/tmp/learn-records.json")))
    sets = {path.name: {q.query for q in read_questions(path)} for path in paths}
    print(show("hand-made order", figures(records)))
    for path in paths:
        print(show(f"  {path.name}", figures([(q, r) for q, r in records if q.query in sets[path.name]])))
    for guarded in (False, True):
        for group, names in GROUPS.items():
            mask = np.array([float(f in names) for f in FEATURES])
            for penalty in PENALTIES:
                held = cross_validated(records, penalty, mask, guarded)
                label = f"cv {'guarded ' if guarded else ''}{group}, L2 {penalty}"
                print(show(label, held_figures(held)))
                for path in paths:
                    mine = [h for h in held if h[0].query in sets[path.name]]
                    print(show(f"  {path.name}", held_figures(mine)))


if __name__ == "__main__":
    main()
