"""Webhooks to a town's endpoint, against a real HTTP receiver: Standard Webhooks signatures,
retries with backoff, order per ticket, a receiver that is down and an app that restarts, two
instances delivering at once, secret rotation, the transactional outbox, and the delivery log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from backend.state import unit_of_work
from backend.tickets import service
from backend.tickets.schemas import StatusChange, TicketStatus
from backend.tickets.worker import TicketWorker
from tests.support.metrics import scrape, value
from tests.support.world import World
from tests.tickets.conftest import (
    CITIZEN_EMAIL,
    CITIZEN_NAME,
    CITIZEN_PHONE,
    CITIZEN_PHONE_E164,
    CONCERN,
    GESEKE,
    KREIS,
    SOEST,
    create_ticket,
    directory_person,
    operator_agent,
)
from tests.tickets.receiver import Received, Receiver

pytestmark = pytest.mark.clock  # signatures carry a timestamp; retries and pauses count from now

Client = httpx.AsyncClient


def signature_for(secret: str, received: Received) -> str:
    """Independent of the application's code: the Standard Webhooks recipe."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_by(secret: str, received: Received) -> bool:
    return signature_for(secret, received) in received.headers["webhook-signature"].split()


async def drain(worker: TicketWorker, now: datetime | None = None, rounds: int = 50) -> tuple[int, int]:
    """Deliver until a round finds nothing to do."""
    delivered = failed = 0
    for _ in range(rounds):
        ok, bad = await worker.deliver(now)
        delivered, failed = delivered + ok, failed + bad
        if ok + bad == 0:
            break
    return delivered, failed


async def outbox(db: asyncpg.Pool, world: World, ticket_id: str) -> list[asyncpg.Record]:
    async with tenant_transaction(db, [world.tenant_ids[SOEST]], readonly=True) as conn:
        return list(
            await conn.fetch(
                "SELECT id, change_seq, kind FROM ticket_outbox WHERE ticket_id = $1 ORDER BY change_seq",
                UUID(ticket_id),
            )
        )


async def test_deliveries_are_signed_and_carry_no_personal_data(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
    db: asyncpg.Pool,
) -> None:
    ticket = await create_ticket(client, world, departments, SOEST)
    await drain(worker)
    got = receiver.of_ticket(ticket["id"])
    events = await outbox(db, world, ticket["id"])
    assert [r.message_id for r in got] == [f"msg_{e['id']}" for e in events]
    assert [r.json["type"] for r in got] == ["ticket.created", "ticket.status_changed"]
    for received in got:
        assert signed_by(endpoint["secret"], received)
        assert not signed_by("whsec_" + base64.b64encode(b"x" * 32).decode(), received)
        assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 300
        assert received.headers["content-type"] == "application/json"
        data = received.json["data"]
        assert data["ticketId"] == ticket["id"] and data["tenantId"] == str(world.tenant_ids[SOEST])
        for personal in (CITIZEN_NAME, CITIZEN_PHONE, CITIZEN_PHONE_E164, CITIZEN_EMAIL, CONCERN, "Sperrmüll"):
            assert personal not in received.body.decode()
    assert got[1].json["data"]["status"] == "forwarded"
    # The URL is exactly what the town registered: nothing about the ticket is appended to it.
    assert endpoint["endpoint"]["url"] == receiver.url


