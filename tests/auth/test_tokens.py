"""Sign-in against the running app: every way a bearer token can be wrong, and the right ones.

Every case goes through the real app (REST `GET /v1/me` and GraphQL `{ me { subject } }`) with
tokens from the real OIDC provider or forged with an issuer's real private key. Rejections must
all look the same to the client: 401, problem+json with code UNAUTHENTICATED, a
`WWW-Authenticate: Bearer` challenge, and one generic detail that does not say which check failed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.jwk import RSAKey

from auth.errors import Unauthenticated
from auth.roles import MACHINE_CLIENT_SCOPES
from backend.state import AppState
from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider
from tests.support.world import AUDIENCE, World

pytestmark = pytest.mark.clock  # tokens are checked against now (iat, exp, nbf)

Client = httpx.AsyncClient
Headers = httpx.Headers | Mapping[str, str]

SOEST, GESEKE, KREIS, ROGUE = "stadt-soest", "stadt-geseke", "kreis-soest", "rogue"
GENERIC_DETAIL = Unauthenticated.message
ME_QUERY = "{ me { subject } }"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance"}
MISSING: Any = object()  # claim value meaning "leave this claim out"
WERL = "stadt-werl"  # a town of this module's own provider, onboarded and offboarded by a test


# --------------------------------------------------------------------------- helpers


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def compact(header: Any, claims: Any, signature: bytes = b"") -> str:
    """A compact JWS built by hand, for tokens no JOSE library would produce."""
    return f"{b64_json(header)}.{b64_json(claims)}.{b64(signature)}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64_json(header)}.{b64_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def rs256(key: RSAKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign with a real RSA key but an arbitrary header (joserfc refuses to write odd headers)."""
    signing_input = f"{b64_json(header)}.{b64_json(claims)}"
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    return f"{signing_input}.{b64(signature)}"


