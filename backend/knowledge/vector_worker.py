"""Makes the sentence vectors of queued search documents, in every app instance (decisions 005,
024's second amendment, 026).

The XZuFi import's bulk path commits new articles searchable by words and queues them
(`knowledge_vector_queue`) instead of running the encoder in the import: the encoder costs
~15 ms CPU a text, twenty times parsing the service. A round claims one encoder batch of queued
rows under `FOR UPDATE SKIP LOCKED` (two instances take different rows), makes the vectors
still stale by the vectors' own check (no vector, another encoder, another text — so a row
queued twice, or for an article published meanwhile, costs a look-up, not a forward pass),
stores them and deletes the claimed rows, in one transaction: a crash leaves the rows queued.
After the vectors commit, the `knowledge` generation moves and every instance reloads its
matrices (decision 009) — not after every batch while the queue drains, since each move makes
every instance read all vectors of a town again.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from uuid import UUID

import structlog

from backend import generations
from backend.background import worker_lifespan
from backend.db.tenancy import all_tenants_transaction
from backend.knowledge import meaning, vector_repository
from backend.state import AppState

log = structlog.get_logger("knowledge.vectors")


@dataclass
class VectorWorker:
    app: AppState
    every_seconds: float = 2.0  # how soon a queued document is looked at when the queue was empty
    publish_seconds: float = 5.0  # while draining, the generation moves at most this often

    async def round(self) -> tuple[int, int]:
        """One batch: (queued rows taken, vectors made)."""
        made = 0
        async with all_tenants_transaction(self.app.pool) as conn:
            claimed = await vector_repository.claim_queued(conn, meaning.BATCH)
            if not claimed:
                return 0, 0
            by_tenant: dict[UUID, list[UUID]] = {}
            for row in claimed:
                by_tenant.setdefault(row.tenant_id, []).append(row.doc_id)
            for tenant_id, doc_ids in by_tenant.items():
                made += await meaning.refresh(conn, tenant_id, sorted(set(doc_ids)))
            await vector_repository.forget_queued(conn, claimed)
        return len(claimed), made

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Rounds until the queue is empty (or `stop`); returns the vectors made. The generation
        moves after the last batch, and every `publish_seconds` on the way."""
        total = unpublished = 0
        last = time.monotonic()
        while stop is None or not stop.is_set():
            taken, made = await self.round()
            total += made
            unpublished += made
            if unpublished and (not taken or time.monotonic() - last >= self.publish_seconds):
                await generations.bump(self.app, "knowledge")
                unpublished, last = 0, time.monotonic()
            if not taken:
                break
        if unpublished:
            await generations.bump(self.app, "knowledge")
        return total

    async def run(self, stop: asyncio.Event) -> None:
        metrics = self.app.metrics
        while not stop.is_set():
            try:
                made = await self.drain(stop)
                if made:
                    log.info("knowledge_vectors_made", count=made)
                metrics.worker_rounds.labels("vectors", "ok").inc()
                metrics.worker_last_success.labels("vectors").set(time.time())
            except Exception as error:  # keep running; the rows stay queued for the next round
                log.error("vector_worker_round_failed", error_type=type(error).__name__)
                metrics.worker_rounds.labels("vectors", "failed").inc()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_seconds)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(lambda state, _resources: VectorWorker(state))