async def test_retries_with_backoff_and_the_delivery_log(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
) -> None:
    receiver.answers.extend([503, 503])
    # Deliveries other tests of the shared world left pending (to receivers that have stopped)
    # would fall due inside this test's 15 s: tried once now at a moment past them, they back
    # off beyond it, and the counts below are this ticket's alone.
    past_the_window = datetime.now(UTC) + timedelta(seconds=30)
    while await worker.deliver(past_the_window) != (0, 0):
        pass
    ticket = await create_ticket(client, world, departments, SOEST)
    start = datetime.now(UTC)
    assert await worker.deliver(start) == (0, 1)
    assert await worker.deliver(start + timedelta(seconds=4)) == (0, 0)  # backoff: not before 5 s
    assert await worker.deliver(start + timedelta(seconds=5)) == (0, 1)
    assert await worker.deliver(start + timedelta(seconds=14)) == (0, 0)  # then 10 s
    assert await worker.deliver(start + timedelta(seconds=15)) == (1, 0)
    assert await worker.deliver(start + timedelta(seconds=15)) == (1, 0)  # the next change of the ticket
    assert [r.json["type"] for r in receiver.of_ticket(ticket["id"])] == ["ticket.created", "ticket.status_changed"]
    log = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/webhook-deliveries",
        params={"endpointId": endpoint["endpoint"]["id"]},
        headers=world.headers(SOEST, "town-admin"),
    )
    assert log.status_code == 200, log.text
    created = next(
        e for e in log.json() if e["delivery"]["ticketId"] == ticket["id"] and e["delivery"]["kind"] == "ticket.created"
    )
    assert created["delivery"]["status"] == "delivered" and created["delivery"]["attempts"] == 3
    assert [a["statusCode"] for a in created["attempts"]] == [503, 503, 200]
    assert [a["error"] for a in created["attempts"]] == ["HTTP 503", "HTTP 503", None]
    for town, role, status in ((GESEKE, "town-admin", 404), (SOEST, "agent", 403), (SOEST, "department", 403)):
        other = await client.get(
            f"/v1/tenants/{world.slug(SOEST)}/webhook-deliveries", headers=world.headers(town, role)
        )
        assert other.status_code == status, (town, role)


async def test_a_delivery_failing_for_a_day_and_a_half_waits_the_capped_delay(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
) -> None:
    """The 45th failure (≈ 35 h in) used to overflow the delay: the worker's round failed as a
    whole, rolled back every other town's deliveries and never paused the endpoint."""
    assert worker.backoff(45) == worker.backoff(10**6) == worker.backoff_cap
    receiver.answers.extend([503])
    ticket = await create_ticket(client, world, departments, SOEST)
    mine = "ticket_id = $1 AND endpoint_id = $2"
    keys = (UUID(ticket["id"]), UUID(endpoint["endpoint"]["id"]))
    async with tenant_transaction(world.state.pool, [world.tenant_ids[SOEST]]) as conn:
        await conn.execute(f"UPDATE ticket_webhook_deliveries SET attempts = 44 WHERE {mine}", *keys)
    now = datetime.now(UTC)
    assert await worker.deliver(now) == (0, 1)
    async with tenant_transaction(world.state.pool, [world.tenant_ids[SOEST]]) as conn:
        attempts, next_at = await conn.fetchrow(
            f"SELECT attempts, next_attempt_at FROM ticket_webhook_deliveries WHERE {mine} ORDER BY change_seq LIMIT 1",
            *keys,
        )
    assert attempts == 45 and next_at == now + worker.backoff_cap


async def test_order_per_ticket_holds_through_failures(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
    db: asyncpg.Pool,
) -> None:
    receiver.answers.extend([500])  # the very first event fails once
    a = await create_ticket(client, world, departments, SOEST)
    b = await create_ticket(client, world, departments, SOEST)
    staff = world.headers(SOEST, "department")
    for ticket in (a, b, a):
        name = await directory_person(client, world, SOEST, f"Sachbearbeiter {time.time_ns()}")
        await client.put(f"/v1/tickets/{ticket['id']}/assignment", json={"assignee": name}, headers=staff)
    await client.post(f"/v1/tickets/{a['id']}/status", json={"status": "in_progress"}, headers=staff)
    now = datetime.now(UTC)
    for step in range(20):
        await drain(worker, now + timedelta(minutes=step))
    for ticket in (a, b):
        expected = [e["change_seq"] for e in await outbox(db, world, ticket["id"])]
        arrivals = [
            r.json["data"]["changeSeq"] for r in receiver.received if r.json["data"]["ticketId"] == ticket["id"]
        ]
        accepted = [r.json["data"]["changeSeq"] for r in receiver.of_ticket(ticket["id"])]
        assert accepted == expected  # every event once, in change order
        assert arrivals == sorted(arrivals)  # and nothing overtook a failed earlier event


