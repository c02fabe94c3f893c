"""The town admin issues and revokes Open311 api keys over GraphQL as over REST."""

from __future__ import annotations

from typing import Any

import httpx

from tests.open311.conftest import BASE, GESEKE, SOEST, Town, report
from tests.support.world import World

ISSUE = """mutation($tenant: String!, $description: String!) {
  issueOpen311ApiKey(tenant: $tenant, input: {description: $description}) {
    issued { key apiKey { id keyPrefix description revokedAt } }
    errors { code field message }
  }
}"""
REVOKE = """mutation($tenant: String!, $id: UUID!) {
  revokeOpen311ApiKey(tenant: $tenant, id: $id) { apiKey { id revokedAt } errors { code message } }
}"""
KEYS = "query($tenant: String!) { open311ApiKeys(tenant: $tenant) { id keyPrefix revokedAt } }"


async def graphql(client: httpx.AsyncClient, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_issue_list_and_revoke_over_graphql(client: httpx.AsyncClient, world: World, soest: Town) -> None:
    admin = world.headers(SOEST, "town-admin")
    issued = (await graphql(client, admin, ISSUE, tenant=soest.slug, description="Mark-a-Spot"))["data"]
    payload = issued["issueOpen311ApiKey"]
    assert payload["errors"] == []
    key, key_id = payload["issued"]["key"], payload["issued"]["apiKey"]["id"]
    listed = (await graphql(client, admin, KEYS, tenant=soest.slug))["data"]["open311ApiKeys"]
    assert key_id in {k["id"] for k in listed} and key not in str(listed)
    accepted = await client.post(f"{BASE}/requests.json", data=report(soest, api_key=key))
    assert accepted.status_code == 201, accepted.text
    revoked = (await graphql(client, admin, REVOKE, tenant=soest.slug, id=key_id))["data"]["revokeOpen311ApiKey"]
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    refused = await client.post(f"{BASE}/requests.json", data=report(soest, api_key=key))
    assert refused.status_code == 403, refused.text


async def test_bad_input_and_other_towns_are_payload_errors(
    client: httpx.AsyncClient, world: World, soest: Town
) -> None:
    admin = world.headers(SOEST, "town-admin")
    blank = (await graphql(client, admin, ISSUE, tenant=soest.slug, description=""))["data"]["issueOpen311ApiKey"]
    assert blank["issued"] is None and blank["errors"][0]["code"] == "VALIDATION_FAILED"
    other = world.headers(GESEKE, "town-admin")
    foreign = (await graphql(client, other, ISSUE, tenant=soest.slug, description="x"))["data"]["issueOpen311ApiKey"]
    assert foreign["issued"] is None and foreign["errors"][0]["code"] == "NOT_FOUND"
    missing = await graphql(client, admin, REVOKE, tenant=soest.slug, id="00000000-0000-0000-0000-000000000311")
    assert missing["data"]["revokeOpen311ApiKey"]["errors"][0]["code"] == "NOT_FOUND"
    agent = await graphql(client, world.headers(SOEST, "agent"), KEYS, tenant=soest.slug)
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"
