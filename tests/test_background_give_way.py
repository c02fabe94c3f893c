"""A worker's round that PostgreSQL picks as a deadlock victim is run again at once and
succeeds, instead of being logged as a failure and waiting a whole poll interval; anything else
still fails the round (the loop logs it and goes on, as before)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from backend.background import gave_way, giving_way
from backend.db.tenancy import all_tenants_transaction
from backend.errors import Conflict
from backend.state import unit_of_work
from tests.support.world import World, system_principal

# Two advisory locks taken in opposite order by the round and by a request: a real deadlock.
FIRST, SECOND = 0x676976_0001, 0x676976_0002


async def test_a_round_chosen_as_deadlock_victim_runs_again_and_succeeds(world: World, db: asyncpg.Pool) -> None:
    attempts: list[str] = []
    round_holds_first = asyncio.Event()
    request_holds_second = asyncio.Event()

    async def work_round() -> str:
        async with all_tenants_transaction(world.state.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", FIRST)
            if not attempts:  # the first attempt meets the request head on
                round_holds_first.set()
                await request_holds_second.wait()
            attempts.append("tried")
            # The round waits first, so its deadlock check (after deadlock_timeout) finds the cycle.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SECOND)
        attempts.append("done")
        return "ok"

    async def request() -> None:
        async with db.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SECOND)
            request_holds_second.set()
            await round_holds_first.wait()
            await asyncio.sleep(0.3)  # the round is waiting by now
            await conn.execute("SELECT pg_advisory_xact_lock($1)", FIRST)

    outcome, _ = await asyncio.wait_for(asyncio.gather(giving_way(work_round, "test"), request()), timeout=30)
    assert outcome == "ok"
    assert attempts == ["tried", "tried", "done"]  # lost once, then through


async def test_a_conflict_from_a_rolled_back_unit_of_work_counts_as_giving_way(world: World) -> None:
    kreis = world.tenant_ids["kreis-soest"]
    with pytest.raises(Conflict) as raised:
        async with unit_of_work(world.state, system_principal(kreis, {kreis})):
            raise asyncpg.DeadlockDetectedError("deadlock detected")
    assert gave_way(raised.value)
    assert not gave_way(Conflict("a plain conflict")) and not gave_way(ValueError())


async def test_other_failures_fail_the_round_at_once() -> None:
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("broken")

    with pytest.raises(ValueError):
        await giving_way(broken, "test")
    assert calls == [1]
