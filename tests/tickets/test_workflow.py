"""The ticket workflow over REST: creation, routing, every transition checked and recorded with
who and when, invalid moves refused without a trace, comments, callbacks and assignment."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from tests.support.world import World
from tests.tickets.conftest import (
    CITIZEN_NAME,
    CITIZEN_PHONE,
    GESEKE,
    KREIS,
    SOEST,
    create_ticket,
    directory_person,
    graphql,
    ticket_json,
)

pytestmark = pytest.mark.clock  # tickets created now get deadlines from today's calendar

Client = httpx.AsyncClient


async def _status(
    client: Client, world: World, ticket_id: str, status: str, by: tuple[str, str], **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/tickets/{ticket_id}/status", json={"status": status, **extra}, headers=world.headers(*by)
    )


async def _events(client: Client, world: World, ticket_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/tickets/{ticket_id}/events", headers=world.headers(KREIS, "supervisor"))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


async def _outbox_count(db: asyncpg.Pool, tenant_id: UUID, ticket_id: str) -> int:
    async with tenant_transaction(db, [tenant_id], readonly=True) as conn:
        return int(await conn.fetchval("SELECT count(*) FROM ticket_outbox WHERE ticket_id = $1", UUID(ticket_id)))


async def test_agent_creates_a_ticket_for_a_client_town_and_it_is_forwarded(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await create_ticket(client, world, departments, SOEST)
    assert ticket["status"] == "forwarded"
    assert ticket["tenantId"] == str(world.tenant_ids[SOEST])
    assert ticket["departmentId"] == str(departments[SOEST]) and ticket["departmentName"] == "Bürgerbüro"
    assert ticket["source"] == "agent" and ticket["number"] >= 1
    assert ticket["deadlineRule"] == "working_days_24h" and ticket["calendarVersion"]
    assert ticket["slaState"] == "on_time"
    # The list shows no personal data at all.
    assert "citizen" not in ticket and "concern" not in ticket and "personalData" not in ticket
    events = await _events(client, world, ticket["id"])
    assert [(e["kind"], e["fromStatus"], e["toStatus"]) for e in events] == [
        ("ticket.created", None, "new"),
        ("ticket.status_changed", "new", "forwarded"),
    ]
    me = (await client.get("/v1/me", headers=world.headers(KREIS, "agent"))).json()
    assert all(e["actorSubject"] == me["subject"] and e["actorKind"] == "person" for e in events)
    assert all(e["actorTenantId"] == str(world.tenant_ids[KREIS]) and e["at"] for e in events)


async def test_the_whole_workflow_with_reopen(client: Client, world: World, departments: dict[str, UUID]) -> None:
    ticket = await create_ticket(client, world, departments, SOEST)
    staff = (SOEST, "department")
    started = await _status(client, world, ticket["id"], "in_progress", staff)
    assert started.status_code == 200, started.text
    # Answered needs a callback that reached the citizen.
    early = await _status(client, world, ticket["id"], "answered", staff)
    assert early.status_code == 409 and "callback" in early.json()["detail"]
    missed = await client.post(
        f"/v1/tickets/{ticket['id']}/callback-attempts",
        json={"channel": "phone", "reached": False, "note": "Mailbox"},
        headers=world.headers(*staff),
    )
    assert missed.status_code == 201, missed.text
    assert (await _status(client, world, ticket["id"], "answered", staff)).status_code == 409
    reached = await client.post(
        f"/v1/tickets/{ticket['id']}/callback-attempts",
        json={"channel": "phone", "reached": True},
        headers=world.headers(*staff),
    )
    assert reached.status_code == 201
    answered = await _status(client, world, ticket["id"], "answered", staff)
    assert answered.status_code == 200 and answered.json()["answeredAt"]
    closed = await _status(client, world, ticket["id"], "closed", staff)
    assert closed.status_code == 200 and closed.json()["closedAt"]
    reopened = await _status(client, world, ticket["id"], "in_progress", (KREIS, "agent"))
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert body["closedAt"] is None and body["answeredAt"] is None
    assert body["dueAt"] >= closed.json()["dueAt"]  # a new callback promise from the reopen on
    # After a reopen, the earlier callback does not count again.
    assert (await _status(client, world, ticket["id"], "answered", staff)).status_code == 409
    transitions = [
        (e["fromStatus"], e["toStatus"], e["details"].get("action"))
        for e in await _events(client, world, ticket["id"])
        if e["kind"] == "ticket.status_changed"
    ]
    assert transitions == [
        ("new", "forwarded", "forward"),
        ("forwarded", "in_progress", "start"),
        ("in_progress", "answered", "answer"),
        ("answered", "closed", "close"),
        ("closed", "in_progress", "reopen"),
    ]


async def test_invalid_transitions_get_a_clear_error_and_change_nothing(
    client: Client, world: World, departments: dict[str, UUID], db: asyncpg.Pool
) -> None:
    ticket = await create_ticket(client, world, departments, GESEKE)
    before_events = await _events(client, world, ticket["id"])
    before_outbox = await _outbox_count(db, world.tenant_ids[GESEKE], ticket["id"])
    for target in ("new", "forwarded", "answered", "closed"):
        response = await _status(client, world, ticket["id"], target, (GESEKE, "department"))
        assert response.status_code == 409, (target, response.text)
        problem = response.json()
        assert problem["code"] == "INVALID_TRANSITION"
        assert f"'forwarded' cannot move to '{target}'" in problem["detail"]
        assert "allowed next: in_progress" in problem["detail"]
    unknown = await _status(client, world, ticket["id"], "archived", (GESEKE, "department"))
    assert unknown.status_code in (400, 422)
    after = (
        await client.get(
            "/v1/tickets",
            params={"tenant": world.slug(GESEKE), "first": 100},
            headers=world.headers(GESEKE, "department"),
        )
    ).json()["items"]
    same = next(t for t in after if t["id"] == ticket["id"])
    assert same["status"] == "forwarded" and same["version"] == ticket["version"]
    assert same["changeSeq"] == ticket["changeSeq"]
    assert await _events(client, world, ticket["id"]) == before_events
    assert await _outbox_count(db, world.tenant_ids[GESEKE], ticket["id"]) == before_outbox


async def test_a_stale_version_is_refused(client: Client, world: World, departments: dict[str, UUID]) -> None:
    ticket = await create_ticket(client, world, departments, SOEST)
    name = await directory_person(client, world, SOEST, f"Sachbearbeiter 7 {uuid.uuid4().hex[:8]}")
    assigned = await client.put(
        f"/v1/tickets/{ticket['id']}/assignment",
        json={"assignee": name, "version": ticket["version"]},
        headers=world.headers(SOEST, "department"),
    )
    assert assigned.status_code == 200, assigned.text
    stale = await _status(client, world, ticket["id"], "in_progress", (SOEST, "department"), version=ticket["version"])
    assert stale.status_code == 409 and "changed by someone else" in stale.json()["detail"]
    assert stale.json()["code"] == "VERSION_CONFLICT"
    fresh = await _status(
        client, world, ticket["id"], "in_progress", (SOEST, "department"), version=assigned.json()["version"]
    )
    assert fresh.status_code == 200


async def test_comments_assignment_and_department_changes_are_events(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    admin = world.headers(SOEST, "town-admin")
    other = await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/departments", json={"name": f"Ordnungsamt {world.suffix}"}, headers=admin
    )
    assert other.status_code == 201
    ticket = await create_ticket(client, world, departments, SOEST)
    staff = world.headers(SOEST, "department")
    comment = await client.post(
        f"/v1/tickets/{ticket['id']}/comments", json={"body": "Bitte Termin anbieten"}, headers=staff
    )
    assert comment.status_code == 201 and comment.json()["body"] == "Bitte Termin anbieten"
    moved = await client.put(
        f"/v1/tickets/{ticket['id']}/department", json={"departmentId": other.json()["id"]}, headers=staff
    )
    assert moved.status_code == 200 and moved.json()["departmentName"] == f"Ordnungsamt {world.suffix}"
    foreign = await client.put(
        f"/v1/tickets/{ticket['id']}/department", json={"departmentId": str(departments[GESEKE])}, headers=staff
    )
    assert foreign.status_code == 422  # Geseke's department is not one of Soest's
    name = await directory_person(client, world, SOEST, f"Sachbearbeiterin 12 {uuid.uuid4().hex[:8]}")
    assigned = await client.put(f"/v1/tickets/{ticket['id']}/assignment", json={"assignee": name}, headers=staff)
    assert assigned.json()["assignee"] == name
    unassigned = await client.put(f"/v1/tickets/{ticket['id']}/assignment", json={"assignee": None}, headers=staff)
    assert unassigned.json()["assignee"] is None
    kinds = [e["kind"] for e in await _events(client, world, ticket["id"])]
    assert kinds == [
        "ticket.created",
        "ticket.status_changed",
        "ticket.comment_added",
        "ticket.department_changed",
        "ticket.assigned",
        "ticket.assigned",
    ]
    mine = await client.get("/v1/tickets", params={"tenant": world.slug(SOEST), "assignee": name}, headers=staff)
    assert ticket["id"] not in [t["id"] for t in mine.json()["items"]]


async def test_partner_system_adds_a_callback_result_that_answers_the_ticket(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    partner = (SOEST, "partner")
    ticket = await create_ticket(client, world, departments, SOEST, by=partner)
    assert ticket["source"] == "partner"
    result = await client.post(
        f"/v1/tickets/{ticket['id']}/callback-attempts",
        json={"channel": "phone", "reached": True, "markAnswered": True, "note": "Termin vereinbart"},
        headers=world.headers(*partner),
    )
    assert result.status_code == 201, result.text
    events = await _events(client, world, ticket["id"])
    assert [e["toStatus"] for e in events if e["kind"] == "ticket.status_changed"] == [
        "forwarded",
        "in_progress",
        "answered",
    ]
    assert all(e["actorKind"] == "machine" for e in events)
    not_reached = await client.post(
        f"/v1/tickets/{ticket['id']}/callback-attempts",
        json={"channel": "phone", "reached": False, "markAnswered": True},
        headers=world.headers(*partner),
    )
    assert not_reached.status_code == 422


async def test_routing_table_proposes_the_department_and_the_agent_can_override(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    slug = world.slug(GESEKE)
    made = {}
    for name in ("Ordnungsamt", "Standesamt"):
        response = await client.post(
            f"/v1/tenants/{slug}/departments", json={"name": f"{name} R{world.suffix}"}, headers=admin
        )
        made[name] = response.json()["id"]
    table = {
        "defaultDepartmentId": str(departments[GESEKE]),
        "routes": [
            {"keyPrefix": "99050", "departmentId": made["Ordnungsamt"]},  # a group of services
            {"keyPrefix": "99050012104000", "departmentId": made["Standesamt"]},  # one service
        ],
    }
    replaced = await client.put(f"/v1/tenants/{slug}/ticket-routes", json=table, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert [r["keyPrefix"] for r in replaced.json()["routes"]] == [None, "99050", "99050012104000"]
    agent = world.headers(KREIS, "agent")
    assert (await client.put(f"/v1/tenants/{slug}/ticket-routes", json=table, headers=agent)).status_code == 403
    cases = {
        "99050012104000": made["Standesamt"],
        "99050099000000": made["Ordnungsamt"],
        "99001001001000": str(departments[GESEKE]),
    }
    for key, expected in cases.items():
        body = ticket_json(world, GESEKE, None, leikaKey=key)
        created = await client.post("/v1/tickets", json=body, headers=agent)
        assert created.status_code == 201, created.text
        assert created.json()["departmentId"] == expected, key
        proposed = await graphql(
            client,
            agent,
            "query($s: String!, $k: String) { proposedDepartmentId(tenantSlug: $s, leikaKey: $k) }",
            s=slug,
            k=key,
        )
        assert proposed["data"]["proposedDepartmentId"] == expected
    override = await client.post(
        "/v1/tickets",
        json=ticket_json(world, GESEKE, None, leikaKey="99050012104000", departmentId=made["Ordnungsamt"]),
        headers=agent,
    )
    assert override.json()["departmentId"] == made["Ordnungsamt"]
    # Without a default, a key nobody is responsible for needs an explicit department.
    no_default = await client.put(f"/v1/tenants/{slug}/ticket-routes", json={"routes": table["routes"]}, headers=admin)
    assert no_default.status_code == 200
    orphan = await client.post("/v1/tickets", json=ticket_json(world, GESEKE, None, leikaKey="11111"), headers=agent)
    assert orphan.status_code == 422 and orphan.json()["errors"][0]["field"] == "departmentId"
    await client.put(f"/v1/tenants/{slug}/ticket-routes", json=table, headers=admin)


async def test_bad_citizen_data_is_refused_without_echoing_it(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    agent = world.headers(KREIS, "agent")
    cases = [
        ({"citizen": {"consent": False, "name": CITIZEN_NAME, "callbackNumber": CITIZEN_PHONE}}, "citizen.consent"),
        ({"citizen": {"consent": True, "callbackNumber": "not-a-number-0815"}}, "citizen.callbackNumber"),
        ({"citizen": {"consent": True, "preferredChannel": "email", "name": CITIZEN_NAME}}, "citizen.email"),
        ({"citizen": {"consent": True, "email": "erika(at)quellenhof"}}, None),
    ]
    for overrides, field in cases:
        response = await client.post(
            "/v1/tickets", json=ticket_json(world, SOEST, departments[SOEST], **overrides), headers=agent
        )
        assert response.status_code in (400, 422), response.text
        text = response.text
        for secret in (CITIZEN_NAME, CITIZEN_PHONE, "not-a-number-0815", "erika(at)quellenhof"):
            assert secret not in text
        if field:
            assert response.json()["errors"][0]["field"] == field


async def test_graphql_workflow_for_agents_and_department_staff(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    agent = world.headers(KREIS, "agent")
    created = await graphql(
        client,
        agent,
        """mutation($input: CreateTicketInput!) { createTicket(input: $input) {
               ticket { id status number slaState dueAt departmentName }
               errors { code message field } } }""",
        input={
            "tenantSlug": world.slug(GESEKE),
            "subject": "Hundesteuer",
            "concern": "Frage zur Hundesteuer",
            "citizen": {"consent": True, "name": CITIZEN_NAME, "callbackNumber": CITIZEN_PHONE},
            "departmentId": str(departments[GESEKE]),
            "priority": "HIGH",
        },
    )
    payload = created["data"]["createTicket"]
    assert payload["errors"] == [], payload
    ticket = payload["ticket"]
    assert ticket["status"] == "FORWARDED" and ticket["slaState"] == "ON_TIME"
    staff = world.headers(GESEKE, "department")
    change = """mutation($id: UUID!, $s: TicketStatus!) { changeTicketStatus(id: $id, status: $s) {
                    ticket { status } errors { code message field } } }"""
    wrong = await graphql(client, staff, change, id=ticket["id"], s="CLOSED")
    assert wrong["data"]["changeTicketStatus"]["ticket"] is None
    assert wrong["data"]["changeTicketStatus"]["errors"][0]["code"] == "INVALID_TRANSITION"
    started = await graphql(client, staff, change, id=ticket["id"], s="IN_PROGRESS")
    assert started["data"]["changeTicketStatus"]["ticket"]["status"] == "IN_PROGRESS"
    recorded = await graphql(
        client,
        staff,
        """mutation($id: UUID!) { recordCallbackAttempt(id: $id, input: {channel: PHONE, reached: true,
               markAnswered: true}) { callbackAttempt { reached } errors { code } } }""",
        id=ticket["id"],
    )
    assert recorded["data"]["recordCallbackAttempt"]["errors"] == []
    read = await graphql(
        client,
        staff,
        """query($id: UUID!) { ticket(id: $id) { status answeredAt events { kind toStatus actorKind } } }""",
        id=ticket["id"],
    )
    assert read["data"]["ticket"]["status"] == "ANSWERED"
    assert [e["toStatus"] for e in read["data"]["ticket"]["events"] if e["kind"] == "STATUS_CHANGED"] == [
        "FORWARDED",
        "IN_PROGRESS",
        "ANSWERED",
    ]
