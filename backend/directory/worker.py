"""Background work of the directory, in every app instance (decision 005): announcing the
presence of people whose telephone event expired or whose own switch ran out (decision 037).

Every few seconds each instance runs a round; the rows a round claims are marked announced
under row locks, so with several instances each expiry is announced once. A round is one
UPDATE on a partial index of the unannounced rows when nothing ran out."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass

import structlog

from backend import clock
from backend.background import giving_way, worker_lifespan
from backend.directory import presence_feed
from backend.state import AppState

log = structlog.get_logger("directory.worker")


@dataclass
class DirectoryWorker:
    app: AppState
    # Telephone events expire after 300 s by default; a change shows within this much after.
    every_seconds: float = 5.0

    async def run(self, stop: asyncio.Event) -> None:
        metrics = self.app.metrics
        while not stop.is_set():
            try:
                await giving_way(lambda: presence_feed.announce_expiries(self.app, clock.now()), "directory")
                metrics.worker_rounds.labels("directory", "ok").inc()
                metrics.worker_last_success.labels("directory").set(time.time())
            except Exception as error:  # keep running; the next round retries
                log.error("directory_worker_round_failed", error_type=type(error).__name__)
                metrics.worker_rounds.labels("directory", "failed").inc()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_seconds)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(lambda state, _resources: DirectoryWorker(state))
