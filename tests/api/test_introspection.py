"""The full introspection query GraphiQL sends on every load answers without errors (it was
an INTERNAL error at `IdentityIssuerInput.roleMapping`, whose default `{}` of the JSON scalar
cannot be printed, with a traceback in the log)."""

from __future__ import annotations

import logging

import httpx
import pytest

from graphql import get_introspection_query
from tests.support.world import World


async def test_full_introspection_query_has_no_errors(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            "/graphql",
            json={"query": get_introspection_query(descriptions=True, input_value_deprecation=True)},
            headers=world.headers("stadt-soest", "agent"),
        )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body.get("errors")
    types = {t["name"]: t for t in body["data"]["__schema"]["types"]}
    role_mapping = next(f for f in types["IdentityIssuerInput"]["inputFields"] if f["name"] == "roleMapping")
    assert role_mapping["defaultValue"] in (None, "null")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_issuer_registered_over_graphql_without_a_mapping_gets_an_empty_one(
    client: httpx.AsyncClient, world: World
) -> None:
    query = """mutation($slug: String!, $input: IdentityIssuerInput!) {
      addIdentityIssuer(tenantSlug: $slug, input: $input) { identityIssuer { roleMapping roleClaim } errors { field } }
    }"""
    admin = world.headers("stadt-geseke", "town-admin")
    issuer = f"https://idp.example/{world.suffix}"
    variables = {"slug": world.slug("stadt-geseke"), "input": {"issuer": issuer, "audience": "x"}}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=admin)
    payload = response.json()["data"]["addIdentityIssuer"]
    assert payload["errors"] == [] and payload["identityIssuer"] == {"roleMapping": {}, "roleClaim": "roles"}
    issuers = await client.get(f"/v1/tenants/{world.slug('stadt-geseke')}/identity-issuers", headers=admin)
    ours = [i for i in issuers.json() if i["issuer"] == f"https://idp.example/{world.suffix}"]
    assert len(ours) == 1
    removed = await client.delete(
        f"/v1/tenants/{world.slug('stadt-geseke')}/identity-issuers/{ours[0]['id']}",
        headers=world.headers("stadt-geseke", "town-admin"),
    )
    assert removed.status_code == 204
