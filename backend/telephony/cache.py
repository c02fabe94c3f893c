"""The routing table on the hot path: compiled once, shared through Redis, held in process.

Every request reads one small Redis key, the routing generation (`backend.generations`; a
request that signed in has read it already, with the sign-in generation, in one round trip).
Each committed change to numbers, windows, absences or area codes increments it
(`routing_changed`, run by `uow.after_commit`), so the next request on any instance sees a
new generation and loads that generation's table
from Redis, or compiles it from PostgreSQL and shares it. A table compiled before the change
can only be stored under the old generation, which nobody asks for any more.

Changes made by the tenants domain (closing days, departments, service hours, names) bump it
too: `create_app` registers `routing_changed` as a tenant-change listener. As a safety net
(should a bump ever be lost) a table older than `MAX_AGE_SECONDS` is replaced: in the
background while the current one still answers — compiling 10^4 numbers takes long enough
that making every request wait for it showed up as a p99 spike once a minute — and waited
for once it is twice that old. A new generation is always waited for. When Redis is
unavailable, nothing cached is trusted: the answer is computed from PostgreSQL for the one
dialled number and the caller's tenants.

Callers inside a unit of work (recording a call, assigning one, importing calls) hold a pooled
connection and must never wait for another (decision 013: with every connection held by such
callers, the instance wedged for good). They pass that connection (`conn`): they never wait for
the pool nor for the lock of someone who may, take the shared table when it is current, and
otherwise decide on their own connection from the rows of the dialled number and their tenants
(source "transaction"), while the shared table is loaded in the background, on a connection of
its own, by a task that holds nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import generations
from backend.db.pool import acquire, may_acquire
from backend.errors import PoolExhausted
from backend.generations import Generations
from backend.state import AppState
from backend.telephony import repository
from backend.telephony.routing import CompiledRouting, RoutingTable, compile_table, decode_table, encode_table

MAX_AGE_SECONDS = 60
log = structlog.get_logger("telephony.cache")


@dataclass
class _Local:
    generation: int = -1
    compiled: CompiledRouting | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refreshing: asyncio.Task[None] | None = None  # the background replacement or load of a table


# One in-process copy per app instance (keyed by its Redis client, which lives as long as it).
_LOCAL: weakref.WeakKeyDictionary[Redis, _Local] = weakref.WeakKeyDictionary()


def _local(app: AppState) -> _Local:
    local = _LOCAL.get(app.redis)
    if local is None:
        local = _LOCAL[app.redis] = _Local()
    return local


def _prefix(app: AppState) -> str:
    return f"telephony:{app.namespace}:routing:"


def generation_key(app: AppState) -> str:
    return generations.key(app, "routing")


def _table_key(app: AppState, generation: int) -> str:
    return f"{_prefix(app)}table:{generation}"


async def routing_changed(app: AppState) -> None:
    """After a committed change: every instance compiles or loads a new table next time."""
    _local(app).compiled = None
    await generations.bump(app, "routing")


_Rows = tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]


async def _rows(conn: asyncpg.Connection, tenant_ids: Sequence[UUID] | None, dialled: str | None) -> _Rows:
    return (
        await repository.routing_numbers(conn, tenant_ids, dialled),
        await repository.routing_tenants(conn, tenant_ids),
        await repository.routing_area_codes(conn, tenant_ids),
    )


async def _compile(rows: _Rows, dialled: str | None, compiled_at: float) -> RoutingTable:
    if dialled is not None:  # a few rows: not worth a thread
        return compile_table(*rows, compiled_at)
    # The whole table is CPU work of some 100 ms: in a thread, so the event loop keeps serving.
    return await asyncio.to_thread(compile_table, *rows, compiled_at)


async def compile_on(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID] | None = None, dialled: str | None = None
) -> RoutingTable:
    """The routing table (of `tenant_ids`, for `dialled`; None: all) read on a connection the
    caller holds already: its unit of work's."""
    compiled_at = time.time()
    return await _compile(await _rows(conn, tenant_ids, dialled), dialled, compiled_at)


async def compile_from_database(
    pool: asyncpg.Pool, tenant_ids: Sequence[UUID] | None = None, dialled: str | None = None
) -> RoutingTable:
    """The same on a connection of its own, released before the CPU work: only for callers
    that hold no connection of `pool` (the guard refuses the others)."""
    compiled_at = time.time()
    async with acquire(pool) as conn:
        rows = await _rows(conn, tenant_ids, dialled)
    return await _compile(rows, dialled, compiled_at)


def table_age(app: AppState) -> float | None:
    """Seconds since the routing table this instance decides with was compiled (None: none yet)."""
    compiled = _local(app).compiled
    return None if compiled is None else time.time() - compiled.table.compiled_at


