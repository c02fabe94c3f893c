"""Only the operator's issuers make platform admins.

A town's admin registers the town's own identity provider and maps its claims to our roles. A
mapping to `platform-admin` would make anyone that provider signs in an administrator of every
tenant (other towns' numbers, calls, tickets, invoices). The mapping is refused, and sign-in
ignores such a mapping where one exists anyway (written before the rule, or by hand)."""

from __future__ import annotations

import json

import asyncpg
import httpx

from backend.tenants import signin
from tests.support.world import AUDIENCE, World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"


def issuer_body(world: World, mapping: dict[str, str]) -> dict[str, object]:
    return {"issuer": world.oidc.issuer_url("rogue"), "audience": AUDIENCE, "roleMapping": mapping}


async def issuers_of(client: Client, world: World, town: str) -> list[str]:
    response = await client.get(
        f"/v1/tenants/{world.slug(town)}/identity-issuers", headers=world.headers(KREIS, "platform-admin")
    )
    assert response.status_code == 200, response.text
    return sorted(i["issuer"] for i in response.json())


async def test_a_town_admin_cannot_map_its_issuer_to_platform_admin(client: Client, world: World) -> None:
    before = await issuers_of(client, world, GESEKE)
    response = await client.post(
        f"/v1/tenants/{world.slug(GESEKE)}/identity-issuers",
        json=issuer_body(world, {"it-admins": "platform-admin", "staff": "agent"}),
        headers=world.headers(GESEKE, "town-admin"),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "platform-admin" in response.json()["detail"]
    assert await issuers_of(client, world, GESEKE) == before


async def test_not_even_the_operator_maps_a_towns_issuer_to_platform_admin(client: Client, world: World) -> None:
    """The rule is about whose issuer it is, not who registers it."""
    query = """mutation($slug: String!, $input: IdentityIssuerInput!) {
        addIdentityIssuer(tenantSlug: $slug, input: $input) {
            identityIssuer { issuer } errors { code field message } } }"""
    variables = {
        "slug": world.slug(SOEST),
        "input": issuer_body(world, {"admins": "platform-admin"}),
    }
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers=world.headers(KREIS, "platform-admin"),
    )
    payload = response.json()["data"]["addIdentityIssuer"]
    assert payload["identityIssuer"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION_FAILED", "roleMapping")]


async def test_sign_in_ignores_a_towns_mapping_to_platform_admin(client: Client, world: World, admin_url: str) -> None:
    """A mapping that got into the table anyway grants nothing: the token's only role is dropped."""
    geseke_admin = world.headers(GESEKE, "platform-admin")
    assert (await client.get("/v1/me", headers=geseke_admin)).status_code == 401  # the world never maps it
    kreis_tenants = await client.get("/v1/tenants", headers=world.headers(KREIS, "platform-admin"))
    assert kreis_tenants.status_code == 200 and len(kreis_tenants.json()["items"]) >= 3

    conn = await asyncpg.connect(admin_url)
    try:
        issuer = world.oidc.issuer_url(GESEKE)
        mapping = await conn.fetchval("SELECT role_mapping FROM identity_issuers WHERE issuer = $1", issuer)
        forged = {**json.loads(mapping), "platform-admin": "platform-admin"}
        await conn.execute(
            "UPDATE identity_issuers SET role_mapping = $2::jsonb WHERE issuer = $1", issuer, json.dumps(forged)
        )
        await signin.signin_changed(world.state)
        try:
            refused = await client.get("/v1/tenants", headers=world.headers(GESEKE, "platform-admin"))
            assert refused.status_code == 401, refused.text
            # The town's other people sign in as before and still see only their town.
            me = await client.get("/v1/me", headers=world.headers(GESEKE, "town-admin"))
            assert me.json()["actingTenantIds"] == [str(world.tenant_ids[GESEKE])]
        finally:
            await conn.execute("UPDATE identity_issuers SET role_mapping = $2 WHERE issuer = $1", issuer, mapping)
            await signin.signin_changed(world.state)
    finally:
        await conn.close()
