"""The generation lease (decision 009, amended 2026-12-07): an instance serves the counters from
process while a heartbeat through Redis vouches for them, and a bump's writer waits the lease out,
so a committed change is still seen by the next request on every instance. No heartbeat back (a
killed connection, a paused or absent Redis): no lease, every request reads Redis as before."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis

from backend import generations, redisclient
from backend.generations import Lease
from backend.settings import SettingsError, load_settings
from backend.state import AppState
from tests.support.world import World

LEASE_MS = 100


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
async def other(world: World) -> AsyncIterator[AppState]:
    """Another instance on the world's PostgreSQL and Redis, with a lease of its own."""
    redis = redisclient.connect(world.state.settings.redis_url or "")
    state = dataclasses.replace(world.state, redis=redis)
    assert state.generation_lease is None  # a state of its own starts none
    state.generation_lease = Lease(state, LEASE_MS)
    state.generation_lease.start()
    try:
        await until(lambda: state.generation_lease is not None and state.generation_lease.current() is not None)
        yield state
    finally:
        await state.generation_lease.stop()
        await redis.aclose()


def lease_of(state: AppState) -> Lease:
    assert state.generation_lease is not None
    return state.generation_lease


async def test_the_suites_app_holds_a_lease_and_a_request_reads_no_counters(
    world: World, client: httpx.AsyncClient
) -> None:
    assert world.state.settings.generation_lease_ms == LEASE_MS  # the default: on
    lease = lease_of(world.state)
    await until(lambda: lease.current() is not None)
    trips = world.state.generation_reads.round_trips
    me = await client.get("/v1/me", headers=world.headers("stadt-soest", "agent"))
    assert me.status_code == 200, me.text
    assert world.state.generation_reads.round_trips == trips  # the counters came from the lease
    assert await generations.read(world.state) == lease.current()


async def test_a_bump_is_seen_by_the_next_read_on_another_instance(world: World, other: AppState) -> None:
    lease = lease_of(other)
    for counter in ("signin", "routing", "directory", "presence", "directory", "signin"):
        before = await generations.read(other)
        assert before is not None
        trips = other.generation_reads.round_trips
        await generations.bump(world.state, counter)  # returns once no lease predates it
        after = await generations.read(other)
        assert after is not None and lease.current() is not None
        assert other.generation_reads.round_trips == trips  # from the lease, not from Redis
        assert getattr(after, counter) == getattr(before, counter) + 1, counter


async def test_a_change_committed_on_one_instance_is_in_force_on_the_other_at_once(
    world: World, client: httpx.AsyncClient, other: AppState
) -> None:
    """Through the real write path: a department's hours changed over HTTP bump `directory` after
    commit; the other instance's next read sees the new generation without asking Redis."""
    before = await generations.read(other)
    assert before is not None
    slug = world.slug("stadt-soest")
    admin = world.headers("stadt-soest", "town-admin")
    created = await client.post(
        f"/v1/tenants/{slug}/departments", json={"name": f"Lease {world.suffix}"}, headers=admin
    )
    assert created.status_code == 201, created.text
    after = await generations.read(other)
    assert after is not None and after.directory > before.directory
    assert lease_of(other).current() == after


async def test_a_bump_not_announced_is_not_seen_until_the_lease_is_gone(world: World, other: AppState) -> None:
    """What the lease serves is the process's copy: a counter moved behind its back (an INCR
    without the announcement no code of ours sends) shows that the reads come from the lease."""
    lease = lease_of(other)
    held = lease.current()
    assert held is not None
    plain = Redis.from_url(world.state.settings.redis_url or "")
    try:
        await plain.incr(generations.key(world.state, "routing"))
        assert (await generations.read(other)) == held
    finally:
        await plain.aclose()