def _fresh(compiled: CompiledRouting | None, max_age: float = MAX_AGE_SECONDS) -> bool:
    return compiled is not None and time.time() - compiled.table.compiled_at < max_age


async def _load(app: AppState, generation: int) -> CompiledRouting | None:
    """The generation's table from Redis (another instance may have compiled it), else
    compiled from PostgreSQL and shared; None when Redis is unavailable."""
    key = _table_key(app, generation)
    try:
        blob = await app.redis.get(key)
    except RedisError:
        return None
    compiled = CompiledRouting(await asyncio.to_thread(decode_table, blob)) if isinstance(blob, bytes) else None
    if not _fresh(compiled):
        compiled = CompiledRouting(await compile_from_database(app.pool))
        try:
            await app.redis.set(key, encode_table(compiled.table), ex=MAX_AGE_SECONDS)
        except RedisError:
            return None
    return compiled


async def _replace(app: AppState, local: _Local, generation: int) -> None:
    """In the background: the generation's table loaded (or compiled) and installed, unless a
    current one is there by then. Holds nothing but the connection it compiles on."""
    try:
        async with local.lock:
            if local.generation == generation and _fresh(local.compiled):
                return  # replaced meanwhile
            compiled = await _load(app, generation)
            if compiled is not None:
                local.generation, local.compiled = generation, compiled
    except PoolExhausted:  # logged by `acquire`; the next request that needs the table tries again
        pass
    except Exception:  # a background task: nobody awaits it, so say what went wrong here
        log.exception("routing_refresh_failed")


def _in_background(app: AppState, local: _Local, generation: int) -> None:
    """Start loading the generation's table unless a load is under way. The task starts with an
    empty context: it is no part of the request that noticed (whose connection it must not be
    taken to hold, and whose request id its log lines must not carry)."""
    if local.refreshing is None or local.refreshing.done():
        local.refreshing = asyncio.create_task(_replace(app, local, generation), context=contextvars.Context())


async def _current(app: AppState, read: Generations | None, wait: bool) -> tuple[CompiledRouting | None, bool]:
    """(the shared table of the current generation or None, whether Redis answered)."""
    local = _local(app)
    if read is not None:
        generation = read.routing
    else:
        try:
            raw = await app.redis.get(generation_key(app))
        except RedisError:
            local.compiled = None  # cannot tell whether it is current: drop it
            return None, False
        generation = int(raw or 0)
    current = local.compiled
    if local.generation == generation and current is not None:
        if _fresh(current):
            return current, True
        if _fresh(current, 2 * MAX_AGE_SECONDS):
            _in_background(app, local, generation)
            return current, True
    if not wait:
        _in_background(app, local, generation)
        return None, True
    async with local.lock:
        if local.generation == generation and _fresh(local.compiled):
            return local.compiled, True
        compiled = await _load(app, generation)
        if compiled is None:
            return None, False
        local.generation, local.compiled = generation, compiled
        return compiled, True


async def cached_routing(
    app: AppState, read: Generations | None = None, *, wait: bool = True
) -> CompiledRouting | None:
    """The shared table of the current generation; None when Redis is unavailable. `read`:
    the generations this request read at sign-in (None: read the routing generation here).
    `wait=False` for callers that hold a connection: they never wait for the pool, nor for the
    lock of a caller who may; None also when the current table is not at hand (it is loaded
    in the background meanwhile)."""
    if wait:
        may_acquire(app.pool)  # on every call, not only when the table happens to be old
    compiled, _ = await _current(app, read, wait)
    return compiled


async def routing_for(
    app: AppState,
    tenant_ids: frozenset[UUID],
    dialled: str,
    read: Generations | None = None,
    *,
    conn: asyncpg.Connection | None = None,
) -> tuple[CompiledRouting, str]:
    """The table to decide with, and where it came from: "cache"; "database" (Redis
    unavailable); "transaction" (the shared table not at hand for a caller in a unit of work).
    `conn`: the connection of the caller's unit of work; without it the caller holds none."""
    if conn is None:
        may_acquire(app.pool)
    compiled, redis_answered = await _current(app, read, wait=conn is None)
    if compiled is not None:
        app.metrics.routing_from_cache.inc()
        return compiled, "cache"
    tenants = sorted(tenant_ids)
    if conn is None:
        app.metrics.routing_from_database.inc()
        return CompiledRouting(await compile_from_database(app.pool, tenants, dialled)), "database"
    # For this call only, on the caller's connection: never shared (it may see the caller's
    # uncommitted writes).
    (app.metrics.routing_from_transaction if redis_answered else app.metrics.routing_from_database).inc()
    return CompiledRouting(await compile_on(conn, tenants, dialled)), "transaction" if redis_answered else "database"
