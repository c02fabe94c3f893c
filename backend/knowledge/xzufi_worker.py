"""Runs the operators' XZuFi transfers on their schedules (decision 005's worker pattern).

Every instance polls; a due transfer is claimed by moving its next run on in the claiming
transaction (`FOR UPDATE SKIP LOCKED`), so two instances never run the same transfer at once.
A run then works page by page, each page in its own unit of work (`xzufi_transfer`).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import httpx
import structlog

from auth.principal import Principal
from auth.roles import Role
from backend import clock
from backend.background import giving_way, worker_lifespan
from backend.db.tenancy import all_tenants_transaction
from backend.errors import Conflict
from backend.knowledge import xzufi_import
from backend.knowledge import xzufi_repository as store
from backend.knowledge import xzufi_transfer as transfer
from backend.knowledge.xzufi_schemas import XzufiReport
from backend.state import AppState, unit_of_work
from outbound import outbound_client

log = structlog.get_logger("knowledge.xzufi")
EMPTY = XzufiReport(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, [])


def transfer_principal(tenant_id: UUID, slug: str, acting: frozenset[UUID]) -> Principal:
    """The transfer acts as the operator's platform admin, for the towns it serves."""
    return Principal(
        issuer="system",
        subject="xzufi-transfer",
        tenant_id=tenant_id,
        tenant_slug=slug,
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=acting | {tenant_id},
    )


async def run_transfer(app: AppState, principal: Principal, client: httpx.AsyncClient | None = None) -> XzufiReport:
    """One run: sign in, fetch pages from the cursor on, apply each with its cursor."""
    async with unit_of_work(app, principal) as uow:
        creds = await transfer.begin_run(uow)  # a Conflict while another run holds the transfer
    http = client or outbound_client(app.outbound, timeout=30.0)
    report: XzufiReport | None = None
    outcome = "ok"
    try:
        token = await transfer.fetch_token(http, creds)
        url = creds.cursor_url or creds.url
        pending = asyncio.ensure_future(_fetch_and_read(http, url, token, 1))
        try:
            for number in range(1, transfer.MAX_PAGES_PER_RUN + 1):
                messages, deletions, problems, page = await pending
                following = transfer.next_url(creds, page)
                more = not page.vollstaendig and following not in (None, url) and number < transfer.MAX_PAGES_PER_RUN
                if more and xzufi_import.PARSE_AHEAD:
                    # The next page is fetched and parsed while this one's statements run (decision
                    # 024's fifth amendment); its failure still surfaces after this page is applied.
                    pending = asyncio.ensure_future(_fetch_and_read(http, str(following), token, number + 1))
                async with unit_of_work(app, principal) as uow:
                    taken = await transfer.apply_page(
                        uow, messages, deletions, problems, (following or url, page.naechster_index), creds.run_id
                    )
                report = transfer.add_reports(report, taken)
                if not more:
                    break
                url = str(following)
                if not xzufi_import.PARSE_AHEAD:
                    pending = asyncio.ensure_future(_fetch_and_read(http, url, token, number + 1))
        finally:
            _drop(pending)
    except transfer.TransferFailed as error:
        outcome = f"failed: {error}"
        log.warning("xzufi_transfer_failed", tenant=principal.tenant_slug, reason=str(error))
    except Exception as error:  # the run lets the transfer go, or no run would start for RUN_HELD
        with suppress(Exception):
            async with unit_of_work(app, principal) as uow:
                await transfer.finish(uow, creds.run_id, clock.now(), f"failed: {type(error).__name__}", report)
        raise
    finally:
        if client is None:
            await http.aclose()
    async with unit_of_work(app, principal) as uow:
        await transfer.finish(uow, creds.run_id, clock.now(), outcome, report)
    return report or EMPTY


async def _fetch_and_read(http: httpx.AsyncClient, url: str, token: str, number: int) -> transfer.ReadPage:
    body = await transfer.fetch_page(http, url, token, number)
    return await asyncio.to_thread(transfer.read_page, body, number)


def _drop(pending: asyncio.Future[transfer.ReadPage]) -> None:
    """A page fetched ahead that will not be applied: stopped, or its failure taken (not logged
    as never retrieved: the run has ended for another reason)."""
    if not pending.done():
        pending.cancel()
    elif not pending.cancelled():
        pending.exception()


@dataclass
class XzufiWorker:
    app: AppState
    poll_seconds: float = 30.0

    async def claim(self, now: datetime) -> list[tuple[UUID, str, frozenset[UUID]]]:
        async with all_tenants_transaction(self.app.pool) as conn:
            claimed = await store.claim_due_transfers(conn, now, transfer.RUN_HELD)
            every = frozenset(await conn.fetchval("SELECT auth_all_tenant_ids()"))
        return [(tenant_id, slug, every) for tenant_id, slug in claimed]

    async def round(self) -> int:
        claimed = await self.claim(clock.now())
        for tenant_id, slug, acting in claimed:
            try:
                report = await run_transfer(self.app, transfer_principal(tenant_id, slug, acting))
            except Conflict:  # a run from the run button holds it since the claim
                log.info("xzufi_transfer_running", tenant=slug)
                continue
            log.info(
                "xzufi_transfer_ran",
                tenant=slug,
                created=report.created,
                updated=report.updated,
                archived=report.archived,
                errors=len(report.errors),
            )
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await giving_way(self.round, "xzufi")
                if self.app.metrics is not None:
                    self.app.metrics.worker_last_success.labels("xzufi").set(time.time())
            except Exception as error:  # keep running; the next round retries
                log.error("xzufi_worker_round_failed", error_type=type(error).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(lambda state, _resources: XzufiWorker(state))
