"""An instance never wedges under a burst of call records (issue 12, decision 013).

Recording a call holds its transaction's connection; once the routing table was stale, it
asked the pool for a second one (with no timeout) to compile the table, and with every
connection held by such requests nobody ever got one back. Here: an app instance with a small
pool, the routing table made stale as after a quiet period of a few minutes (its in-process
copy older than twice the age limit, the shared copy in Redis expired), then more concurrent
call records than the pool has connections. Every request finishes. A pool of a single
connection is the smallest case: each unit of work that routes (a call record, an import, a
115 assignment) deadlocked on itself there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from auth.permissions import Operation, require
from auth.principal import Principal
from backend.db.pool import SecondConnection, acquire, create_pool, may_acquire
from backend.db.roles import APP_ROLE, with_user
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState, unit_of_work
from backend.telephony import cache
from backend.tenants import signin
from tests.support.asgi import serve
from tests.support.metrics import scrape, value
from tests.support.world import World, system_principal

# However slow the machine, a burst of a few call records is done in seconds; on the code
# before the fix it never was (the guard turns that hang into a failure).
FINISHES_WITHIN = 30.0
SOEST_CENTRAL = "+4929211030"
MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def call_record(**fields: Any) -> dict[str, Any]:
    return {
        "externalId": f"burst-{uuid.uuid4()}",
        "dialled": SOEST_CENTRAL,
        "caller": "0171 2345678",
        "offeredAt": "2026-03-02T10:00:00+01:00",
        "answeredAt": "2026-03-02T10:00:42+01:00",
        "endedAt": "2026-03-02T10:03:13+01:00",
        **fields,
    }


@asynccontextmanager
async def instance(settings: Settings, pool_size: int) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    app = create_app(dataclasses.replace(settings, db_pool_min=pool_size, db_pool_max=pool_size))
    async with serve(app, "http://burst.local") as client:
        yield client, app.state.app_state


async def open_every_connection(state: AppState) -> None:
    """As a few concurrent reads before the quiet period did: every connection is open."""

    async def read() -> None:
        async with acquire(state.pool) as conn:
            await conn.fetchval("SELECT pg_sleep(0.05)")

    await asyncio.gather(*(read() for _ in range(state.pool.get_max_size())))


async def go_stale(state: AppState) -> None:
    """The routing table after two to three quiet minutes, without waiting for them: the copy
    this instance decides with is older than twice the age limit (a request waits for a new
    one), and the shared copy in Redis has expired (so the new one is compiled from PostgreSQL)."""
    local = cache._local(state)
    assert local.compiled is not None, "warm the instance first"
    local.compiled.table.compiled_at -= 2 * cache.MAX_AGE_SECONDS + 1
    await state.redis.delete(cache._table_key(state, local.generation))
    assert not cache._fresh(local.compiled, 2 * cache.MAX_AGE_SECONDS)


async def warm(client: httpx.AsyncClient, world: World) -> None:
    """One call record: the instance has signed the telephony system in and holds the table."""
    response = await client.post("/v1/calls", json=call_record(), headers=world.headers("kreis-soest", "telephony"))
    assert response.status_code == 200, response.text


async def every_connection_in_use_or_done(state: AppState, burst: asyncio.Future[Any]) -> None:
    deadline = time.monotonic() + 5
    pool = state.pool
    while not burst.done() and time.monotonic() < deadline:
        if pool.get_idle_size() == 0 and pool.get_size() == pool.get_max_size():
            return
        await asyncio.sleep(0.005)


@pytest.mark.parametrize(
    ("pool_size", "requests", "replacing"),
    [(4, 6, False), (4, 6, True), (4, 16, True)],
    ids=["N+2", "N+2-while-a-decision-replaces-the-table", "4N-while-a-decision-replaces-the-table"],
)
async def test_a_burst_of_call_records_after_a_quiet_period_finishes(
    settings: Settings, telephony: World, pool_size: int, requests: int, replacing: bool
) -> None:
    """`replacing`: a routing decision (GET /v1/routing, which holds no connection) is replacing
    the stale table when the burst arrives: it holds the table's lock until every connection is
    held by the burst. Before the fix, the call records queued for that lock holding their
    connections, and whoever got the lock next waited for a connection nobody would return:
    the interleaving of the reported wedge, made certain rather than left to timing."""
    headers = telephony.headers("kreis-soest", "telephony")
    async with instance(settings, pool_size) as (client, state):
        await warm(client, telephony)
        await open_every_connection(state)
        await go_stale(state)
        before = await scrape(client)
        lock = cache._local(state).lock

        started = time.perf_counter()
        if replacing:
            await lock.acquire()
        try:
            burst = asyncio.gather(
                *(client.post("/v1/calls", json=call_record(), headers=headers) for _ in range(requests))
            )
            if replacing:
                await every_connection_in_use_or_done(state, burst)
                lock.release()
            responses = await asyncio.wait_for(burst, timeout=FINISHES_WITHIN)
        finally:
            if replacing and lock.locked():
                lock.release()
        seconds = time.perf_counter() - started

        assert [r.status_code for r in responses] == [200] * requests, [r.text for r in responses if r.is_error]
        soest = str(telephony.tenant_ids["stadt-soest"])
        assert {r.json()["tenantId"] for r in responses} == {soest}
        after = await scrape(client)
        # The shared table was loaded in the background meanwhile, on a connection of its own.
        local = cache._local(state)
        if local.refreshing is not None:
            await asyncio.wait_for(local.refreshing, timeout=FINISHES_WITHIN)
        assert cache._fresh(local.compiled)
        ready = await client.get("/readyz")

    assert ready.json()["postgres"] == "ok"
    sources = {
        source: value(after, "bs_routing_lookups_total", source=source)
        - value(before, "bs_routing_lookups_total", source=source)
        for source in ("cache", "transaction", "database")
    }
    assert sources["database"] == 0  # Redis was there: nothing looked like a Redis outage
    assert sources["cache"] + sources["transaction"] == requests
    assert value(after, "bs_db_pool_acquire_timeouts_total") == 0
    # The figures for the closing note of issue 12 (shown with `pytest -s`).
    print(
        f"\nburst: pool {pool_size}, {requests} concurrent POST /v1/calls after the table went stale"
        f"{' (while a decision replaced it)' if replacing else ''}: all {requests} answered 200 in {seconds:.3f} s "
        f"(routed from cache {sources['cache']:.0f}, on their own connection {sources['transaction']:.0f})"
    )


async def test_with_a_single_connection_every_unit_of_work_that_routes_finishes(
    settings: Settings, telephony: World
) -> None:
    """The smallest pool: the unit of work holds the only connection, so waiting for a second
    one could never end. Recording a call, importing calls and assigning a 115 call to a town
    each route with a stale table, and each finishes."""
    system = telephony.headers("kreis-soest", "telephony")
    agent = telephony.headers("kreis-soest", "agent")
    soest = str(telephony.tenant_ids["stadt-soest"])
    async with instance(settings, 1) as (client, state):
        await warm(client, telephony)
        ambiguous = await client.post("/v1/calls", json=call_record(dialled="115", caller="02921 4711"), headers=system)
        assert ambiguous.status_code == 200, ambiguous.text
        assert ambiguous.json()["resolvedBy"] == "ambiguous_area_code"

        async def settled(request: Any) -> httpx.Response:
            await go_stale(state)
            response: httpx.Response = await asyncio.wait_for(request, timeout=FINISHES_WITHIN)
            local = cache._local(state)
            if local.refreshing is not None:  # let the background load finish before the next case
                await asyncio.wait_for(local.refreshing, timeout=FINISHES_WITHIN)
            return response

        recorded = await settled(client.post("/v1/calls", json=call_record(), headers=system))
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["tenantId"] == soest

        lines = "\n".join(json.dumps(call_record()) for _ in range(3))
        imported = await settled(
            client.post("/v1/calls/import", content=lines, headers={**system, "content-type": "application/x-ndjson"})
        )
        assert imported.status_code == 200, imported.text
        assert (imported.json()["inserted"], imported.json()["errorCount"]) == (3, 0)

        assigned = await settled(
            client.put(f"/v1/calls/{ambiguous.json()['id']}/tenant", json={"tenantId": soest}, headers=agent)
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["tenantId"] == soest


# --- routing inside a unit of work ------------------------------------------------------------


def operator(world: World) -> tuple[AppState, Principal]:
    return world.state, system_principal(world.tenant_ids["kreis-soest"], set(world.tenant_ids.values()))


async def test_code_that_may_take_a_connection_is_refused_inside_a_unit_of_work_even_on_a_cache_hit(
    telephony: World,
) -> None:
    """Sign-in and the routing table usually answer from memory; they take a connection only on
    a miss. The guard does not wait for a test to provoke the miss: they declare it up front."""
    state, principal = operator(telephony)
    token = telephony.token("kreis-soest", "telephony")
    system, _ = await signin.sign_in(state, token)  # remembered from now on
    acting = require(system, Operation.CALL_WRITE)
    assert await cache.cached_routing(state) is not None  # the table is at hand
    async with unit_of_work(state, principal) as uow:
        with pytest.raises(SecondConnection):
            await signin.sign_in(state, token)
        with pytest.raises(SecondConnection):
            await cache.routing_for(state, acting, SOEST_CENTRAL)
        with pytest.raises(SecondConnection):
            await cache.cached_routing(state)
        with pytest.raises(SecondConnection):
            may_acquire(state.pool)
        # With the connection it holds, it routes.
        compiled, source = await cache.routing_for(state, acting, SOEST_CENTRAL, conn=uow.conn)
        assert source == "cache"
        assert compiled.tenant_of_call(SOEST_CENTRAL, None, MOMENT, acting) is not None


async def test_a_stale_table_is_decided_on_the_held_connection_while_the_pool_is_exhausted(
    telephony: World, admin_url: str
) -> None:
    """The unit of work holds the pool's only connection and the table is stale: it routes on its
    own connection at once ("transaction"), and the shared table is loaded in the background
    once the connection is free again."""
    state, principal = operator(telephony)
    pool = await create_pool(with_user(admin_url, APP_ROLE), 1, 1)
    one = AppState(
        settings=state.settings,
        pool=pool,
        redis=state.redis,
        http=state.http,
        verifier=state.verifier,
        sign_in=state.sign_in,
    )
    try:
        assert await cache.cached_routing(one) is not None
        local = cache._local(one)
        assert local.compiled is not None
        local.compiled.table.compiled_at -= 2 * cache.MAX_AGE_SECONDS + 1
        await one.redis.delete(cache._table_key(one, local.generation))
        acting = frozenset(telephony.tenant_ids.values())
        async with unit_of_work(one, principal) as uow:
            compiled, source = await asyncio.wait_for(
                cache.routing_for(one, acting, SOEST_CENTRAL, conn=uow.conn), timeout=5
            )
            assert source == "transaction"
            found = compiled.tenant_of_call(SOEST_CENTRAL, None, MOMENT, acting)
            assert found is not None and found[1] == telephony.tenant_ids["stadt-soest"]
            assert local.refreshing is not None and not local.refreshing.done()  # waits for the pool
        await asyncio.wait_for(local.refreshing, timeout=10)
        assert cache._fresh(local.compiled)
    finally:
        await pool.close()
