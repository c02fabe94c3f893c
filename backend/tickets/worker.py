"""Background work of the tickets domain, in every app instance (docs/decisions: background work).

- deadlines: "due soon" and "overdue" events, once per ticket and deadline however many
  instances run (row locks with SKIP LOCKED, and the outbox's unique dedupe key as the backstop);
- webhook delivery from the outbox: at least once, in change order per ticket and endpoint,
  retried with exponential backoff; all state is in PostgreSQL, so nothing is lost when the
  receiver is down or an instance restarts (a delivery claimed by an instance that dies is
  unlocked by PostgreSQL and picked up again);
- an endpoint whose every attempt failed for `give_up_after` (3 days) is paused: its
  deliveries wait, recorded, until the town admin resumes it;
- retention: the citizen's data of closed tickets is erased after the tenant's period.

The worker acts for every tenant: its transactions set row-level security to all tenants
(`auth_all_tenant_ids()`), the one place outside a request that does so.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager, AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import clock
from backend.background import giving_way, worker_lifespan
from backend.db.pool import acquire_timeout
from backend.db.tenancy import all_tenants_transaction
from backend.http.idempotency import erase_records
from backend.metrics import FIGURES_ACQUIRE_SECONDS, Metrics
from backend.redisclient import always_try
from backend.sealing import Sealer, SealError
from backend.settings import Settings
from backend.state import AppState
from backend.tickets import pubsub, webhook_repository, webhooks, worker_repository
from backend.tickets.changes import SYSTEM, record_change
from backend.tickets.schemas import EventKind, TicketChange
from outbound import outbound_client

log = structlog.get_logger("tickets.worker")


@dataclass
class Report:
    signalled: int = 0
    delivered: int = 0
    failed: int = 0
    purged: int = 0


@dataclass
class TicketWorker:
    pool: asyncpg.Pool
    redis: Redis
    http: httpx.AsyncClient
    sealer: Sealer
    batch_size: int = 20
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(hours=1)
    # An endpoint failing every attempt for this long is paused until the town admin resumes it.
    give_up_after: timedelta = timedelta(days=3)
    request_timeout: float = 10.0
    poll_seconds: float = 1.0
    purge_every: timedelta = timedelta(minutes=10)
    _last_purge: datetime | None = field(default=None, init=False)

    metrics: Metrics | None = None

    def _transaction(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return all_tenants_transaction(self.pool)

    def backoff(self, attempts: int) -> timedelta:
        """Delay after the `attempts`-th failure: base, 2×base, 4×base … capped."""
        # The exponent is bounded before multiplying: 2**44 × 5 s overflows timedelta, and an
        # endpoint reaches 44 failures in about 35 h, before it is paused (3 days).
        delay: timedelta = self.backoff_base * (2 ** min(max(attempts - 1, 0), 30))
        return min(delay, self.backoff_cap)

    # --- deadlines -------------------------------------------------------------------------

    async def signal_deadlines(self, now: datetime | None = None) -> int:
        now = now or clock.now()
        published: list[TicketChange] = []
        async with self._transaction() as conn:
            for row in await worker_repository.lock_deadline_candidates(conn, now, self.batch_size):
                kinds = []
                if not row["due_soon_sent"]:
                    kinds.append(EventKind.DUE_SOON)  # also when it is overdue at once: both, in order
                if row["overdue"] and not row["overdue_sent"]:
                    kinds.append(EventKind.OVERDUE)
                for kind in kinds:
                    prefix = "due_soon" if kind is EventKind.DUE_SOON else "overdue"
                    change = await record_change(
                        conn,
                        [row["tenant_id"]],
                        row["id"],
                        kind,
                        SYSTEM,
                        now,
                        details={"dueAt": row["due_at"].isoformat()},
                        dedupe_key=f"{prefix}:{row['deadline_seq']}",
                    )
                    if change is not None:
                        published.append(change)
        await pubsub.publish(self.redis, published)
        return len(published)

    # --- retention -------------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> int:
        now = now or clock.now()
        published: list[TicketChange] = []
        erased: list[UUID] = []
        async with self._transaction() as conn:
            for tenant_id, ticket_id in await worker_repository.lock_purgeable(conn, now, self.batch_size):
                erased.append(ticket_id)
                await worker_repository.erase_personal_data(conn, tenant_id, ticket_id)
                change = await record_change(
                    conn,
                    [tenant_id],
                    ticket_id,
                    EventKind.PERSONAL_DATA_ERASED,
                    SYSTEM,
                    now,
                    changes={"personal_data_erased_at": now, "subject": ""},
                    bump_version=False,
                )
                if change is not None:
                    published.append(change)
        try:
            # Idempotency records whose answer held these tickets' data lose it too (a replay
            # would be refused anyway: it checks for erasure first). Tried even while Redis is
            # paused: an erasure is a write, not a read with a fallback.
            with always_try():
                await erase_records(self.redis, erased)
        except RedisError:
            log.warning("idempotency_records_not_erased", tickets=len(erased))
        await pubsub.publish(self.redis, published)
        return len(published)

    # --- webhooks --------------------------------------------------------------------------

    async def deliver(self, now: datetime | None = None) -> tuple[int, int]:
        """One round: (delivered, failed)."""
        now = now or clock.now()
        async with self._transaction() as conn:
            claimed = await webhook_repository.claim_deliveries(conn, now, self.batch_size)
            if not claimed:
                return 0, 0
            secrets = {}
            for row in claimed:
                key = (row["tenant_id"], row["endpoint_id"])
                if key not in secrets:
                    stored = await webhook_repository.signing_secrets(conn, row["tenant_id"], row["endpoint_id"], now)
                    secrets[key] = self._opened(stored, *key)
            outcomes = await asyncio.gather(
                *(self._send(row, secrets[row["tenant_id"], row["endpoint_id"]]) for row in claimed)
            )
            delivered = failed = 0
            for row, outcome in zip(claimed, outcomes, strict=True):
                attempt = row["attempts"] + 1
                await webhook_repository.record_attempt(
                    conn,
                    row["tenant_id"],
                    row["id"],
                    attempt=attempt,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    delivered=outcome.ok,
                    next_attempt_at=None if outcome.ok else now + self.backoff(attempt),
                )
                if outcome.ok:
                    delivered += 1
                else:
                    failed += 1
                    # Ids and the failure class only: never the URL's query or a response body.
                    log.warning("webhook_attempt_failed", delivery=str(row["id"]), attempt=attempt, error=outcome.error)
            await self._note_endpoints(conn, claimed, outcomes, now)
        return delivered, failed

    async def _note_endpoints(
        self, conn: asyncpg.Connection, claimed: list[Any], outcomes: list[webhooks.Outcome], now: datetime
    ) -> None:
        """An endpoint that answered once this round is healthy; one that only failed may have
        failed long enough to be paused."""
        answered: dict[tuple[Any, Any], bool] = {}
        for row, outcome in zip(claimed, outcomes, strict=True):
            key = (row["tenant_id"], row["endpoint_id"])
            answered[key] = answered.get(key, False) or outcome.ok
        for (tenant_id, endpoint_id), ok in sorted(answered.items()):  # one lock order for all instances
            if ok:
                await webhook_repository.endpoint_answered(conn, tenant_id, endpoint_id)
            elif await webhook_repository.endpoint_failed(conn, tenant_id, endpoint_id, now, self.give_up_after):
                log.warning("webhook_endpoint_paused", tenant=str(tenant_id), endpoint=str(endpoint_id))

    def _opened(self, stored: list[str], tenant_id: Any, endpoint_id: Any) -> list[str]:
        opened = []
        for value in stored:
            try:
                opened.append(webhooks.open_secret(self.sealer, value, tenant_id, endpoint_id))
            except SealError:  # e.g. sealed with a key no longer configured: sign with the others
                log.error("webhook_secret_unusable", tenant=str(tenant_id), endpoint=str(endpoint_id))
        return opened

    async def reseal_secrets(self) -> int:
        """Plain-text secrets from before sealing, and those of a retired key, sealed with the
        current key. Returns how many."""
        resealed = 0
        async with self._transaction() as conn:
            for row in await webhook_repository.all_secrets(conn):
                if self.sealer.is_current(row["secret"]):
                    continue
                try:
                    plain = webhooks.open_secret(self.sealer, row["secret"], row["tenant_id"], row["endpoint_id"])
                except SealError:
                    continue  # reported when it is used; nothing to seal it from
                sealed = webhooks.seal_secret(self.sealer, plain, row["tenant_id"], row["endpoint_id"])
                await webhook_repository.replace_secret(conn, row["tenant_id"], row["id"], row["secret"], sealed)
                resealed += 1
        return resealed

    async def _send(self, row: Any, secrets: list[str]) -> webhooks.Outcome:
        body = webhooks.body_of(row["kind"], row["event_at"].isoformat(), row["payload"])
        if not secrets:
            return webhooks.Outcome(False, None, "no signing secret", 0)
        return await webhooks.send(self.http, row["url"], f"msg_{row['event_id']}", body, secrets, self.request_timeout)

    # --- the loop --------------------------------------------------------------------------

    async def run_once(self, now: datetime | None = None) -> Report:
        now = now or clock.now()
        report = Report()
        report.signalled = await self.signal_deadlines(now)
        if self._last_purge is None or now - self._last_purge >= self.purge_every:
            report.purged = await self.purge(now)
            await self.reseal_secrets()
            self._last_purge = now
        report.delivered, report.failed = await self.deliver(now)
        return report

    def _counted(self, report: Report) -> None:
        if self.metrics is None:
            return
        self.metrics.worker_rounds.labels("tickets", "ok").inc()
        self.metrics.worker_last_success.labels("tickets").set(time.time())
        self.metrics.webhook_attempts.labels("delivered").inc(report.delivered)
        self.metrics.webhook_attempts.labels("failed").inc(report.failed)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            busy = False
            try:
                report = await giving_way(self.run_once, "tickets")
                busy = report.delivered + report.failed >= self.batch_size
                self._counted(report)
            except Exception as error:  # keep running; the next round retries
                log.error("ticket_worker_round_failed", error_type=type(error).__name__)
                if self.metrics is not None:
                    self.metrics.worker_rounds.labels("tickets", "failed").inc()
            if busy:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    """Webhook URLs are chosen by town admins: delivered through the outbound policy
    (docs/decisions/014). Redirects are not followed (a receiver answers at its URL)."""
    return outbound_client(settings.outbound_policy(), timeout=TicketWorker.request_timeout)


def _worker(state: AppState, resources: AsyncExitStack) -> TicketWorker:
    http = webhook_client(state.settings)
    resources.push_async_callback(http.aclose)
    return TicketWorker(state.pool, state.redis, http, state.sealer, metrics=state.metrics)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(_worker)


async def read_figures(pool: asyncpg.Pool, metrics: Metrics) -> None:
    """Per town: webhook backlog and paused endpoints, overdue callbacks (for a metrics scrape).
    A scrape must not queue for the pool (it would outlast Prometheus' scrape timeout exactly
    when the pool is exhausted): the connection is waited for `FIGURES_ACQUIRE_SECONDS` at
    most; the gauges keep their last figures when this fails."""
    with acquire_timeout(FIGURES_ACQUIRE_SECONDS):
        async with all_tenants_transaction(pool) as conn:
            rows = await webhook_repository.operations_figures(conn, clock.now())
    gauges = (metrics.webhook_waiting, metrics.webhook_oldest_waiting, metrics.webhook_paused, metrics.tickets_overdue)
    for gauge in gauges:
        gauge.clear()  # a town that is gone disappears
    for row in rows:
        metrics.webhook_waiting.labels(row["slug"]).set(row["deliveries_waiting"])
        metrics.webhook_oldest_waiting.labels(row["slug"]).set(row["oldest_waiting_seconds"])
        metrics.webhook_paused.labels(row["slug"]).set(row["endpoints_paused"])
        metrics.tickets_overdue.labels(row["slug"]).set(row["tickets_overdue"])