def claims_for(oidc: OIDCProvider, town: str, **changes: Any) -> dict[str, Any]:
    """Valid claims of an agent of `town`; `changes` override them (MISSING drops one)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": oidc.issuer_url(town),
        "aud": AUDIENCE,
        "sub": f"forged-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 300,
        "roles": ["agent"],
    }
    for name, value in changes.items():
        if value is MISSING:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def attacker_key(kid: str = "attacker-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True)


def state_of(world: World) -> AppState:
    return world.state


async def assert_rejected(client: Client, headers: Headers) -> None:
    """401 over REST and UNAUTHENTICATED over GraphQL, with the same generic detail."""
    rest = await client.get("/v1/me", headers=headers)
    assert rest.status_code == 401, rest.text
    assert rest.headers["content-type"].startswith("application/problem+json")
    assert rest.headers["www-authenticate"].startswith("Bearer")
    problem = rest.json()
    assert problem["code"] == "UNAUTHENTICATED" and problem["status"] == 401
    assert problem["detail"] == GENERIC_DETAIL  # the same words whatever check failed
    assert set(problem) <= PROBLEM_KEYS, problem  # and no hint in extra members either

    graphql = await client.post("/graphql", json={"query": ME_QUERY}, headers=headers)
    assert graphql.status_code == 200, graphql.text  # GraphQL reports it in `errors`
    body = graphql.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert error["message"] == GENERIC_DETAIL


async def me(client: Client, headers: Headers) -> dict[str, Any]:
    rest = await client.get("/v1/me", headers=headers)
    assert rest.status_code == 200, rest.text
    graphql = await client.post("/graphql", json={"query": ME_QUERY}, headers=headers)
    assert graphql.status_code == 200 and "errors" not in graphql.json(), graphql.text
    body: dict[str, Any] = rest.json()
    assert graphql.json()["data"]["me"]["subject"] == body["subject"]
    return body


# --------------------------------------------------------------------------- rejected tokens


@dataclass(frozen=True)
class Case:
    name: str
    headers: Callable[[OIDCProvider], Headers]


def _forged(town: str, header: dict[str, Any] | None = None, **changes: Any) -> Callable[[OIDCProvider], Headers]:
    return lambda oidc: bearer(oidc.sign(town, claims_for(oidc, town, **changes), header))


def _rs256_header(extra: dict[str, Any]) -> Callable[[OIDCProvider], Headers]:
    def build(oidc: OIDCProvider) -> Headers:
        key = oidc.private_key(KREIS)
        assert isinstance(key, RSAKey)
        return bearer(rs256(key, {"alg": "RS256", "typ": "at+jwt", **extra}, claims_for(oidc, KREIS)))

    return build


def _alg_none(oidc: OIDCProvider) -> Headers:
    header = {"alg": "none", "typ": "at+jwt", "kid": oidc.private_key(SOEST).kid}
    return bearer(compact(header, claims_for(oidc, SOEST)))


def _alg_none_capitalised(oidc: OIDCProvider) -> Headers:
    return bearer(compact({"alg": "None"}, claims_for(oidc, SOEST)))


def _hs256_with_public_pem(oidc: OIDCProvider) -> Headers:
    # The classic key-confusion attack: the RSA public key (PEM) used as the HMAC secret.
    key = oidc.private_key(KREIS)
    secret = key.as_pem(private=False)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    return bearer(hs256(header, claims_for(oidc, KREIS), secret))


def _hs256_with_public_jwks(oidc: OIDCProvider) -> Headers:
    secret = json.dumps(oidc.public_jwks(KREIS)).encode()
    header = {"alg": "HS256", "kid": oidc.private_key(KREIS).kid}
    return bearer(hs256(header, claims_for(oidc, KREIS), secret))


def _rogue_provider_token(oidc: OIDCProvider) -> Headers:
    return bearer(oidc.token(ROGUE, f"{ROGUE}-agent"))


def _key_of_other_town(signer: str, issuer: str, kid_of: str) -> Callable[[OIDCProvider], Headers]:
    def build(oidc: OIDCProvider) -> Headers:
        header = {"kid": oidc.private_key(kid_of).kid}
        return bearer(oidc.sign(signer, claims_for(oidc, issuer), header))

    return build


def _jwk_header(kid: str | None) -> Callable[[OIDCProvider], Headers]:
    """Signed with an attacker's key that the header itself offers (`jwk`)."""

    def build(oidc: OIDCProvider) -> Headers:
        key = attacker_key()
        header: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "jwk": key.as_dict(private=False)}
        if kid is not None:
            header["kid"] = oidc.private_key(kid).kid if kid != "attacker" else key.kid
        return bearer(jwt.encode(header, claims_for(oidc, KREIS), key))

    return build


def _jku_header(kid_of: str) -> Callable[[OIDCProvider], Headers]:
    """Signed with the rogue issuer's key, `jku` pointing at the rogue's real, served JWKS."""

    def build(oidc: OIDCProvider) -> Headers:
        header = {"jku": oidc.jwks_uri(ROGUE), "kid": oidc.private_key(kid_of).kid}
        return bearer(oidc.sign(ROGUE, claims_for(oidc, SOEST), header))

    return build


def _no_mapped_role_provider_token(oidc: OIDCProvider) -> Headers:
    # A real client-credentials token that asked for no scope: no role, no scope.
    return bearer(oidc.token(SOEST, f"{SOEST}-partner", scope=""))


def _raw(value: str | bytes) -> Callable[[OIDCProvider], Headers]:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return lambda oidc: httpx.Headers([(b"Authorization", raw)])


def _garbage(token: str) -> Callable[[OIDCProvider], Headers]:
    return lambda oidc: bearer(token)


def _scheme_missing(oidc: OIDCProvider) -> Headers:
    return {"Authorization": oidc.token(SOEST, f"{SOEST}-agent")}


def _basic_scheme(oidc: OIDCProvider) -> Headers:
    return {"Authorization": "Basic " + base64.b64encode(b"stadt-soest-agent:secret-agent").decode()}


def _token_in_other_header(oidc: OIDCProvider) -> Headers:
    return {"X-Access-Token": oidc.token(SOEST, f"{SOEST}-agent")}


