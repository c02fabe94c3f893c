"""Bearer-token verification against the issuers registered for tenants.

The rules, in order: the algorithm must be one we allow; the claimed issuer must be registered
for a tenant; the key must come from that issuer's own JWKS (discovered, cached in Redis, and
refetched on an unknown key id at most once per interval per issuer) — never from the token's
header (`jwk`, `jku`, `x5u` are ignored); then `exp`, `iat`, `iss`, `aud`, `sub` are all required
and checked with a small clock-skew leeway. Every failure is the same `Unauthenticated` to the
client; the reason goes to the log only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.errors import Unauthenticated
from auth.principal import Principal
from auth.roles import OPERATOR_ONLY_ROLES, Role, Scope, parse_roles, parse_scopes

ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256")
log = structlog.get_logger("auth")


@dataclass(frozen=True, slots=True)
class IssuerBinding:
    """One trusted issuer of one tenant (a row of the tenant's identity settings)."""

    tenant_id: UUID
    tenant_slug: str
    issuer: str
    audience: str
    org_claim: str | None = None
    org_value: str | None = None
    role_claim: str = "roles"
    role_mapping: dict[str, str] = field(default_factory=dict)
    operator: bool = False  # the tenant runs the service centre: its issuers may grant OPERATOR_ONLY_ROLES

    def matches_organisation(self, claims: dict[str, Any]) -> bool:
        if not self.org_claim:
            return True
        value = claims.get(self.org_claim)
        if isinstance(value, list):
            return self.org_value in value
        return value == self.org_value


class IssuerRegistry(Protocol):
    """Where trusted issuers and acting tenants come from (the backend implements it). `tag`
    is the caller's cache tag (see `TokenVerifier.verify`): answers may be remembered under it."""

    async def bindings_for(self, issuer: str, tag: str | None) -> Sequence[IssuerBinding]: ...

    async def acting_tenants(
        self, binding: IssuerBinding, roles: frozenset[Role], scopes: frozenset[Scope], tag: str | None
    ) -> frozenset[UUID]: ...

    async def settled_tenants(
        self, binding: IssuerBinding, roles: frozenset[Role], tag: str | None
    ) -> frozenset[UUID]: ...


class JWKSSource(Protocol):
    async def fetch(self, issuer: str) -> dict[str, Any]: ...


class HttpJWKSSource:
    """OpenID discovery, then the JWKS document. The discovered issuer must equal the claimed one."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def fetch(self, issuer: str) -> dict[str, Any]:
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self.client.get(discovery_url)
        response.raise_for_status()
        metadata = response.json()
        if metadata.get("issuer") != issuer:
            raise ValueError("discovered issuer differs from the claimed issuer")
        jwks_response = await self.client.get(metadata["jwks_uri"])
        jwks_response.raise_for_status()
        document = jwks_response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("JWKS document without keys")
        return document


class KeysUnavailable(Exception):
    """An issuer's keys could not be fetched or used (the reason names only the error class)."""


class JWKSCache:
    """Per-issuer JWKS in Redis, shared by all replicas."""

    def __init__(
        self, redis: Redis, source: JWKSSource, ttl_seconds: int, refetch_interval_seconds: int, namespace: str = ""
    ) -> None:
        self.redis = redis
        # Keys name the deployment they serve: one Redis may serve several (test sessions, a
        # second checkout), and development issuers share a URL while their keys differ.
        self.namespace = namespace
        self.source = source
        self.ttl = ttl_seconds
        self.refetch_interval = refetch_interval_seconds
        self.fetch_count = 0  # observed by tests: a flood of unknown kids must not fetch each time
        # Parsed key sets by the exact JWKS text. A pure memo, not state: Redis stays the source
        # of truth (a rotated JWKS is new text), it only spares re-importing RSA/EC keys per request.
        self._parsed: dict[str, KeySet] = {}
        # Fallback while Redis is unreachable: the last document per issuer and when it was
        # fetched, so an outage does not turn every request (or a kid flood) into an IdP fetch.
        self._fallback: dict[str, tuple[float, str]] = {}

    def _key(self, issuer: str, kind: str) -> str:
        return f"jwks:{self.namespace}:{kind}:{hashlib.sha256(issuer.encode()).hexdigest()[:32]}"

    async def _fetch(self, issuer: str) -> str:
        self.fetch_count += 1
        return json.dumps(await self.source.fetch(issuer), sort_keys=True)

    async def _fetch_and_store(self, issuer: str) -> str:
        document = await self._fetch(issuer)
        await self._store(issuer, document)
        return document

    async def _store(self, issuer: str, document: str) -> None:
        self._fallback[issuer] = (time.monotonic(), document)
        try:
            await self.redis.set(self._key(issuer, "doc"), document, ex=self.ttl)
        except RedisError:
            log.warning("jwks_cache_unavailable", issuer=issuer)

    async def refresh(self, issuer: str) -> KeySet:
        """The issuer's keys fetched now, whatever is cached: after an identity provider withdrew
        a key, tokens it signed stop working at once instead of when the cache expires. Stored
        only when the answer is a usable key set, so a broken answer cannot replace good keys."""
        try:
            document = await self._fetch(issuer)
            key_set = self._parse(document)
        except (JoseError, ValueError, KeyError, TypeError, httpx.HTTPError) as error:
            log.warning("jwks_refresh_failed", issuer=issuer, error_type=type(error).__name__)
            raise KeysUnavailable(type(error).__name__) from None
        await self._store(issuer, document)
        return key_set

    async def _cached(self, issuer: str) -> str | None:
        try:
            raw = await self.redis.get(self._key(issuer, "doc"))
        except RedisError:
            fetched_at, document = self._fallback.get(issuer, (0.0, ""))
            fresh = document and time.monotonic() - fetched_at < self.refetch_interval
            return document if fresh else None
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _parse(self, document: str) -> KeySet:
        key_set = self._parsed.get(document)
        if key_set is None:
            if len(self._parsed) >= 256:
                self._parsed.clear()
            key_set = KeySet.import_key_set(json.loads(document))
            self._parsed[document] = key_set
        return key_set

    async def _may_refetch(self, issuer: str) -> bool:
        try:
            first = await self.redis.set(self._key(issuer, "refetch"), "1", nx=True, ex=self.refetch_interval)
        except RedisError:
            fetched_at, _ = self._fallback.get(issuer, (0.0, ""))
            return time.monotonic() - fetched_at >= self.refetch_interval
        return bool(first)

    async def key_set(self, issuer: str, kid: str | None) -> KeySet:
        document = await self._cached(issuer)
        if document is None:
            document = await self._fetch_and_store(issuer)
            await self._may_refetch(issuer)  # a fresh fetch counts as this interval's refetch
        elif kid is not None and not _has_kid(self._parse(document), kid) and await self._may_refetch(issuer):
            document = await self._fetch_and_store(issuer)  # the issuer may have rotated keys
        return self._parse(document)


def _has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)


