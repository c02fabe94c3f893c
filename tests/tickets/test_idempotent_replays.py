"""Idempotency records keep no readable personal data, a replay of an answer that held some is
audited like a read, and after the retention purge it is refused (issue 12: a comment with a
name and a mobile number stayed in Redis for 24 hours after the purge, and replays were not
audited). Decision 015."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from backend.state import unit_of_work
from backend.tickets import service
from backend.tickets.schemas import CallbackAttemptInput, CallbackChannel, StatusChange, TicketStatus
from backend.tickets.worker import TicketWorker
from tests.support.world import World
from tests.tickets.conftest import SOEST, graphql, operator_agent, ticket_at

Client = httpx.AsyncClient
MOBILE = "0171 2345678"
COMMENT = f"Herr Jakob Wiesenthal bittet um Rückruf unter {MOBILE}"


async def _audit(client: Client, world: World, ticket_id: UUID) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/ticket-audit",
        params={"ticketId": str(ticket_id)},
        headers=world.headers(SOEST, "town-admin"),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _records(world: World) -> list[str]:
    """Every idempotency record of this deployment, as stored."""
    redis = world.state.redis
    keys = [key async for key in redis.scan_iter(match=f"idem:{world.state.namespace}:*")]
    values = [await redis.get(key) for key in keys]
    return [value.decode() for value in values if value is not None]


async def test_records_hold_no_personal_data_and_a_replay_is_audited(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, SOEST, datetime.now(UTC) - timedelta(hours=1))
    staff = {**world.headers(SOEST, "department"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tickets/{ticket.id}/comments"
    first = await client.post(url, json={"body": COMMENT}, headers=staff)
    assert first.status_code == 201, first.text
    stored = await _records(world)
    assert stored and not any("Wiesenthal" in r or "2345678" in r for r in stored)
    assert await _audit(client, world, ticket.id) == []  # writing a comment is not reading one

    retry = await client.post(url, json={"body": COMMENT}, headers=staff)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()  # the same answer, body included
    audited = await _audit(client, world, ticket.id)
    assert [(a["what"], a["via"]) for a in audited] == [("comments", "rest")]

    # A GraphQL read of the citizen's data sent with a key: the replay is audited like the read.
    reader = {**world.headers(SOEST, "department"), "Idempotency-Key": str(uuid.uuid4())}
    query = "query($id: UUID!) { ticket(id: $id) { personalData { name } } }"
    for _ in range(2):
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"id": str(ticket.id)}}, headers=reader
        )
        assert response.status_code == 200 and response.json()["data"]["ticket"]["personalData"]["name"]
    assert response.headers["idempotent-replayed"] == "true"
    contact_reads = [a for a in await _audit(client, world, ticket.id) if a["what"] == "contact"]
    assert [a["via"] for a in contact_reads] == ["graphql", "graphql"]  # the read and its replay
    assert not any("Wiesenthal" in r or "2345678" in r for r in await _records(world))


async def test_after_the_purge_a_replay_is_refused_and_the_record_keeps_nothing(
    client: Client, world: World, departments: dict[str, UUID], worker: TicketWorker
) -> None:
    now = datetime.now(UTC)
    ticket = await ticket_at(world, departments, SOEST, now - timedelta(days=101))
    moment = now - timedelta(days=100)
    async with unit_of_work(world.state, operator_agent(world)) as uow:
        await service.change_status(uow, ticket.id, StatusChange(status=TicketStatus.IN_PROGRESS), now=moment)
        reached = CallbackAttemptInput(
            channel=CallbackChannel.PHONE, reached=True, attempted_at=moment, mark_answered=True
        )
        await service.record_callback(uow, ticket.id, reached, now=moment)
        await service.change_status(uow, ticket.id, StatusChange(status=TicketStatus.CLOSED), now=moment)
    staff = {**world.headers(SOEST, "department"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tickets/{ticket.id}/comments"
    first = await client.post(url, json={"body": COMMENT}, headers=staff)
    assert first.status_code == 201, first.text

    assert await worker.purge(now) >= 1
    retry = await client.post(url, json={"body": COMMENT}, headers=staff)
    assert retry.status_code == 410, retry.text
    assert retry.headers["content-type"].startswith("application/problem+json")
    assert "erased" in retry.json()["detail"] and "Wiesenthal" not in retry.text
    # The key is still known: the retry did not add the comment again.
    comments = await graphql(
        client,
        world.headers(SOEST, "department"),
        "query($id: UUID!) { ticket(id: $id) { comments { id } } }",
        id=str(ticket.id),
    )
    assert comments["data"]["ticket"]["comments"] == [{"id": first.json()["id"]}]
    erased = [r for r in await _records(world) if '"erased": true' in r]
    assert erased and not any('"body"' in r for r in erased)
