"""`make eval` runs a held-out file of any size through the real app in-process: the agent's rate
limit must not stop it half-way (it did at 165 questions × 4 components)."""

from __future__ import annotations

from tests.eval.__main__ import COMPONENTS, eval_settings


def test_the_eval_is_not_rate_limited_like_an_agent() -> None:
    settings = eval_settings("postgresql://eval@localhost/eval", "redis://localhost/0")
    questions = 10_000
    assert settings.rate_limit_per_minute >= questions * len(COMPONENTS)


def _record() -> dict[str, object]:
    """What `search.EXPLAIN` records, for three candidates: two twins and an article."""
    return {
        "query": "perso verloren",
        "lexical": ["a", "b"],
        "meaning": ["c", "a"],
        "rerank": [],
        "similarity": {"c": 0.6, "a": 0.5},
        "best": 0.6,
        "elsewhere": 0.1,
        "keys": {"a": "99008001012000", "b": "99008001036000", "c": "99085001012000"},
        "final": {"a": 2.0, "b": 1.0},
        "articles": ["c"],
        "relevance": {"a": 0.8, "b": 0.5},
        "lexical_confident": {"a": True, "b": False, "c": False},
    }


def test_the_learning_harness_orders_a_record_as_the_search_and_builds_one_row_per_candidate() -> None:
    import numpy as np

    from tests.eval import learn, tune

    record = _record()
    placed = tune.hand_made(record)
    assert placed == ["a", "b", "c"]  # the words are sure: the meaning first (0.3 / 4) stays behind
    rows = learn.features(record, placed)
    assert [len(row) for row in rows] == [len(learn.FEATURES)] * 3
    row_b = dict(zip(learn.FEATURES, rows[1], strict=True))
    assert row_b["twin_of_lexical_first"] == 1.0 and row_b["meaning_in"] == 0.0
    # A model that only values the meaning rank puts the meaning retriever's first first.
    weights = np.array([float(name == "meaning_inverse") for name in learn.FEATURES])
    model = learn.Model(weights, np.zeros(len(weights)), np.ones(len(weights)))
    assert model.ordered(record, placed)[0] == "c"
