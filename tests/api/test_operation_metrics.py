"""GraphQL on /metrics by operation name (decision 031), not as one `/graphql` route; names are
the clients' choice, so an overlong one counts as "other" and an unnamed one as "anonymous"."""

from __future__ import annotations

import httpx

from tests.support.metrics import scrape, value
from tests.support.world import World

OPS = "bs_graphql_operations_total"


async def test_operations_are_counted_by_name_type_and_outcome(client: httpx.AsyncClient, world: World) -> None:
    agent = world.headers("kreis-soest", "agent")
    long_name = "Q" + "x" * 80
    before = await scrape(client)
    for body in (
        {"query": "query MetricsProbeMe { me { subject } }", "operationName": "MetricsProbeMe"},
        {"query": "query MetricsProbeMe { me { subject } }"},
        {"query": 'query MetricsProbeBroken { knowledgeSearch(query: "x", first: 0) { confident } }'},
        {"query": f"query {long_name} {{ me {{ subject }} }}"},
        {"query": "{ me { subject } }"},
    ):
        response = await client.post("/graphql", json=body, headers=agent)
        assert response.status_code == 200, response.text
    after = await scrape(client)

    def grew(**labels: str) -> float:
        return value(after, OPS, **labels) - value(before, OPS, **labels)

    assert grew(operation="MetricsProbeMe", type="query", outcome="ok") == 2
    assert grew(operation="MetricsProbeBroken", type="query", outcome="error") == 1
    assert grew(operation="other", type="query", outcome="ok") == 1
    assert grew(operation="anonymous", type="query", outcome="ok") >= 1
    assert not any(long_name in str(labels) for (_, labels) in after)
    seconds = value(after, "bs_graphql_operation_duration_seconds_count", operation="MetricsProbeMe", type="query")
    assert seconds >= 2
