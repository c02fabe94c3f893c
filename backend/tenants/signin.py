"""Sign-in lookups for auth.TokenVerifier: which tenants trust an issuer, and for whom a
principal acts. Both are read on every request, so both are cached in Redis (shared by all
replicas) and dropped after a committed change; without Redis they come from PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.oidc import IssuerBinding
from auth.roles import OPERATOR_WIDE_ROLES, OPERATOR_WIDE_SCOPES, Role, Scope
from backend.db.pool import acquire
from backend.tenants import repository

BERLIN = ZoneInfo("Europe/Berlin")
ACTING_PREFIX = "signin:acting:"  # + "<tenant>:<day>:<reach>" → JSON list of tenant ids
CACHE_SECONDS = 60
log = structlog.get_logger("signin")


def _issuer_key(issuer: str) -> str:
    return "signin:issuer:" + hashlib.sha256(issuer.encode()).hexdigest()[:32]


async def forget_issuer(redis: Redis, issuer: str) -> None:
    try:
        await redis.delete(_issuer_key(issuer))
    except RedisError:
        log.warning("signin_cache_unavailable")


async def forget_acting_tenants(redis: Redis) -> None:
    try:
        keys = [key async for key in redis.scan_iter(match=ACTING_PREFIX + "*", count=500)]
        if keys:
            await redis.delete(*keys)
    except RedisError:
        log.warning("signin_cache_unavailable")


class DatabaseIssuerRegistry:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def _cache_get(self, get: str, *args: str) -> str | None:
        try:
            value = await getattr(self.redis, get)(*args)
        except RedisError:
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def bindings_for(self, issuer: str) -> Sequence[IssuerBinding]:
        bindings, _ = await self.bindings_with(issuer, ())
        return bindings

    async def bindings_with(
        self, issuer: str, keys: Sequence[str]
    ) -> tuple[Sequence[IssuerBinding], list[str | None] | None]:
        """The issuer's bindings and the cached values of `keys`, in one Redis round trip."""
        key = _issuer_key(issuer)
        others: list[str | None] | None
        try:
            values = await self.redis.mget([key, *keys])
        except RedisError:
            cached, others = None, None
        else:
            cached, *others = (v.decode() if isinstance(v, bytes) else v for v in values)
        if cached is not None:
            rows = json.loads(cached)
        else:
            async with acquire(self.pool) as conn:
                records = await repository.issuer_bindings(conn, issuer)
            rows = [{**dict(r), "tenant_id": str(r["tenant_id"])} for r in records]
            with contextlib.suppress(RedisError):
                await self.redis.set(key, json.dumps(rows), ex=CACHE_SECONDS)
        return [
            IssuerBinding(
                tenant_id=UUID(r["tenant_id"]),
                tenant_slug=r["tenant_slug"],
                issuer=issuer,
                audience=r["audience"],
                org_claim=r["org_claim"],
                org_value=r["org_value"],
                role_claim=r["role_claim"],
                role_mapping=r["role_mapping"],
            )
            for r in rows
        ], others

    async def acting_tenants(
        self, binding: IssuerBinding, roles: frozenset[Role], scopes: frozenset[Scope]
    ) -> frozenset[UUID]:
        if Role.PLATFORM_ADMIN in roles:
            reach = "all"
        elif roles & OPERATOR_WIDE_ROLES or scopes & OPERATOR_WIDE_SCOPES:
            reach = "clients"
        else:
            return frozenset({binding.tenant_id})
        # Agreements are dated in Europe/Berlin: access ends with the agreement's last day there.
        today = datetime.now(BERLIN).date()
        key = f"{ACTING_PREFIX}{binding.tenant_id}:{today.isoformat()}:{reach}"
        cached = await self._cache_get("get", key)
        if cached is not None:
            return frozenset(UUID(i) for i in json.loads(cached)) | {binding.tenant_id}
        async with acquire(self.pool) as conn:
            if reach == "all":
                ids = await repository.all_tenant_ids(conn)
            else:
                ids = await repository.client_tenant_ids(conn, binding.tenant_id, today)
        with contextlib.suppress(RedisError):
            await self.redis.set(key, json.dumps([str(i) for i in ids]), ex=CACHE_SECONDS)
        return frozenset(ids) | {binding.tenant_id}
