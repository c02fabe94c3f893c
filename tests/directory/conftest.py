"""Stadt Soest's directory for the tests: the Bauordnung department with its general line, and
the classic split of a service by the citizen's surname — "A–K: Frau Müller, L–Z: Herr Schmidt",
each the other's substitute — plus Herr Weber for the wider key prefix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest_asyncio

from backend.telephony.demo import load_demo_telephony
from tests.support.world import World, system_principal

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
SERVICE = "99108012000000"  # the split service
PREFIX = "991080"  # Weber: everything else under this prefix
LINE = "02921 103-0"


@dataclass
class Directory:
    department_id: UUID
    mueller: dict[str, Any]
    schmidt: dict[str, Any]
    weber: dict[str, Any]

    def base(self, world: World) -> str:
        return f"/v1/tenants/{world.slug(SOEST)}/directory"


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest_asyncio.fixture(scope="session")
async def directory(client: Client, world: World) -> Directory:
    admin = world.headers(SOEST, "town-admin")
    slug = world.slug(SOEST)
    department = await created(
        await client.post(f"/v1/tenants/{slug}/departments", json={"name": "Bauordnung"}, headers=admin)
    )
    base = f"/v1/tenants/{slug}/directory"
    line = await client.put(
        f"{base}/department-lines/{department['id']}",
        json={"phone": LINE, "hours": [{"weekday": d, "opens": "08:00", "closes": "16:00"} for d in range(1, 6)]},
        headers=admin,
    )
    assert line.status_code == 200, line.text

    async def person(**fields: Any) -> dict[str, Any]:
        body = {"departmentId": department["id"], "function": "Bauordnung", "languages": ["de"], **fields}
        return await created(await client.post(f"{base}/people", json=body, headers=admin))

    mueller = await person(salutation="Frau", givenName="Anna", familyName="Müller", phone="02921 103-4711")
    schmidt = await person(salutation="Herr", givenName="Bernd", familyName="Schmidt", phone="02921 103-1234")
    weber = await person(salutation="Herr", givenName="Carl", familyName="Weber", phone="02921 103-2222")
    for who, sub in ((mueller, schmidt), (schmidt, mueller)):
        body = {
            k: who[k]
            for k in ("salutation", "givenName", "familyName", "function", "departmentId", "phone", "languages")
        }
        replaced = await client.put(
            f"{base}/people/{who['id']}", json={**body, "substituteIds": [sub["id"]]}, headers=admin
        )
        assert replaced.status_code == 200, replaced.text
        who.update(replaced.json())
    for body in (
        {"personId": mueller["id"], "leikaKey": SERVICE, "surnameFrom": "A", "surnameTo": "K"},
        {"personId": schmidt["id"], "leikaKey": SERVICE, "surnameFrom": "L", "surnameTo": "Z"},
        {"personId": weber["id"], "leikaKey": PREFIX},
    ):
        await created(await client.post(f"{base}/responsibilities", json=body, headers=admin))
    return Directory(UUID(department["id"]), mueller, schmidt, weber)


# --- calls for the transfer outcome and message tests (decision 038) ----------------------------

SOEST_CENTRAL = "02921 103-0"
DAY = "2147-06-03"  # only the transfer tests put calls into the world's Soest on this day


@pytest_asyncio.fixture(scope="session")
async def numbers(world: World) -> World:
    operator = system_principal(world.tenant_ids[KREIS], set(world.tenant_ids.values()))
    await load_demo_telephony(world.state, operator, world.tenant_ids)  # idempotent: shared with telephony tests
    return world


async def a_call(client: Client, world: World, day: str = DAY, hour: str = "10:00") -> dict[str, Any]:
    body = {
        "externalId": f"transfer-{uuid.uuid4()}",
        "dialled": SOEST_CENTRAL,
        "offeredAt": f"{day}T{hour}:00+02:00",
        "answeredAt": f"{day}T{hour}:20+02:00",
        "endedAt": f"{day}T{hour}:50+02:00",
        "agent": "agent-16",
    }
    response = await client.post("/v1/calls", json=body, headers=world.headers(KREIS, "telephony"))
    assert response.status_code == 200, response.text
    call: dict[str, Any] = response.json()
    assert call["tenantId"] == str(world.tenant_ids[SOEST])
    return call