async def test_a_bump_not_announced_is_taken_within_a_reread(world: World, other: AppState) -> None:
    """An instance of a version before the lease (a rolling deploy) bumps with a plain INCR: the
    held counters take it at the next re-read (every `reread` seconds), never lower one."""
    lease = lease_of(other)
    held = lease.current()
    assert held is not None
    plain = Redis.from_url(world.state.settings.redis_url or "")
    try:
        moved = await plain.incr(generations.key(world.state, "routing"))
        started = time.monotonic()
        await until(lambda: lease.counters is not None and lease.counters.routing == moved, 3 * lease.reread)
        assert time.monotonic() - started <= 2 * lease.reread
        taken = lease.counters
        assert taken is not None and (taken.signin, taken.directory, taken.presence) >= (
            held.signin,
            held.directory,
            held.presence,
        )
    finally:
        await plain.aclose()


async def test_a_heartbeat_back_comes_after_every_bump_redis_ran_before_it(world: World, other: AppState) -> None:
    """Ordering: a bump announced (without any wait) before a heartbeat was sent is applied by
    the time that heartbeat renews the lease — every time."""
    lease = lease_of(other)
    for _ in range(5):
        value = await world.state.redis.eval(
            generations._BUMP,
            1,
            generations.key(world.state, "presence"),
            generations.channel(world.state),
            "b presence ",
        )
        after = time.monotonic()
        await until(lambda t=after: lease.since > t)  # a heartbeat sent after the bump came back
        counters = lease.counters
        assert counters is not None and counters.presence >= int(value)


async def test_a_heartbeat_of_an_earlier_session_does_not_renew(other: AppState) -> None:
    lease = lease_of(other)
    since = lease.since
    lease._sent[10**9] = time.monotonic() + 60  # as if sent, in a session that ended
    lease._apply(f"h {lease._epoch - 1} {10**9}".encode(), lease._epoch)
    assert lease.since == since


async def test_the_lease_ends_when_its_connection_is_killed_and_comes_back(world: World, other: AppState) -> None:
    lease = lease_of(other)
    sessions = lease.sessions
    plain = Redis.from_url(world.state.settings.redis_url or "", decode_responses=True)
    try:
        mine = [c["id"] for c in await plain.client_list() if c["name"] == f"lease:{lease.instance}"]
        assert len(mine) == 1
        await plain.client_kill_filter(_id=mine[0])
        await until(lambda: lease.current() is None, seconds=1)
        trips = other.generation_reads.round_trips
        read = await generations.read(other)
        assert read is not None and other.generation_reads.round_trips == trips + 1  # read from Redis
        await until(lambda: lease.current() is not None)  # a new session, a new read, a heartbeat
        assert lease.sessions > sessions
    finally:
        await plain.aclose()


async def test_the_lease_ends_while_redis_holds_writes_and_requests_read_redis(world: World, other: AppState) -> None:
    lease = lease_of(other)
    plain = Redis.from_url(world.state.settings.redis_url or "")
    try:
        await plain.execute_command("CLIENT", "PAUSE", "600", "WRITE")  # PUBLISH waits: no heartbeat back
        started = time.monotonic()
        await until(lambda: lease.current() is None, seconds=1)
        assert time.monotonic() - started < LEASE_MS / 1000 + 0.1
        trips = other.generation_reads.round_trips
        assert await generations.read(other) is not None  # MGET is a read: served while writes wait
        assert other.generation_reads.round_trips == trips + 1
    finally:
        await plain.execute_command("CLIENT", "UNPAUSE")
        await plain.aclose()
    await until(lambda: lease.current() is not None)


async def test_without_redis_there_is_no_lease_and_nothing_is_trusted(world: World) -> None:
    redis = redisclient.connect("redis://127.0.0.1:1/0")  # nothing listens there
    state = dataclasses.replace(world.state, redis=redis)
    lease = state.generation_lease = Lease(state, LEASE_MS)
    lease.start()
    try:
        await until(lambda: lease.sessions >= 2)  # tried, failed, tried again
        assert lease.current() is None
        assert await generations.read(state) is None  # the request's fallback: trust nothing
        tries = lease.sessions
        await asyncio.sleep(1.5)
        assert lease.sessions - tries <= 6  # backs off (40, 80 … 1,000 ms), not 50 tries a second
        assert lease.current() is None
    finally:
        await lease.stop()
        await redis.aclose()


