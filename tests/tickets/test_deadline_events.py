""" "Due soon" and "overdue" happen once per ticket and deadline, even with several app instances
scanning at the same moment, and reach the town's webhook once each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from backend.tickets.worker import TicketWorker
from tests.support.world import World
from tests.tickets.conftest import SOEST, ticket_at
from tests.tickets.receiver import Receiver
from tests.tickets.test_webhooks import drain

pytestmark = pytest.mark.clock  # deadline events are signalled relative to now


async def _signals(db: asyncpg.Pool, world: World, ticket_id: UUID) -> list[tuple[str, str]]:
    async with tenant_transaction(db, [world.tenant_ids[SOEST]], readonly=True) as conn:
        outbox = await conn.fetch(
            """SELECT kind, dedupe_key FROM ticket_outbox WHERE ticket_id = $1 AND dedupe_key IS NOT NULL
               ORDER BY change_seq""",
            ticket_id,
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND kind IN ('ticket.due_soon', 'ticket.overdue')",
            ticket_id,
        )
    assert events == len(outbox)
    return [(r["kind"], r["dedupe_key"]) for r in outbox]


async def test_due_soon_and_overdue_once_with_two_instances(
    client: httpx.AsyncClient,
    world: World,
    departments: dict[str, UUID],
    db: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    endpoint: dict[str, Any],
) -> None:
    created = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 → due Tuesday 10:00 local
    ticket = await ticket_at(world, departments, SOEST, created)
    async with httpx.AsyncClient() as http_one, httpx.AsyncClient() as http_two:
        one = TicketWorker(world.state.pool, world.state.redis, http_one, world.state.sealer)
        two = TicketWorker(app_pool, world.state.redis, http_two, world.state.sealer)
        early = ticket.due_at - timedelta(hours=3)
        await asyncio.gather(one.signal_deadlines(early), two.signal_deadlines(early))
        assert await _signals(db, world, ticket.id) == []
        soon = ticket.due_at - timedelta(minutes=90)
        for _ in range(5):
            await asyncio.gather(one.signal_deadlines(soon), two.signal_deadlines(soon))
        assert await _signals(db, world, ticket.id) == [("ticket.due_soon", "due_soon:1")]
        late = ticket.due_at + timedelta(minutes=1)
        for _ in range(5):
            await asyncio.gather(*(w.signal_deadlines(late) for w in (one, two, one, two)))
        assert await _signals(db, world, ticket.id) == [
            ("ticket.due_soon", "due_soon:1"),
            ("ticket.overdue", "overdue:1"),
        ]
        await drain(one)
    got = [r.json["type"] for r in receiver.of_ticket(str(ticket.id))]
    assert got.count("ticket.due_soon") == 1 and got.count("ticket.overdue") == 1
    assert got.index("ticket.due_soon") < got.index("ticket.overdue")


async def test_the_database_refuses_a_second_signal(
    world: World, departments: dict[str, UUID], db: asyncpg.Pool
) -> None:
    """The backstop: whatever the scanner thinks, the unique key lets one event per kind in."""
    ticket = await ticket_at(world, departments, SOEST, datetime(2026, 3, 3, 9, 0, tzinfo=UTC))

    class RollBack(Exception):
        pass

    rows: list[UUID | None] = []

    async def insert_three_times() -> None:
        async with tenant_transaction(db, [world.tenant_ids[SOEST]]) as conn:
            for _ in range(3):
                rows.append(
                    await conn.fetchval(
                        """INSERT INTO ticket_outbox (tenant_id, id, ticket_id, change_seq, kind, payload, dedupe_key)
                       VALUES ($1, gen_random_uuid(), $2, 0, 'ticket.overdue', '{}', 'overdue:1')
                       ON CONFLICT (tenant_id, ticket_id, dedupe_key) DO NOTHING RETURNING id""",
                        world.tenant_ids[SOEST],
                        ticket.id,
                    )
                )
            raise RollBack  # leave nothing behind

    with pytest.raises(RollBack):
        await insert_three_times()
    assert rows[0] is not None and rows[1:] == [None, None]


async def test_an_answered_ticket_is_not_signalled_and_a_reopened_one_gets_a_new_deadline(
    client: httpx.AsyncClient,
    world: World,
    departments: dict[str, UUID],
    db: asyncpg.Pool,
    worker: TicketWorker,
) -> None:
    ticket = await ticket_at(world, departments, SOEST, datetime.now(UTC) - timedelta(days=10))
    staff = world.headers(SOEST, "department")
    await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "in_progress"}, headers=staff)
    await client.post(
        f"/v1/tickets/{ticket.id}/callback-attempts",
        json={"channel": "phone", "reached": True, "markAnswered": True},
        headers=staff,
    )
    await worker.signal_deadlines()
    assert await _signals(db, world, ticket.id) == []
    reopened = await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "in_progress"}, headers=staff)
    assert reopened.status_code == 200
    due = datetime.fromisoformat(reopened.json()["dueAt"])
    # Every open ticket of the shared world is due before this moment too; the worker takes them a
    # batch at a time, by tenant and deadline, so signal until nothing is left.
    while await worker.signal_deadlines(due + timedelta(minutes=1)):
        pass
    assert await _signals(db, world, ticket.id) == [("ticket.due_soon", "due_soon:2"), ("ticket.overdue", "overdue:2")]
