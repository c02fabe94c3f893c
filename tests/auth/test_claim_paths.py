"""Every town can sign in: roles and groups where real identity providers put them (Keycloak
realm and client roles, Entra ID app roles, group ids and groups overage, Keycloak group paths),
issued by the real OIDC provider; malformed claim paths refused at registration; and for the
town admin the refusal log and the token check (decision 016)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider
from tests.support.world import World, make_tenant

Client = httpx.AsyncClient
AUDIENCE = "buergerservice-shapes"
ENTRA_AGENTS = "8b1f64a2-3f2e-4c55-9d1e-3c0a1d5e7f10"

SHAPES = {
    # Keycloak realm roles; `admin` makes the town admin of these tests.
    "kc-realm": {
        "agent": {"realm_access": {"roles": ["bs-agent", "offline_access"]}},
        "admin": {"realm_access": {"roles": ["bs-admin"]}},
        "unmapped": {"realm_access": {"roles": ["offline_access", "uma_authorization"]}},
        "flat": {"roles": ["bs-agent"]},
        "platform": {"realm_access": {"roles": ["bs-platform"]}},
    },
    # Keycloak client roles of a client whose id has a dot in it.
    "kc-client": {"agent": {"resource_access": {"buergerservice.app": {"roles": ["agent"]}, "account": {"roles": []}}}},
    "kc-pointer": {"agent": {"resource_access": {"buergerservice.app": {"roles": ["agent"]}}}},
    "entra-roles": {"agent": {"roles": ["Buergerservice.Agent"]}},
    "entra-groups": {
        "agent": {"groups": [ENTRA_AGENTS, "00000000-0000-0000-0000-000000000001"]},
        "overage": {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}},
    },
    "kc-groups": {
        "nord": {"groups": ["/buergerservice/agents/nord", "/sport"]},
        "editor": {"groups": ["/buergerservice/redaktion"]},
        "lookalike": {"groups": ["/buergerservice/agentsx", "/buergerservice"]},
    },
}
REGISTRATIONS: dict[str, dict[str, Any]] = {
    "kc-realm": {
        "roleClaim": "realm_access.roles",
        "roleMapping": {"bs-agent": "agent", "bs-admin": "town-admin", "bs-platform": "agent"},
    },
    "kc-client": {"roleClaim": "resource_access.buergerservice\\.app.roles", "roleMapping": {"agent": "agent"}},
    "kc-pointer": {"roleClaim": "/resource_access/buergerservice.app/roles", "roleMapping": {"agent": "agent"}},
    "entra-roles": {"roleClaim": "roles", "roleMapping": {"Buergerservice.Agent": "agent"}},
    "entra-groups": {"roleClaim": "groups", "roleMapping": {ENTRA_AGENTS: "agent"}},
    "kc-groups": {
        "roleClaim": "groups",
        "roleMapping": {"/buergerservice/agents": "agent", "/buergerservice/redaktion/": "editor"},
    },
}


@dataclass
class Shapes:
    provider: OIDCProvider
    slug: str

    def token(self, issuer: str, client: str) -> str:
        return self.provider.token(issuer, f"{issuer}-{client}")

    def headers(self, issuer: str, client: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(issuer, client)}"}


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    issuers = [
        IssuerSpec(
            name,
            AUDIENCE,
            [ClientSpec(f"{name}-{client}", "secret", extra_claims=claims) for client, claims in clients.items()],
        )
        for name, clients in SHAPES.items()
    ]
    with OIDCProvider(issuers) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shapes(client: Client, world: World, provider: OIDCProvider) -> AsyncIterator[Shapes]:
    slug = f"stadt-erwitte-{world.suffix}"
    await make_tenant(world.state, slug, ags="05974016")
    platform = world.headers("kreis-soest", "platform-admin")
    for name, registration in REGISTRATIONS.items():
        body = {"issuer": provider.issuer_url(name), "audience": AUDIENCE, **registration}
        response = await client.post(f"/v1/tenants/{slug}/identity-issuers", json=body, headers=platform)
        assert response.status_code == 201, response.text
        assert response.json()["roleClaim"] == registration["roleClaim"]
    yield Shapes(provider, slug)


async def me(client: Client, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/v1/me", headers=headers)


@pytest.mark.parametrize(
    ("issuer", "person", "roles"),
    [
        ("kc-realm", "agent", ["agent"]),
        ("kc-realm", "admin", ["town-admin"]),
        ("kc-client", "agent", ["agent"]),
        ("kc-pointer", "agent", ["agent"]),
        ("entra-roles", "agent", ["agent"]),
        ("entra-groups", "agent", ["agent"]),
        ("kc-groups", "nord", ["agent"]),  # a subgroup of a mapped group path
        ("kc-groups", "editor", ["editor"]),  # mapping key written with a trailing slash
    ],
)
async def test_each_identity_provider_shape_signs_in(
    client: Client, shapes: Shapes, issuer: str, person: str, roles: list[str]
) -> None:
    response = await me(client, shapes.headers(issuer, person))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["roles"] == roles
    assert body["tenant"]["slug"] == shapes.slug


@pytest.mark.parametrize(
    ("issuer", "person"),
    [
        ("kc-realm", "unmapped"),  # realm roles present, none mapped
        ("kc-realm", "flat"),  # roles at the top level, the issuer reads realm_access.roles
        ("entra-groups", "overage"),  # Entra ID left the groups out
        ("kc-groups", "lookalike"),  # /buergerservice/agentsx is not below /buergerservice/agents
    ],
)
async def test_tokens_without_a_mapped_role_stay_refused(
    client: Client, shapes: Shapes, issuer: str, person: str
) -> None:
    assert (await me(client, shapes.headers(issuer, person))).status_code == 401


async def test_a_town_issuer_never_grants_platform_admin_through_a_path(client: Client, shapes: Shapes) -> None:
    body = await me(client, shapes.headers("kc-realm", "platform"))
    assert body.status_code == 200 and body.json()["roles"] == ["agent"]
    refused = await client.post(
        f"/v1/tenants/{shapes.slug}/identity-issuers",
        json={
            "issuer": "https://idp.example/erwitte",
            "audience": "x",
            "roleClaim": "realm_access.roles",
            "roleMapping": {"/admins": "platform-admin"},
        },
        headers=shapes.headers("kc-realm", "admin"),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "roleMapping"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roleClaim": "realm_access..roles"}, "roleClaim"),
        ({"roleClaim": ".roles"}, "roleClaim"),
        ({"roleClaim": "realm_access.roles."}, "roleClaim"),
        ({"roleClaim": "resource_access.app\\x.roles"}, "roleClaim"),
        ({"roleClaim": "roles\\"}, "roleClaim"),
        ({"roleClaim": "/resource_access//roles"}, "roleClaim"),
        ({"roleClaim": "/a/b~2c"}, "roleClaim"),
        ({"roleClaim": "a.b.c.d.e.f.g.h.i"}, "roleClaim"),
        ({"roleClaim": "realm_access\u0007.roles"}, "roleClaim"),
        ({"roleClaim": "r" * 201}, "roleClaim"),
        ({"roleMapping": {"/buergerservice//agents": "agent"}}, "roleMapping"),
        ({"roleMapping": {"/": "agent"}}, "roleMapping"),
    ],
)
async def test_malformed_claim_paths_are_refused_at_registration(
    client: Client, shapes: Shapes, body: dict[str, Any], field: str
) -> None:
    url = f"/v1/tenants/{shapes.slug}/identity-issuers"
    full = {"issuer": "https://idp.example/malformed", "audience": "x", **body}
    response = await client.post(url, json=full, headers=shapes.headers("kc-realm", "admin"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    listed = await client.get(url, headers=shapes.headers("kc-realm", "admin"))
    assert "https://idp.example/malformed" not in {i["issuer"] for i in listed.json()}


async def test_graphql_registration_refuses_a_malformed_claim_path(client: Client, shapes: Shapes) -> None:
    query = """mutation($slug: String!, $input: IdentityIssuerInput!) {
      addIdentityIssuer(tenantSlug: $slug, input: $input) { identityIssuer { id } errors { code field message } }
    }"""
    bad = {"issuer": "https://idp.example/g", "audience": "x", "roleClaim": "a..b"}
    variables = {"slug": shapes.slug, "input": bad}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=shapes.headers("kc-realm", "admin")
    )
    payload = response.json()["data"]["addIdentityIssuer"]
    assert payload["identityIssuer"] is None
    assert payload["errors"][0]["field"] == "roleClaim" and payload["errors"][0]["code"] == "VALIDATION_FAILED"


async def _issuer_id(client: Client, shapes: Shapes, name: str) -> str:
    listed = await client.get(
        f"/v1/tenants/{shapes.slug}/identity-issuers", headers=shapes.headers("kc-realm", "admin")
    )
    return next(i["id"] for i in listed.json() if i["issuer"] == shapes.provider.issuer_url(name))


async def test_town_admin_reads_why_its_people_were_refused(client: Client, shapes: Shapes, world: World) -> None:
    unmapped = shapes.token("kc-realm", "unmapped")
    flat = shapes.token("kc-realm", "flat")
    expired = shapes.provider.sign(
        "kc-realm",
        {
            "iss": shapes.provider.issuer_url("kc-realm"),
            "aud": AUDIENCE,
            "sub": "person-7f3a",
            "iat": int(time.time()) - 7200,
            "exp": int(time.time()) - 3600,
            "realm_access": {"roles": ["bs-agent"]},
        },
    )
    for token in (unmapped, flat, expired):
        assert (await me(client, {"Authorization": f"Bearer {token}"})).status_code == 401
    issuer_id = await _issuer_id(client, shapes, "kc-realm")
    url = f"/v1/tenants/{shapes.slug}/identity-issuers/{issuer_id}/refusals"
    response = await client.get(url, headers=shapes.headers("kc-realm", "admin"))
    assert response.status_code == 200, response.text
    latest = response.json()[:3]
    assert [r["reason"] for r in latest] == ["token_expired", "role_claim_missing", "no_mapped_role"]
    assert latest[1]["claim"] == "realm_access.roles" and "roles" in latest[1]["tokenClaims"]
    assert "realm_access" in latest[2]["tokenClaims"] and latest[2]["message"]
    # No token content: no token, no subject, no claim values.
    for secret in (unmapped, flat, expired, "kc-realm-flat", "person-7f3a", "offline_access", "bs-agent"):
        assert secret not in response.text
    # Only that town's admin: another town's admin does not find it, its agent may not.
    other = await client.get(url, headers=world.headers("stadt-geseke", "town-admin"))
    assert other.status_code == 404
    agent = await client.get(url, headers=shapes.headers("kc-realm", "agent"))
    assert agent.status_code == 403
    query = """query($slug: String!) { tenant(slug: $slug) { identityIssuers {
        issuer recentRefusals(first: 3) { reason claim tokenClaims at message } } } }"""
    graph = await client.post(
        "/graphql",
        json={"query": query, "variables": {"slug": shapes.slug}},
        headers=shapes.headers("kc-realm", "admin"),
    )
    assert "errors" not in graph.json(), graph.text
    issuers = graph.json()["data"]["tenant"]["identityIssuers"]
    realm = next(i for i in issuers if i["issuer"] == shapes.provider.issuer_url("kc-realm"))
    assert [r["reason"] for r in realm["recentRefusals"]] == ["token_expired", "role_claim_missing", "no_mapped_role"]
    hidden = await client.post(
        "/graphql",
        json={"query": query, "variables": {"slug": shapes.slug}},
        headers=world.headers("stadt-geseke", "town-admin"),
    )
    assert hidden.json()["data"]["tenant"] is None


async def _verify(client: Client, shapes: Shapes, token: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/identity-issuers/verify-token", json={"token": token}, headers=shapes.headers("kc-realm", "admin")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_token_check_gives_the_verdict_and_every_reason(client: Client, shapes: Shapes, world: World) -> None:
    issuer_id = await _issuer_id(client, shapes, "kc-realm")
    refusals_url = f"/v1/tenants/{shapes.slug}/identity-issuers/{issuer_id}/refusals"
    logged_before = (await client.get(refusals_url, headers=shapes.headers("kc-realm", "admin"))).json()

    good = await _verify(client, shapes, shapes.token("kc-realm", "agent"))
    assert good["accepted"] is True and good["reasons"] == []
    assert good["roles"] == ["agent"] and good["tenantSlug"] == shapes.slug
    assert good["roleClaim"] == "realm_access.roles" and good["roleClaimValues"] == ["bs-agent", "offline_access"]

    unmapped = await _verify(client, shapes, shapes.token("kc-realm", "unmapped"))
    assert unmapped["accepted"] is False
    assert [r["code"] for r in unmapped["reasons"]] == ["no_mapped_role"]
    assert unmapped["roleClaimValues"] == ["offline_access", "uma_authorization"]

    now = int(time.time())
    two_faults = shapes.provider.sign(
        "kc-realm",
        {
            "iss": shapes.provider.issuer_url("kc-realm"),
            "aud": "some-other-app",
            "sub": "p",
            "iat": now - 7200,
            "exp": now - 3600,
            "roles": ["bs-agent"],
        },
    )
    both = await _verify(client, shapes, two_faults)
    assert both["accepted"] is False
    assert {r["code"] for r in both["reasons"]} == {"audience_mismatch", "token_expired", "role_claim_missing"}

    overage = await _verify(client, shapes, shapes.token("entra-groups", "overage"))
    assert [r["code"] for r in overage["reasons"]] == ["role_claim_overage"]

    # Another town's token: answered like an unregistered issuer, nothing about that town.
    soest = await _verify(client, shapes, world.token("stadt-soest", "agent"))
    assert soest["accepted"] is False and [r["code"] for r in soest["reasons"]] == ["unknown_issuer"]
    assert soest["tenantSlug"] is None and soest["roles"] == [] and soest["roleClaim"] is None

    for garbage, code in (("abc", "not_a_compact_jws"), ("a.b.c", "malformed_token")):
        verdict = await _verify(client, shapes, garbage)
        assert [r["code"] for r in verdict["reasons"]] == [code]

    # Checking signs nobody in and logs no refusal.
    logged_after = (await client.get(refusals_url, headers=shapes.headers("kc-realm", "admin"))).json()
    assert logged_after == logged_before

    empty = await client.post(
        "/v1/identity-issuers/verify-token", json={"token": ""}, headers=shapes.headers("kc-realm", "admin")
    )
    assert empty.status_code == 422
    agent = await client.post(
        "/v1/identity-issuers/verify-token", json={"token": "abc"}, headers=shapes.headers("kc-realm", "agent")
    )
    assert agent.status_code == 403

    query = "query($t: String!) { verifyToken(token: $t) { accepted roles reasons { code claim message } } }"
    graph = await client.post(
        "/graphql",
        json={"query": query, "variables": {"t": shapes.token("kc-realm", "unmapped")}},
        headers=shapes.headers("kc-realm", "admin"),
    )
    verdict = graph.json()["data"]["verifyToken"]
    assert verdict["accepted"] is False and verdict["reasons"][0]["code"] == "no_mapped_role"
    assert verdict["reasons"][0]["claim"] == "realm_access.roles"
