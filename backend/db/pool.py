"""The asyncpg pool of the application role."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import cast

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# How long `acquire` waits for a free connection; None (requests, workers): as long as it takes.
_acquire_timeout: ContextVar[float | None] = ContextVar("acquire_timeout", default=None)


@contextmanager
def acquire_timeout(seconds: float) -> Iterator[None]:
    """Within this block `acquire` (and the transactions built on it) gives up with TimeoutError
    after `seconds` instead of queueing behind busy connections: for readers that must not wait
    for the pool (the metrics scrape) and would rather report what they had."""
    token = _acquire_timeout.set(seconds)
    try:
        yield
    finally:
        _acquire_timeout.reset(token)


@asynccontextmanager
async def acquire(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, typed as the Connection repositories take."""
    async with pool.acquire(timeout=_acquire_timeout.get()) as conn:
        yield cast(asyncpg.Connection, conn)


async def create_pool(url: str, min_size: int, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"application_name": "buergerservice"},
        command_timeout=30,
    )
    assert pool is not None
    return pool
