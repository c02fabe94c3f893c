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

The generation counters every request reads go through `read_counters`: the same MGET on a
connection of the client's own (decision 040's second amendment), without what redis-py's
general path costs per command: the pool, the retry wrapper, and a task started for each
write's timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
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
    _lean: AbstractConnection | None = None  # read_counters' connection
    _lean_loop: asyncio.AbstractEventLoop | None = None  # the loop it was opened in
    _lean_busy = False
    _lean_was_open = False
    _lean_packed: tuple[tuple[str, ...], list[bytes]] | None = None  # the last MGET, packed
    _timeout = 2.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = str(args[0]).upper() if args else ""
        if command not in ALWAYS_TRIED and not _always_try.get() and time.monotonic() < self._paused_until:
            raise RedisUnavailable("Redis failed moments ago; skipped")
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError):
            self.pause()
            raise

    async def read_counters(self, keys: Sequence[str]) -> list[Any]:
        """MGET of a few small keys on a connection of its own: ~120 against ~280 µs of CPU
        per command for `mget` in a warm loop (load ~5), measured for decision 040's second
        amendment. One command at a time on it; a caller that finds it busy takes the ordinary
        path. Paused, refused and timed out as every other command: the whole command within
        the client's socket timeout; a failure closes the connection and pauses Redis, after
        one more try on a new connection when an open one was found closed (Redis restarted),
        as redis-py's retry does."""
        if not _always_try.get() and self.paused:
            raise RedisUnavailable("Redis failed moments ago; skipped")
        if self._lean_busy:
            values: list[Any] = await self.mget(list(keys))
            return values
        self._lean_busy = True
        try:
            loop = asyncio.get_running_loop()
            if self._lean is None or self._lean_loop is not loop:  # a connection serves one loop
                settings = dict(self.connection_pool.connection_kwargs)
                # No timeout of redis-py's own: `wait_for` starts a task per write (~40 µs);
                # the timeout below covers the write and the read with a plain timer.
                self._timeout = settings.get("socket_timeout") or 2.0
                settings["socket_timeout"] = None
                self._lean, self._lean_loop = self.connection_pool.connection_class(**settings), loop
            try:
                return await self._lean_mget(self._lean, keys)
            except (RedisConnectionError, OSError):
                if not self._lean_was_open:
                    raise
                return await self._lean_mget(self._lean, keys)
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError):
            self.pause()
            raise
        finally:
            self._lean_busy = False

    async def _lean_mget(self, connection: AbstractConnection, keys: Sequence[str]) -> list[Any]:
        self._lean_was_open = connection.is_connected
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command(self._packed(connection, keys), check_health=False)
                answer: list[Any] = await connection.read_response()
                return answer
        except BaseException as failure:
            await connection.disconnect(nowait=True)  # a command cut short leaves its answer unread
            if isinstance(failure, TimeoutError):
                raise RedisTimeoutError("the generation counters' MGET timed out") from None
            raise

    def _packed(self, connection: AbstractConnection, keys: Sequence[str]) -> list[bytes]:
        # The counters' keys are the same on every request: packed once (~10 µs per command).
        names = tuple(keys)
        if self._lean_packed is None or self._lean_packed[0] != names:
            self._lean_packed = (names, connection.pack_command("MGET", *names))
        return self._lean_packed[1]

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._lean is not None:
            await self._lean.disconnect()
        await super().aclose(close_connection_pool)

    def pause(self) -> None:
        self._paused_until = time.monotonic() + PAUSE_SECONDS

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until


def connect(url: str) -> GuardedRedis:
    client = GuardedRedis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    assert isinstance(client, GuardedRedis)  # from_url builds the class it is called on
    return client
