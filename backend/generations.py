"""Generation counters in Redis for what every request reads and administrators rarely change.

Sign-in (issuers, tenants, agreements), telephony routing (numbers, windows, absences, area
codes, tenant settings), the town directories and their people's presence (the forwarding
decision) are remembered in process under the generation they were read at. A committed change increments its counter
(`bump`, run after commit), so the next request on any
instance reads a new generation and looks again: no instance answers from a state older than
the last commit. A request reads all counters once, in one round trip, at sign-in; what it
read is kept on the request (`of_request`) for the handlers that need it. Requests of the same
moment share that round trip (`SharedRead`, decision 040).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog
from litestar.connection import ASGIConnection
from redis.exceptions import RedisError

from backend.redisclient import GuardedRedis, always_try

if TYPE_CHECKING:  # the app state names this module's Generations in its sign-in hook
    from backend.state import AppState

Counter = Literal["signin", "routing", "directory", "presence", "knowledge"]
# Read at sign-in, in one MGET; "knowledge" only by search.
_COUNTERS: tuple[Counter, ...] = ("signin", "routing", "directory", "presence")
_STATE_KEY = "generations"
log = structlog.get_logger("generations")


@dataclass(frozen=True, slots=True)
class Generations:
    signin: int
    routing: int
    directory: int = 0  # the town directories (backend.directory.compiled)
    presence: int = 0  # their people's own switches and telephone events (the same, decision 039)


def key(app: AppState, counter: Counter) -> str:
    # One Redis may serve several databases (test sessions, staging): keys name theirs.
    return f"{counter}:{app.namespace}:generation"


class SharedRead:
    """The counters' MGET, shared by the requests that ask while one is under way (one per app
    instance).

    A request that finds no read under way reads at once, as before. One that asks while a read
    is under way must not take that answer: the command left before it asked and may predate a
    bump it is owed (decision 009). It waits for the next read instead, which is sent when the
    one under way has answered, and shared by every request that asked in the meantime. That
    read leaves after each of them asked, so it sees every bump that had completed by then —
    what a read of their own would have seen. Under load (wrk's 8 connections on one instance)
    a few requests share each read, and a read costs ~100 µs of CPU in redis-py (decision 040);
    a lone request pays nothing extra."""

    __slots__ = ("round_trips", "sending", "under_way", "waiting")

    def __init__(self) -> None:
        self.under_way = False
        # The requests waiting for the next read, each on a future of its own: one that goes away
        # (client disconnect) cancels its own future, never the others' read, without the extra
        # future and callbacks per waiter that `asyncio.shield` costs (decision 040, fourth
        # amendment).
        self.waiting: list[asyncio.Future[Generations | None]] = []
        self.sending: asyncio.Task[None] | None = None  # held: the loop keeps only weak references
        self.round_trips = 0  # observed by tests

    async def read(self, app: AppState) -> Generations | None:
        if not self.under_way:
            self.under_way = True
            try:
                return await self._mget(app)
            finally:
                self._done(app)
        waiter: asyncio.Future[Generations | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        return await waiter

    def _done(self, app: AppState) -> None:
        if not self.waiting:
            self.under_way = False
            return
        # Still under way: the read for the latecomers is sent by a task, so it happens even if
        # the request that ran the last read was cancelled.
        waiting, self.waiting = self.waiting, []
        self.sending = asyncio.ensure_future(self._read_for(app, waiting))

    async def _read_for(self, app: AppState, waiting: list[asyncio.Future[Generations | None]]) -> None:
        try:
            read = await self._mget(app)
        except asyncio.CancelledError:  # the loop is closing
            for waiter in waiting:
                waiter.cancel()
            raise
        except Exception as error:  # the waiting requests raise it, as their own read would have
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_exception(error)
        else:
            for waiter in waiting:
                if not waiter.done():  # a request that went away cancelled its own
                    waiter.set_result(read)
        finally:
            self._done(app)

    async def _mget(self, app: AppState) -> Generations | None:
        self.round_trips += 1
        return await _mget(app)


async def read(app: AppState) -> Generations | None:
    """All counters in one round trip (shared with the requests that asked while another read
    was under way); None when Redis cannot be reached (trust nothing)."""
    return await app.generation_reads.read(app)


async def _mget(app: AppState) -> Generations | None:
    keys = [key(app, counter) for counter in _COUNTERS]
    try:
        # Our client reads them on a connection of its own (redisclient.read_counters); tests
        # hand in a plain client to hold its answers back.
        values = (
            await app.redis.read_counters(keys) if isinstance(app.redis, GuardedRedis) else await app.redis.mget(keys)
        )
    except RedisError:
        return None
    signin, routing, directory, presence = (int(value or 0) for value in values)
    return Generations(signin=signin, routing=routing, directory=directory, presence=presence)


async def read_one(app: AppState, counter: Counter) -> int | None:
    """One counter (the search's `knowledge`: published documents and their vectors changed);
    None when Redis cannot be reached."""
    try:
        value = await app.redis.get(key(app, counter))
    except RedisError:
        return None
    return int(value or 0)


async def bump(app: AppState, counter: Counter) -> None:
    try:
        with always_try():  # even right after Redis failed: other instances rely on the bump
            await app.redis.incr(key(app, counter))
    except RedisError:
        log.warning("generation_unavailable", counter=counter)


def keep_on_request(connection: ASGIConnection[Any, Any, Any, Any], generations: Generations | None) -> None:
    connection.scope.setdefault("state", {})[_STATE_KEY] = generations


def of_request(connection: ASGIConnection[Any, Any, Any, Any] | None) -> Generations | None:
    """What this request read at sign-in; None if it read nothing (then read again)."""
    if connection is None:
        return None
    value = connection.scope.get("state", {}).get(_STATE_KEY)
    return value if isinstance(value, Generations) else None