async def test_a_writer_waits_the_lease_once_per_unit_of_work(world: World) -> None:
    wait = LEASE_MS / 1000
    started = time.monotonic()
    await generations.bump(world.state, "presence")
    alone = time.monotonic() - started
    assert alone >= wait
    started = time.monotonic()
    async with generations.bumps_settled():
        for counter in ("signin", "routing", "directory"):
            await generations.bump(world.state, counter)
    together = time.monotonic() - started
    assert wait <= together < 2 * wait  # once, not three times


async def test_no_lease_no_wait(world: World) -> None:
    state = dataclasses.replace(world.state, settings=dataclasses.replace(world.state.settings, generation_lease_ms=0))
    started = time.monotonic()
    await generations.bump(state, "presence")
    assert time.monotonic() - started < LEASE_MS / 1000


def test_the_lease_setting_is_checked() -> None:
    assert load_settings({}).generation_lease_ms == LEASE_MS
    assert load_settings({"GENERATION_LEASE_MS": "0"}).generation_lease_ms == 0
    assert load_settings({"GENERATION_LEASE_MS": "250"}).generation_lease_ms == 250
    for bad in ("-5", "soon", "2001"):
        with pytest.raises(SettingsError, match="GENERATION_LEASE_MS"):
            load_settings({"GENERATION_LEASE_MS": bad})


async def test_a_stopped_lease_leaves_no_heartbeat_behind_even_if_a_command_swallows_its_cancel(
    world: World,
) -> None:
    """A heartbeat task whose cancellation a command swallowed (seen in the suite: dozens of
    orphaned heartbeats kept the test session's loop from closing) ends with its session."""
    redis = redisclient.connect(world.state.settings.redis_url or "")
    state = dataclasses.replace(world.state, redis=redis)
    lease = state.generation_lease = Lease(state, LEASE_MS)
    publish = redis.publish
    stopping = asyncio.Event()

    async def swallowing(*args: object) -> object:
        try:
            if stopping.is_set():
                await asyncio.sleep(0.5)  # a command hanging when the stop comes
            return await publish(*args)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            return 0  # the cancellation swallowed

    redis.publish = swallowing  # type: ignore[method-assign]
    try:
        lease.start()
        await until(lambda: lease.current() is not None)
        mine = [
            t
            for t in asyncio.all_tasks()
            if (frame := t.get_coro().cr_frame) is not None and frame.f_locals.get("self") is lease
        ]
        assert len(mine) == 2  # the session's run and its heartbeats
        stopping.set()
        await asyncio.sleep(0.1)  # the heartbeat is in the hanging command now
        await lease.stop()
        await until(lambda: all(t.done() for t in mine), 2.0)
        assert lease.current() is None
    finally:
        stopping.clear()
        await lease.stop()
        await redis.aclose()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://redis.example:6380/1", "unix:///run/redis.sock"])
def test_the_subscription_connection_is_made_for_every_kind_of_address(url: str) -> None:
    """redis-py turns maintenance notifications on by itself for a TCP address, and they refuse
    the RESP2 the subscription reads: the connection could not be made, so against a Redis reached
    over TCP no lease was ever held (the suite's embedded Redis is a Unix socket; the whole file
    runs over TCP when REDIS_URL names a server). Made, not connected: no server needed."""
    connection = generations.subscriber_connection(redisclient.connect(url).connection_pool, "lease:test")
    assert connection.protocol == 2
    assert connection.client_name == "lease:test"
    assert connection.socket_timeout is None
