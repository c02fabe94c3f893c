"""Sign-in remembers and forgets after commit; without Redis, sign-in still works.

`backend.tenants.signin` remembers in process, under the sign-in generation, verified tokens,
which tenants trust an issuer (an empty list too) and for whom an operator's staff act. A
committed change must be visible to the very next request on every instance; nothing may wait
for a memo to expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import time_machine
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from litestar import Litestar

from backend import generations
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState, unit_of_work
from backend.tenants import service, signin
from backend.tenants.schemas import DepartmentInput
from tests.support.asgi import serve
from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider
from tests.support.world import AUDIENCE, World, system_principal

pytestmark = pytest.mark.clock  # sign-ins are remembered per day and until the token expires

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
# Towns of this module's own provider: registered and unregistered by the tests below, so the
# shared world's issuers never change.
TOWNS = ("stadt-warstein", "stadt-ruethen", "stadt-anroechte", "gemeinde-wickede")
ME_QUERY = "{ me { subject tenant { slug } } }"


@pytest.fixture(scope="module")
def towns_idp() -> Iterator[OIDCProvider]:
    specs = [
        IssuerSpec(town, AUDIENCE, [ClientSpec(f"{town}-agent", "secret", extra_claims={"roles": ["Sachbearbeitung"]})])
        for town in TOWNS
    ]
    with OIDCProvider(specs) as provider:
        yield provider


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_tenant(client: Client, world: World, name: str) -> dict[str, Any]:
    body = {"slug": f"{name}-{world.suffix}-{uuid.uuid4().hex[:4]}", "name": name, "kind": "town", "status": "active"}
    response = await client.post("/v1/tenants", json=body, headers=world.headers(KREIS, "platform-admin"))
    assert response.status_code == 201, response.text
    tenant: dict[str, Any] = response.json()
    return tenant


def issuer_body(idp: OIDCProvider, town: str) -> dict[str, Any]:
    # The town's IdP calls its agents "Sachbearbeitung"; the mapping makes them agents.
    return {"issuer": idp.issuer_url(town), "audience": AUDIENCE, "roleMapping": {"Sachbearbeitung": "agent"}}


async def signed_in_slug(client: Client, token: str) -> str | None:
    """The home tenant's slug when the token is accepted (REST and GraphQL agree), else None."""
    rest = await client.get("/v1/me", headers=bearer(token))
    graphql = (await client.post("/graphql", json={"query": ME_QUERY}, headers=bearer(token))).json()
    if rest.status_code == 401:
        assert rest.json()["code"] == "UNAUTHENTICATED"
        assert graphql["data"] is None and graphql["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        return None
    assert rest.status_code == 200, rest.text
    slug: str = rest.json()["tenant"]["slug"]
    assert rest.json()["roles"] == ["agent"]
    assert graphql["data"]["me"]["tenant"]["slug"] == slug
    return slug


async def signin_generation(world: World) -> int:
    read = await generations.read(world.state)
    assert read is not None
    return read.signin


async def test_issuer_tried_before_registration_is_accepted_right_after(
    client: Client, world: World, towns_idp: OIDCProvider
) -> None:
    town = TOWNS[0]
    tenant = await new_tenant(client, world, town)
    token = towns_idp.token(town, f"{town}-agent")
    assert await signed_in_slug(client, token) is None  # nobody trusts this issuer yet (remembered)
    before = await signin_generation(world)

    added = await client.post(
        f"/v1/tenants/{tenant['slug']}/identity-issuers",
        json=issuer_body(towns_idp, town),
        headers=world.headers(KREIS, "platform-admin"),
    )
    assert added.status_code == 201, added.text
    assert await signin_generation(world) > before
    assert await signed_in_slug(client, token) == tenant["slug"]  # the same token, at once

    removed = await client.delete(
        f"/v1/tenants/{tenant['slug']}/identity-issuers/{added.json()['id']}",
        headers=world.headers(KREIS, "platform-admin"),
    )
    assert removed.status_code == 204, removed.text
    assert await signed_in_slug(client, token) is None  # and rejected at once after removal
    assert await signed_in_slug(client, towns_idp.token(town, f"{town}-agent")) is None


async def test_issuer_added_over_graphql_is_accepted_right_away_and_removed_refused_at_once(
    client: Client, world: World, towns_idp: OIDCProvider
) -> None:
    town = TOWNS[1]
    tenant = await new_tenant(client, world, town)
    token = towns_idp.token(town, f"{town}-agent")
    assert await signed_in_slug(client, token) is None
    mutation = """
    mutation ($slug: String!, $input: IdentityIssuerInput!) {
      addIdentityIssuer(tenantSlug: $slug, input: $input) { identityIssuer { id } errors { code message } }
    }"""
    response = await client.post(
        "/graphql",
        json={"query": mutation, "variables": {"slug": tenant["slug"], "input": issuer_body(towns_idp, town)}},
        headers=world.headers(KREIS, "platform-admin"),
    )
    payload = response.json()["data"]["addIdentityIssuer"]
    assert payload["errors"] == [] and payload["identityIssuer"]["id"], response.text
    assert await signed_in_slug(client, token) == tenant["slug"]

    remove = """mutation ($slug: String!, $id: UUID!) {
      removeIdentityIssuer(tenantSlug: $slug, id: $id) { removed errors { code } } }"""
    variables = {"slug": tenant["slug"], "id": payload["identityIssuer"]["id"]}
    agent = await client.post(
        "/graphql", json={"query": remove, "variables": variables}, headers=world.headers(KREIS, "agent")
    )
    # The operator's agent does not reach the new town at all: it looks missing, as over REST.
    assert agent.json()["data"]["removeIdentityIssuer"] == {"removed": False, "errors": [{"code": "NOT_FOUND"}]}
    assert await signed_in_slug(client, token) == tenant["slug"]  # the refused attempt changed nothing
    removed = await client.post(
        "/graphql", json={"query": remove, "variables": variables}, headers=world.headers(KREIS, "platform-admin")
    )
    assert removed.json()["data"]["removeIdentityIssuer"] == {"removed": True, "errors": []}
    assert await signed_in_slug(client, token) is None  # refused at once
    again = await client.post(
        "/graphql", json={"query": remove, "variables": variables}, headers=world.headers(KREIS, "platform-admin")
    )
    assert again.json()["data"]["removeIdentityIssuer"] == {"removed": False, "errors": [{"code": "NOT_FOUND"}]}


async def test_offboarding_and_reactivating_a_tenant_take_effect_at_once(
    client: Client, world: World, towns_idp: OIDCProvider
) -> None:
    town = TOWNS[2]
    admin = world.headers(KREIS, "platform-admin")
    tenant = await new_tenant(client, world, town)
    added = await client.post(
        f"/v1/tenants/{tenant['slug']}/identity-issuers", json=issuer_body(towns_idp, town), headers=admin
    )
    assert added.status_code == 201, added.text
    token = towns_idp.token(town, f"{town}-agent")
    assert await signed_in_slug(client, token) == tenant["slug"]  # bindings cached now

    url = f"/v1/tenants/{tenant['slug']}"
    assert (await client.patch(url, json={"status": "offboarded"}, headers=admin)).status_code == 200
    assert await signed_in_slug(client, token) is None
    assert (await client.patch(url, json={"status": "active"}, headers=admin)).status_code == 200
    assert await signed_in_slug(client, token) == tenant["slug"]


async def test_acting_tenants_are_remembered_and_dropped_after_commit(client: Client, world: World) -> None:
    admin = world.headers(KREIS, "platform-admin")
    agent = world.headers(KREIS, "agent")
    tenant = await new_tenant(client, world, "stadt-bad-sassendorf")
    before = (await client.get("/v1/me", headers=agent)).json()["actingTenantIds"]
    assert tenant["id"] not in before  # a tenant without an agreement is nobody's client
    generation = await signin_generation(world)

    created = await client.post(
        "/v1/agreements", json={"clientTenantId": tenant["id"], "startsOn": "2020-01-01"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert await signin_generation(world) > generation
    assert tenant["id"] in (await client.get("/v1/me", headers=agent)).json()["actingTenantIds"]

    # Offboarding the client ends the operator's access at once (and keeps the shared world
    # as it was for other tests: an offboarded client is nobody's acting tenant).
    offboarded = await client.patch(f"/v1/tenants/{tenant['slug']}", json={"status": "offboarded"}, headers=admin)
    assert offboarded.status_code == 200, offboarded.text
    assert tenant["id"] not in (await client.get("/v1/me", headers=agent)).json()["actingTenantIds"]


async def test_a_verified_token_is_remembered_until_sign_in_changes(client: Client, world: World) -> None:
    verifier = world.state.verifier
    headers = world.headers(SOEST, "agent")
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    verified = verifier.verifications
    for _ in range(3):
        assert (await client.get("/v1/me", headers=headers)).status_code == 200
    assert verifier.verifications == verified  # remembered: no signature check, no lookups

    await signin.signin_changed(world.state)  # what every committed sign-in change runs
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    assert verifier.verifications == verified + 1


async def test_a_rejected_token_is_never_remembered(client: Client, world: World) -> None:
    verifier = world.state.verifier
    now = int(time.time())
    claims = {"iss": world.oidc.issuer_url(SOEST), "aud": "someone-else", "sub": "x", "iat": now, "exp": now + 60}
    wrong_audience = world.oidc.sign(SOEST, {**claims, "roles": ["agent"]})
    before = verifier.verifications
    for _ in range(3):
        assert (await client.get("/v1/me", headers=bearer(wrong_audience))).status_code == 401
    assert verifier.verifications == before + 3  # checked in full every time


async def test_a_remembered_token_still_expires(client: Client, world: World) -> None:
    leeway = world.state.settings.jwt_leeway_seconds
    now = int(time.time())
    claims = {"iss": world.oidc.issuer_url(SOEST), "aud": AUDIENCE, "sub": "about-to-expire", "roles": ["agent"]}
    token = world.oidc.sign(SOEST, {**claims, "iat": now - leeway, "exp": now - leeway + 2})
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200  # within the leeway
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200  # remembered
    await asyncio.sleep(max(0.0, now + 2.2 - time.time()))
    expired = await client.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401 and expired.json()["code"] == "UNAUTHENTICATED"


async def test_a_remembered_token_is_refused_past_its_expiry_on_a_pinned_clock(client: Client, world: World) -> None:
    """The memo never outlives the token: `exp` plus the leeway, the same moment at which a full
    check refuses it (here well before the memo's own 60 s)."""
    verifier = world.state.verifier
    leeway = world.state.settings.jwt_leeway_seconds
    start = time.time()
    claims = {"iss": world.oidc.issuer_url(SOEST), "aud": AUDIENCE, "sub": "pinned-expiry", "roles": ["agent"]}
    exp = int(start) - leeway + 20  # in force for 20 more seconds, by the leeway
    token = world.oidc.sign(SOEST, {**claims, "iat": exp - 300, "exp": exp})
    with time_machine.travel(start, tick=False) as traveller:
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
        verified = verifier.verifications
        traveller.shift(15)
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
        assert verifier.verifications == verified  # served from the memo
        traveller.shift(6)  # past exp + leeway
        expired = await client.get("/v1/me", headers=bearer(token))
        assert expired.status_code == 401 and expired.json()["code"] == "UNAUTHENTICATED"
        assert verifier.verifications == verified + 1  # not from the memo: checked, and refused


async def test_a_forged_token_with_the_claims_of_a_remembered_one_is_refused(client: Client, world: World) -> None:
    """The memo is keyed by the whole token text: the same header and claims under another
    signature (a stranger's key with the issuer's kid, or a signature cut from another token)
    are checked in full, and refused."""
    verifier = world.state.verifier
    now = int(time.time())
    claims = {
        "iss": world.oidc.issuer_url(SOEST),
        "aud": AUDIENCE,
        "sub": "forgery-target",
        "roles": ["agent"],
        "iat": now,
        "exp": now + 300,
    }
    genuine = world.oidc.sign(SOEST, claims)
    for _ in range(2):
        assert (await client.get("/v1/me", headers=bearer(genuine))).status_code == 200  # remembered
    real_key = world.oidc.private_key(SOEST)
    alg = str(real_key.alg)
    parameters = {"kid": str(real_key.kid), "alg": alg, "use": "sig"}
    stranger = (
        RSAKey.generate_key(2048, parameters=parameters)
        if alg == "RS256"
        else ECKey.generate_key("P-256", parameters=parameters)
    )
    signed_by_stranger = jwt.encode({"alg": alg, "typ": "at+jwt", "kid": real_key.kid}, claims, stranger)
    other_signature = world.oidc.sign(SOEST, {**claims, "sub": "someone-else"}).rsplit(".", 1)[1]
    spliced = genuine.rsplit(".", 1)[0] + "." + other_signature
    for forged in (signed_by_stranger, spliced):
        assert forged.rsplit(".", 1)[0] == genuine.rsplit(".", 1)[0]  # the same header and claims
        before = verifier.verifications
        refused = await client.get("/v1/me", headers=bearer(forged))
        assert refused.status_code == 401, refused.text
        assert verifier.verifications == before + 1  # checked in full, never served from the memo
    assert (await client.get("/v1/me", headers=bearer(genuine))).status_code == 200


@pytest.fixture(scope="module")
async def second_instance(settings: Settings) -> Any:
    """Another app instance on the same PostgreSQL and Redis, with its own memory."""
    async with serve(create_app(settings), "http://second.local") as http_client:
        yield http_client


async def test_a_removed_issuer_is_rejected_at_once_by_another_instance(
    client: Client, world: World, towns_idp: OIDCProvider, second_instance: Client
) -> None:
    town = TOWNS[3]
    admin = world.headers(KREIS, "platform-admin")
    tenant = await new_tenant(client, world, town)
    added = await client.post(
        f"/v1/tenants/{tenant['slug']}/identity-issuers", json=issuer_body(towns_idp, town), headers=admin
    )
    assert added.status_code == 201, added.text
    token = towns_idp.token(town, f"{town}-agent")
    for _ in range(2):  # verified once, then remembered by the second instance
        assert (await second_instance.get("/v1/me", headers=bearer(token))).status_code == 200

    removed = await client.delete(f"/v1/tenants/{tenant['slug']}/identity-issuers/{added.json()['id']}", headers=admin)
    assert removed.status_code == 204, removed.text
    assert (await second_instance.get("/v1/me", headers=bearer(token))).status_code == 401


async def test_a_sign_in_change_on_one_instance_drops_what_another_remembered(
    client: Client, world: World, settings: Settings
) -> None:
    """The memo of another instance is dropped by the generation alone: the next request there
    checks the token in full (one more verification), without waiting for anything to expire."""
    app = create_app(settings)
    async with serve(app, "http://third.local") as other:
        verifier = app.state.app_state.verifier
        headers = world.headers(GESEKE, "agent")
        for _ in range(3):
            assert (await other.get("/v1/me", headers=headers)).status_code == 200
        verified = verifier.verifications
        assert (await other.get("/v1/me", headers=headers)).status_code == 200
        assert verifier.verifications == verified  # remembered there

        await signin.signin_changed(world.state)  # a committed sign-in change on this instance
        assert (await other.get("/v1/me", headers=headers)).status_code == 200
        assert verifier.verifications == verified + 1  # the other instance checked again at once


async def test_after_commit_hooks_run_after_the_commit_and_never_after_a_rollback(world: World) -> None:
    """Invalidation must not run before the commit (another request could re-cache the old
    state in between) and must not run for a change that was rolled back."""
    geseke = world.tenant_ids[GESEKE]
    admin = system_principal(world.tenant_ids[KREIS], set(world.tenant_ids.values()))
    seen: list[list[str]] = []

    async def names_visible_elsewhere() -> list[str]:
        async with unit_of_work(world.state, admin, readonly=True) as other:
            return [d.name for d in (await service.departments(other, [geseke]))[geseke]]

    async def hook() -> None:
        seen.append(await names_visible_elsewhere())  # another transaction, after the commit

    committed = f"Nach Commit {uuid.uuid4().hex[:6]}"
    async with unit_of_work(world.state, admin) as uow:
        await service.add_department(uow, world.slug(GESEKE), DepartmentInput(name=committed))
        uow.after_commit(hook)
        assert seen == []
    assert len(seen) == 1 and committed in seen[0]

    rolled_back = f"Zurückgerollt {uuid.uuid4().hex[:6]}"

    async def failing_request() -> None:
        async with unit_of_work(world.state, admin) as uow:
            await service.add_department(uow, world.slug(GESEKE), DepartmentInput(name=rolled_back))
            uow.after_commit(hook)
            raise RuntimeError("the request failed after the write")

    with pytest.raises(RuntimeError):
        await failing_request()
    assert len(seen) == 1  # the hook did not run
    assert rolled_back not in await names_visible_elsewhere()


# --------------------------------------------------------------------------- without Redis


@pytest.fixture(scope="module")
async def redisless(settings: Settings) -> Any:
    """A second instance of the app whose Redis is unreachable (nothing listens on port 1)."""
    app: Litestar = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    async with serve(app, "http://redisless.local") as http_client:
        yield app, http_client


async def test_sign_in_works_without_redis(client: Client, world: World, redisless: Any) -> None:
    app, other = redisless
    state: AppState = app.state.app_state
    started = time.monotonic()
    before = state.verifier.jwks.fetch_count
    for town, role in ((SOEST, "agent"), (GESEKE, "town-admin"), (KREIS, "telephony")):
        response = await other.get("/v1/me", headers=world.headers(town, role))
        assert response.status_code == 200, response.text
        assert response.json()["tenant"]["slug"] == world.slug(town)
    # Nothing is in Redis: each issuer's JWKS came straight from the issuer, once; the
    # in-process fallback keeps an outage from turning every request into an IdP fetch.
    assert state.verifier.jwks.fetch_count - before == 3
    for _ in range(5):
        again = await other.get("/v1/me", headers=world.headers(SOEST, "agent"))
        assert again.status_code == 200
    assert state.verifier.jwks.fetch_count - before == 3
    operator = (await other.get("/v1/me", headers=world.headers(KREIS, "agent"))).json()
    assert {str(world.tenant_ids[t]) for t in (KREIS, SOEST, GESEKE)} <= set(operator["actingTenantIds"])
    graphql = await other.post("/graphql", json={"query": ME_QUERY}, headers=world.headers(SOEST, "agent"))
    assert graphql.json()["data"]["me"]["tenant"]["slug"] == world.slug(SOEST)

    # Rejections stay rejections.
    rogue = await other.get("/v1/me", headers=bearer(world.oidc.token("rogue", "rogue-agent")))
    assert rogue.status_code == 401
    now = int(time.time())
    claims = {
        "iss": world.oidc.issuer_url(SOEST),
        "aud": AUDIENCE,
        "sub": "x",
        "iat": now,
        "exp": now + 60,
        "roles": ["agent"],
    }
    unknown_kid = world.oidc.sign(SOEST, claims, {"kid": "no-such-key"})
    assert (await other.get("/v1/me", headers=bearer(unknown_kid))).status_code == 401

    # A committed change still succeeds although its cache invalidation cannot reach Redis.
    department = await other.post(
        f"/v1/tenants/{world.slug(GESEKE)}/departments",
        json={"name": f"Ohne Redis {uuid.uuid4().hex[:6]}"},
        headers=world.headers(GESEKE, "town-admin"),
    )
    assert department.status_code == 201, department.text
    assert time.monotonic() - started < 60  # a dead Redis must not stall every request
