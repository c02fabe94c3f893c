"""Tune fusion and confidence on the DEVELOPMENT set only (decision 026):

    uv run python -m tests.eval.tune tests/eval/questions_dev.jsonl tests/eval/questions_dev2.jsonl

Runs each question once through the app (both retrievers), records what each proposed
(`search.EXPLAIN`), then tries fusion weights and confidence thresholds offline and prints the
best settings by top-1, top-3 and how the confidence rule does. Never give it the test set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.knowledge import fusion, search
from tests.eval.__main__ import EVAL_DATA, Question, read_questions, run


def collect(questions: list[Question]) -> list[dict[str, Any]]:
    from backend.devservices import ensure_services

    services = ensure_services(EVAL_DATA)
    server_url = os.environ.get("DATABASE_URL") or services.database_url
    redis_url = os.environ.get("REDIS_URL") or services.redis_url
    seen: list[dict[str, Any]] = []
    search.EXPLAIN = seen.append
    try:
        asyncio.run(run(questions, server_url, redis_url, components=("fused",)))
    finally:
        search.EXPLAIN = None
    del services
    return seen


def records_of(paths: list[Path], cache: Path) -> list[tuple[Question, dict[str, Any]]]:
    """The questions of `paths` with the search's record of each (from `cache` with TUNE_REUSE)."""
    questions = [q for path in paths for q in read_questions(path)]
    if cache.exists() and os.environ.get("TUNE_REUSE"):
        raw = json.loads(cache.read_text())
    else:
        raw = collect(questions)
        cache.write_text(json.dumps(raw))
    by_query = {r["query"]: r for r in raw}
    return [(q, by_query[q.query]) for q in questions if q.query in by_query]


def hand_made(r: dict[str, Any], weight: float = fusion.MEANING_WEIGHT, k: float = fusion.RRF_K) -> list[str]:
    """The candidates of a record in the hand-made order: fusion, then `fusion.placed` (as the search)."""
    rerank = r.get("rerank", [])
    fused = fusion.reciprocal_rank_fusion(
        [(r["lexical"], fusion.LEXICAL_WEIGHT), (r["meaning"], weight), (rerank, fusion.RERANK_WEIGHT)], k
    )
    lexical_sure = bool(r["lexical"]) and r["lexical_confident"].get(r["lexical"][0], False)

    def twins(a: str, b: str, keys: dict[str, str] = r["keys"]) -> bool:
        return bool(keys[a] and keys[b]) and keys[a][:8] == keys[b][:8]

    relevance: dict[str, float] = r.get("relevance", {})

    def as_well(a: str, b: str, relevance: dict[str, float] = relevance) -> bool:
        return relevance.get(a, 0.0) >= relevance.get(b, 0.0)

    articles = set(r.get("articles", []))
    return fusion.placed(
        [g for g, _ in fused], r["lexical"], r["meaning"], rerank, lexical_sure, twins, articles.__contains__, as_well
    )


