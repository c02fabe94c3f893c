"""Small builders for telephony tests."""

from __future__ import annotations

import random
from typing import Any

import httpx

from tests.support.world import World

Client = httpx.AsyncClient


def unique_number() -> str:
    """A Munich number nobody else in this session owns (tests share one database)."""
    return f"+4989{random.randrange(10**7, 10**8)}"


def unique_block() -> str:
    """A Hamburg number block (prefix) nobody else in this session owns."""
    return f"+4940{random.randrange(10**5, 10**6)}"


async def gql(client: Client, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_number(client: Client, world: World, town: str, number: str, **fields: Any) -> dict[str, Any]:
    body = {"tenantId": str(world.tenant_ids[town]), "number": number, "validFrom": "2016-01-01", **fields}
    response = await client.post(
        "/v1/service-numbers", json=body, headers=world.headers("kreis-soest", "platform-admin")
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
