"""When PostgreSQL rolls a unit of work back to let a simultaneous one through (a deadlock, a
serialization failure), the caller is told "conflict, try again", never "internal error", and
nothing of the rolled-back transaction stays."""

from __future__ import annotations

import asyncio

import pytest

from backend.errors import Conflict
from backend.state import unit_of_work
from tests.support.world import World, system_principal

# Two advisory locks the two transactions take in opposite order: the smallest real deadlock.
FIRST, SECOND = 0x7465_7374_0001, 0x7465_7374_0002


async def test_the_transaction_chosen_as_deadlock_victim_is_a_conflict_and_changes_nothing(world: World) -> None:
    kreis, soest = world.tenant_ids["kreis-soest"], world.tenant_ids["stadt-soest"]
    principal = system_principal(kreis, {kreis, soest})
    row_of = {FIRST: kreis, SECOND: soest}
    both_hold_one = asyncio.Barrier(2)
    marker = f"deadlock-{world.suffix}"

    async def take(first: int, second: int) -> Conflict | None:
        try:
            async with unit_of_work(world.state, principal) as uow:
                await uow.conn.execute("SELECT pg_advisory_xact_lock($1)", first)
                # Something the victim wrote, to see that it is gone afterwards.
                await uow.conn.execute(
                    "UPDATE tenants SET name = name || $2 WHERE id = $1", row_of[first], f" {marker}"
                )
                await both_hold_one.wait()
                await uow.conn.execute("SELECT pg_advisory_xact_lock($1)", second)
                await uow.conn.execute(
                    "UPDATE tenants SET name = replace(name, $2, '') WHERE id = $1", row_of[first], f" {marker}"
                )
        except Conflict as conflict:
            return conflict
        return None

    outcomes = await asyncio.wait_for(asyncio.gather(take(FIRST, SECOND), take(SECOND, FIRST)), timeout=30)
    conflicts = [outcome for outcome in outcomes if outcome is not None]
    assert len(conflicts) == 1  # one gave way, the other committed
    assert conflicts[0].status == 409 and "try again" in conflicts[0].text("en")
    async with unit_of_work(world.state, principal, readonly=True) as uow:
        names = await uow.conn.fetchval(
            "SELECT string_agg(name, ' ') FROM tenants WHERE id = ANY($1::uuid[])", [kreis, soest]
        )
    assert marker not in names  # the survivor undid its own mark; the victim's never landed


async def test_other_database_errors_are_not_turned_into_conflicts(world: World) -> None:
    kreis = world.tenant_ids["kreis-soest"]
    principal = system_principal(kreis, {kreis})
    with pytest.raises(Exception) as raised:
        async with unit_of_work(world.state, principal) as uow:
            await uow.conn.execute("SELECT 1 / 0")
    assert not isinstance(raised.value, Conflict)
