"""The guarded Redis client skips Redis for a moment after it failed, but never the writes other
instances rely on: a generation bump (redis-py sends INCRBY) and what runs in `always_try()`."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

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
