"""Background workers next to the API: one lifespan shape for all of them (decision 005).

Each domain's worker runs in every instance when `settings.background_worker` is on, stops at
shutdown after its current round (it waits on the `stop` event between rounds), and closes what
it opened (an HTTP client) only after it has stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol

from litestar import Litestar

from backend.state import AppState


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
