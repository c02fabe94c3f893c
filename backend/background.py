"""Background workers next to the API: one lifespan shape for all of them (decision 005).

Each domain's worker runs in every instance when `settings.background_worker` is on, stops at
shutdown after its current round (it waits on the `stop` event between rounds), and closes what
it opened (an HTTP client) only after it has stopped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol, TypeVar

import asyncpg
import structlog
from litestar import Litestar

from backend.state import AppState

log = structlog.get_logger("background")
T = TypeVar("T")
ROUND_ATTEMPTS = 3


class Worker(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


def worker_lifespan(
    make: Callable[[AppState, AsyncExitStack], Worker],
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The lifespan that runs `make(state, resources)`'s worker; what the worker needs closed
    after it stops goes on `resources` (e.g. `resources.push_async_callback(http.aclose)`)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state: AppState = app.state.app_state
        if not state.settings.background_worker:
            yield
            return
        async with AsyncExitStack() as resources:
            worker = make(state, resources)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            try:
                yield
            finally:
                stop.set()
                await task

    return lifespan


def gave_way(error: BaseException) -> bool:
    """PostgreSQL rolled the transaction back to let a simultaneous one through (a deadlock, a
    serialization failure: SQLSTATE class 40); `unit_of_work` reports it as a Conflict caused by
    one. Nothing of that transaction was kept."""
    return isinstance(error, asyncpg.TransactionRollbackError) or isinstance(
        error.__cause__, asyncpg.TransactionRollbackError
    )


async def giving_way(work: Callable[[], Awaitable[T]], name: str, attempts: int = ROUND_ATTEMPTS) -> T:
    """A worker's round, run again at once (after a short random pause, so the two do not meet
    again) when PostgreSQL chose it to give way. Rounds are idempotent, as the next round would
    run them anyway; this keeps a lost race from costing a whole poll interval and from being
    logged as a failure. A round that keeps losing, or fails otherwise, raises as before."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as error:
            if attempt == attempts or not gave_way(error):
                raise
            log.info("worker_round_gave_way", worker=name, attempt=attempt)
        await asyncio.sleep(random.uniform(0.02, 0.1) * attempt)  # noqa: S311  # jitter, not secrets
    raise AssertionError("unreachable")
