"""Bearer-token verification against the issuers registered for tenants.

The rules, in order: the algorithm must be one we allow; the claimed issuer must be registered
for a tenant; the key must come from that issuer's own JWKS (discovered, cached in Redis, and
refetched on an unknown key id at most once per interval per issuer) — never from the token's
header (`jwk`, `jku`, `x5u` are ignored); then `exp`, `iat`, `iss`, `aud`, `sub` are all required
and checked with a small clock-skew leeway. Every failure is the same `Unauthenticated` to the
client; the reason goes to the log only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import httpx
import structlog
from cachetools import LRUCache
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    DecodeError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jwt import ClaimsOption
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.claims import ClaimPathError, map_roles, read_claim
from auth.errors import Unauthenticated
from auth.principal import Principal
from auth.roles import OPERATOR_ONLY_ROLES, Role, Scope, parse_scopes
from outbound import refusal_of

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
    group_claim: str | None = None  # the town's claim of department groups (decision 037)

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
    async def discover(self, issuer: str) -> dict[str, Any]: ...

    async def fetch(self, issuer: str) -> dict[str, Any]: ...


# What fetching an issuer's documents can raise: HTTP and connection failures (an outbound
# policy refusal among them), URLs the client cannot use, documents that are not what they should be.
FETCH_ERRORS = (JoseError, ValueError, KeyError, TypeError, httpx.HTTPError, httpx.InvalidURL)


class HttpJWKSSource:
    """OpenID discovery, then the JWKS document. The discovered issuer must equal the claimed one.
    The client must be the outbound one (`outbound.outbound_client`): issuer URLs and the
    `jwks_uri` they name are chosen by town admins."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def discover(self, issuer: str) -> dict[str, Any]:
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self.client.get(discovery_url)
        response.raise_for_status()
        metadata = response.json()
        if not isinstance(metadata, dict) or metadata.get("issuer") != issuer:
            raise ValueError("discovered issuer differs from the claimed issuer")
        if not isinstance(metadata.get("jwks_uri"), str):
            raise ValueError("discovery document without jwks_uri")
        return metadata

    async def fetch(self, issuer: str) -> dict[str, Any]:
        metadata = await self.discover(issuer)
        jwks_response = await self.client.get(metadata["jwks_uri"])
        jwks_response.raise_for_status()
        document = jwks_response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("JWKS document without keys")
        return document


class KeysUnavailable(Exception):
    """An issuer's keys could not be fetched or used. Carries no detail on purpose: what a town
    admin is told must not tell a refused address from a closed port from a bad document (that
    would map our network); the reason is logged here."""