async def test_receiver_down_then_up_across_an_app_restart(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
    app_pool: asyncpg.Pool,
    db: asyncpg.Pool,
) -> None:
    receiver.stop()
    ticket = await create_ticket(client, world, departments, SOEST)
    await client.post(
        f"/v1/tickets/{ticket['id']}/status", json={"status": "in_progress"}, headers=world.headers(SOEST, "department")
    )
    now = datetime.now(UTC)
    for minute in range(5):
        delivered, _ = await drain(worker, now + timedelta(minutes=minute))
        assert delivered == 0
    async with tenant_transaction(db, [world.tenant_ids[SOEST]], readonly=True) as conn:
        pending = await conn.fetch(
            """SELECT d.status, d.attempts, a.error FROM ticket_webhook_deliveries d
               JOIN ticket_webhook_attempts a ON a.tenant_id = d.tenant_id AND a.delivery_id = d.id
               WHERE d.ticket_id = $1""",
            UUID(ticket["id"]),
        )
    assert pending and all(r["status"] == "pending" for r in pending)
    assert all(r["error"].startswith("connection failed") for r in pending)
    # The app restarts (a new worker with its own pool and HTTP client), the receiver comes back.
    receiver.start()
    async with httpx.AsyncClient() as http:
        restarted = TicketWorker(app_pool, world.state.redis, http, world.state.sealer)
        await drain(restarted, now + timedelta(hours=2))
    events = await outbox(db, world, ticket["id"])
    assert [r.message_id for r in receiver.of_ticket(ticket["id"])] == [f"msg_{e['id']}" for e in events]
    assert len(events) == 3


async def test_two_running_instances_deliver_each_event_once(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    app_pool: asyncpg.Pool,
) -> None:
    receiver.answers.extend([503, 503, 503])
    async with httpx.AsyncClient() as http_one, httpx.AsyncClient() as http_two:
        one = TicketWorker(
            world.state.pool,
            world.state.redis,
            http_one,
            world.state.sealer,
            poll_seconds=0.05,
            backoff_base=timedelta(milliseconds=50),
        )
        two = TicketWorker(
            app_pool,
            world.state.redis,
            http_two,
            world.state.sealer,
            poll_seconds=0.05,
            backoff_base=timedelta(milliseconds=50),
        )
        stop = asyncio.Event()
        loops = [asyncio.create_task(w.run(stop)) for w in (one, two)]
        tickets = [await create_ticket(client, world, departments, SOEST) for _ in range(4)]
        try:
            for _ in range(400):
                if all(len(receiver.of_ticket(t["id"])) == 2 for t in tickets):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.gather(*loops)
    for ticket in tickets:
        got = receiver.of_ticket(ticket["id"])
        assert [r.json["type"] for r in got] == ["ticket.created", "ticket.status_changed"]
    ids = [r.message_id for r in receiver.accepted()]
    assert len(ids) == len(set(ids))


async def test_secret_rotation_signs_with_both_during_the_grace_period(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
) -> None:
    admin = world.headers(SOEST, "town-admin")
    url = f"/v1/tenants/{world.slug(SOEST)}/webhooks/{endpoint['endpoint']['id']}/secret-rotation"
    assert (await client.post(url, headers=world.headers(GESEKE, "town-admin"))).status_code == 404
    rotated = await client.post(url, headers=admin)
    assert rotated.status_code == 200, rotated.text
    new, old = rotated.json()["secret"], endpoint["secret"]
    assert new != old and rotated.json()["previousSecretExpiresAt"]
    during = await create_ticket(client, world, departments, SOEST, forward=False)
    await drain(worker)
    [received] = receiver.of_ticket(during["id"])
    assert signed_by(old, received) and signed_by(new, received)
    after = await create_ticket(client, world, departments, SOEST, forward=False)
    await drain(worker, datetime.now(UTC) + timedelta(hours=25))
    [received] = receiver.of_ticket(after["id"])
    assert signed_by(new, received) and not signed_by(old, received)
    listed = await client.get(f"/v1/tenants/{world.slug(SOEST)}/webhooks", headers=admin)
    assert listed.json() and all("secret" not in e for e in listed.json())  # shown once, never listed


