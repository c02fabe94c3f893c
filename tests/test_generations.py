"""Requests of the same moment share the generation counters' MGET (decision 040), and sharing
never hands a request an answer older than its own read would have been (decision 009): a read
that was under way when a request asked left before it, so that request waits for the next."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from backend import generations
from backend.state import AppState
from tests.support.world import World


class HeldAnswers(Redis):
    """The real Redis, whose MGET answers are held back until the test lets them through: the
    command itself runs at once (what it read is fixed then), only its answer arrives late, as
    from a slow network."""

    def __init__(self, url: str) -> None:
        pool = Redis.from_url(url).connection_pool
        super().__init__(connection_pool=pool)
        self.gate = asyncio.Event()
        self.ran = asyncio.Event()  # a command has run (its answer is held)

    async def mget(self, keys: Any, *args: Any) -> Any:  # type: ignore[override]
        values = await super().mget(keys, *args)
        self.ran.set()
        await self.gate.wait()
        return values


@pytest.fixture
async def held(world: World) -> AsyncIterator[tuple[AppState, HeldAnswers, Redis]]:
    """An instance of its own (its own shared read) on the world's Redis, and another client
    of that Redis for bumps, as another instance's."""
    url = world.state.settings.redis_url or ""
    slow, other = HeldAnswers(url), Redis.from_url(url)
    try:
        yield dataclasses.replace(world.state, redis=slow), slow, other
    finally:
        await slow.aclose()
        await other.aclose()


async def test_requests_that_ask_while_a_read_is_under_way_share_the_next(world: World) -> None:
    state = dataclasses.replace(world.state)  # its own SharedRead
    shared = state.generation_reads
    reads = await asyncio.gather(*(generations.read(state) for _ in range(8)))
    # The first reads at once; the seven that asked while its command was out share one more.
    assert shared.round_trips == 2
    assert reads[0] is not None and len(set(reads)) == 1
    assert await generations.read(state) == reads[0]  # a lone request reads on its own
    assert shared.round_trips == 3


async def test_a_bump_before_asking_is_seen_though_a_read_was_under_way(
    held: tuple[AppState, HeldAnswers, Redis],
) -> None:
    state, slow, other = held
    first = asyncio.ensure_future(generations.read(state))
    await slow.ran.wait()  # the first read's command has run; its answer is held back
    await other.incr(generations.key(state, "signin"))  # another instance commits a sign-in change
    later = asyncio.ensure_future(generations.read(state))  # asks after the bump, while the read is out
    await asyncio.sleep(0.01)
    assert not later.done()  # it did not take the answer under way
    slow.gate.set()
    before, after = await first, await later
    assert before is not None and after is not None
    assert after.signin == before.signin + 1  # the answer under way predates the bump; its own does not
    assert state.generation_reads.round_trips == 2


async def test_a_request_that_goes_away_leaves_the_others_their_read(
    held: tuple[AppState, HeldAnswers, Redis],
) -> None:
    state, slow, _ = held
    first = asyncio.ensure_future(generations.read(state))
    await slow.ran.wait()
    waiting = [asyncio.ensure_future(generations.read(state)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()  # the client of the request reading now disconnects
    waiting[0].cancel()  # and so does one of those waiting
    slow.gate.set()
    answers = await asyncio.gather(*waiting[1:])
    assert all(answer is not None for answer in answers) and len(set(answers)) == 1
    assert first.cancelled() and waiting[0].cancelled()
    assert await generations.read(state) == answers[0]  # nothing left stuck: the next reads at once


async def test_without_redis_every_request_sharing_a_read_gets_none(world: World) -> None:
    state = dataclasses.replace(world.state, redis=Redis.from_url("redis://127.0.0.1:1/0"))
    try:
        assert await asyncio.gather(*(generations.read(state) for _ in range(4))) == [None] * 4
        assert state.generation_reads.round_trips == 2
    finally:
        await state.redis.aclose()
