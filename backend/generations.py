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
import dataclasses
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from uuid import uuid4

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
    """All counters: from the instance's lease while it holds one (no round trip), else in one
    round trip (shared with the requests that asked while another read was under way); None when
    Redis cannot be reached (trust nothing)."""
    lease = app.generation_lease
    if lease is not None and (held := lease.current()) is not None:
        return held
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


def channel(app: AppState) -> str:
    """Where every bump is published (`b <counter> <value>`), for the instances' leases."""
    return f"generations:{app.namespace}"


# The increment and its announcement in one step: a bump that other instances' leases did not
# hear of would leave them serving the old counter while their heartbeats still come back.
_BUMP = "local v = redis.call('INCR', KEYS[1]) redis.call('PUBLISH', ARGV[1], ARGV[2] .. v) return v"


async def bump(app: AppState, counter: Counter) -> None:
    """Increment a counter and announce it; returns once no instance can still serve requests
    from a lease that predates it (decision 009, amended 2026-12-07: the lease)."""
    try:
        with always_try():  # even right after Redis failed: other instances rely on the bump
            await app.redis.eval(_BUMP, 1, key(app, counter), channel(app), f"b {counter} ")
    except RedisError:
        log.warning("generation_unavailable", counter=counter)
    if counter in _COUNTERS:  # what leases hold ("knowledge" is read per search, never held)
        # Waited even after a failure: a command that timed out may still have run.
        await _outlast_leases(app)


# The moments until which the bumps of one unit of work's after-commit hooks must wait: waited
# once, at the end, rather than once per counter (`bumps_settled`).
_settling: ContextVar[list[float] | None] = ContextVar("generation_bumps_settling", default=None)


def _lease_seconds(app: AppState) -> float:
    return app.settings.generation_lease_ms / 1000


def _wait_after_bump(app: AppState) -> float:
    # A lease is measured on the reader's monotonic clock, the wait on the writer's: 1 % more
    # (and at least a millisecond) covers rates that differ by NTP's slewing (≤ 0.05 %).
    lease = _lease_seconds(app)
    return lease + max(0.001, lease / 100) if lease else 0.0


async def _outlast_leases(app: AppState) -> None:
    wait = _wait_after_bump(app)
    if not wait:
        return
    until = time.monotonic() + wait
    batch = _settling.get()
    if batch is not None:
        batch.append(until)
        return
    await asyncio.sleep(wait)


@asynccontextmanager
async def bumps_settled() -> AsyncIterator[None]:
    """The bumps inside wait for the leases once, when the block ends (even by an error: what
    was bumped is committed), instead of each on its own."""
    batch: list[float] = []
    token = _settling.set(batch)
    try:
        yield
    finally:
        _settling.reset(token)
        if batch:
            await asyncio.sleep(max(0.0, max(batch) - time.monotonic()))


