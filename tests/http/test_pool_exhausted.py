"""A request that gets no database connection in time fails fast (decision 013): REST answers
503 problem+json with Retry-After, GraphQL SERVICE_UNAVAILABLE with `extensions.retryAfter`
(in mutations too), and each is logged with its request id. Before, it waited for ever and
logged nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import structlog

from backend.db import pool as pool_module
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from tests.support.asgi import serve
from tests.support.metrics import scrape, value
from tests.support.world import World

CALLS = "{ calls(first: 5) { nodes { id } } }"
OUTCOME = """mutation($id: UUID!) {
  recordCallOutcome(id: $id, input: {outcome: SETTLED_FIRST_CONTACT}) { errors { code } }
}"""


@asynccontextmanager
async def every_connection_held(pool: asyncpg.Pool) -> AsyncIterator[None]:
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        yield
    finally:
        for conn in connections:
            await pool.release(conn)


class Recorder:
    """Stands in for the pool's logger: what was logged, with the request's bound fields."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append((event, {**structlog.contextvars.get_contextvars(), **fields}))

    error = warning


async def test_no_connection_in_time_is_a_503_with_retry_after_logged_with_the_request_id(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = Recorder()
    monkeypatch.setattr(pool_module, "log", logged)
    app = create_app(dataclasses.replace(settings, db_pool_min=1, db_pool_max=1, db_acquire_timeout_seconds=0.3))
    agent = world.headers("kreis-soest", "agent")
    async with serve(app, "http://exhausted.local") as client:
        warm = await client.get("/v1/calls", headers=agent)  # signed in and remembered
        assert warm.status_code == 200, warm.text
        state: AppState = app.state.app_state
        async with every_connection_held(state.pool):
            started = time.monotonic()
            rest = await asyncio.wait_for(
                client.get("/v1/calls", headers={**agent, "x-request-id": "no-connection-rest"}), timeout=10
            )
            waited = time.monotonic() - started
            query = await asyncio.wait_for(
                client.post("/graphql", json={"query": CALLS}, headers={**agent, "x-request-id": "no-connection-gql"}),
                timeout=10,
            )
            mutation = await asyncio.wait_for(
                client.post(
                    "/graphql",
                    json={"query": OUTCOME, "variables": {"id": "00000000-0000-0000-0000-000000000001"}},
                    headers=agent,
                ),
                timeout=10,
            )
            figures = await scrape(client)
        again = await client.get("/v1/calls", headers=agent)

    assert rest.status_code == 503, rest.text
    assert rest.headers["content-type"].startswith("application/problem+json")
    assert rest.headers["retry-after"] == "1"  # about as long as it waited (0.3 s, in whole seconds)
    assert rest.headers["x-request-id"] == "no-connection-rest"
    problem = rest.json()
    assert (problem["status"], problem["code"], problem["retryAfter"]) == (503, "SERVICE_UNAVAILABLE", 1)
    assert waited < 3, waited  # fast: the acquire timeout, not for ever

    assert query.status_code == 200, query.text
    assert [e["extensions"] for e in query.json()["errors"]] == [{"code": "SERVICE_UNAVAILABLE", "retryAfter": 1}]
    # A mutation reports it as a request error too, not as a payload error about its input.
    assert [e["extensions"] for e in mutation.json()["errors"]] == [{"code": "SERVICE_UNAVAILABLE", "retryAfter": 1}]

    exhausted = {
        fields.get("request_id"): fields for event, fields in logged.events if event == "database_pool_exhausted"
    }
    for request_id in ("no-connection-rest", "no-connection-gql"):
        assert (exhausted[request_id]["waited_seconds"], exhausted[request_id]["pool_max"]) == (0.3, 1)
    assert value(figures, "bs_db_pool_acquire_timeouts_total") >= 3
    assert again.status_code == 200  # and served again once a connection is free
