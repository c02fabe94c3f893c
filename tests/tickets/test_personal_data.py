"""The citizen's personal data: every read is recorded in an append-only audit table the town admin
can read; after the retention period nothing personal is left of a closed ticket, while the ticket
and its statistics remain; and personal data never reaches logs, URLs or error messages."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.roles import OWNER_ROLE
from backend.db.tenancy import tenant_transaction
from backend.settings import Settings
from backend.state import unit_of_work
from backend.tickets import personal as personal_data
from backend.tickets import service
from backend.tickets.schemas import CallbackAttemptInput, CallbackChannel, CommentInput, StatusChange, TicketStatus
from backend.tickets.worker import TicketWorker
from tests.support.servers import app_process
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
    graphql,
    operator_agent,
    ticket_at,
    ticket_json,
)
from tests.tickets.receiver import Receiver

pytestmark = pytest.mark.clock  # retention purges count days from now

Client = httpx.AsyncClient
COMMENT = "Frau Quellenhof ist ab 16 Uhr unter der Festnetznummer erreichbar"
NOTE = "Nachbarin Gerda Lindenkamp nahm ab"
SUBJECT = "Rückruf für Erika Mustermann-Quellenhof"
PERSONAL = (
    CITIZEN_NAME,
    CITIZEN_PHONE,
    CITIZEN_PHONE_E164,
    CITIZEN_EMAIL,
    CONCERN,
    COMMENT,
    NOTE,
    SUBJECT,
    "Quellenhof",
    "Lindenkamp",
    "987654",
)


async def _audit(client: Client, world: World, ticket_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/ticket-audit",
        params={"ticketId": ticket_id},
        headers=world.headers(SOEST, "town-admin"),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _subject(client: Client, world: World, town: str, role: str) -> str:
    subject: str = (await client.get("/v1/me", headers=world.headers(town, role))).json()["subject"]
    return subject


async def test_every_read_of_personal_data_is_audited(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    a = await create_ticket(client, world, departments, SOEST)
    b = await create_ticket(client, world, departments, SOEST)
    assert await _audit(client, world, a["id"]) == []  # creating is not reading
    staff = world.headers(SOEST, "department")
    await client.post(f"/v1/tickets/{a['id']}/comments", json={"body": COMMENT}, headers=staff)
    await client.post(
        f"/v1/tickets/{a['id']}/callback-attempts",
        json={"channel": "phone", "reached": False, "note": NOTE},
        headers=staff,
    )
    # Lists and the change feed carry no personal data and leave no audit rows.
    await client.get("/v1/tickets", params={"tenant": world.slug(SOEST)}, headers=staff)
    await graphql(client, staff, "{ tickets(first: 100) { nodes { id subject status } } }")
    await client.get("/v1/tickets/changes", headers=world.headers(SOEST, "partner"))
    assert await _audit(client, world, a["id"]) == []
    # REST detail read by department staff, and by the partner system.
    detail = await client.get(f"/v1/tickets/{a['id']}", headers=staff)
    personal = detail.json()["personalData"]
    assert personal["name"] == CITIZEN_NAME and personal["callbackNumber"] == CITIZEN_PHONE_E164
    assert personal["concern"] == CONCERN and personal["consent"] is True
    await client.get(f"/v1/tickets/{a['id']}", headers=world.headers(SOEST, "partner"))
    # GraphQL: two tickets' contact in one query, comments and callback notes.
    read = await graphql(
        client,
        world.headers(KREIS, "agent"),
        """query($a: UUID!, $b: UUID!) {
               a: ticket(id: $a) { personalData { name email } comments { body } callbackAttempts { note } }
               b: ticket(id: $b) { personalData { name } comments { body } } }""",
        a=a["id"],
        b=b["id"],
    )
    assert read["data"]["a"]["personalData"]["email"] == CITIZEN_EMAIL
    assert read["data"]["a"]["comments"][0]["body"] == COMMENT
    assert read["data"]["a"]["callbackAttempts"][0]["note"] == NOTE
    audit_a = await _audit(client, world, a["id"])
    department, partner, agent = (
        await _subject(client, world, SOEST, "department"),
        await _subject(client, world, SOEST, "partner"),
        await _subject(client, world, KREIS, "agent"),
    )
    assert [(e["actorSubject"], e["via"], e["what"]) for e in audit_a[:2]] == [
        (department, "rest", "contact"),
        (partner, "rest", "contact"),
    ]
    assert [e["at"] for e in audit_a] == sorted(e["at"] for e in audit_a)
    assert {(e["actorSubject"], e["via"], e["what"]) for e in audit_a} == {
        (department, "rest", "contact"),
        (partner, "rest", "contact"),
        (agent, "graphql", "contact"),
        (agent, "graphql", "comments"),
        (agent, "graphql", "callback_notes"),
    }
    assert len(audit_a) == 5
    assert {e["actorTenantId"] for e in audit_a if e["actorSubject"] == agent} == {str(world.tenant_ids[KREIS])}
    assert [(e["via"], e["what"]) for e in await _audit(client, world, b["id"])] == [("graphql", "contact")]
    # Who may read the audit log: the town's own admin.
    url = f"/v1/tenants/{world.slug(SOEST)}/ticket-audit"
    for town, role, status in (
        (GESEKE, "town-admin", 404),
        (KREIS, "town-admin", 404),
        (SOEST, "agent", 403),
        (SOEST, "department", 403),
        (SOEST, "partner", 403),
    ):
        assert (await client.get(url, headers=world.headers(town, role))).status_code == status, (town, role)


async def test_the_audit_table_is_append_only(
    db: asyncpg.Pool, admin_url: str, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, SOEST, datetime.now(UTC))
    async with unit_of_work(world.state, operator_agent(world)) as uow:
        await personal_data.ticket_detail(uow, ticket.id, "rest")
    soest = world.tenant_ids[SOEST]
    for statement in (
        "UPDATE ticket_audit SET actor_subject = 'someone else'",
        "DELETE FROM ticket_audit",
        "TRUNCATE ticket_audit",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _execute_as_app(db, soest, statement)
    async with db.acquire() as conn:
        rights = await conn.fetchrow(
            """SELECT has_table_privilege('ticket_audit', 'INSERT'), has_table_privilege('ticket_audit', 'SELECT'),
                      has_table_privilege('ticket_audit', 'UPDATE'), has_table_privilege('ticket_audit', 'DELETE')"""
        )
    assert tuple(rights) == (True, True, False, False)

    # Even the owner cannot rewrite history (a trigger refuses).
    async def owner_deletes() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            async with conn.transaction():
                await conn.execute(f'SET LOCAL ROLE "{OWNER_ROLE}"')
                await conn.execute("SELECT set_config('app.tenant_ids', $1, true)", "{" + str(soest) + "}")
                await conn.execute("DELETE FROM ticket_audit WHERE ticket_id = $1", ticket.id)
        finally:
            await conn.close()

    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await owner_deletes()


async def _execute_as_app(db: asyncpg.Pool, tenant: UUID, statement: str) -> None:
    async with tenant_transaction(db, [tenant]) as conn:
        await conn.execute(statement)


async def _close_at(world: World, ticket_id: UUID, moment: datetime) -> None:
    async with unit_of_work(world.state, operator_agent(world)) as uow:
        await service.change_status(uow, ticket_id, StatusChange(status=TicketStatus.IN_PROGRESS), now=moment)
        await service.add_comment(uow, ticket_id, CommentInput(body=COMMENT), now=moment)
        await service.record_callback(
            uow,
            ticket_id,
            CallbackAttemptInput(channel=CallbackChannel.PHONE, reached=False, note=NOTE, attempted_at=moment),
            now=moment,
        )
        await service.record_callback(
            uow,
            ticket_id,
            CallbackAttemptInput(channel=CallbackChannel.PHONE, reached=True, attempted_at=moment, mark_answered=True),
            now=moment,
        )
        await service.change_status(uow, ticket_id, StatusChange(status=TicketStatus.CLOSED), now=moment)


async def _everything_about(db: asyncpg.Pool, world: World, tenant: UUID, ticket_id: UUID) -> str:
    """Every row of every table that mentions the ticket, as text (found through the catalogue,
    so a table added later is searched too)."""
    async with tenant_transaction(db, [tenant], readonly=True) as conn:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                """SELECT table_name FROM information_schema.columns
               WHERE table_schema = 'public' AND column_name = 'ticket_id' AND table_name LIKE 'ticket%'"""
            )
        ]
        texts = [await conn.fetchval("SELECT row_to_json(t)::text FROM tickets t WHERE id = $1", ticket_id)]
        for table in tables:
            rows = await conn.fetch(f"SELECT row_to_json(t)::text AS j FROM {table} t WHERE ticket_id = $1", ticket_id)
            texts += [r["j"] for r in rows]
        deliveries = await conn.fetch(
            """SELECT row_to_json(a)::text AS j FROM ticket_webhook_attempts a
               JOIN ticket_webhook_deliveries d ON d.tenant_id = a.tenant_id AND d.id = a.delivery_id
               WHERE d.ticket_id = $1""",
            ticket_id,
        )
        texts += [r["j"] for r in deliveries]
    assert len(tables) >= 7, tables
    return "\n".join(t for t in texts if t)


async def test_retention_purge_leaves_nothing_personal_and_keeps_the_statistics(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    db: asyncpg.Pool,
    worker: TicketWorker,
) -> None:
    now = datetime.now(UTC)
    old = await ticket_at(world, departments, SOEST, now - timedelta(days=101), subject=SUBJECT)
    await _close_at(world, old.id, now - timedelta(days=100))
    recent = await ticket_at(world, departments, SOEST, now - timedelta(days=31), subject=SUBJECT)
    await _close_at(world, recent.id, now - timedelta(days=30))
    still_open = await ticket_at(world, departments, SOEST, now - timedelta(days=200), subject=SUBJECT)
    # Geseke keeps personal data for 10 days only.
    settings = await client.patch(
        f"/v1/tenants/{world.slug(GESEKE)}/ticket-settings",
        json={"retentionDays": 10},
        headers=world.headers(GESEKE, "town-admin"),
    )
    assert settings.status_code == 200
    short = await ticket_at(world, departments, GESEKE, now - timedelta(days=12), subject=SUBJECT)
    await _close_at(world, short.id, now - timedelta(days=11))
    staff = world.headers(SOEST, "department")
    await client.get(f"/v1/tickets/{old.id}", headers=staff)  # an audited read before the purge
    before = await _everything_about(db, world, world.tenant_ids[SOEST], old.id)
    assert CITIZEN_NAME in before and COMMENT in before and NOTE in before  # the search does find them

    try:
        purged = await worker.purge(now)
    finally:
        await client.patch(
            f"/v1/tenants/{world.slug(GESEKE)}/ticket-settings",
            json={"retentionDays": 90},
            headers=world.headers(GESEKE, "town-admin"),
        )
    assert purged >= 2
    for tenant, ticket in ((world.tenant_ids[SOEST], old), (world.tenant_ids[GESEKE], short)):
        left = await _everything_about(db, world, tenant, ticket.id)
        for personal in PERSONAL:
            assert personal not in left, (personal, ticket.id)
    for ticket in (recent, still_open):
        assert CITIZEN_NAME in await _everything_about(db, world, world.tenant_ids[SOEST], ticket.id)

    # The ticket and its statistics remain.
    detail = (await client.get(f"/v1/tickets/{old.id}", headers=staff)).json()
    assert detail["personalData"] is None
    kept = detail["ticket"]
    assert kept["status"] == "closed" and kept["number"] == old.number and kept["personalDataErasedAt"]
    assert kept["dueAt"] and kept["answeredAt"] and kept["closedAt"] and kept["slaState"] in ("on_time", "overdue")
    assert kept["departmentId"] == str(departments[SOEST]) and kept["leikaKey"] is None
    events = (await client.get(f"/v1/tickets/{old.id}/events", headers=staff)).json()
    assert [e["kind"] for e in events][-1] == "ticket.personal_data_erased"
    assert [e["toStatus"] for e in events if e["kind"] == "ticket.status_changed"] == [
        "forwarded",
        "in_progress",
        "answered",
        "closed",
    ]
    attempts = await graphql(
        client,
        staff,
        "query($id: UUID!) { ticket(id: $id) { callbackAttempts { reached note } comments { body } } }",
        id=str(old.id),
    )
    assert sorted((a["reached"], a["note"]) for a in attempts["data"]["ticket"]["callbackAttempts"]) == [
        (False, None),
        (True, None),
    ]
    assert attempts["data"]["ticket"]["comments"] == [{"body": None}]
    # A purged ticket cannot come back with a citizen nobody can call any more.
    reopen = await client.post(f"/v1/tickets/{old.id}/status", json={"status": "in_progress"}, headers=staff)
    assert reopen.status_code == 409
    # The audit trail of earlier reads stays (it names staff, not the citizen).
    assert await _audit(client, world, str(old.id))
    assert await worker.purge(now) == 0  # nothing left to do: idempotent


async def test_no_personal_data_in_logs_urls_or_errors(
    settings: Settings,
    world: World,
    departments: dict[str, UUID],
    receiver: Receiver,
) -> None:
    """A real app process with its background worker, logging at INFO: create, read, fail, and
    let a webhook fail; then search the whole log for the citizen's data."""
    receiver.answers.extend([500] * 3)
    with app_process(settings, extra_env={"BACKGROUND_WORKER": "true", "LOG_LEVEL": "DEBUG"}) as app:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            admin = world.headers(SOEST, "town-admin")
            hook = await http.post(
                f"/v1/tenants/{world.slug(SOEST)}/webhooks", json={"url": receiver.url}, headers=admin
            )
            assert hook.status_code == 201
            agent = world.headers(KREIS, "agent")
            created = await http.post("/v1/tickets", json=ticket_json(world, SOEST, departments[SOEST]), headers=agent)
            assert created.status_code == 201
            ticket_id = created.json()["id"]
            await http.get(f"/v1/tickets/{ticket_id}", headers=agent)
            await http.post(f"/v1/tickets/{ticket_id}/comments", json={"body": COMMENT}, headers=agent)
            invalid = await http.post(
                "/v1/tickets",
                headers=agent,
                json=ticket_json(
                    world,
                    SOEST,
                    departments[SOEST],
                    citizen={"consent": False, "name": CITIZEN_NAME, "callbackNumber": CITIZEN_PHONE},
                ),
            )
            assert invalid.status_code == 422
            wrong_type = await http.post(
                "/v1/tickets",
                headers=agent,
                json=ticket_json(
                    world,
                    SOEST,
                    departments[SOEST],
                    citizen={"consent": "yes", "name": CITIZEN_NAME, "email": CITIZEN_EMAIL},
                ),
            )
            assert wrong_type.status_code in (400, 422)
            gql_error = await http.post(
                "/graphql",
                headers=agent,
                json={
                    "query": "mutation($i: CreateTicketInput!) { createTicket(input: $i) { errors { message } } }",
                    "variables": {
                        "i": {
                            "tenantSlug": world.slug(SOEST),
                            "subject": "x",
                            "concern": CONCERN,
                            "citizen": {"consent": True, "callbackNumber": "kein Anschluss 55519283"},
                        }
                    },
                },
            )
            for response in (invalid, wrong_type, gql_error):
                for personal in (*PERSONAL, "55519283"):
                    assert personal not in response.text
            for _ in range(200):  # the worker in the process tries the failing receiver
                log_entries = (
                    await http.get(
                        f"/v1/tenants/{world.slug(SOEST)}/webhook-deliveries",
                        params={"endpointId": hook.json()["endpoint"]["id"]},
                        headers=admin,
                    )
                ).json()
                if any(e["attempts"] for e in log_entries):
                    break
                await asyncio.sleep(0.05)
            await http.delete(
                f"/v1/tenants/{world.slug(SOEST)}/webhooks/{hook.json()['endpoint']['id']}", headers=admin
            )
        log = app.log()
    assert receiver.received, "the app's background worker did not deliver"
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "webhook_attempt_failed" for line in lines)
    assert any(line.get("event") == "request" and ticket_id in line.get("path", "") for line in lines)
    for personal in (*PERSONAL, "55519283"):
        assert personal not in log, personal
