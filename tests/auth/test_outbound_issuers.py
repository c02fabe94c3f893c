"""Issuers and webhook endpoints a town admin cannot aim inside our network (issue 12, SSRF),
what the admin is told when an issuer's documents cannot be fetched, and how often we try.

`strict` is the app with production's outbound rule (loopback refused). Its platform admin signs
in at a development issuer, whose keys are read from disk, so no request of the test's own
sign-in needs loopback; every other issuer here is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from backend import devidp
from backend.main import create_app
from backend.settings import Settings
from backend.state import unit_of_work
from backend.tenants import service
from backend.tenants.schemas import IdentityIssuerInput
from tests.support.asgi import serve
from tests.support.keyserver import KeyServer
from tests.support.keyserver import key_server as running_key_server
from tests.support.world import World, system_principal

KREIS = "kreis-soest"
AUDIENCE = "outbound-test"
REFUSED = [
    "https://127.0.0.1",
    "https://[::1]",
    "https://10.0.0.1",
    "https://169.254.169.254/latest/",
    "https://10.0.0.5:6379",
    "https://[::1]:5432",
]


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        yield server


@pytest.fixture(scope="module")
async def strict(settings: Settings, world: World) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The app under production's outbound rule, and a platform admin's headers for it."""
    slug = world.slug(KREIS)
    token = devidp.mint_token(settings, slug, "platform-admin")  # also writes the dev issuer's key
    async with unit_of_work(world.state, system_principal(world.tenant_ids[KREIS], {world.tenant_ids[KREIS]})) as uow:
        registered = await service.add_identity_issuer(
            uow,
            slug,
            IdentityIssuerInput(
                issuer=devidp.issuer_url(settings, slug),
                audience=devidp.AUDIENCE,
                role_mapping={"platform-admin": "platform-admin"},
            ),
        )
    assert registered.discovery is not None and registered.discovery.fetched
    try:
        production_rule = dataclasses.replace(settings, outbound_loopback=False)
        async with serve(create_app(production_rule), "http://testserver.local") as client:
            yield client, {"Authorization": f"Bearer {token}"}
    finally:
        async with unit_of_work(
            world.state, system_principal(world.tenant_ids[KREIS], {world.tenant_ids[KREIS]})
        ) as uow:
            await service.remove_identity_issuer(uow, slug, registered.id)


@pytest.mark.parametrize("url", REFUSED)
async def test_issuers_and_webhooks_at_our_own_addresses_are_refused(
    strict: tuple[httpx.AsyncClient, dict[str, str]], world: World, url: str
) -> None:
    client, admin = strict
    town = world.slug("stadt-soest")
    issuer = await client.post(
        f"/v1/tenants/{town}/identity-issuers", json={"issuer": url, "audience": AUDIENCE}, headers=admin
    )
    assert issuer.status_code == 422, issuer.text
    assert issuer.json()["errors"][0]["field"] == "issuer" and "cannot be reached" in issuer.json()["detail"]
    hook = await client.post(f"/v1/tenants/{town}/webhooks", json={"url": url}, headers=admin)
    assert hook.status_code == 422, hook.text
    assert hook.json()["errors"][0]["field"] == "url"

    mutation = """mutation($t: String!, $i: IdentityIssuerInput!) {
        addIdentityIssuer(tenantSlug: $t, input: $i) { identityIssuer { id } errors { code field } } }"""
    variables = {"t": town, "i": {"issuer": url, "audience": AUDIENCE}}
    answer = (await client.post("/graphql", json={"query": mutation, "variables": variables}, headers=admin)).json()
    assert answer["data"]["addIdentityIssuer"] == {
        "identityIssuer": None,
        "errors": [{"code": "VALIDATION_FAILED", "field": "issuer"}],
    }


