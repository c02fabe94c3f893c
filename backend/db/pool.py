"""The asyncpg pool of the application role, and the one way to take a connection from it.

Connection discipline (docs/decisions/013-connection-discipline.md):

- One connection per unit of work. Code that holds a connection of a pool never waits for a
  second one of the same pool: with every connection held by such code, nobody can ever get
  one back, and the instance wedges for good. `acquire` knows, per task (a context variable,
  inherited by the tasks a holder starts and awaits), which pools the current unit of work
  holds, and refuses a second connection: it raises `SecondConnection` where the rule is
  enforced (the test suite, `enforce_one_connection`), and logs an error elsewhere. Code that
  *may* acquire (behind a cache that usually answers) says so with `may_acquire`, so the
  guard fires on every call, not only on the cache miss a test happens to provoke.
- Every acquire has a timeout (`DB_ACQUIRE_TIMEOUT_SECONDS`): a request that cannot get a
  connection fails with `PoolExhausted` (503 with Retry-After, GraphQL SERVICE_UNAVAILABLE)
  instead of queueing for ever.
- `PoolWatch` tells how long the pool has been starved (someone waited and no connection was
  handed out since); /readyz fails and an alert fires once that exceeds
  `DB_POOL_STARVED_SECONDS`. A wedge never looks healthy.

Nothing else in the application calls `pool.acquire()` or the pool's query shortcuts
(`pool.fetch`, `pool.execute` …): tests/db/test_connection_discipline.py checks the source.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, cast

import asyncpg
import structlog

from backend.errors import PoolExhausted

log = structlog.get_logger("db.pool")

DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 5.0
DEFAULT_STARVED_SECONDS = 30.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class SecondConnection(RuntimeError):
    """A unit of work asked its pool for a second connection while it holds one."""


class PoolWatch:
    """What this process knows about waiting for its pool: how many wait now, how many gave up,
    and since when the pool has been starved. Starved: someone waited for a connection and none
    was handed out since. A busy pool hands connections out all the time (each handout restarts
    the clock); a wedged one hands out none, however many requests come and time out."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        acquire_timeout: float | None,
        starved_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.acquire_timeout = acquire_timeout
        self.starved_after = starved_after
        self.waiting = 0
        self.timeouts = 0
        self._starved_since: float | None = None

    def has_room(self) -> bool:
        """A connection is free now, or may still be opened."""
        pool = self.pool
        return pool.get_idle_size() > 0 or pool.get_size() < pool.get_max_size()

    def waits(self) -> None:
        self.waiting += 1
        if self._starved_since is None:
            self._starved_since = self.clock()

    def handed_out(self) -> None:
        self.waiting -= 1
        # Progress: whoever still waits has waited only since now.
        self._starved_since = self.clock() if self.waiting else None

    def gave_up(self, timed_out: bool) -> None:
        self.waiting -= 1
        if timed_out:
            self.timeouts += 1

    def starved_for(self) -> float:
        """Seconds the pool has been starved; 0 when it is not."""
        if self._starved_since is None:
            return 0.0
        if self.waiting == 0 and self.has_room():  # recovered and nobody asked since
            self._starved_since = None
            return 0.0
        return self.clock() - self._starved_since

    def starved(self) -> bool:
        """Starved for longer than the threshold: the instance must not look ready."""
        return self.starved_for() > self.starved_after

    @property
    def retry_after(self) -> int:
        """Seconds a client is told to wait after a 503: about as long as we waited for it."""
        return max(1, math.ceil(self.acquire_timeout or DEFAULT_ACQUIRE_TIMEOUT_SECONDS))


class AppPool(asyncpg.Pool):
    """asyncpg's pool, carrying its watch (and through it its acquire timeout)."""

    __slots__ = ("watch",)
    watch: PoolWatch


def watch_of(pool: asyncpg.Pool) -> PoolWatch | None:
    return pool.watch if isinstance(pool, AppPool) else None


