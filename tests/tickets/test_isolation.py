"""Tenancy of tickets: department staff and partner systems see only their town, the operator's
agents see client towns with an active agreement and only those — over REST, GraphQL, and in
the database itself (row-level security without the application's filters)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest_asyncio

from backend.db.tenancy import tenant_transaction
from backend.state import unit_of_work
from backend.tenants import service as tenant_service
from backend.tenants.schemas import AgreementCreate, DepartmentInput
from tests.support.world import World, make_tenant, system_principal
from tests.tickets.conftest import GESEKE, KREIS, SOEST, create_ticket, graphql, ticket_json

Client = httpx.AsyncClient


@pytest_asyncio.fixture(scope="module")
async def pair(client: Client, world: World, departments: dict[str, UUID]) -> dict[str, dict[str, Any]]:
    return {
        SOEST: await create_ticket(client, world, departments, SOEST),
        GESEKE: await create_ticket(client, world, departments, GESEKE),
    }


async def test_department_staff_see_and_work_only_their_town(
    client: Client, world: World, pair: dict[str, dict[str, Any]]
) -> None:
    geseke = world.headers(GESEKE, "department")
    soest_ticket = pair[SOEST]["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/events", None),
        ("POST", "/status", {"status": "in_progress"}),
        ("POST", "/comments", {"body": "Eingeschleust"}),
        ("POST", "/callback-attempts", {"channel": "phone", "reached": True}),
        ("PUT", "/assignment", {"assignee": "x"}),
    ):
        foreign = await client.request(method, f"/v1/tickets/{soest_ticket}{suffix}", json=body, headers=geseke)
        absent = await client.request(method, f"/v1/tickets/{missing}{suffix}", json=body, headers=geseke)
        assert foreign.status_code == 404, (method, suffix, foreign.text)
        assert foreign.json()["detail"] == absent.json()["detail"]  # indistinguishable from a missing ticket
    listed = (await client.get("/v1/tickets", params={"first": 100}, headers=geseke)).json()["items"]
    assert {t["tenantId"] for t in listed} == {str(world.tenant_ids[GESEKE])}
    other_town = await client.get("/v1/tickets", params={"tenant": world.slug(SOEST)}, headers=geseke)
    assert other_town.status_code == 404
    create = await client.post("/v1/tickets", json=ticket_json(world, SOEST, None), headers=geseke)
    assert create.status_code == 404
    # Soest's own ticket is still untouched.
    events = (await client.get(f"/v1/tickets/{soest_ticket}/events", headers=world.headers(SOEST, "department"))).json()
    assert [e["kind"] for e in events] == ["ticket.created", "ticket.status_changed"]


async def test_operator_agents_see_all_client_towns(
    client: Client, world: World, pair: dict[str, dict[str, Any]]
) -> None:
    agent = world.headers(KREIS, "agent")
    for town in (SOEST, GESEKE):
        response = await client.get(f"/v1/tickets/{pair[town]['id']}", headers=agent)
        assert response.status_code == 200
    seen = {
        t["tenantId"] for t in (await client.get("/v1/tickets", params={"first": 100}, headers=agent)).json()["items"]
    }
    assert {str(world.tenant_ids[SOEST]), str(world.tenant_ids[GESEKE])} <= seen
    # A town's own agent (not the operator's) acts only for its town.
    town_agent = world.headers(GESEKE, "agent")
    assert (await client.get(f"/v1/tickets/{pair[SOEST]['id']}", headers=town_agent)).status_code == 404


async def test_no_agreement_no_tickets(client: Client, world: World) -> None:
    """A town without an active agreement is out of the operator's agents' reach."""
    state = world.state
    lippetal = await make_tenant(state, f"gemeinde-lippetal-{world.suffix}", ags="05974032")
    operator = system_principal(world.tenant_ids[KREIS], {*world.tenant_ids.values(), lippetal})
    async with unit_of_work(state, operator) as uow:
        department = await tenant_service.add_department(
            uow, f"gemeinde-lippetal-{world.suffix}", DepartmentInput(name="Rathaus")
        )
        # Agreed, but only from 2190 on: not active today.
        await tenant_service.create_agreement(
            uow, AgreementCreate(client_tenant_id=lippetal, starts_on=date(2190, 1, 1))
        )
    body = ticket_json(world, KREIS, department.id, tenantSlug=f"gemeinde-lippetal-{world.suffix}")
    refused = await client.post("/v1/tickets", json=body, headers=world.headers(KREIS, "agent"))
    assert refused.status_code == 404
    listed = await client.get(
        "/v1/tickets", params={"tenant": f"gemeinde-lippetal-{world.suffix}"}, headers=world.headers(KREIS, "agent")
    )
    assert listed.status_code == 404


async def test_partner_systems_and_scopes(client: Client, world: World, pair: dict[str, dict[str, Any]]) -> None:
    partner = world.headers(SOEST, "partner")
    own = await client.get(f"/v1/tickets/{pair[SOEST]['id']}", headers=partner)
    assert own.status_code == 200
    foreign = await client.get(f"/v1/tickets/{pair[GESEKE]['id']}", headers=partner)
    assert foreign.status_code == 404
    feed = await client.get("/v1/tickets/changes", headers=partner)
    assert feed.status_code == 200
    assert {t["tenantId"] for t in feed.json()["items"]} <= {str(world.tenant_ids[SOEST])}
    assert (
        await client.get("/v1/tickets/changes", params={"tenant": world.slug(GESEKE)}, headers=partner)
    ).status_code == 404
    telephony = world.headers(SOEST, "telephony")  # no tickets scope at all
    for method, path in (
        ("GET", "/v1/tickets"),
        ("GET", f"/v1/tickets/{pair[SOEST]['id']}"),
        ("GET", "/v1/tickets/changes"),
    ):
        response = await client.request(method, path, headers=telephony)
        assert response.status_code == 403, path


async def test_graphql_isolation(client: Client, world: World, pair: dict[str, dict[str, Any]]) -> None:
    geseke = world.headers(GESEKE, "department")
    listed = await graphql(client, geseke, "{ tickets(first: 100) { nodes { id tenantId } } }")
    assert {n["tenantId"] for n in listed["data"]["tickets"]["nodes"]} == {str(world.tenant_ids[GESEKE])}
    one = await graphql(
        client, geseke, "query($id: UUID!) { ticket(id: $id) { id personalData { name } } }", id=pair[SOEST]["id"]
    )
    assert one["data"]["ticket"] is None
    moved = await graphql(
        client,
        geseke,
        """mutation($id: UUID!) { changeTicketStatus(id: $id, status: IN_PROGRESS) {
               ticket { id } errors { code } } }""",
        id=pair[SOEST]["id"],
    )
    assert moved["data"]["changeTicketStatus"]["errors"][0]["code"] == "NOT_FOUND"
    other = await graphql(
        client, geseke, "query($s: String!) { tickets(tenantSlug: $s) { nodes { id } } }", s=world.slug(SOEST)
    )
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    agent = await graphql(
        client,
        world.headers(KREIS, "agent"),
        "query($a: UUID!, $b: UUID!) { a: ticket(id: $a) { tenantId } b: ticket(id: $b) { tenantId } }",
        a=pair[SOEST]["id"],
        b=pair[GESEKE]["id"],
    )
    assert agent["data"]["a"]["tenantId"] == str(world.tenant_ids[SOEST])
    assert agent["data"]["b"]["tenantId"] == str(world.tenant_ids[GESEKE])


async def test_row_level_security_alone_hides_other_towns_tickets(
    db: asyncpg.Pool, world: World, pair: dict[str, dict[str, Any]]
) -> None:
    geseke = world.tenant_ids[GESEKE]
    tables = ["tickets", "ticket_personal_data", "ticket_events", "ticket_outbox", "ticket_counters"]
    async with tenant_transaction(db, [geseke], readonly=True) as conn:
        for table in tables:
            tenants = {r["tenant_id"] for r in await conn.fetch(f"SELECT tenant_id FROM {table}")}
            assert tenants == {geseke}, table
    async with tenant_transaction(db, [geseke]) as conn:
        updated = await conn.execute("UPDATE tickets SET subject = 'x' WHERE id = $1", UUID(pair[SOEST]["id"]))
    assert updated == "UPDATE 0"
