"""The guarded Redis client skips Redis for a moment after it failed, but never the writes other
instances rely on: a generation bump (redis-py sends INCRBY) and what runs in `always_try()`.
Its counters' read on a connection of its own answers as MGET, and fails and pauses as any
command."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import generations, redisclient
from backend.state import AppState
from tests.support.world import World


async def test_a_paused_client_skips_reads_but_not_generation_bumps(world: World) -> None:
    state: AppState = world.state
    guarded = redisclient.connect(state.settings.redis_url or "")
    plain = Redis.from_url(state.settings.redis_url or "")
    key = generations.key(state, "signin")
    try:
        before = int(await plain.get(key) or 0)
        guarded.pause()
        with pytest.raises(redisclient.RedisUnavailable):
            await guarded.get(key)  # a read: the caller takes its fallback at once
        await generations.bump(dataclasses.replace(state, redis=guarded), "signin")
        assert int(await plain.get(key) or 0) == before + 1  # the bump went through
        with redisclient.always_try():
            assert int(await guarded.get(key) or 0) == before + 1
        assert guarded.paused
    finally:
        await guarded.aclose()
        await plain.aclose()


# --- the generation counters' own connection (decision 040's second amendment) ---------------


async def test_read_counters_answers_as_mget_and_sees_each_bump_at_once(world: World) -> None:
    guarded = redisclient.connect(world.state.settings.redis_url or "")
    other = Redis.from_url(world.state.settings.redis_url or "")  # another instance
    keys = [generations.key(world.state, "signin"), generations.key(world.state, "directory"), "no-such-key"]
    try:
        assert await guarded.read_counters(keys) == await other.mget(keys)
        before = await guarded.read_counters(keys)
        await other.incr(keys[1])
        after = await guarded.read_counters(keys)  # the next read, on the same connection
        assert int(after[1] or 0) == int(before[1] or 0) + 1 and after[0] == before[0] and after[2] is None
    finally:
        await guarded.aclose()
        await other.aclose()


async def test_read_counters_while_its_connection_is_busy_takes_the_ordinary_path(world: World) -> None:
    guarded = redisclient.connect(world.state.settings.redis_url or "")
    key = generations.key(world.state, "signin")
    try:
        answers = await asyncio.gather(*(guarded.read_counters([key]) for _ in range(5)))
        assert len({tuple(a) for a in answers}) == 1
        assert not guarded.paused
    finally:
        await guarded.aclose()


async def test_read_counters_without_redis_pauses_and_then_skips(world: World) -> None:
    gone = redisclient.connect("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RedisError):
            await gone.read_counters(["a"])
        assert gone.paused
        with pytest.raises(redisclient.RedisUnavailable):
            await gone.read_counters(["a"])
    finally:
        await gone.aclose()


async def test_read_counters_after_redis_closed_its_connection_reads_on_a_new_one(world: World) -> None:
    # Named, so that only its own connection is closed: killing every client (TYPE normal) also
    # cut the session app's connections and any other user of a shared Redis server.
    name = f"test-closed-{uuid.uuid4().hex[:8]}"
    guarded = redisclient.GuardedRedis.from_url(world.state.settings.redis_url or "", client_name=name)
    other = Redis.from_url(world.state.settings.redis_url or "")
    key = generations.key(world.state, "signin")
    try:
        await guarded.read_counters([key])
        own = [client["id"] for client in await other.client_list() if client.get("name") == name]
        assert own
        for client_id in own:  # as a restart would
            await other.execute_command("CLIENT", "KILL", "ID", client_id)
        assert await guarded.read_counters([key]) == await other.mget([key])
        assert not guarded.paused
    finally:
        await guarded.aclose()
        await other.aclose()


async def test_read_counters_cut_short_leaves_no_answer_behind(world: World) -> None:
    """A request cancelled mid-read (its client went away) closes the connection: the next read
    never takes the answer meant for the one cancelled."""
    guarded = redisclient.connect(world.state.settings.redis_url or "")
    other = Redis.from_url(world.state.settings.redis_url or "")
    first, second = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    try:
        await other.set(first, 1)
        await other.set(second, 2)
        reading = asyncio.ensure_future(guarded.read_counters([first]))
        await asyncio.sleep(0)  # the command is written; its answer not read
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert await guarded.read_counters([second]) == await other.mget([second])
    finally:
        await other.delete(first, second)
        await guarded.aclose()
        await other.aclose()