async def create_pool(
    url: str,
    min_size: int,
    max_size: int,
    *,
    acquire_timeout: float | None = DEFAULT_ACQUIRE_TIMEOUT_SECONDS,
    starved_after: float = DEFAULT_STARVED_SECONDS,
) -> AppPool:
    # As asyncpg.create_pool builds it, with our class (it takes no pool class argument).
    pool = AppPool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={"application_name": "buergerservice"},
        command_timeout=30,
    )
    pool.watch = PoolWatch(pool, acquire_timeout, starved_after)
    await pool
    return pool


# --- one connection per unit of work ---------------------------------------------------------

# The pools (by id) whose connection the current unit of work holds. Tasks copy it when they
# start: a task a holder starts and awaits belongs to its unit of work; a detached task (a
# background refresh) must start with a fresh context (`contextvars.Context()`).
_held: ContextVar[tuple[int, ...]] = ContextVar("held_pools", default=())
_enforced = False


def enforce_one_connection(enforced: bool = True) -> None:
    """Raise `SecondConnection` on a violation (the test suite) instead of logging it."""
    global _enforced
    _enforced = enforced


def holds_connection(pool: asyncpg.Pool) -> bool:
    return id(pool) in _held.get()


def _where() -> list[str]:
    """The application frames that led here (for the log line of a violation)."""
    frames = [f for f in traceback.extract_stack() if "/backend/" in f.filename and "/db/pool.py" not in f.filename]
    return [f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno} {f.name}" for f in frames][-6:]


def may_acquire(pool: asyncpg.Pool) -> None:
    """Call before work that may take a connection of `pool` (on a cache miss, say): fails
    like a second acquire would when the current unit of work already holds one of it."""
    if id(pool) not in _held.get():
        return
    message = (
        "a unit of work that holds a database connection waits for a second one of the same pool "
        "(it can wedge the instance once every connection is held so): use the connection it holds, "
        "or do this before acquiring"
    )
    if _enforced:
        raise SecondConnection(message)
    log.error("second_connection_requested", where=_where())


# --- acquire with a timeout --------------------------------------------------------------------

# Overrides the pool's acquire timeout within a block (readers that must not wait long: the
# metrics scrape).
_acquire_timeout: ContextVar[float | None] = ContextVar("acquire_timeout", default=None)


@contextmanager
def acquire_timeout(seconds: float) -> Iterator[None]:
    """Within this block `acquire` (and the transactions built on it) gives up after `seconds`
    instead of the pool's timeout: for readers that must not wait for the pool (the metrics
    scrape) and would rather report what they had."""
    token = _acquire_timeout.set(seconds)
    try:
        yield
    finally:
        _acquire_timeout.reset(token)


@asynccontextmanager
async def acquire(
    pool: asyncpg.Pool, *, wait_seconds: float | None = None, quiet: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, typed as the Connection repositories take. Waits at most `wait_seconds`
    (else the block's `acquire_timeout`, else the pool's), then raises `PoolExhausted`, logged
    with the request id unless `quiet` (the readiness probe reports it itself)."""
    may_acquire(pool)
    watch = watch_of(pool)
    wait = wait_seconds if wait_seconds is not None else _acquire_timeout.get()
    if wait is None and watch is not None:
        wait = watch.acquire_timeout
    if watch is not None:
        watch.waits()
    try:
        conn: Any = await pool.acquire(timeout=wait)
    except TimeoutError:
        retry_after = watch.retry_after if watch is not None else 1
        if watch is not None:
            watch.gave_up(timed_out=True)
        if not quiet:
            log.warning(
                "database_pool_exhausted",
                waited_seconds=wait,
                pool_size=pool.get_size(),
                pool_max=pool.get_max_size(),
                waiting=watch.waiting if watch is not None else None,
                starved_seconds=round(watch.starved_for(), 1) if watch is not None else None,
            )
        raise PoolExhausted(retry_after) from None
    except BaseException:
        if watch is not None:
            watch.gave_up(timed_out=False)
        raise
    if watch is not None:
        watch.handed_out()
    outer = _held.get()
    _held.set((*outer, id(pool)))
    try:
        yield cast(asyncpg.Connection, conn)
    finally:
        _held.set(outer)
        await pool.release(conn)
