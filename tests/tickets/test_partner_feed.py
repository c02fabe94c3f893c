"""Partner systems poll "tickets changed since a cursor": change numbers follow commit order, so a
change committed later than another can never slip behind a cursor already handed out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from uuid import UUID

import httpx

from backend.state import unit_of_work
from backend.tickets import service
from backend.tickets.schemas import AssignmentInput
from tests.support.world import World
from tests.tickets.conftest import SOEST, create_ticket, directory_person, operator_agent

Client = httpx.AsyncClient


async def _drain(client: Client, world: World, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        params = {"first": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/tickets/changes", params=params, headers=world.headers(SOEST, "partner"))
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            assert cursor is not None
            return items, cursor


async def test_changes_since_a_cursor(client: Client, world: World, departments: dict[str, UUID]) -> None:
    _, cursor = await _drain(client, world, None)
    first = await create_ticket(client, world, departments, SOEST)
    second = await create_ticket(client, world, departments, SOEST)
    items, cursor = await _drain(client, world, cursor)
    assert [t["id"] for t in items] == [first["id"], second["id"]]
    seqs = [t["changeSeq"] for t in items]
    assert seqs == sorted(seqs)
    partner = world.headers(SOEST, "partner")
    moved = await client.post(f"/v1/tickets/{first['id']}/status", json={"status": "in_progress"}, headers=partner)
    assert moved.status_code == 200
    items, cursor = await _drain(client, world, cursor)
    assert [(t["id"], t["status"]) for t in items] == [(first["id"], "in_progress")]
    nothing, same = await _drain(client, world, cursor)
    assert nothing == [] and same == cursor
    bad = await client.get("/v1/tickets/changes", params={"cursor": "yesterday"}, headers=partner)
    assert bad.status_code == 422


async def test_a_change_that_commits_later_is_not_skipped(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    """T1 changes ticket A and stays open; T2 changes ticket B and must wait for T1's commit. A
    reader in between sees neither; after both commit it sees A, then B: nothing skipped."""
    a = await create_ticket(client, world, departments, SOEST)
    b = await create_ticket(client, world, departments, SOEST)
    first = await directory_person(client, world, SOEST, f"Erste {uuid.uuid4().hex[:8]}")
    second = await directory_person(client, world, SOEST, f"Zweite {uuid.uuid4().hex[:8]}")
    _, cursor = await _drain(client, world, None)
    agent = operator_agent(world)
    t1_changed = asyncio.Event()
    release_t1 = asyncio.Event()

    async def t1() -> None:
        try:
            async with unit_of_work(world.state, agent) as uow:
                await service.assign(uow, UUID(a["id"]), AssignmentInput(assignee=first))
                t1_changed.set()
                await release_t1.wait()
        finally:
            t1_changed.set()  # a failed T1 must fail the test, not leave it waiting for ever

    async def t2() -> None:
        await t1_changed.wait()
        async with unit_of_work(world.state, agent) as uow:
            await service.assign(uow, UUID(b["id"]), AssignmentInput(assignee=second))

    first_tx = asyncio.create_task(t1())
    second_tx = asyncio.create_task(t2())
    await t1_changed.wait()
    await asyncio.sleep(0.2)  # give T2 the chance to run ahead (it cannot: it waits for T1)
    assert not second_tx.done()
    between, between_cursor = await _drain(client, world, cursor)
    assert between == [] and between_cursor == cursor
    release_t1.set()
    await asyncio.gather(first_tx, second_tx)
    after, _ = await _drain(client, world, between_cursor)
    assert [(t["id"], t["assignee"]) for t in after] == [(a["id"], first), (b["id"], second)]
