"""Fixtures for the tickets domain: departments of the world's towns, ticket factories (over REST,
and at a chosen moment through the service), a worker, and a real HTTP receiver for webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import pytest_asyncio

from auth.principal import Principal
from auth.roles import Role
from backend.db.pool import create_pool
from backend.db.roles import APP_ROLE, with_user
from backend.state import unit_of_work
from backend.tickets import service
from backend.tickets.schemas import Citizen, Ticket, TicketCreate
from backend.tickets.worker import TicketWorker
from tests.support.world import World
from tests.tickets.receiver import Receiver

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"

# Personal data used throughout: tests look for exactly these strings where they must not be.
CITIZEN_NAME = "Erika Mustermann-Quellenhof"
CITIZEN_PHONE = "02921 987654"
CITIZEN_PHONE_E164 = "+492921987654"
CITIZEN_EMAIL = "erika.quellenhof@example.org"
CONCERN = "Mein Sperrmüll in der Lindenallee 7 wurde nicht abgeholt"


def citizen_json(**overrides: Any) -> dict[str, Any]:
    return {
        "consent": True,
        "preferredChannel": "phone",
        "name": CITIZEN_NAME,
        "callbackNumber": CITIZEN_PHONE,
        "email": CITIZEN_EMAIL,
        **overrides,
    }


def ticket_json(world: World, town: str, department_id: UUID | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantSlug": world.slug(town),
        "subject": "Sperrmüll nicht abgeholt",
        "concern": CONCERN,
        "citizen": citizen_json(),
        "leikaKey": "99050012104000",
        **overrides,
    }
    if department_id is not None and "departmentId" not in overrides:
        body["departmentId"] = str(department_id)
    return body


@pytest_asyncio.fixture(scope="session")
async def departments(client: Client, world: World) -> dict[str, UUID]:
    """The Bürgerbüro of each town of the world (created by build_world)."""
    found = {}
    for town in (KREIS, SOEST, GESEKE):
        response = await client.get(
            f"/v1/tenants/{world.slug(town)}/departments", headers=world.headers(KREIS, "platform-admin")
        )
        found[town] = next(UUID(d["id"]) for d in response.json() if d["name"] == "Bürgerbüro")
    return found


async def create_ticket(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    town: str,
    by: tuple[str, str] = (KREIS, "agent"),
    **overrides: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/tickets", json=ticket_json(world, town, departments[town], **overrides), headers=world.headers(*by)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def operator_agent(world: World, subject: str = "agent-at-a-chosen-moment") -> Principal:
    """An operator's agent acting for all three towns, for service calls at a chosen moment."""
    return Principal(
        issuer=world.oidc.issuer_url(KREIS),
        subject=subject,
        tenant_id=world.tenant_ids[KREIS],
        tenant_slug=world.slug(KREIS),
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(world.tenant_ids.values()),
    )


async def ticket_at(world: World, departments: dict[str, UUID], town: str, now: datetime, **fields: Any) -> Ticket:
    """A ticket created at `now` (through the service, as the operator's agent)."""
    data = TicketCreate(
        tenant_slug=world.slug(town),
        subject=fields.pop("subject", "Rückruf erbeten"),
        concern=fields.pop("concern", CONCERN),
        citizen=fields.pop(
            "citizen",
            Citizen(consent=True, name=CITIZEN_NAME, callback_number=CITIZEN_PHONE, email=CITIZEN_EMAIL),
        ),
        department_id=fields.pop("department_id", departments[town]),
        **fields,
    )
    async with unit_of_work(world.state, operator_agent(world)) as uow:
        return await service.create_ticket(uow, data, now=now)


@pytest_asyncio.fixture
async def app_pool(admin_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A second pool of the application role: what another app instance would have."""
    pool = await create_pool(with_user(admin_url, APP_ROLE), 1, 4)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def worker(world: World) -> AsyncIterator[TicketWorker]:
    async with httpx.AsyncClient() as http:
        yield TicketWorker(world.state.pool, world.state.redis, http, world.state.sealer, request_timeout=5.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest_asyncio.fixture
async def endpoint(client: Client, world: World, receiver: Receiver) -> AsyncIterator[dict[str, Any]]:
    """Stadt Soest's webhook endpoint pointing at the receiver; deactivated afterwards."""
    admin = world.headers(SOEST, "town-admin")
    response = await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/webhooks",
        json={"url": receiver.url, "description": "Bürger-CRM"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    yield created
    await client.delete(f"/v1/tenants/{world.slug(SOEST)}/webhooks/{created['endpoint']['id']}", headers=admin)


async def graphql(client: Client, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def directory_person(client: httpx.AsyncClient, world: World, town: str, family_name: str) -> str:
    """A person of the town's directory to assign tickets to (decision 027: once a town has a
    directory, only its people can be assigned; other tests give the shared towns one)."""
    response = await client.post(
        f"/v1/tenants/{world.slug(town)}/directory/people",
        json={"familyName": family_name},
        headers=world.headers(town, "town-admin"),
    )
    assert response.status_code == 201, response.text
    return family_name
