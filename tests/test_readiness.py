"""/readyz takes an instance out when it cannot use PostgreSQL, or when its pool is starved (no
connection handed out to anyone waiting for DB_POOL_STARVED_SECONDS: a wedge). A busy pool and an
unreachable or hung Redis are shared by every replica: failing readiness on them would take all
replicas out of the Service at once. Real app, real PostgreSQL and Redis; Redis "down" as the
routing tests do it (a closed port), "hung" as a peer that accepts and never answers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
from litestar import Litestar

from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from tests.support.asgi import serve
from tests.support.metrics import scrape, value

BASE_URL = "http://readiness.local"


async def probe(client: httpx.AsyncClient, path: str) -> httpx.Response:
    # Each check has its own bound (health.py); the guard only turns a hang into a failure.
    return await asyncio.wait_for(client.get(path), timeout=10)


@asynccontextmanager
async def held(pool: asyncpg.Pool, count: int) -> AsyncIterator[None]:
    """Every connection of the pool in use, as by slow queries."""
    connections = [await pool.acquire() for _ in range(count)]
    try:
        yield
    finally:
        for conn in connections:
            await pool.release(conn)


@asynccontextmanager
async def silent_peer() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers: a hung Redis."""
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


def state_of(app: Litestar) -> AppState:
    state: AppState = app.state.app_state
    return state


async def test_a_busy_pool_is_ready(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, db_pool_min=2, db_pool_max=2))
    async with serve(app, BASE_URL) as client:
        pool = state_of(app).pool
        async with held(pool, 2):
            ready = await probe(client, "/readyz")
            figures = await asyncio.wait_for(scrape(client), timeout=10)
        after = await probe(client, "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "postgres": "busy", "redis": "ok"}
    assert value(figures, "bs_dependency_up", dependency="postgres") == 1
    assert after.json() == {"status": "ready", "postgres": "ok", "redis": "ok"}


async def test_a_hung_redis_is_reported_and_the_instance_stays_ready(settings: Settings) -> None:
    async with silent_peer() as port:
        app = create_app(dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
        async with serve(app, BASE_URL) as client:
            ready = await probe(client, "/readyz")
            figures = await scrape(client)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "postgres": "ok", "redis": "unavailable"}
    assert value(figures, "bs_dependency_up", dependency="redis") == 0
    assert value(figures, "bs_dependency_up", dependency="postgres") == 1


async def test_without_postgresql_the_instance_is_not_ready_but_alive(settings: Settings) -> None:
    app = create_app(settings)
    async with serve(app, BASE_URL) as client:
        assert (await client.get("/readyz")).status_code == 200
        pool = state_of(app).pool
        pool.set_connect_args(dsn="postgresql://bs_app@127.0.0.1:1/nowhere")  # PostgreSQL goes away
        await pool.expire_connections()
        ready = await probe(client, "/readyz")
        alive = await client.get("/healthz")
        figures = await scrape(client)
    assert ready.status_code == 503, ready.text
    assert ready.json() == {"status": "not ready", "postgres": "unavailable", "redis": "ok"}
    assert alive.status_code == 200
    assert value(figures, "bs_dependency_up", dependency="postgres") == 0
    assert value(figures, "bs_dependency_up", dependency="redis") == 1


async def test_a_starved_pool_is_not_ready(settings: Settings) -> None:
    """Busy is load; starved is a wedge: every connection held, someone waiting, and no
    connection handed out for longer than DB_POOL_STARVED_SECONDS. Then /readyz is 503 (the
    instance gets no traffic) and the gauges the DatabasePoolStarved alert compares show it;
    once a connection comes back, it is ready again."""
    app = create_app(
        dataclasses.replace(
            settings, db_pool_min=2, db_pool_max=2, db_acquire_timeout_seconds=0.2, db_pool_starved_seconds=2.0
        )
    )
    async with serve(app, BASE_URL) as client:
        pool = state_of(app).pool
        async with held(pool, 2):
            busy = await probe(client, "/readyz")  # waited 1 s for a connection: busy, not yet starved
            await asyncio.sleep(1.2)
            starved = await probe(client, "/readyz")
            figures = await asyncio.wait_for(scrape(client), timeout=10)
        after = await probe(client, "/readyz")
        recovered = await scrape(client)
    assert busy.status_code == 200, busy.text
    assert busy.json() == {"status": "ready", "postgres": "busy", "redis": "ok"}
    assert starved.status_code == 503, starved.text
    assert starved.json() == {"status": "not ready", "postgres": "starved", "redis": "ok"}
    # What the DatabasePoolStarved rule compares (infra/prometheus/alerts.yaml).
    assert value(figures, "bs_db_pool_starved_seconds") > value(figures, "bs_db_pool_starved_threshold_seconds") == 2
    assert value(figures, "bs_dependency_up", dependency="postgres") == 1  # reachable, but wedged
    assert after.status_code == 200 and after.json()["postgres"] == "ok"
    assert value(recovered, "bs_db_pool_starved_seconds") == 0