def _time_claims(**offsets: int) -> Callable[[OIDCProvider], Headers]:
    def build(oidc: OIDCProvider) -> Headers:
        now = int(time.time())
        return bearer(oidc.sign(SOEST, claims_for(oidc, SOEST, **{k: now + v for k, v in offsets.items()})))

    return build


CASES = [
    Case("alg-none", _alg_none),
    Case("alg-None-capitalised-unsigned", _alg_none_capitalised),
    Case("hs256-public-key-pem-as-secret", _hs256_with_public_pem),
    Case("hs256-public-jwks-as-secret", _hs256_with_public_jwks),
    Case("wrong-issuer-forged", _forged(ROGUE)),
    Case("wrong-issuer-provider-token", _rogue_provider_token),
    Case("iss-soest-key-geseke-kid-soest", _key_of_other_town(GESEKE, SOEST, SOEST)),
    Case("iss-soest-key-geseke-kid-geseke", _key_of_other_town(GESEKE, SOEST, GESEKE)),
    Case("iss-geseke-key-kreis-kid-geseke-same-alg", _key_of_other_town(KREIS, GESEKE, GESEKE)),
    Case("iss-geseke-key-kreis-kid-kreis-same-alg", _key_of_other_town(KREIS, GESEKE, KREIS)),
    Case("wrong-audience", _forged(SOEST, aud="someone-else")),
    Case("wrong-audience-list", _forged(SOEST, aud=["someone-else", "another"])),
    Case("expired-beyond-leeway", _time_claims(iat=-900, exp=-120)),
    Case("iat-in-future-beyond-leeway", _time_claims(iat=600, exp=900)),
    Case("nbf-in-future-beyond-leeway", _time_claims(nbf=600)),
    Case("missing-sub", _forged(SOEST, sub=MISSING)),
    Case("missing-exp", _forged(SOEST, exp=MISSING)),
    Case("missing-iat", _forged(SOEST, iat=MISSING)),
    Case("missing-aud", _forged(SOEST, aud=MISSING)),
    Case("missing-iss", _forged(SOEST, iss=MISSING)),
    Case("empty-sub", _forged(SOEST, sub="")),
    Case("exp-not-a-number", _forged(SOEST, exp="tomorrow")),
    Case("unknown-kid", _forged(SOEST, {"kid": "no-such-key"})),
    Case("kid-not-a-string", _rs256_header({"kid": 7})),
    Case("kid-a-list-of-kids", lambda oidc: _rs256_header({"kid": [oidc.private_key(KREIS).kid]})(oidc)),
    Case("jwk-header-attacker-kid", _jwk_header("attacker")),
    Case("jwk-header-issuer-kid", _jwk_header(KREIS)),
    Case("jwk-header-no-kid", _jwk_header(None)),
    Case("jku-attacker-jwks-attacker-kid", _jku_header(ROGUE)),
    Case("jku-attacker-jwks-issuer-kid", _jku_header(SOEST)),
    Case("crit-unknown-extension", _rs256_header({"crit": ["urn:example:unknown"], "urn:example:unknown": 1})),
    Case("no-mapped-role-no-scope-forged", _forged(SOEST, roles=["janitor"])),
    Case("no-role-claim-no-scope-forged", _forged(SOEST, roles=MISSING)),
    Case("no-mapped-role-no-scope-provider", _no_mapped_role_provider_token),
    Case("garbage-abc", _garbage("abc")),
    Case("garbage-three-empty-segments", _garbage("..")),
    Case("garbage-three-dots", _garbage("...")),
    Case("garbage-a.b.c", _garbage("a.b.c")),
    Case("garbage-not-base64", _garbage("@@@.###.$$$")),
    Case("garbage-non-ascii", _raw("Bearer ä.ö.ü".encode("latin-1"))),
    Case("garbage-utf8-bytes", _raw("Bearer ä.ö.ü".encode())),
    Case("garbage-header-not-json", _garbage(f"{b64(b'not json')}.{b64_json({})}.c2ln")),
    Case("garbage-header-json-array", _garbage(f"{b64_json([])}.{b64_json({})}.c2ln")),
    Case("garbage-header-json-null", _garbage(f"{b64(b'null')}.{b64_json({})}.c2ln")),
    Case(
        "garbage-payload-not-json",
        lambda oidc: bearer(f"{b64_json({'alg': 'ES256', 'kid': oidc.private_key(SOEST).kid})}.{b64(b'{oops')}.c2ln"),
    ),
    Case("garbage-deeply-nested-header", _garbage(f"{b64(b'[' * 100_000)}.{b64_json({})}.c2ln")),
    Case("garbage-issuer-not-a-string", _garbage(compact({"alg": "RS256"}, {"iss": ["a", "b"]}))),
    Case("bearer-scheme-missing", _scheme_missing),
    Case("basic-scheme", _basic_scheme),
    Case("bearer-without-token", _raw("Bearer ")),
    Case("bearer-word-only", _raw("Bearer")),
    Case("no-authorization-header", lambda oidc: {}),
    Case("token-in-other-header", _token_in_other_header),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_token_is_rejected_without_saying_why(client: Client, world: World, case: Case) -> None:
    await assert_rejected(client, case.headers(world.oidc))


# --------------------------------------------------------------------------- accepted tokens


async def test_forged_baseline_is_accepted(client: Client, world: World) -> None:
    """The claims every rejected case starts from are fine: each case fails for its own reason."""
    for town in (SOEST, GESEKE, KREIS):
        body = await me(client, bearer(world.oidc.sign(town, claims_for(world.oidc, town))))
        assert body["tenant"]["slug"] == world.slug(town)
        assert body["roles"] == ["agent"]


async def test_expired_within_leeway_is_accepted(client: Client, world: World) -> None:
    now = int(time.time())
    token = world.oidc.sign(SOEST, claims_for(world.oidc, SOEST, iat=now - 600, exp=now - 30))
    await me(client, bearer(token))


async def test_issued_slightly_in_the_future_is_accepted(client: Client, world: World) -> None:
    now = int(time.time())
    token = world.oidc.sign(SOEST, claims_for(world.oidc, SOEST, iat=now + 20, nbf=now + 20))
    await me(client, bearer(token))


async def test_bogus_jku_and_x5u_are_ignored_for_a_real_signature(client: Client, world: World) -> None:
    header = {"jku": "https://attacker.invalid/jwks.json", "x5u": "https://attacker.invalid/cert.pem"}
    body = await me(client, bearer(world.oidc.sign(SOEST, claims_for(world.oidc, SOEST), header)))
    assert body["tenant"]["slug"] == world.slug(SOEST)
    # A real key offered in `jwk` does not make a real signature invalid either.
    header = {"jwk": world.oidc.public_jwks(SOEST)["keys"][0]}
    await me(client, bearer(world.oidc.sign(SOEST, claims_for(world.oidc, SOEST), header)))


async def test_real_provider_tokens_of_every_role_are_accepted(client: Client, world: World) -> None:
    for town in (SOEST, GESEKE, KREIS):
        body = await me(client, world.headers(town, "supervisor"))
        assert body["roles"] == ["supervisor"] and body["scopes"] == []
        assert body["issuer"] == world.oidc.issuer_url(town)
        assert body["subject"] == f"{town}-supervisor"


# --------------------------------------------------------------------------- unknown kid flood


async def test_unknown_kid_flood_refetches_the_jwks_at_most_once(client: Client, world: World) -> None:
    verifier = state_of(world).verifier
    await me(client, world.headers(SOEST, "agent"))  # the JWKS is cached now
    # Start a fresh rate-limit interval, so the flood may refetch exactly once (a key rotation).
    await state_of(world).redis.delete(verifier.jwks._key(world.oidc.issuer_url(SOEST), "refetch"))
    before = verifier.jwks.fetch_count
    tokens = [world.oidc.sign(SOEST, claims_for(world.oidc, SOEST), {"kid": f"flood-{i}"}) for i in range(50)]
    responses = await asyncio.gather(*(client.get("/v1/me", headers=bearer(t)) for t in tokens))
    assert [r.status_code for r in responses] == [401] * 50
    assert verifier.jwks.fetch_count - before == 1
    # Still limited after the flood, and real tokens still pass without another fetch.
    await assert_rejected(client, bearer(world.oidc.sign(SOEST, claims_for(world.oidc, SOEST), {"kid": "late"})))
    await me(client, world.headers(SOEST, "agent"))
    assert verifier.jwks.fetch_count - before == 1


# --------------------------------------------------------------------------- machine clients


async def test_machine_clients_get_scopes_and_no_roles(client: Client, world: World) -> None:
    for town in (KREIS, SOEST, GESEKE):
        for kind, scopes in MACHINE_CLIENT_SCOPES.items():
            body = await me(client, world.headers(town, kind))
            assert body["roles"] == []
            assert body["scopes"] == sorted(scopes)
            assert body["subject"] == f"{town}-{kind}"
            assert body["tenant"]["slug"] == world.slug(town)


async def test_operator_telephony_acts_for_clients_partner_only_for_its_town(client: Client, world: World) -> None:
    ids = {town: str(tenant_id) for town, tenant_id in world.tenant_ids.items()}
    operator_phone = await me(client, world.headers(KREIS, "telephony"))
    assert {ids[KREIS], ids[SOEST], ids[GESEKE]} <= set(operator_phone["actingTenantIds"])
    operator_partner = await me(client, world.headers(KREIS, "partner"))  # no operator-wide scope
    assert operator_partner["actingTenantIds"] == [ids[KREIS]]
    for town in (SOEST, GESEKE):
        assert (await me(client, world.headers(town, "partner")))["actingTenantIds"] == [ids[town]]
        # A town's own telephone system is no operator: it has no clients to act for.
        assert (await me(client, world.headers(town, "telephony")))["actingTenantIds"] == [ids[town]]


async def test_machine_client_reads_only_what_its_scope_reaches(client: Client, world: World) -> None:
    partner = world.headers(GESEKE, "partner")
    assert (await client.get(f"/v1/tenants/{world.slug(GESEKE)}", headers=partner)).status_code == 200
    assert (await client.get(f"/v1/tenants/{world.slug(SOEST)}", headers=partner)).status_code == 404
    phone = world.headers(KREIS, "telephony")
    assert (await client.get(f"/v1/tenants/{world.slug(SOEST)}", headers=phone)).status_code == 200
    assert (await client.get(f"/v1/tenants/{world.slug(SOEST)}/identity-issuers", headers=phone)).status_code == 403


# --------------------------------------------------------------------------- tenant isolation over GraphQL


TENANT_QUERY = """
query ($slug: String!) {
  tenant(slug: $slug) { slug departments { name } }
  tenants(first: 100) { nodes { slug } }
}
"""


async def test_geseke_cannot_read_soest_over_graphql(client: Client, world: World) -> None:
    for role in ("town-admin", "agent", "supervisor", "partner", "telephony"):
        headers = world.headers(GESEKE, role)
        response = await client.post(
            "/graphql", json={"query": TENANT_QUERY, "variables": {"slug": world.slug(SOEST)}}, headers=headers
        )
        body = response.json()
        assert "errors" not in body, body
        assert body["data"]["tenant"] is None  # exactly like a slug that does not exist
        assert [t["slug"] for t in body["data"]["tenants"]["nodes"]] == [world.slug(GESEKE)]
        own = await client.post(
            "/graphql", json={"query": TENANT_QUERY, "variables": {"slug": world.slug(GESEKE)}}, headers=headers
        )
        assert own.json()["data"]["tenant"]["slug"] == world.slug(GESEKE)
    missing = await client.post(
        "/graphql",
        json={"query": TENANT_QUERY, "variables": {"slug": "does-not-exist"}},
        headers=world.headers(GESEKE, "agent"),
    )
    assert missing.json()["data"]["tenant"] is None


async def test_geseke_cannot_read_soest_over_rest(client: Client, world: World) -> None:
    headers = world.headers(GESEKE, "agent")
    soest = world.slug(SOEST)
    for path in (f"/v1/tenants/{soest}", f"/v1/tenants/{soest}/departments", f"/v1/tenants/{soest}/closing-days"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 404, (path, response.text)
    listed = await client.get("/v1/tenants", headers=headers)
    assert [t["slug"] for t in listed.json()["items"]] == [world.slug(GESEKE)]


# --------------------------------------------------------------------------- tenants that leave


@pytest.fixture(scope="module")
def werl_idp() -> Iterator[OIDCProvider]:
    """A town of its own, so offboarding it cannot disturb the shared world."""
    clients = [ClientSpec(f"{WERL}-agent", "secret-agent", extra_claims={"roles": ["agent"]})]
    with OIDCProvider([IssuerSpec(WERL, AUDIENCE, clients, alg="RS256")]) as provider:
        yield provider


async def _new_tenant(client: Client, world: World, name: str) -> dict[str, Any]:
    body = {
        "slug": f"{name}-{world.suffix}-{uuid.uuid4().hex[:4]}",
        "name": name.title(),
        "kind": "town",
        "status": "active",
    }
    created = await client.post("/v1/tenants", json=body, headers=world.headers(KREIS, "platform-admin"))
    assert created.status_code == 201, created.text
    tenant: dict[str, Any] = created.json()
    return tenant


async def test_offboarded_tenant_token_is_rejected(client: Client, world: World, werl_idp: OIDCProvider) -> None:
    admin = world.headers(KREIS, "platform-admin")
    tenant = await _new_tenant(client, world, WERL)
    added = await client.post(
        f"/v1/tenants/{tenant['slug']}/identity-issuers",
        json={"issuer": werl_idp.issuer_url(WERL), "audience": AUDIENCE, "roleMapping": {"agent": "agent"}},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    token = werl_idp.token(WERL, f"{WERL}-agent")
    assert (await me(client, bearer(token)))["tenant"]["slug"] == tenant["slug"]  # bindings now cached

    offboarded = await client.patch(f"/v1/tenants/{tenant['slug']}", json={"status": "offboarded"}, headers=admin)
    assert offboarded.status_code == 200, offboarded.text
    await assert_rejected(client, bearer(token))  # at once, not when the cache expires
    await assert_rejected(client, bearer(werl_idp.token(WERL, f"{WERL}-agent")))


async def test_operator_stops_acting_when_the_agreement_ends(client: Client, world: World) -> None:
    admin = world.headers(KREIS, "platform-admin")
    agent = world.headers(KREIS, "agent")
    tenant = await _new_tenant(client, world, "stadt-erwitte")
    assert tenant["id"] not in (await me(client, agent))["actingTenantIds"]  # no agreement yet (now cached)

    created = await client.post(
        "/v1/agreements", json={"clientTenantId": tenant["id"], "startsOn": "2015-01-01"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert tenant["id"] in (await me(client, agent))["actingTenantIds"]  # at once
    slug_url = f"/v1/tenants/{tenant['slug']}"
    assert (await client.get(slug_url, headers=agent)).status_code == 200

    # Notice given back in 2015 ended the agreement with its initial term (2016-12-31).
    agreement_id = created.json()["agreement"]["id"]
    ended = await client.post(
        f"/v1/agreements/{agreement_id}/termination", json={"noticedOn": "2015-03-01"}, headers=admin
    )
    assert ended.status_code == 201, ended.text
    assert ended.json()["agreement"]["endsOn"] == "2016-12-31" and ended.json()["active"] is False

    for role in ("agent", "supervisor", "telephony"):
        acting = (await me(client, world.headers(KREIS, role)))["actingTenantIds"]
        assert tenant["id"] not in acting, role
        assert str(world.tenant_ids[SOEST]) in acting  # the other clients stay
    assert (await client.get(slug_url, headers=agent)).status_code == 404
    # A platform admin still reaches every tenant, agreement or not.
    assert tenant["id"] in (await me(client, admin))["actingTenantIds"]
