"""The refusal log: the last refused tokens of each registered issuer, per tenant, for that
tenant's admin (decision 016). Kept in Redis, shared by every instance: a capped list per
tenant and issuer (the last `KEEP`, for `KEEP_SECONDS`), one LPUSH/LTRIM/EXPIRE round trip per
refusal, so a flood of bad tokens costs Redis a fixed amount of memory and never PostgreSQL.
An entry holds the reason code, the time and claim names — never the token, its subject or a
claim's value. Without Redis nothing is kept (sign-in itself does not depend on it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from uuid import UUID

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.oidc import IssuerBinding, SignInRefusal

KEEP = 50
KEEP_SECONDS = 30 * 86400
log = structlog.get_logger("auth")


class RedisRefusalLog:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace

    def _key(self, tenant_id: UUID, issuer: str) -> str:
        issuer_hash = hashlib.sha256(issuer.encode()).hexdigest()[:32]
        return f"signin-refusals:{self.namespace}:{tenant_id}:{issuer_hash}"

    async def record(self, bindings: Sequence[IssuerBinding], refusal: SignInRefusal) -> None:
        entry = json.dumps(
            {"reason": refusal.reason, "at": refusal.at, "claim": refusal.claim, "tokenClaims": refusal.token_claims}
        )
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for binding in bindings:
                    key = self._key(binding.tenant_id, binding.issuer)
                    pipe.lpush(key, entry)
                    pipe.ltrim(key, 0, KEEP - 1)
                    pipe.expire(key, KEEP_SECONDS)
                await pipe.execute()
        except RedisError:
            log.warning("refusal_log_unavailable")

    async def recent(self, tenant_id: UUID, issuer: str, limit: int = KEEP) -> list[SignInRefusal]:
        """Newest first."""
        raw = await self.redis.lrange(self._key(tenant_id, issuer), 0, max(0, min(limit, KEEP) - 1))
        refusals = []
        for item in raw:
            value = json.loads(item)
            refusals.append(
                SignInRefusal(value["reason"], float(value["at"]), value["claim"], tuple(value["tokenClaims"]))
            )
        return refusals