async def test_the_outbox_commits_or_rolls_back_with_the_change(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    endpoint: dict[str, Any],
    db: asyncpg.Pool,
) -> None:
    ticket = await create_ticket(client, world, departments, SOEST)
    before = await outbox(db, world, ticket["id"])

    class Boom(Exception):
        pass

    async def change_then_fail() -> None:
        async with unit_of_work(world.state, operator_agent(world)) as uow:
            await service.change_status(uow, UUID(ticket["id"]), StatusChange(status=TicketStatus.IN_PROGRESS))
            assert len(await outbox_in(uow.conn, ticket["id"])) == len(before) + 1  # written in the same transaction
            raise Boom

    with pytest.raises(Boom):
        await change_then_fail()
    assert await outbox(db, world, ticket["id"]) == before
    async with unit_of_work(world.state, operator_agent(world)) as uow:
        changed = await service.change_status(uow, UUID(ticket["id"]), StatusChange(status=TicketStatus.IN_PROGRESS))
    after = await outbox(db, world, ticket["id"])
    assert len(after) == len(before) + 1 and after[-1]["change_seq"] == changed.change_seq
    async with tenant_transaction(db, [world.tenant_ids[SOEST]], readonly=True) as conn:
        deliveries = await conn.fetchval(
            "SELECT count(*) FROM ticket_webhook_deliveries WHERE event_id = $1", after[-1]["id"]
        )
    assert deliveries == 1  # one per active endpoint, in the same transaction


