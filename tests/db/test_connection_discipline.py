"""One connection per unit of work, a timeout on every acquire, a starvation clock (decision 013).

The guard is on for the whole suite (tests/conftest.py): a unit of work that asks its pool for
a second connection fails with SecondConnection, so any code path that would wait for one while
holding one fails its tests instead of wedging an instance under load."""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pytest

from auth.principal import Principal
from backend.db.pool import (
    PoolWatch,
    SecondConnection,
    acquire,
    create_pool,
    holds_connection,
    may_acquire,
)
from backend.db.roles import APP_ROLE, with_user
from backend.db.tenancy import all_tenants_transaction, tenant_transaction
from backend.errors import PoolExhausted
from backend.settings import PROJECT_ROOT
from backend.state import AppState, unit_of_work
from tests.support.world import World, system_principal

SOEST_CENTRAL = "+4929211030"
MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def operator(world: World) -> tuple[AppState, Principal]:
    return world.state, system_principal(world.tenant_ids["kreis-soest"], set(world.tenant_ids.values()))


async def take(pool: asyncpg.Pool) -> None:
    async with acquire(pool) as conn:
        await conn.fetchval("SELECT 1")


async def test_a_unit_of_work_that_asks_for_a_second_connection_fails(world: World, db: asyncpg.Pool) -> None:
    state, principal = operator(world)
    async with unit_of_work(state, principal) as uow:
        assert holds_connection(state.pool) and not holds_connection(db)
        with pytest.raises(SecondConnection):
            await take(state.pool)
        with pytest.raises(SecondConnection):
            async with tenant_transaction(state.pool, [world.tenant_ids["stadt-soest"]]):
                pass
        with pytest.raises(SecondConnection):
            async with all_tenants_transaction(state.pool):
                pass
        # A task it starts and awaits is part of the unit of work: refused as well.
        with pytest.raises(SecondConnection):
            await asyncio.create_task(take(state.pool))
        # A task started with a fresh context is not (a background load nobody awaits).
        await asyncio.create_task(take(state.pool), context=contextvars.Context())
        # Another pool is another matter (nothing it waits for waits for this one).
        await take(db)
        assert await uow.conn.fetchval("SELECT 1") == 1  # the unit of work is unharmed
    assert not holds_connection(state.pool)
    await take(state.pool)  # after it, a connection as always


# --- acquire timeout -------------------------------------------------------------------------


@asynccontextmanager
async def every_connection_held(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Each in a task of its own (each is its own unit of work), held until the block ends."""
    release = asyncio.Event()
    holding = asyncio.Semaphore(0)

    async def hold() -> None:
        async with acquire(pool):
            holding.release()
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(pool.get_max_size())]
    for _ in tasks:
        await holding.acquire()
    try:
        yield
    finally:
        release.set()
        await asyncio.gather(*tasks)


async def test_an_acquire_gives_up_after_the_pools_timeout(admin_url: str) -> None:
    pool = await create_pool(with_user(admin_url, APP_ROLE), 1, 2, acquire_timeout=0.2, starved_after=5)
    try:
        async with every_connection_held(pool):
            started = time.monotonic()
            with pytest.raises(PoolExhausted) as refused:
                await take(pool)
            waited = time.monotonic() - started
            assert 0.15 < waited < 2, waited
            assert refused.value.status == 503 and refused.value.retry_after == 1
            assert pool.watch.timeouts == 1 and pool.watch.waiting == 0
        await take(pool)
    finally:
        await pool.close()


# --- the starvation clock ------------------------------------------------------------------------


class FakePool:
    def __init__(self, size: int) -> None:
        self.size, self.busy = size, 0

    def get_size(self) -> int:
        return self.size

    def get_max_size(self) -> int:
        return self.size

    def get_idle_size(self) -> int:
        return self.size - self.busy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(size: int = 2) -> tuple[PoolWatch, FakePool, Clock]:
    pool, clock = FakePool(size), Clock()
    return PoolWatch(pool, acquire_timeout=5, starved_after=30, clock=clock), pool, clock  # type: ignore[arg-type]


def test_a_busy_pool_that_hands_connections_out_is_not_starved() -> None:
    """Waiters all the time, but every few seconds one gets a connection: load, not a wedge."""
    w, pool, clock = watch()
    pool.busy = 2
    w.waits()
    for _ in range(60):
        clock.now += 2
        w.waits()  # somebody new queues …
        w.handed_out()  # … somebody gets a connection
        assert w.starved_for() <= 2 and not w.starved()
    w.handed_out()
    pool.busy = 1
    assert w.starved_for() == 0


def test_a_pool_that_hands_out_nothing_is_starved_however_often_requests_give_up() -> None:
    w, pool, clock = watch()
    pool.busy = 2
    for _ in range(10):  # requests come, wait their 5 s and give up; none is served
        w.waits()
        clock.now += 5
        w.gave_up(timed_out=True)
    assert w.waiting == 0 and w.timeouts == 10
    assert w.starved_for() == 50 and w.starved()  # nobody waits right now, and it is still a wedge
    pool.busy = 1  # a connection comes back: recovered, even before anyone asks again
    assert w.starved_for() == 0 and not w.starved()


def test_a_failed_connect_is_no_starvation() -> None:
    w, _, clock = watch()
    w.waits()
    clock.now += 1
    w.gave_up(timed_out=False)  # PostgreSQL refused: /readyz says "unavailable" for that
    assert w.timeouts == 0 and w.starved_for() == 0


# --- every connection is taken through `acquire` -------------------------------------------------

SHORTCUTS = re.compile(
    r"\.acquire\(|\bpool\.(fetch|fetchval|fetchrow|fetchmany|execute|executemany|copy_\w+)\("
    r"|\bpool\.release\("
)


def test_connections_are_taken_only_through_acquire() -> None:
    """The guard, the timeout and the starvation clock live in `backend.db.pool.acquire`: a
    direct `pool.acquire()` or a pool query shortcut (`pool.fetchval` …, which acquire inside)
    would slip past all three."""
    offenders = []
    for folder in ("backend", "auth"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            if path == PROJECT_ROOT / "backend" / "db" / "pool.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if SHORTCUTS.search(line):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "take connections with backend.db.pool.acquire:\n" + "\n".join(offenders)


def test_the_guard_is_on_for_the_test_suite() -> None:
    from backend.db import pool

    assert pool._enforced


async def test_a_second_connection_in_production_is_logged_not_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.db import pool

    logged: list[tuple[str, dict[str, object]]] = []

    class Recorder:
        def error(self, event: str, **fields: object) -> None:
            logged.append((event, fields))

    monkeypatch.setattr(pool, "_enforced", False)
    monkeypatch.setattr(pool, "log", Recorder())
    state, principal = operator(world)
    async with unit_of_work(state, principal):
        may_acquire(state.pool)
    assert [event for event, _ in logged] == ["second_connection_requested"]
    assert isinstance(logged[0][1]["where"], list)  # the application frames that led there
