"""An identity provider withdraws a signing key (say after a leak): the town's admin has the
keys fetched at once, and tokens signed with the withdrawn key are refused from then on,
instead of for as long as the keys stay cached (`JWKS_CACHE_SECONDS`, an hour by default).

The world's OIDC provider cannot change its keys while running, so the issuer here is
`tests/support/keyserver.py`, publishing discovery and JWKS documents that the test changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.keyserver import KeyServer
from tests.support.keyserver import key_server as running_key_server
from tests.support.world import World

KREIS, GESEKE = "kreis-soest", "stadt-geseke"
AUDIENCE = "key-refresh-test"


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        yield server


async def test_a_withdrawn_key_stops_working_when_the_admin_refreshes(
    client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    leaked, fresh = key_server.new_key("leaked"), key_server.new_key("fresh")
    key_server.keys = [leaked]
    added = await client.post(
        home, json={"issuer": key_server.issuer, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}, headers=admin
    )
    assert added.status_code == 201, added.text
    issuer_id = added.json()["id"]
    refresh = f"{home}/{issuer_id}/key-refresh"
    try:
        assert (await client.get("/v1/me", headers=key_server.token(leaked, AUDIENCE))).status_code == 200

        key_server.keys = [fresh]  # the provider withdraws the leaked key
        still = await client.get("/v1/me", headers=key_server.token(leaked, AUDIENCE))
        assert still.status_code == 200  # the cached keys still have it: this is what the refresh is for

        # Only the tenant's own admins may refresh; another town sees no such tenant.
        assert (await client.post(refresh, headers=world.headers(KREIS, "agent"))).status_code == 403
        assert (await client.post(refresh, headers=world.headers(GESEKE, "town-admin"))).status_code in (403, 404)
        missing = f"{home}/{uuid.uuid4()}/key-refresh"
        assert (await client.post(missing, headers=admin)).status_code == 404

        refreshed = await client.post(refresh, headers=admin)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["keyIds"] == ["fresh"] and refreshed.json()["issuer"] == key_server.issuer
        assert (await client.get("/v1/me", headers=key_server.token(leaked, AUDIENCE))).status_code == 401
        assert (await client.get("/v1/me", headers=key_server.token(fresh, AUDIENCE))).status_code == 200

        key_server.broken = True  # a broken answer changes nothing
        failed = await client.post(refresh, headers=admin)
        assert failed.status_code == 503 and failed.headers["content-type"].startswith("application/problem+json")
        assert "stay as they were" in failed.json()["detail"]
        assert (await client.get("/v1/me", headers=key_server.token(fresh, AUDIENCE))).status_code == 200
        mutation = """mutation($t: String!, $id: UUID!) { refreshIdentityIssuerKeys(tenantSlug: $t, id: $id) {
            issuerKeys { keyIds } errors { code message } } }"""
        variables = {"t": world.slug(KREIS), "id": issuer_id}
        answer = await client.post("/graphql", json={"query": mutation, "variables": variables}, headers=admin)
        payload = answer.json()["data"]["refreshIdentityIssuerKeys"]
        assert payload["issuerKeys"] is None and [e["code"] for e in payload["errors"]] == ["SERVICE_UNAVAILABLE"]

        key_server.broken = False  # the admin front end (GraphQL) refreshes the same way
        answer = await client.post("/graphql", json={"query": mutation, "variables": variables}, headers=admin)
        assert answer.json()["data"]["refreshIdentityIssuerKeys"] == {"issuerKeys": {"keyIds": ["fresh"]}, "errors": []}
    finally:
        await client.delete(f"{home}/{issuer_id}", headers=admin)


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn_and_refreshed(
    client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    """The very same token text, remembered by the sign-in memo (decision 040 keeps the memo):
    the refresh moves the sign-in generation, so the memo cannot outlive the withdrawn key."""
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    leaked, fresh = key_server.new_key("leaked"), key_server.new_key("fresh")
    key_server.keys = [leaked, fresh]
    added = await client.post(
        home, json={"issuer": key_server.issuer, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}, headers=admin
    )
    assert added.status_code == 201, added.text
    verifier = world.state.verifier
    old, new = key_server.token(leaked, AUDIENCE), key_server.token(fresh, AUDIENCE)
    try:
        for _ in range(2):
            assert (await client.get("/v1/me", headers=old)).status_code == 200
        verified = verifier.verifications
        assert (await client.get("/v1/me", headers=old)).status_code == 200
        assert verifier.verifications == verified  # remembered

        key_server.keys = [fresh]  # the provider withdraws the leaked key; the admin refreshes
        refreshed = await client.post(f"{home}/{added.json()['id']}/key-refresh", headers=admin)
        assert refreshed.status_code == 200, refreshed.text
        refused = await client.get("/v1/me", headers=old)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
        assert (await client.get("/v1/me", headers=new)).status_code == 200  # the other key's tokens go on
    finally:
        await client.delete(f"{home}/{added.json()['id']}", headers=admin)


async def test_a_key_set_fetched_anew_without_a_withdrawn_key_drops_remembered_tokens(
    client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    """No admin involved: the provider rotates (a new key, the old one withdrawn), a token with
    the new kid makes an instance fetch the keys again, and the changed key set moves the
    sign-in generation, so the remembered token of the withdrawn key is refused at once instead
    of for up to the memo's minute (decision 040)."""
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    old_key, new_key = key_server.new_key("before-rotation"), key_server.new_key("after-rotation")
    key_server.keys = [old_key]
    added = await client.post(
        home, json={"issuer": key_server.issuer, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}, headers=admin
    )
    assert added.status_code == 201, added.text
    jwks = world.state.verifier.jwks
    old = key_server.token(old_key, AUDIENCE)
    try:
        for _ in range(2):
            assert (await client.get("/v1/me", headers=old)).status_code == 200  # remembered
        key_server.keys = [new_key]  # rotated: the old key withdrawn
        # The refetch interval that the first fetch opened has passed (it would, in a minute).
        await world.state.redis.delete(jwks._key(key_server.issuer, "refetch"))
        assert (await client.get("/v1/me", headers=key_server.token(new_key, AUDIENCE))).status_code == 200
        refused = await client.get("/v1/me", headers=old)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
    finally:
        await client.delete(f"{home}/{added.json()['id']}", headers=admin)
