"""Background fetching of the towns' web sites, in every app instance (decisions 005, 025).

A round claims the site most overdue (its next turn moved on at once, `FOR UPDATE SKIP LOCKED`:
instances split the sites, a crashed fetch is retried when its lease ends), reads what is stored
of it, lets go of the connection, fetches the site (seconds to minutes, politely), and writes the
result in a second short transaction. No connection is held while waiting for the network
(decision 013). Like the other workers, its transactions see all tenants.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx
import structlog

from backend import clock
from backend.background import worker_lifespan
from backend.db.tenancy import all_tenants_transaction
from backend.metrics import Metrics
from backend.settings import Settings
from backend.state import AppState
from backend.webpages import repository
from backend.webpages.crawling import Crawler, CrawlLimits, CrawlResult, Outcome
from backend.webpages.schemas import CrawlReport, WebSite
from outbound import outbound_client

log = structlog.get_logger("webpages.worker")
LEASE = timedelta(hours=1)  # longer than a round takes by default: 200 pages × (1 s pause + up to 10 s)
MAX_REPORTED_PROBLEMS = 50


def limits_of(settings: Settings) -> CrawlLimits:
    return CrawlLimits(
        delay_seconds=settings.web_crawl_delay_seconds,
        max_bytes=settings.web_page_max_bytes,
        timeout_seconds=settings.web_fetch_timeout_seconds,
        max_pages=settings.web_crawl_max_pages,
    )


def crawl_client(settings: Settings) -> httpx.AsyncClient:
    # Redirects are followed by the crawler itself, hop by hop, so each hop's host is checked.
    return outbound_client(settings.outbound_policy(), timeout=settings.web_fetch_timeout_seconds)


async def store(pool: asyncpg.Pool, site: WebSite, result: CrawlResult, now: datetime) -> CrawlReport:
    """Write one round's result: new and changed pages, the current ones touched, the vanished
    ones marked (they drop out of search), and the site's report and next turn."""
    counts = dict.fromkeys(Outcome, 0)
    async with all_tenants_transaction(pool) as conn:
        known = await repository.known_pages(conn, site.tenant_id, site.id)
        current, gone = [], []
        for page in result.pages:
            counts[page.outcome] += 1
            stored = known.get(page.url)
            if page.content is not None and page.outcome in (Outcome.NEW, Outcome.CHANGED, Outcome.UNCHANGED):
                page_id = stored.id if stored else uuid4()
                await repository.save_page(conn, site.tenant_id, site.id, page_id, page.content, now)
            elif page.outcome is Outcome.UNCHANGED and stored is not None:
                current.append(stored.id)
            elif page.outcome is Outcome.GONE and stored is not None:
                gone.append(stored.id)
        await repository.touch_pages(conn, site.tenant_id, current, now)
        await repository.mark_gone(conn, site.tenant_id, gone, now)
        report = CrawlReport(
            at=now,
            new=counts[Outcome.NEW],
            changed=counts[Outcome.CHANGED],
            unchanged=counts[Outcome.UNCHANGED],
            gone=counts[Outcome.GONE],
            skipped=counts[Outcome.SKIPPED] + counts[Outcome.FAILED],
            problems=result.problems[:MAX_REPORTED_PROBLEMS],
        )
        await repository.finish_crawl(conn, site.tenant_id, site.id, report, now + timedelta(hours=site.recrawl_hours))
    return report


@dataclass
class WebPagesWorker:
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    limits: CrawlLimits
    poll_every: timedelta = timedelta(seconds=30)
    metrics: Metrics | None = None

    async def crawl_one(self, now: datetime | None = None) -> CrawlReport | None:
        """One round: the most overdue site fetched and stored; None when none is due."""
        now = now or clock.now()
        async with all_tenants_transaction(self.pool) as conn:
            site = await repository.claim_due_site(conn, now, now + LEASE)
            known = await repository.known_pages(conn, site.tenant_id, site.id) if site else {}
        if site is None:
            return None
        result = await Crawler(self.http, site, self.limits).crawl(known)
        return await store(self.pool, site, result, clock.now())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while not stop.is_set() and await self.crawl_one() is not None:
                    pass  # the next due site at once
                if self.metrics is not None:
                    self.metrics.worker_rounds.labels("webpages", "ok").inc()
                    self.metrics.worker_last_success.labels("webpages").set(time.time())
            except Exception as error:  # keep running; the site's lease ends and it is retried
                log.error("webpages_worker_round_failed", error_type=type(error).__name__)
                if self.metrics is not None:
                    self.metrics.worker_rounds.labels("webpages", "failed").inc()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_every.total_seconds())


def _worker(state: AppState, resources: AsyncExitStack) -> WebPagesWorker:
    http = crawl_client(state.settings)
    resources.push_async_callback(http.aclose)
    return WebPagesWorker(state.pool, http, limits_of(state.settings), metrics=state.metrics)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(_worker)
