"""The alerting rules in infra/prometheus/alerts.yaml name metrics the app really serves: a
renamed metric would otherwise leave an alert that can never fire, silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.metrics import scrape

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
