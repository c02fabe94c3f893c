"""The Redis client of an app instance: after Redis failed to answer, it is skipped for a moment.

Everything that uses Redis already falls back when it fails (`except RedisError`: sign-in and
routing read PostgreSQL, idempotency lets the request run, …). But a Redis that hangs rather
than refuses makes every command wait the full socket timeout, and a routing request makes
several: seconds while a citizen's call rings. So after one command timed out or could not
connect, the next ones fail at once for `PAUSE_SECONDS` and take their fallback, and one
command after that tries Redis again.

Writes other instances rely on are always tried: events (PUBLISH) and whatever runs inside
`always_try()` (generation bumps, an idempotency record).
Skipping a bump while Redis is back would leave other instances trusting a cache that a
committed change made stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

PAUSE_SECONDS = 5.0
ALWAYS_TRIED = frozenset({"PUBLISH"})
_always_try: ContextVar[bool] = ContextVar("redis_always_try", default=False)


@contextmanager
def always_try() -> Iterator[None]:
    """Commands in this block are sent even while Redis is paused (writes others rely on)."""
    token = _always_try.set(True)
    try:
        yield
    finally:
        _always_try.reset(token)


class RedisUnavailable(RedisConnectionError):
    """Raised instead of trying Redis while it is paused (a RedisError like any other)."""


class GuardedRedis(Redis):
    _paused_until: float = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = str(args[0]).upper() if args else ""
        if command not in ALWAYS_TRIED and not _always_try.get() and time.monotonic() < self._paused_until:
            raise RedisUnavailable("Redis failed moments ago; skipped")
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError):
            self.pause()
            raise

    def pause(self) -> None:
        self._paused_until = time.monotonic() + PAUSE_SECONDS

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until


def connect(url: str) -> GuardedRedis:
    client = GuardedRedis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    assert isinstance(client, GuardedRedis)  # from_url builds the class it is called on
    return client
