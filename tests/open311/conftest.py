"""Fixtures for the Open311 facade: Stadt Soest and Stadt Geseke offer services (one with a
service definition), each issued an api key to a partner system; GeoReport answers are checked
against the JSON schemas under `schemas/`, written from the specification."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jsonschema
import pytest_asyncio

from tests.support.world import World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
SCHEMAS = Path(__file__).with_name("schemas")
BASE = "/open311/v2"

POTHOLE = "99108011000000"  # a made-up LeiKa key: Straßenschaden melden
LITTER = "99108022000000"  # wilder Müll, with a service definition

# Personal data a client sends: never in a GET answer.
NAME_FIRST, NAME_LAST = "Hannelore", "Quellenhof-Brinkmann"
EMAIL = "hannelore.qb@example.org"
PHONE = "02921 123456"
DESCRIPTION = "Vor meinem Haus Brüderstraße 12 liegt seit Tagen Sperrmüll"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def conforms(name: str, body: object) -> None:
    """The answer as the specification describes it (raises with the path of the first misfit)."""
    jsonschema.validate(body, schema(name), format_checker=jsonschema.FormatChecker())


@dataclass
class Town:
    slug: str
    tenant_id: UUID
    department_id: UUID
    key: str
    key_id: str


LITTER_DEFINITION = {
    "serviceName": "Wilder Müll",
    "description": "Abfall, der nicht dort liegt, wo er hingehört",
    "keywords": ["Müll", "Sperrmüll"],
    "group": "Sauberkeit",
    "attributes": [
        {
            "code": "kind",
            "datatype": "singlevaluelist",
            "description": "Art des Abfalls",
            "required": True,
            "order": 1,
            "values": [{"key": "bulky", "name": "Sperrmüll"}, {"key": "bags", "name": "Müllsäcke"}],
        },
        {"code": "amount", "datatype": "string", "description": "Menge", "order": 2},
    ],
}


async def offer(client: Client, world: World, town: str) -> Town:
    admin = world.headers(town, "town-admin")
    slug = world.slug(town)
    departments = (await client.get(f"/v1/tenants/{slug}/departments", headers=admin)).json()
    department_id = next(d["id"] for d in departments if d["name"] == "Bürgerbüro")
    for code, body in (
        (POTHOLE, {"serviceName": "Straßenschaden", "group": "Straße", "departmentId": department_id}),
        (LITTER, {**LITTER_DEFINITION, "departmentId": department_id}),
    ):
        put = await client.put(f"/v1/tenants/{slug}/open311-services/{code}", json=body, headers=admin)
        assert put.status_code == 200, put.text
    issued = await client.post(f"/v1/tenants/{slug}/open311-keys", json={"description": "Klarschiff"}, headers=admin)
    assert issued.status_code == 201, issued.text
    return Town(
        slug=slug,
        tenant_id=world.tenant_ids[town],
        department_id=UUID(department_id),
        key=issued.json()["key"],
        key_id=issued.json()["apiKey"]["id"],
    )


@pytest_asyncio.fixture(scope="session")
async def soest(client: Client, world: World) -> Town:
    return await offer(client, world, SOEST)


@pytest_asyncio.fixture(scope="session")
async def geseke(client: Client, world: World) -> Town:
    return await offer(client, world, GESEKE)


def report(town: Town, **overrides: str) -> dict[str, str]:
    """A Klarschiff-style POST: jurisdiction_id on every call, an address without coordinates,
    form fields with `attribute[code]`."""
    return {
        "api_key": town.key,
        "jurisdiction_id": town.slug,
        "service_code": LITTER,
        "address_string": "Brüderstraße 12, 59494 Soest",
        "description": DESCRIPTION,
        "first_name": NAME_FIRST,
        "last_name": NAME_LAST,
        "email": EMAIL,
        "phone": PHONE,
        "attribute[kind]": "bulky",
        "attribute[amount]": "etwa 2 m³",
        **overrides,
    }


async def submit(client: Client, town: Town, **overrides: str) -> dict[str, Any]:
    response = await client.post(f"{BASE}/requests.json", data=report(town, **overrides))
    assert response.status_code == 201, response.text
    conforms("request_created", response.json())
    created: dict[str, Any] = response.json()[0]
    return created
