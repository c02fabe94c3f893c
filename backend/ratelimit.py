"""Request rate limits per principal, shared by all instances through Redis.

A runaway telephony system or partner-town script must not take the service from the agents on
the phone. Each principal (a person, or a machine client) may make `limit` requests per minute
(fixed windows on the minute), counted across all instances. Counting must not cost the hot
path a Redis round trip, so each instance counts in process and adds its counts to Redis in one
pipeline every `FLUSH_SECONDS`, reading back the shared totals: a principal's count is the
total Redis last reported plus what this instance took since. The limit is therefore exact on
one instance and may be overshot by what other instances admitted in one flush interval.
Without Redis each instance still limits what it sees itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.principal import Principal
from backend.errors import RateLimited
from backend.i18n import _l

WINDOW_SECONDS = 60
FLUSH_SECONDS = 0.25
log = structlog.get_logger("ratelimit")


@dataclass(frozen=True, slots=True)
class Quota:
    """What a client may still do in the current window, sent back as RateLimit-* headers so
    a partner system can pace itself instead of running into 429s."""

    limit: int
    remaining: int
    reset_seconds: int  # until the next window

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


@dataclass(slots=True)
class _Count:
    known: int = 0  # the shared total as Redis last reported it (our own flushed counts included)
    pending: int = 0  # taken here since, not yet added to Redis


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        namespace: str,
        person_limit: int,
        machine_limit: int,
        window_seconds: int = WINDOW_SECONDS,
        unauthenticated_limit: int = 60,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.person_limit = person_limit
        self.machine_limit = machine_limit
        self.unauthenticated_limit = unauthenticated_limit
        self.window_seconds = window_seconds
        self._counts: dict[tuple[str, int], _Count] = {}
        self._flushing: asyncio.Task[None] | None = None

    def limit_for(self, principal: Principal) -> int:
        return self.machine_limit if principal.is_machine else self.person_limit

    def take(self, principal: Principal) -> Quota:
        """Count one request and say what is left, or raise RateLimited (with the seconds until
        the next window). Across instances `remaining` is as of the last shared count."""
        # The same person, whichever tenant.
        return self._take(principal.issuer + "\x00" + principal.subject, self.limit_for(principal))

    def take_unauthenticated(self, client_address: str) -> Quota:
        """Count one request from `client_address` that came without a valid token, or raise
        RateLimited: guessing tokens, or a script with an expired one, cannot go on at full
        speed (700 such requests in a row all got 401 before). Only failed sign-ins count, so
        people signed in behind the same address are never refused for it."""
        return self._take("address\x00" + client_address, self.unauthenticated_limit)

    def _take(self, who: str, limit: int) -> Quota:
        now = time.time()
        window = int(now // self.window_seconds)
        count = self._counts.get((who, window))
        if count is None:
            count = self._counts[(who, window)] = _Count()
        reset = max(1, math.ceil((window + 1) * self.window_seconds - now))
        if count.known + count.pending >= limit:
            raise RateLimited(
                _l(
                    "more than {limit} requests in {window_seconds} s; try again in {reset} s",
                    limit=limit,
                    window_seconds=self.window_seconds,
                    reset=reset,
                ),
                reset,
            )
        count.pending += 1
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())
        return Quota(limit, max(0, limit - count.known - count.pending), reset)

    def _key(self, who: str, window: int) -> str:
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]  # no subject ids in Redis keys
        return f"ratelimit:{self.namespace}:{digest}:{self.window_seconds}:{window}"

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await self.flush()
        except Exception:  # a background task: nobody awaits it, so say what went wrong here
            log.exception("ratelimit_flush_failed")

    async def aclose(self) -> None:
        """At shutdown: no flush may outlive the Redis client."""
        if self._flushing is not None and not self._flushing.done():
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing

    async def flush(self) -> None:
        """Add this instance's counts to Redis and learn the shared totals."""
        current = int(time.time() // self.window_seconds)
        for key in [k for k in self._counts if k[1] < current]:
            del self._counts[key]  # past windows: nothing to limit any more
        batch = [(key, count, count.pending) for key, count in self._counts.items() if count.pending]
        if not batch:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (who, window), _, taken in batch:
                    pipe.incrby(self._key(who, window), taken)
                    pipe.expire(self._key(who, window), 2 * self.window_seconds)
                totals = (await pipe.execute())[0::2]
        except RedisError:
            log.warning("ratelimit_unavailable")  # keep counting here; try again next time
            return
        for (_, count, taken), total in zip(batch, totals, strict=True):
            count.pending -= taken  # requests taken during the round trip stay pending
            count.known = int(total)