async def test_a_name_that_resolves_inside_is_refused_when_fetched_and_the_admin_learns_nothing_more(
    strict: tuple[httpx.AsyncClient, dict[str, str]], client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    """`localhost` passes the form (names are judged where they resolve) and is refused at
    connect time: no request reaches the server. Registering says the discovery failed; a key
    refresh answers exactly as for a broken document, so neither maps our network."""
    strict_client, admin = strict
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    by_name = key_server.issuer.replace("127.0.0.1", "localhost")
    key_server.keys = [key_server.new_key("k1")]
    added = await strict_client.post(
        home, json={"issuer": by_name, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}, headers=admin
    )
    assert added.status_code == 201, added.text
    discovery = added.json()["discovery"]
    assert discovery["fetched"] is False and "could not fetch the issuer's discovery document" in discovery["problem"]
    try:
        refused = await strict_client.post(f"{home}/{added.json()['id']}/key-refresh", headers=admin)
        assert refused.status_code == 503
        assert key_server.hits == []  # nothing reached the server, not even discovery

        # The same issuer under the development rule: the server answers, with a broken JWKS.
        key_server.broken = True
        broken = await client.post(
            f"{home}/{added.json()['id']}/key-refresh", headers=world.headers(KREIS, "platform-admin")
        )
        assert broken.status_code == 503 and key_server.hits
        assert (
            refused.json()["detail"]
            == broken.json()["detail"]
            == ("could not fetch the issuer's keys; the keys in use stay as they were")
        )
        for word in ("ConnectError", "HTTPStatusError", "ValueError", "refused", "127.0.0.1", "loopback"):
            assert word not in refused.text
    finally:
        await strict_client.delete(f"{home}/{added.json()['id']}", headers=admin)


async def test_registering_an_issuer_says_whether_its_discovery_document_was_fetched(
    client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    body = {"issuer": key_server.issuer, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}
    added = await client.post(home, json=body, headers=admin)
    assert added.status_code == 201 and added.json()["discovery"] == {"fetched": True, "problem": None}
    assert key_server.hits == [urlsplit(key_server.issuer).path + "/.well-known/openid-configuration"]  # once
    await client.delete(f"{home}/{added.json()['id']}", headers=admin)

    key_server.discovery_fails = True
    mutation = """mutation($t: String!, $i: IdentityIssuerInput!) { addIdentityIssuer(tenantSlug: $t, input: $i) {
        identityIssuer { id } discovery { fetched problem } errors { code } } }"""
    variables = {"t": world.slug(KREIS), "i": body}
    payload = (await client.post("/graphql", json={"query": mutation, "variables": variables}, headers=admin)).json()
    added_gql = payload["data"]["addIdentityIssuer"]
    assert added_gql["errors"] == [] and added_gql["discovery"]["fetched"] is False
    assert added_gql["discovery"]["problem"].startswith("could not fetch the issuer's discovery document")
    assert "500" not in added_gql["discovery"]["problem"]
    await client.delete(f"{home}/{added_gql['identityIssuer']['id']}", headers=admin)


async def test_a_failing_issuer_is_fetched_once_per_backoff_across_instances(
    settings: Settings, client: httpx.AsyncClient, world: World, key_server: KeyServer
) -> None:
    """40 tokens of an issuer whose discovery fails caused 40 fetches; now one, on every
    instance together (the failure is remembered in Redis), then again after the backoff."""
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}/identity-issuers"
    key = key_server.new_key("k1")
    key_server.keys = [key]
    added = await client.post(
        home, json={"issuer": key_server.issuer, "audience": AUDIENCE, "roleMapping": {"agent": "agent"}}, headers=admin
    )
    assert added.status_code == 201, added.text
    key_server.discovery_fails = True
    key_server.hits.clear()
    quick = dataclasses.replace(settings, jwks_failure_backoff_seconds=1)
    try:
        async with (
            serve(create_app(quick), "http://one.local") as one,
            serve(create_app(quick), "http://two.local") as two,
        ):
            token = key_server.token(key, AUDIENCE)
            answers = await asyncio.gather(*(one.get("/v1/me", headers=token) for _ in range(20)))
            answers += [await two.get("/v1/me", headers=token) for _ in range(20)]
            assert [a.status_code for a in answers] == [401] * 40
            assert len(key_server.hits) == 1, key_server.hits

            await asyncio.sleep(1.1)  # the backoff has passed: one more try, then two seconds
            assert (await two.get("/v1/me", headers=token)).status_code == 401
            assert (await one.get("/v1/me", headers=token)).status_code == 401
            assert len(key_server.hits) == 2

            key_server.discovery_fails = False  # the identity provider is back
            await asyncio.sleep(2.1)
            assert (await one.get("/v1/me", headers=token)).status_code == 200
            assert (await two.get("/v1/me", headers=token)).status_code == 200
    finally:
        await client.delete(f"{home}/{added.json()['id']}", headers=admin)
