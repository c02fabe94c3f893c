"""The alerting rules in infra/prometheus/alerts.yaml name metrics the app really serves: a
renamed metric would otherwise leave an alert that can never fire, silently."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backend.db.pool import create_pool
from backend.metrics import Metrics
from backend.telephony.worker import TelephonyWorker
from backend.tickets.worker import TicketWorker
from tests.support.metrics import scrape
from tests.support.world import World

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alerts.yaml"
# In the text format a counter's TYPE line names it with `_total`; a histogram's has three series.
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum")}
SELECTOR = re.compile(r"\b(bs_[a-z0-9_]+)(?:\{([^}]*)\})?")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_says_what_it_is_and_how_urgent() -> None:
    rules = _rules()
    assert len({rule["alert"] for rule in rules}) == len(rules) >= 10
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert SELECTOR.search(rule["expr"]), rule["alert"]


async def test_every_metric_and_label_in_the_rules_exists(client: httpx.AsyncClient) -> None:
    await client.get("/v1/me")  # at least one request series (a 401)
    await client.get("/readyz")  # the dependencies' series (set by the readiness check)
    text = (await client.get("/metrics")).text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    served = {family + suffix for family, kind in types.items() for suffix in SUFFIXES.get(kind, ("",))}
    samples = await scrape(client)
    for rule in _rules():
        for name, selector in SELECTOR.findall(rule["expr"]):
            assert name in served, f"{rule['alert']}: {name} is not on /metrics"
            labels = set(re.findall(r"([a-z_]+)\s*(?:=|!=|=~|!~)", selector))
            present = [dict(lbls) for (sample, lbls) in samples if sample == name]
            for sample_labels in present:  # where the series exists, its labels must match
                assert labels <= set(sample_labels), (
                    f"{rule['alert']}: {name} has no label {labels - set(sample_labels)}"
                )


HEARTBEAT = "bs_worker_last_success_timestamp_seconds"


def _matchers(selector: str) -> dict[str, tuple[str, str]]:
    return {name: (op, val) for name, op, val in re.findall(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector)}


async def test_workers_whose_every_round_fails_are_alerted_on(world: World) -> None:
    """After a release whose every round fails, the heartbeat series never appears: a rule on
    `time() - max(heartbeat)` is then empty and silent. Each worker needs a rule on the absent
    heartbeat, and failing rounds need one of their own."""
    figures = Metrics()
    state = world.state
    unreachable = await create_pool("postgresql://bs_app@127.0.0.1:1/nowhere", 0, 1)  # every round fails
    try:
        async with httpx.AsyncClient() as http:
            tickets = TicketWorker(unreachable, state.redis, http, state.sealer, poll_seconds=0.01, metrics=figures)
            telephony = TelephonyWorker(unreachable, metrics=figures)
            stop = asyncio.Event()
            running = [asyncio.create_task(tickets.run(stop)), asyncio.create_task(telephony.run(stop))]
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*running)
    finally:
        await unreachable.close()
    samples = [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(generate_latest(figures.registry).decode())
        for sample in family.samples
    ]
    workers = {labels["worker"] for name, labels in samples if name == "bs_worker_rounds_total"}
    assert workers == {"tickets", "telephony"}
    assert not [labels for name, labels in samples if name == HEARTBEAT]  # what the rules must expect
    assert all(labels["outcome"] == "failed" for name, labels in samples if name == "bs_worker_rounds_total")

    rules = _rules()
    for worker in sorted(workers):
        absent = [
            rule["alert"]
            for rule in rules
            for selector in re.findall(rf"absent\(\s*{HEARTBEAT}\{{([^}}]*)\}}\s*\)", rule["expr"])
            if _matchers(selector).get("worker") == ("=", worker)
        ]
        assert absent, f"no rule fires when the {worker} worker never completed a round"
    failing = [
        rule
        for rule in rules
        for name, selector in SELECTOR.findall(rule["expr"])
        if name == "bs_worker_rounds_total" and _matchers(selector).get("outcome") == ("=", "failed")
    ]
    assert failing, "no rule fires on failed worker rounds"
    for rule in failing:  # it covers every worker, and tells which one fails
        rounds = [selector for name, selector in SELECTOR.findall(rule["expr"]) if name == "bs_worker_rounds_total"]
        assert all("worker" not in _matchers(selector) for selector in rounds), rule["alert"]
        assert "by (worker)" in rule["expr"], rule["alert"]


def test_a_starved_pool_pages_and_timeouts_are_noticed() -> None:
    """A wedge must never look healthy: starvation beyond the instance's own threshold pages
    (the threshold is served, so the rule follows DB_POOL_STARVED_SECONDS), and requests
    answered 503 for want of a connection open a ticket (decision 013)."""
    rules = {rule["alert"]: rule for rule in _rules()}
    starved = rules["DatabasePoolStarved"]
    assert starved["labels"]["severity"] == "page"
    names = [name for name, _ in SELECTOR.findall(starved["expr"])]
    assert names == ["bs_db_pool_starved_seconds", "bs_db_pool_starved_threshold_seconds"]
    assert ">" in starved["expr"] and "by (instance)" in starved["expr"]
    timeouts = rules["DatabaseAcquireTimeouts"]
    assert [name for name, _ in SELECTOR.findall(timeouts["expr"])] == ["bs_db_pool_acquire_timeouts_total"]