def _b64_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except RecursionError:
        # Deeply nested JSON ("[[[[…") makes the parser recurse past Python's limit; without
        # this, an unauthenticated garbage token turned into a 500 instead of a 401.
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class _Verified:
    tag: str
    until: float  # wall-clock seconds: the token's expiry with leeway, or the memo's own limit
    principal: Principal


class TokenVerifier:
    """Verifies bearer tokens. A telephony system or an agent's client sends the same token for
    many requests, so a verified token's principal is remembered in process — keyed by the
    exact token text, only under the same cache tag, never past the token's expiry and at most
    `MEMO_SECONDS`. (A key the issuer withdraws verifies until the cached JWKS expires, unless
    an admin refreshes the keys: `JWKSCache.refresh`, which also moves the cache tag.)
    A rejected token is never remembered."""

    MEMO_SECONDS = 60
    MEMO_SIZE = 10_000

    def __init__(self, registry: IssuerRegistry, jwks: JWKSCache, leeway_seconds: int = 60) -> None:
        self.registry = registry
        self.jwks = jwks
        self.leeway = leeway_seconds
        self._verified: dict[str, _Verified] = {}
        self.verifications = 0  # full checks, observed by tests: a remembered token needs none
        self.rejections: dict[str, int] = {}  # by reason, for the metrics endpoint

    async def verify(self, token: str, tag: str | None = None) -> Principal:
        """`tag` names the state of issuers, tenants and agreements as the caller just read it:
        while it is unchanged the same token yields the same principal. It must change with
        every committed change (and whenever acting tenants may, e.g. at midnight for dated
        agreements). None: remember nothing."""
        try:
            if tag is not None:
                known = self._verified.get(token)
                if known is not None and known.tag == tag and time.time() < known.until:
                    return known.principal
            principal, expires_at = await self._verify(token, tag)
        except Unauthenticated:
            raise
        except (JoseError, ValueError, KeyError, TypeError, httpx.HTTPError) as error:
            raise self._reject(type(error).__name__) from None
        if tag is not None:
            if len(self._verified) >= self.MEMO_SIZE:
                self._verified.clear()  # a flood of distinct tokens: start over rather than grow
            until = min(expires_at + self.leeway, time.time() + self.MEMO_SECONDS)
            self._verified[token] = _Verified(tag, until, principal)
        return principal

    def _reject(self, reason: str) -> Unauthenticated:
        log.info("token_rejected", reason=reason)
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        return Unauthenticated()

    async def _verify(self, token: str, tag: str | None) -> tuple[Principal, float]:
        self.verifications += 1
        parts = token.split(".")
        if len(parts) != 3:
            raise self._reject("not_a_compact_jws")
        header = _b64_json(parts[0])
        unverified = _b64_json(parts[1])
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise self._reject("algorithm_not_allowed")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise self._reject("missing_issuer")
        bindings = await self.registry.bindings_for(issuer, tag)
        if not bindings:
            raise self._reject("unknown_issuer")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise self._reject("bad_kid")
        key_set = await self.jwks.key_set(issuer, kid)
        if kid is not None:
            key_set.get_by_kid(kid)  # raises InvalidKeyIdError for a kid the issuer does not have
        # Signature check with the issuer's own keys only; the algorithm list pins `alg`.
        verified = jwt.decode(token, key_set, algorithms=[alg])
        claims = verified.claims
        binding = self._choose_binding(bindings, claims)
        jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": binding.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(claims)
        roles = parse_roles(claims.get(binding.role_claim), binding.role_mapping)
        if not binding.operator:
            roles -= OPERATOR_ONLY_ROLES  # whatever a town's mapping says (it may predate the check)
        scopes = parse_scopes(claims.get("scope"))
        client_id = claims.get("client_id") or claims.get("azp")
        if not roles and not scopes:
            raise self._reject("no_role_or_scope")
        acting = await self.registry.acting_tenants(binding, roles, scopes, tag)
        settled = await self.registry.settled_tenants(binding, roles, tag)
        principal = Principal(
            issuer=issuer,
            subject=str(claims["sub"]),
            tenant_id=binding.tenant_id,
            tenant_slug=binding.tenant_slug,
            roles=roles,
            scopes=scopes,
            acting_tenant_ids=acting | {binding.tenant_id},
            client_id=client_id if isinstance(client_id, str) else None,
            settled_tenant_ids=settled,
        )
        return principal, float(claims["exp"])

    def _choose_binding(self, bindings: Sequence[IssuerBinding], claims: dict[str, Any]) -> IssuerBinding:
        # Several towns may share one issuer (e.g. Keycloak organisations): the
        # organisation claim decides; without a match the token belongs to no tenant.
        matching = [b for b in bindings if b.matches_organisation(claims)]
        if len(matching) != 1:
            raise self._reject("no_unique_tenant_for_issuer")
        return matching[0]