async def outbox_in(conn: asyncpg.Connection, ticket_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT id FROM ticket_outbox WHERE ticket_id = $1", UUID(ticket_id)))


async def test_a_removed_endpoint_gets_nothing_more(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    worker: TicketWorker,
) -> None:
    admin = world.headers(SOEST, "town-admin")
    slug = world.slug(SOEST)
    created = await client.post(f"/v1/tenants/{slug}/webhooks", json={"url": receiver.url}, headers=admin)
    endpoint_id = created.json()["endpoint"]["id"]
    ticket = await create_ticket(client, world, departments, SOEST)
    removed = await client.delete(f"/v1/tenants/{slug}/webhooks/{endpoint_id}", headers=admin)
    assert removed.status_code == 204
    await drain(worker)
    assert receiver.of_ticket(ticket["id"]) == []
    log = await client.get(f"/v1/tenants/{slug}/webhook-deliveries", params={"endpointId": endpoint_id}, headers=admin)
    assert {e["delivery"]["status"] for e in log.json()} == {"cancelled"}
    bad = await client.post(f"/v1/tenants/{slug}/webhooks", json={"url": "http://user:pw@example.org/x"}, headers=admin)
    assert bad.status_code == 422
    assert (
        await client.post(
            f"/v1/tenants/{slug}/webhooks", json={"url": receiver.url}, headers=world.headers(KREIS, "agent")
        )
    ).status_code == 403


async def test_an_endpoint_failing_for_days_is_paused_until_the_town_admin_resumes_it(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = world.headers(SOEST, "town-admin")
    slug, endpoint_id = world.slug(SOEST), endpoint["endpoint"]["id"]
    monkeypatch.setattr(world.state.metrics, "figures_seconds", 0.0)

    async def paused_on_metrics() -> float:
        return value(await scrape(client), "bs_webhook_endpoints_paused", tenant=slug)

    paused_before = await paused_on_metrics()

    async def state() -> dict[str, Any]:
        listed = await client.get(f"/v1/tenants/{slug}/webhooks", headers=admin)
        found: dict[str, Any] = next(e for e in listed.json() if e["id"] == endpoint_id)
        return found

    async def attempts_at(now: datetime) -> int:
        """Rounds at `now` until this endpoint's due delivery was tried (other tests' endpoints
        share the outbox, so a round's totals say nothing): how many tries the receiver saw."""
        before = tries()
        for _ in range(20):
            if await worker.deliver(now) == (0, 0) or tries() > before:
                break
        return tries() - before

    def tries() -> int:  # answered or not
        return sum(1 for r in receiver.received if r.json["data"]["ticketId"] == first["id"])

    receiver.answers.extend([503, 503, 503])
    first = await create_ticket(client, world, departments, SOEST)
    start = datetime.now(UTC)
    assert await attempts_at(start) == 1
    failing = await state()
    assert failing["failingSince"] is not None and failing["pausedAt"] is None
    assert await attempts_at(start + timedelta(days=1)) == 1  # still retried …
    assert (await state())["pausedAt"] is None
    assert await attempts_at(start + timedelta(days=3, seconds=1)) == 1  # … until three days of failures
    paused = await state()
    assert paused["pausedAt"] is not None and paused["pausedReason"].startswith("every attempt failed since")
    assert await attempts_at(start + timedelta(days=4)) == 0  # paused: nothing is attempted
    assert await paused_on_metrics() == paused_before + 1  # what ops alert on

    second = await create_ticket(client, world, departments, SOEST)  # still recorded while paused
    log = await client.get(
        f"/v1/tenants/{slug}/webhook-deliveries", params={"endpointId": endpoint_id, "status": "pending"}, headers=admin
    )
    assert {e["delivery"]["ticketId"] for e in log.json()} == {first["id"], second["id"]}

    resume = f"/v1/tenants/{slug}/webhooks/{endpoint_id}/resume"
    for town, role, status in ((GESEKE, "town-admin", 404), (SOEST, "agent", 403)):
        assert (await client.post(resume, headers=world.headers(town, role))).status_code == status
    assert (await state())["pausedAt"] is not None  # refused attempts changed nothing
    resumed = await client.post(resume, headers=admin)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["pausedAt"] is None and resumed.json()["failingSince"] is None
    assert await paused_on_metrics() == paused_before
    assert (await client.post(resume, headers=admin)).status_code == 200  # resuming again: harmless

    await drain(worker)  # the receiver answers again: everything, in order
    for ticket in (first, second):
        kinds = [r.json["type"] for r in receiver.of_ticket(ticket["id"])]
        assert kinds == ["ticket.created", "ticket.status_changed"]

    assert (await client.delete(f"/v1/tenants/{slug}/webhooks/{endpoint_id}", headers=admin)).status_code == 204
    gone = await client.post(resume, headers=admin)
    assert gone.status_code == 409 and gone.json()["code"] == "INVALID_TRANSITION"  # removed: add it again instead


async def test_signing_secrets_are_sealed_at_rest_and_old_plain_ones_get_sealed(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
    endpoint: dict[str, Any],
    worker: TicketWorker,
    db: asyncpg.Pool,
) -> None:
    soest, endpoint_id = world.tenant_ids[SOEST], UUID(endpoint["endpoint"]["id"])
    secret = endpoint["secret"]

    async def stored() -> str:
        async with tenant_transaction(db, [soest], readonly=True) as conn:
            value: str = await conn.fetchval(
                "SELECT secret FROM ticket_webhook_secrets WHERE tenant_id = $1 AND endpoint_id = $2",
                soest,
                endpoint_id,
            )
            return value

    sealed = await stored()
    assert sealed.startswith("sealed:v1:") and secret not in sealed and secret.removeprefix("whsec_") not in sealed

    # A row from before sealing (plain text) still signs, and the worker seals it.
    async with tenant_transaction(db, [soest]) as conn:
        await conn.execute(
            "UPDATE ticket_webhook_secrets SET secret = $3 WHERE tenant_id = $1 AND endpoint_id = $2",
            soest,
            endpoint_id,
            secret,
        )
    ticket = await create_ticket(client, world, departments, SOEST)
    await drain(worker)
    assert all(signed_by(secret, r) for r in receiver.of_ticket(ticket["id"]))
    assert await worker.reseal_secrets() >= 1
    resealed = await stored()
    assert resealed.startswith("sealed:v1:") and resealed != sealed
    assert await worker.reseal_secrets() == 0  # nothing left to seal
    again = await create_ticket(client, world, departments, SOEST)
    await drain(worker)
    assert [signed_by(secret, r) for r in receiver.of_ticket(again["id"])] == [True, True]
