"""What a GraphQL request leaves behind and what it reuses (decision 033, amended).

graphql-core's executor references itself through its `async_helpers`; until the pipeline broke
that cycle, every request's executor, context, litestar request and ASGI scope waited for the
garbage collector (a collection every few requests, ~45–80 µs of CPU each request). And a
document without directives has its selections collected once, not on every request.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend.api import execution
from backend.api.context import GraphQLContext
from tests.support.world import World

KREIS, SOEST = "kreis-soest", "stadt-soest"
TENANT = "query($t: String!) { tenant(tenant: $t) { slug name departments { id name } } }"
INCLUDE = "query($t: String!, $d: Boolean!) { tenant(tenant: $t) { slug departments @include(if: $d) { id } } }"


@pytest.fixture
def saved_garbage() -> Iterator[list[Any]]:
    """What the collector finds unreachable meanwhile, kept for the test to look at."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_a_graphql_request_leaves_no_executor_or_context_for_the_collector(
    client: httpx.AsyncClient, world: World, saved_garbage: list[Any]
) -> None:
    for _ in range(3):
        response = await client.post(
            "/graphql",
            json={"query": TENANT, "variables": {"t": world.slug(SOEST)}},
            headers=world.headers(KREIS, "agent"),
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    gc.collect()
    left = [
        type(o).__name__
        for o in saved_garbage
        if isinstance(o, GraphQLContext | execution.LeafShortcutExecutionContext)
    ]
    assert left == []


async def test_selections_without_directives_are_collected_once_across_requests(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    collections: list[str] = []
    collect = execution.collect_subfields

    def counted(*args: Any) -> Any:
        collections.append(args[4].name)  # the return type
        return collect(*args)

    monkeypatch.setattr(execution, "collect_subfields", counted)
    headers = world.headers(KREIS, "agent")
    # A text of its own, so that no earlier test has collected it yet.
    query = TENANT.replace("departments {", "reused: departments {")
    answers = []
    for _ in range(2):
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"t": world.slug(SOEST)}}, headers=headers
        )
        answers.append(response.json())
    assert answers[0] == answers[1] and "errors" not in answers[0]
    assert sorted(collections) == ["Department", "Tenant"]  # once each, on the first request

    # With a directive the variables decide what is collected: graphql-core's own, per request.
    collections.clear()
    for include in (True, False):
        response = await client.post(
            "/graphql", json={"query": INCLUDE, "variables": {"t": world.slug(SOEST), "d": include}}, headers=headers
        )
        assert ("departments" in response.json()["data"]["tenant"]) is include
    assert collections == []