def evaluate(
    records: list[tuple[Question, dict[str, Any]]],
    weight: float,
    k: float,
    rule: Any,
    reorder: Callable[[dict[str, Any], list[str]], list[str]] | None = None,
) -> dict[str, float]:
    """Top-1, top-3, declined and withheld of the records in the hand-made order (`reorder`: then another)."""
    top1 = top3 = withheld = declined = n_in = n_out = 0
    for question, r in records:
        rerank = r.get("rerank", [])
        placed = hand_made(r, weight, k)
        if reorder is not None:
            placed = reorder(r, placed)
        groups = placed[:3]
        keys = [r["keys"][g] for g in groups]
        lex_rank = {g: n for n, g in enumerate(r["lexical"], 1)}
        mean_rank = {g: n for n, g in enumerate(r["meaning"], 1)}
        rerank_rank = {g: n for n, g in enumerate(rerank, 1)}
        best = r["best"]
        sure = bool(groups) and rule(
            fusion.Evidence(
                lexical_confident=r["lexical_confident"].get(groups[0], False),
                lexical_rank=lex_rank.get(groups[0]),
                meaning_rank=mean_rank.get(groups[0]),
                similarity=r["similarity"].get(groups[0], 0.0),
                best_similarity=best,
                elsewhere=r.get("elsewhere", 0.0),
                rerank_rank=rerank_rank.get(groups[0]),
                rerank_similarity=r.get("rerank_similarity", {}).get(groups[0], 0.0),
                lexical_found=bool(r["lexical"]),
            )
        )
        if question.expected:
            n_in += 1
            top1 += bool(keys) and keys[0] in question.acceptable
            top3 += any(key in question.acceptable for key in keys)
            withheld += not sure
        else:
            n_out += 1
            declined += not sure
    return {
        "top1": top1 / max(n_in, 1),
        "top3": top3 / max(n_in, 1),
        "declined": declined / max(n_out, 1),
        "withheld": withheld / max(n_in, 1),
    }


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [Path("tests/eval/questions_dev.jsonl")]
    if any("test" in path.name for path in paths):
        raise SystemExit("tune on the development sets only")
    records = records_of(paths, Path(os.environ.get("TUNE_CACHE", "/tmp/tune-records.json")))
    results = []
    for weight, k in itertools.product([0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0], [1, 3, 5, 10, 20, 60]):
        f = evaluate(records, weight, k, fusion.confident)
        results.append((f["top1"] + f["top3"], weight, k, f))
    results.sort(key=lambda x: -x[0])
    for _, weight, k, f in results[:12]:
        print(f"weight {weight:.1f} k {k:>3}: " + "  ".join(f"{n} {100 * v:5.1f}" for n, v in f.items()))
    print(f"confidence at weight {fusion.MEANING_WEIGHT} k {fusion.RRF_K}:")
    rules = []
    grid = itertools.product([0.0, 0.2, 0.24, 0.28], [0.3, 0.35, 0.4, 0.45, 9.0], [0.35, 0.45, 0.55, 9.0])
    for nothing, first, sure in grid:
        f = evaluate(
            records,
            fusion.MEANING_WEIGHT,
            fusion.RRF_K,
            lambda e, n=nothing, fl=first, s=sure: fusion.confident(e, n, fl, s),
        )
        cost = f["withheld"] + 2 * max(0.0, 0.85 - f["declined"])
        rules.append((cost, (nothing, first, sure), f))
    rules.sort(key=lambda x: x[0])
    print("(without the person rule, which declines questions for a person before this)")
    for _, chosen, f in rules[:10]:
        print(f"thresholds {chosen}: " + "  ".join(f"{n} {100 * v:5.1f}" for n, v in f.items()))
    print("the lexical first place on a question no closer to a request no service answers (floor, margin):")
    ours = []
    for floor, margin in itertools.product([0.24, 0.26, 0.28, 0.3, 0.32, 0.34, 9.0], [-0.05, 0.0, 0.05, 0.1]):
        f = evaluate(
            records,
            fusion.MEANING_WEIGHT,
            fusion.RRF_K,
            lambda e, fl=floor, m=margin: fusion.confident(e, lexical_first_ours=fl, ours_margin=m),
        )
        cost = f["withheld"] + 2 * max(0.0, 0.85 - f["declined"])
        ours.append((cost, (floor, margin), f))
    ours.sort(key=lambda x: x[0])
    for _, chosen, f in ours[:8]:
        print(f"ours {chosen}: " + "  ".join(f"{n} {100 * v:5.1f}" for n, v in f.items()))
    print("similarities of the fused top hit, in scope right / wrong / out of scope:")
    for question, r in records:
        fused = fusion.reciprocal_rank_fusion(
            [(r["lexical"], 1.0), (r["meaning"], fusion.MEANING_WEIGHT)], fusion.RRF_K
        )
        if not fused:
            print("   none", question.query)
            continue
        g = fused[0][0]
        ok = "OOS" if not question.expected else ("ok " if r["keys"][g] in question.acceptable else "bad")
        lexrank = r["lexical"].index(g) + 1 if g in r["lexical"] else "-"
        meanrank = r["meaning"].index(g) + 1 if g in r["meaning"] else "-"
        print(
            f"   {ok} sim {r['similarity'].get(g, 0):.2f} best {r['best']:.2f} "
            f"lexconf {r['lexical_confident'].get(g, False)!s:5} lexrank {lexrank} meanrank {meanrank} {question.query}"
        )


if __name__ == "__main__":
    main()