class Lease:
    """An instance's counters held in process, trusted for `generation_lease_ms` after a
    heartbeat that came back (decision 009, amended 2026-12-07).

    A task keeps one connection subscribed to the bumps' channel and to a channel of the
    instance's own, reads the counters once after both subscriptions are confirmed, then applies
    every announced bump in the order Redis sends them. Every fifth of the lease it publishes a
    heartbeat to its own channel, noting the monotonic time *before* sending it. Redis writes to
    one subscriber connection in the order it ran the publishes, so when a heartbeat comes back,
    every bump Redis ran before it has been applied; the counters are then current as of the
    heartbeat's sending at least. They are trusted while now − that sending < the lease. A bump's
    writer waits the lease (and a margin) after Redis ran it (`bump`) before its request answers,
    so a request that starts after that answer finds, on any instance, either a lease begun after
    the bump (whose counters include it) or none (and reads Redis, as before). Anything
    unexpected — a refused, closed or silent connection, a reply out of place — ends the
    session: no lease until a new subscription, a new read and a new heartbeat."""

    def __init__(self, app: AppState, lease_ms: int) -> None:
        self.app = app
        self.length = lease_ms / 1000
        self.every = self.length / 5
        self.silence = max(1.0, 5 * self.length)  # no message for this long: the connection is gone
        # A bump nobody announced — an instance of a version before the lease, during a rolling
        # deploy, INCRs without PUBLISH — would otherwise never reach the held counters: read them
        # again now and then, so such a change is in force within this time at the latest.
        self.reread = 1.0
        self.counters: Generations | None = None
        self.since = -math.inf  # when the last heartbeat that came back was sent (monotonic)
        self.instance = uuid4().hex
        self.sessions = 0  # observed by tests
        self.connection: Any = None  # the subscribed connection of the session under way
        self._sent: dict[int, float] = {}
        self._epoch = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def current(self) -> Generations | None:
        counters = self.counters
        if counters is not None and time.monotonic() - self.since < self.length:
            return counters
        return None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._drop()

    def _drop(self) -> None:
        self.counters, self.since = None, -math.inf
        self._sent.clear()
        self._epoch += 1  # heartbeats of an earlier session never count

    async def _run(self) -> None:
        pause = self.every
        # Not `while True`: a cancellation swallowed on the way (redis-py under a socket timeout
        # has been seen to) must not keep a stopped lease alive, nor the loop from closing.
        while not self._stopped:
            held = self.since
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis refused, closed, hung: read Redis per request meanwhile
                if self.since != held:  # said once per lease lost, not per failed try
                    log.info("generation_lease_lost", error=type(error).__name__)
            # A session that held a lease tries again at once; failed tries back off up to 1 s.
            pause = self.every if self.since != held else min(1.0, pause * 2)
            self._drop()
            await asyncio.sleep(pause)

    async def _session(self) -> None:
        self.sessions += 1
        connection = subscriber_connection(self.app.redis.connection_pool, f"lease:{self.instance}")
        everyone, own = channel(self.app), f"{channel(self.app)}:{self.instance}"
        epoch = self._epoch
        beating: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(self.silence):
                await connection.connect()
                self.connection = connection
                await connection.send_command("SUBSCRIBE", everyone, own)
                for _ in range(2):
                    confirmed = await connection.read_response()
                    if not (isinstance(confirmed, list) and confirmed[0] == b"subscribe"):
                        raise ConnectionError("unexpected reply to SUBSCRIBE")
            # Read after both subscriptions are in force: a bump Redis ran before them is in this
            # read (its INCR came first), one after them is announced on the connection.
            read = await _mget(self.app)
            if read is None:
                raise ConnectionError("the counters could not be read")
            self.counters = read
            beating = asyncio.ensure_future(self._beat(own, epoch))
            while True:
                async with asyncio.timeout(self.silence):
                    message = await connection.read_response()
                if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
                    raise ConnectionError("unexpected message on the subscription")
                self._apply(message[2], epoch)
        finally:
            self.connection = None
            if beating is not None:
                beating.cancel()
            await connection.disconnect(nowait=True)

    def _apply(self, data: bytes, epoch: int) -> None:
        kind, _, rest = data.decode().partition(" ")
        if kind == "b":
            counter, _, value = rest.partition(" ")
            counters = self.counters
            if counters is not None and counter in _COUNTERS and int(value) > getattr(counters, counter):
                self.counters = replace(counters, **{counter: int(value)})
        elif kind == "h":
            beat_epoch, _, seq = rest.partition(" ")
            if int(beat_epoch) != epoch:
                return
            sent = self._sent.pop(int(seq), None)
            if sent is not None:
                self.since = max(self.since, sent)

    async def _beat(self, own: str, epoch: int) -> None:
        seq = 0
        reread = time.monotonic() + self.reread
        # A session's heartbeats end with it (its epoch), even if their cancellation was swallowed
        # inside a command: seen as dozens of orphaned heartbeat tasks in the suite, which kept the
        # test session's loop from closing.
        while epoch == self._epoch and not self._stopped:
            seq += 1
            self._sent[seq] = time.monotonic()  # before sending: the lease counts from here
            self._sent.pop(seq - 64, None)  # never came back: forget it
            with suppress(RedisError):  # no heartbeat back: the lease runs out
                await self.app.redis.publish(own, f"h {epoch} {seq}")
            if time.monotonic() >= reread:
                reread = time.monotonic() + self.reread
                await self._take_unannounced(epoch)
            await asyncio.sleep(self.every)

    async def _take_unannounced(self, epoch: int) -> None:
        read = await _mget(self.app)
        held = self.counters
        if read is None or held is None or epoch != self._epoch:
            return
        # Counters only move up: the larger of each, so an announcement applied meanwhile stays.
        merged = Generations(
            *(max(a, b) for a, b in zip(dataclasses.astuple(held), dataclasses.astuple(read), strict=True))
        )
        if merged != held:
            log.warning("generation_bump_unannounced", held=dataclasses.asdict(held), read=dataclasses.asdict(read))
            self.counters = merged


def subscriber_connection(pool: Any, name: str) -> Any:
    """A connection of its own for the lease's subscription, made like the pool's but: no socket
    timeout (the session keeps its own), named for CLIENT LIST (operators, tests), RESP2 (messages
    as plain replies; RESP3 would send them as pushes), and without redis-py's maintenance
    notifications, which it turns on by itself for a TCP address and which refuse RESP2: with them
    the connection could not even be made, so against a Redis reached over TCP — every real
    deployment — no lease was ever held (the suite's embedded Redis is a Unix socket)."""
    settings = dict(pool.connection_kwargs)
    settings.pop("maint_notifications_pool_handler", None)
    settings["maint_notifications_config"] = None
    settings["socket_timeout"] = None
    settings["client_name"] = name
    settings["protocol"] = 2
    return pool.connection_class(**settings)


def keep_on_request(connection: ASGIConnection[Any, Any, Any, Any], generations: Generations | None) -> None:
    connection.scope.setdefault("state", {})[_STATE_KEY] = generations


def of_request(connection: ASGIConnection[Any, Any, Any, Any] | None) -> Generations | None:
    """What this request read at sign-in; None if it read nothing (then read again)."""
    if connection is None:
        return None
    value = connection.scope.get("state", {}).get(_STATE_KEY)
    return value if isinstance(value, Generations) else None
