"""Background work of the telephony domain, in every app instance (docs/decisions: background work).

- retention: caller numbers are personal data; once per interval the caller numbers of calls
  older than their tenant's retention (`telephony_settings`, default 90 days) are erased, and
  nothing else of the call changes.

Several instances: each round takes a transaction-scoped advisory lock with `pg_try_…`; an
instance that does not get it skips the round (another is purging right now). The purge is
idempotent, so a round more or less changes nothing. Like the tickets worker, its transaction
sets row-level security to all tenants (`auth_all_tenant_ids()`).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from backend import clock
from backend.background import giving_way, worker_lifespan
from backend.db.tenancy import all_tenants_transaction
from backend.metrics import Metrics
from backend.telephony import repository
from backend.telephony.schemas import DEFAULT_CALLER_RETENTION_DAYS

log = structlog.get_logger("telephony.worker")

# pg_advisory_xact_lock(classid, objid): 'tel' and the job number (1: caller retention).
LOCK_CLASS = 0x74656C
CALLER_PURGE_LOCK = 1


@dataclass
class TelephonyWorker:
    pool: asyncpg.Pool
    purge_every: timedelta = timedelta(minutes=10)
    metrics: Metrics | None = None

    async def purge_callers(self, now: datetime | None = None) -> int | None:
        """One round: the number of calls whose caller number was erased; None when another
        instance holds the lock (its round does the work)."""
        now = now or clock.now()
        async with all_tenants_transaction(self.pool) as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", LOCK_CLASS, CALLER_PURGE_LOCK):
                return None
            tenant_ids = await conn.fetchval("SELECT auth_all_tenant_ids()")
            return await repository.erase_caller_numbers(conn, tenant_ids, now, DEFAULT_CALLER_RETENTION_DAYS)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                erased = await giving_way(self.purge_callers, "telephony")
                if erased:
                    log.info("caller_numbers_erased", calls=erased)  # counts only, never numbers
                if self.metrics is not None:
                    self.metrics.worker_rounds.labels("telephony", "ok").inc()
                    self.metrics.worker_last_success.labels("telephony").set(time.time())
            except Exception as error:  # keep running; the next round retries
                log.error("telephony_worker_round_failed", error_type=type(error).__name__)
                if self.metrics is not None:
                    self.metrics.worker_rounds.labels("telephony", "failed").inc()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.purge_every.total_seconds())


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(lambda state, _resources: TelephonyWorker(state.pool, metrics=state.metrics))