class JWKSCache:
    """Per-issuer JWKS in Redis, shared by all replicas.

    A failed fetch (discovery or JWKS) is remembered per issuer in Redis, so no instance fetches
    again for `failure_backoff` seconds, doubling with each further failure up to
    `FAILURE_BACKOFF_CAP`: without it, every token of an issuer whose discovery failed was one
    more outbound request (40 tokens, 40 fetches). Concurrent fetches of one issuer in one
    process share one request."""

    FAILURE_BACKOFF_CAP = 600

    def __init__(
        self,
        redis: Redis,
        source: JWKSSource,
        ttl_seconds: int,
        refetch_interval_seconds: int,
        namespace: str = "",
        failure_backoff_seconds: int = 10,
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
        self._parsed: LRUCache[str, KeySet] = LRUCache(maxsize=256)
        # Fallback while Redis is unreachable: the last document per issuer and when it was
        # fetched, so an outage does not turn every request (or a kid flood) into an IdP fetch.
        self._fallback: dict[str, tuple[float, str]] = {}
        self.failure_backoff = failure_backoff_seconds
        # Without Redis: until when (monotonic) an issuer is not fetched, and its failures in a row.
        self._failed: dict[str, tuple[float, int]] = {}
        self._inflight: dict[str, asyncio.Future[str]] = {}
        # Called with the issuer when a fetch stored a key set that differs from the one known
        # before (the issuer rotated or withdrew a key): the backend moves the sign-in
        # generation, so no instance serves a token from its memo that the new keys would
        # refuse (decision 040). An admin's refresh does the same through its own commit.
        self.on_change: Callable[[str], Awaitable[None]] | None = None

    def _key(self, issuer: str, kind: str) -> str:
        return f"jwks:{self.namespace}:{kind}:{hashlib.sha256(issuer.encode()).hexdigest()[:32]}"

    async def _fetch(self, issuer: str, *, backing_off: bool = True) -> str:
        """The issuer's JWKS document fetched now, or KeysUnavailable. `backing_off`: refuse
        without a request while an earlier failure is remembered (an admin's explicit refresh
        does not wait: they may just have fixed their identity provider)."""
        if backing_off and await self._backing_off(issuer):
            log.info("jwks_fetch_skipped", issuer=issuer, reason="backing_off")
            raise KeysUnavailable()
        running = self._inflight.get(issuer)
        if running is None:
            running = asyncio.ensure_future(self._fetch_now(issuer))
            self._inflight[issuer] = running
            running.add_done_callback(lambda _: self._inflight.pop(issuer, None))
        return await asyncio.shield(running)

    async def _fetch_now(self, issuer: str) -> str:
        self.fetch_count += 1
        try:
            document = json.dumps(await self.source.fetch(issuer), sort_keys=True)
            self._parse(document)  # a document without usable keys is a failure too
        except FETCH_ERRORS as error:
            failures = await self._remember_failure(issuer)
            refused = refusal_of(error)
            log.warning(
                "jwks_fetch_failed",
                issuer=issuer,
                error_type=type(error).__name__,
                refused=refused.reason if refused else None,
                failures=failures,
            )
            raise KeysUnavailable() from None
        await self._forget_failures(issuer)
        return document

    def _delay(self, failures: int) -> int:
        return int(min(self.failure_backoff * 2 ** min(max(failures - 1, 0), 20), self.FAILURE_BACKOFF_CAP))

    async def _backing_off(self, issuer: str) -> bool:
        try:
            return bool(await self.redis.exists(self._key(issuer, "wait")))
        except RedisError:
            until, _ = self._failed.get(issuer, (0.0, 0))
            return time.monotonic() < until

    async def _remember_failure(self, issuer: str) -> int:
        _, before = self._failed.get(issuer, (0.0, 0))
        failures = before + 1
        try:
            failures = int(await self.redis.incr(self._key(issuer, "failures")))
            await self.redis.expire(self._key(issuer, "failures"), 2 * self.FAILURE_BACKOFF_CAP)
            await self.redis.set(self._key(issuer, "wait"), "1", ex=self._delay(failures))
        except RedisError:
            log.warning("jwks_cache_unavailable", issuer=issuer)
        self._failed[issuer] = (time.monotonic() + self._delay(failures), failures)
        return failures

    async def _forget_failures(self, issuer: str) -> None:
        self._failed.pop(issuer, None)
        try:
            await self.redis.delete(self._key(issuer, "failures"), self._key(issuer, "wait"))
        except RedisError:
            log.warning("jwks_cache_unavailable", issuer=issuer)

    async def discovery_problem(self, issuer: str) -> str | None:
        """For a town admin registering an issuer: None when its discovery document can be
        fetched now, else what to check. The detail (refused address, HTTP status, error class)
        is logged only, so this cannot be used to map our network."""
        try:
            await self.source.discover(issuer)
        except FETCH_ERRORS as error:
            refused = refusal_of(error)
            log.warning(
                "discovery_failed", issuer=issuer, error_type=type(error).__name__, refused=refused and refused.reason
            )
            return (
                "could not fetch the issuer's discovery document (<issuer>/.well-known/openid-configuration): "
                "check the URL, that it names this issuer and that this service may reach it; "
                "sign-in with this issuer fails until it can be fetched"
            )
        return None

    async def _fetch_and_store(self, issuer: str, known: str | None = None) -> str:
        document = await self._fetch(issuer)
        await self._store(issuer, document, known)
        return document

    async def _store(self, issuer: str, document: str, known: str | None = None) -> None:
        """`known`: the document this one replaces, when the caller read it (else the last one
        this process saw, if any)."""
        before = known if known is not None else self._fallback.get(issuer, (0.0, None))[1]
        self._fallback[issuer] = (time.monotonic(), document)
        try:
            await self.redis.set(self._key(issuer, "doc"), document, ex=self.ttl)
        except RedisError:
            log.warning("jwks_cache_unavailable", issuer=issuer)
        if before is not None and before != document and self.on_change is not None:
            log.info("jwks_changed", issuer=issuer)
            await self.on_change(issuer)

    async def refresh(self, issuer: str) -> KeySet:
        """The issuer's keys fetched now, whatever is cached: after an identity provider withdrew
        a key, tokens it signed stop working at once instead of when the cache expires. Stored
        only when the answer is a usable key set, so a broken answer cannot replace good keys."""
        document = await self._fetch(issuer, backing_off=False)
        await self._store(issuer, document)
        return self._parse(document)

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
            document = await self._fetch_and_store(issuer, document)  # the issuer may have rotated keys
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


# Why a token was refused: stable codes (a town admin reads them; decision 016), each with a
# sentence safe to show that admin. None names a value from the token.
REASONS: dict[str, str] = {
    "not_a_compact_jws": "not a signed JWT (three dot-separated parts)",
    "malformed_token": "the token's header or payload is not a JSON object",
    "algorithm_not_allowed": "signed with an algorithm we do not accept (RS256, PS256, ES256 only)",
    "missing_issuer": "the token has no 'iss' claim",
    "unknown_issuer": "the issuer is not registered for any tenant",
    "bad_kid": "the token's key id is not a string",
    "keys_unavailable": "the issuer's keys could not be fetched",
    "unknown_key_id": "the issuer does not publish the key this token names (rotated or withdrawn?)",
    "bad_signature": "the signature does not verify with the issuer's keys",
    "token_expired": "the token has expired",
    "token_not_yet_valid": "the token is not valid yet ('iat' or 'nbf' in the future; clocks apart?)",
    "audience_mismatch": "the token's 'aud' does not contain the audience registered for the issuer",
    "missing_claim": "a required claim is missing",
    "invalid_claim": "a claim has a value of the wrong kind",
    "no_unique_tenant_for_issuer": "the organisation claim matches no single tenant sharing this issuer",
    "role_claim_missing": "the role claim is not in the token (check the claim path and the IdP's mappers)",
    "role_claim_overage": "the IdP left the groups out (too many; Entra ID 'groups overage'): send app roles",
    "role_claim_not_a_list": "the role claim holds neither a list nor a string",
    "role_claim_empty": "the role claim is in the token but empty",
    "no_mapped_role": "none of the role claim's values is in the role mapping",
    "operator_only_role": "only the operator's issuers may grant this role",
    "no_role_or_scope": "the token carries no role and no scope we know",
    "internal": "the token could not be checked",
}


class Refused(Exception):
    """One reason a token is refused (`claim`: the claim name or path it is about, if any)."""

    def __init__(self, reason: str, claim: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claim = claim

    @property
    def message(self) -> str:
        text = REASONS.get(self.reason, self.reason)
        return f"{text} ({self.claim})" if self.claim else text


@dataclass(frozen=True, slots=True)
class SignInRefusal:
    """What the refusal log keeps of one refused token: reason, time and claim names only —
    never the token, its subject or any claim's value."""

    reason: str
    at: float
    claim: str | None
    token_claims: tuple[str, ...]  # names of the token's top-level claims, at most 30


class RefusalLog(Protocol):
    """Where refusals of tokens from a registered issuer go (the backend keeps them per tenant
    and issuer for that tenant's admin)."""

    async def record(self, bindings: Sequence[IssuerBinding], refusal: SignInRefusal) -> None: ...


def _claim_refusal(error: ClaimError) -> Refused:
    if isinstance(error, ExpiredTokenError):
        return Refused("token_expired", "exp")
    if isinstance(error, MissingClaimError):
        return Refused("missing_claim", error.claim)
    if error.claim == "aud":
        return Refused("audience_mismatch", "aud")
    if error.claim in ("iat", "nbf") and ("future" in error.description or "not yet" in error.description):
        return Refused("token_not_yet_valid", error.claim)
    return Refused("invalid_claim", error.claim)


def _error_refusal(error: Exception) -> Refused:
    if isinstance(error, Refused):
        return error
    if isinstance(error, ClaimError):
        return _claim_refusal(error)
    if isinstance(error, InvalidKeyIdError):
        return Refused("unknown_key_id")
    if isinstance(error, BadSignatureError):
        return Refused("bad_signature")
    if isinstance(error, (KeysUnavailable, httpx.HTTPError)):
        return Refused("keys_unavailable")
    if isinstance(error, (DecodeError, ValueError, KeyError, TypeError)):
        return Refused("malformed_token")
    return Refused("bad_signature" if isinstance(error, JoseError) else "internal")


def roles_from(binding: IssuerBinding, claims: dict[str, Any]) -> tuple[frozenset[Role], Refused | None]:
    """The roles the binding's claim path and mapping give, and when none, why not."""
    lookup = read_claim(claims, binding.role_claim)
    roles = map_roles(lookup.values, binding.role_mapping)
    if not binding.operator:
        dropped = roles & OPERATOR_ONLY_ROLES
        roles -= OPERATOR_ONLY_ROLES  # whatever a town's mapping says (it may predate the check)
        if dropped and not roles:
            return roles, Refused("operator_only_role", binding.role_claim)
    if roles:
        return roles, None
    if not lookup.found:
        # Entra ID leaves `groups` out past 200 and names it in `_claim_names` instead.
        overage = claims.get("_claim_names")
        if isinstance(overage, dict) and lookup.missing_at in overage:
            return roles, Refused("role_claim_overage", binding.role_claim)
        return roles, Refused("role_claim_missing", binding.role_claim)
    if lookup.not_a_list:
        return roles, Refused("role_claim_not_a_list", binding.role_claim)
    if not lookup.values:
        return roles, Refused("role_claim_empty", binding.role_claim)
    return roles, Refused("no_mapped_role", binding.role_claim)


# A group claim may list hundreds of groups (Entra ID sends up to 200 ids); only these many,
# each at most this long, travel with the principal. More are the identity provider's mistake.
MAX_GROUPS = 200
MAX_GROUP_LENGTH = 255


def groups_from(binding: IssuerBinding, claims: dict[str, Any]) -> frozenset[str]:
    """The values of the town's group claim (none when the town names no claim, or the token
    lacks it): membership is an addition to the directory, never a reason to refuse a sign-in."""
    if not binding.group_claim:
        return frozenset()
    try:
        values = read_claim(claims, binding.group_claim).values
    except ClaimPathError:
        return frozenset()
    return frozenset(v for v in values[:MAX_GROUPS] if 0 < len(v) <= MAX_GROUP_LENGTH)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A token checked for a town admin, without signing anyone in."""

    accepted: bool
    reasons: tuple[Refused, ...]
    issuer: str | None = None
    tenant_id: UUID | None = None
    roles: frozenset[Role] = frozenset()
    scopes: frozenset[Scope] = frozenset()
    role_claim: str | None = None
    role_claim_values: tuple[str, ...] = ()  # the admin pasted the token: its own values, shown back
    expires_at: float | None = None


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
    A rejected token is never remembered; when its issuer is registered, the reason goes to the
    refusal log of the tenants that trust it (`RefusalLog`)."""

    MEMO_SECONDS = 60
    MEMO_SIZE = 10_000

    def __init__(
        self,
        registry: IssuerRegistry,
        jwks: JWKSCache,
        leeway_seconds: int = 60,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.registry = registry
        self.jwks = jwks
        self.leeway = leeway_seconds
        self.refusals = refusals
        # Bounded: a flood of distinct tokens pushes out the least recently used, not everyone's
        # at once (each entry also carries its own end, `until`).
        self._verified: LRUCache[str, _Verified] = LRUCache(maxsize=self.MEMO_SIZE)
        self.verifications = 0  # full checks, observed by tests: a remembered token needs none
        self.rejections: dict[str, int] = {}  # by reason, for the metrics endpoint

    async def verify(self, token: str, tag: str | None = None) -> Principal:
        """`tag` names the state of issuers, tenants and agreements as the caller just read it:
        while it is unchanged the same token yields the same principal. It must change with
        every committed change (and whenever acting tenants may, e.g. at midnight for dated
        agreements). None: remember nothing."""
        if tag is not None:
            known = self._verified.get(token)
            if known is not None and known.tag == tag and time.time() < known.until:
                return known.principal
        seen = _Seen()
        try:
            principal, expires_at = await self._verify(token, tag, seen)
        except (Refused, JoseError, ValueError, KeyError, TypeError, httpx.HTTPError, KeysUnavailable) as error:
            refused = _error_refusal(error)
            log.info("token_rejected", reason=refused.reason)
            self.rejections[refused.reason] = self.rejections.get(refused.reason, 0) + 1
            await self._record(seen, refused)
            raise Unauthenticated() from None
        if tag is not None:
            until = min(expires_at + self.leeway, time.time() + self.MEMO_SECONDS)
            self._verified[token] = _Verified(tag, until, principal)
        return principal

    async def _record(self, seen: _Seen, refused: Refused) -> None:
        if self.refusals is None or not seen.bindings:
            return  # no tenant trusts the claimed issuer: nobody's people
        # The tenants this token claims to belong to (by the unverified organisation claim);
        # when it names none of them, every tenant sharing the issuer may be looking for it.
        targets = [b for b in seen.bindings if b.matches_organisation(seen.claims)] or list(seen.bindings)
        names = tuple(sorted(str(name)[:100] for name in seen.claims)[:30])
        await self.refusals.record(targets, SignInRefusal(refused.reason, time.time(), refused.claim, names))

    async def _verify(self, token: str, tag: str | None, seen: _Seen) -> tuple[Principal, float]:
        self.verifications += 1
        parts = token.split(".")
        if len(parts) != 3:
            raise Refused("not_a_compact_jws")
        header = _b64_json(parts[0])
        unverified = _b64_json(parts[1])
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise Refused("algorithm_not_allowed")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise Refused("missing_issuer")
        bindings = await self.registry.bindings_for(issuer, tag)
        if not bindings:
            raise Refused("unknown_issuer")
        seen.bindings, seen.claims = bindings, unverified
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Refused("bad_kid")
        key_set = await self._keys(issuer, kid)
        if kid is not None:
            key_set.get_by_kid(kid)  # raises InvalidKeyIdError for a kid the issuer does not have
        # Signature check with the issuer's own keys only; the algorithm list pins `alg`.
        verified = jwt.decode(token, key_set, algorithms=[alg])
        claims = verified.claims
        binding = self._choose_binding(bindings, claims)
        jwt.JWTClaimsRegistry(None, self.leeway, **_claim_options(issuer, binding)).validate(claims)
        roles, no_roles = roles_from(binding, claims)
        scopes = parse_scopes(claims.get("scope"))
        client_id = claims.get("client_id") or claims.get("azp")
        if not roles and not scopes:
            raise no_roles or Refused("no_role_or_scope")
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
            groups=groups_from(binding, claims),
        )
        return principal, float(claims["exp"])

    async def _keys(self, issuer: str, kid: str | None) -> KeySet:
        try:
            return await self.jwks.key_set(issuer, kid)
        except KeysUnavailable:  # logged where it was fetched
            raise Refused("keys_unavailable") from None
        except FETCH_ERRORS as error:
            # Which error is the fetcher's business (the log has it); the token is not to blame.
            log.warning("jwks_unavailable", issuer=issuer, error_type=type(error).__name__)
            raise Refused("keys_unavailable") from None

    def _choose_binding(self, bindings: Sequence[IssuerBinding], claims: dict[str, Any]) -> IssuerBinding:
        # Several towns may share one issuer (e.g. Keycloak organisations): the
        # organisation claim decides; without a match the token belongs to no tenant.
        matching = [b for b in bindings if b.matches_organisation(claims)]
        if len(matching) != 1:
            raise Refused("no_unique_tenant_for_issuer", bindings[0].org_claim)
        return matching[0]

    async def diagnose(self, token: str, tenants: frozenset[UUID]) -> Diagnosis:
        """Every reason this token would be refused, for an admin of `tenants`: nobody is signed
        in, nothing is remembered or counted or logged as a refusal. An issuer none of `tenants`
        trusts is answered alike whether another tenant trusts it or none does. The verdict is
        the real sign-in's (run without the memo), so the two cannot disagree."""
        try:
            parts = token.split(".")
            if len(parts) != 3:
                raise Refused("not_a_compact_jws")
            header, claims = _b64_json(parts[0]), _b64_json(parts[1])
            alg = header.get("alg")
            if alg not in ALLOWED_ALGORITHMS:
                raise Refused("algorithm_not_allowed")
            issuer = claims.get("iss")
            if not isinstance(issuer, str):
                raise Refused("missing_issuer")
        except (Refused, ValueError) as error:
            return Diagnosis(False, (_error_refusal(error),))
        bindings = [b for b in await self.registry.bindings_for(issuer, None) if b.tenant_id in tenants]
        if not bindings:
            return Diagnosis(False, (Refused("unknown_issuer"),), issuer)
        reasons: list[Refused] = []
        try:
            kid = header.get("kid")
            key_set = await self._keys(issuer, kid if isinstance(kid, str) else None)
            jwt.decode(token, key_set, algorithms=[alg])
        except (JoseError, ValueError, KeyError, TypeError, httpx.HTTPError, KeysUnavailable) as error:
            reasons.append(_error_refusal(error))  # and go on: the claims may tell more
        matching = [b for b in bindings if b.matches_organisation(claims)]
        if len(matching) != 1:
            return Diagnosis(False, (*reasons, Refused("no_unique_tenant_for_issuer", bindings[0].org_claim)), issuer)
        binding = matching[0]
        options = _claim_options(issuer, binding)
        registry = jwt.JWTClaimsRegistry(None, self.leeway, **options)
        for name in ("iss", "aud", "sub", "exp", "iat", "nbf"):
            try:
                if claims.get(name) is None:
                    if name in options:
                        raise MissingClaimError(name)
                    continue
                getattr(registry, f"validate_{name}")(claims[name])
            except ClaimError as error:
                reasons.append(_claim_refusal(error))
        roles, no_roles = roles_from(binding, claims)
        scopes = parse_scopes(claims.get("scope"))
        if not roles and not scopes:
            reasons.append(no_roles or Refused("no_role_or_scope"))
        try:
            principal, _ = await self._verify(token, None, _Seen())
            accepted = principal.tenant_id in tenants
        except (Refused, JoseError, ValueError, KeyError, TypeError, httpx.HTTPError, KeysUnavailable) as error:
            accepted = False
            refused = _error_refusal(error)
            if all(r.reason != refused.reason for r in reasons):
                reasons.append(refused)
        exp = claims.get("exp")
        return Diagnosis(
            accepted=accepted and not reasons,
            reasons=tuple(reasons),
            issuer=issuer,
            tenant_id=binding.tenant_id,
            roles=roles,
            scopes=scopes,
            role_claim=binding.role_claim,
            role_claim_values=read_claim(claims, binding.role_claim).values[:50],
            expires_at=float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None,
        )


@dataclass(slots=True)
class _Seen:
    """What a verification learnt before it failed: the registered bindings of the claimed
    issuer and the unverified claims (for attributing a refusal, never for trusting it)."""

    bindings: Sequence[IssuerBinding] = ()
    claims: dict[str, Any] = field(default_factory=dict)


def _claim_options(issuer: str, binding: IssuerBinding) -> dict[str, ClaimsOption]:
    return {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": binding.audience},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
