"""`make eval` runs a held-out file of any size through the real app in-process: the agent's rate
limit must not stop it half-way (it did at 165 questions × 4 components)."""

from __future__ import annotations

from tests.eval.__main__ import COMPONENTS, eval_settings


def test_the_eval_is_not_rate_limited_like_an_agent() -> None:
    settings = eval_settings("postgresql://eval@localhost/eval", "redis://localhost/0")
    questions = 10_000
    assert settings.rate_limit_per_minute >= questions * len(COMPONENTS)
