"""Invoicing under simultaneous requests (two finance clerks, a double click, a retry): a period's
runs take turns, so each replaces the draft before it and one draft is left; a year's true-up is
drafted and issued once however many ask at once; issuing and running the same client at once
never deadlocks (a deadlock is answered "try again", which is not an answer a clerk should get
for work that can simply wait its turn)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from backend.billing import invoices, rates
from backend.billing.schemas import Invoice, InvoicePurpose, InvoiceStatus
from backend.errors import DomainError
from backend.state import unit_of_work
from tests.billing.support import Billing, add_calls, talks
from tests.billing.test_rates import _year_invoiced
from tests.support.world import World

pytestmark = pytest.mark.clock  # invoices are issued on today's date
AT_ONCE = 4


async def _all_of(billing: Billing, town: str) -> list[Invoice]:
    async with unit_of_work(billing.state, billing.finance(), readonly=True) as uow:
        return await invoices.list_invoices(uow, billing.slugs[billing.clients[town]])


def _not_a_deadlock(outcomes: list[object]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, DomainError), repr(outcome)
            assert "try again" not in outcome.text("en"), outcome.text("en")


async def test_runs_of_one_period_at_once_take_turns_and_leave_one_draft(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 8, 3), 61, 59))

    async def run() -> Invoice:
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await invoices.run_invoice(uow, soest, "2026-08")

    made = await asyncio.gather(*(run() for _ in range(AT_ONCE)), return_exceptions=True)
    assert all(isinstance(m, Invoice) for m in made), made  # each waited for the one before
    drafts = [i for i in await _all_of(billing, "soest") if i.status is InvoiceStatus.DRAFT]
    assert len(drafts) == 1 and drafts[0].id in {m.id for m in made if isinstance(m, Invoice)}


async def test_a_year_is_trued_up_once_however_many_ask_at_once(world: World, billing: Billing) -> None:
    await _year_invoiced(world, billing, "10.00")
    soest = billing.clients["soest"]

    async def true_up() -> Invoice:
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await rates.true_up(uow, soest, 2024)

    drafted = await asyncio.gather(*(true_up() for _ in range(AT_ONCE)), return_exceptions=True)
    _not_a_deadlock(list(drafted))

    async def issue(draft: Invoice) -> Invoice:
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await invoices.issue_invoice(uow, draft.id)

    issued = await asyncio.gather(*(issue(d) for d in drafted if isinstance(d, Invoice)), return_exceptions=True)
    _not_a_deadlock(list(issued))
    true_ups = [i for i in await _all_of(billing, "soest") if i.purpose is InvoicePurpose.TRUE_UP]
    assert [i.status for i in true_ups].count(InvoiceStatus.ISSUED) == 1, true_ups
    assert [i.status for i in true_ups].count(InvoiceStatus.DRAFT) == 0


async def test_running_and_issuing_one_client_at_once_never_deadlocks(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 9, 1), 61, 59))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 10, 1), 61))
    for period in ("2026-09", "2026-10"):
        async with unit_of_work(billing.state, billing.finance()) as uow:
            draft = await invoices.run_invoice(uow, soest, period)

        async def issue(draft: Invoice = draft) -> Invoice:
            async with unit_of_work(billing.state, billing.finance()) as uow:
                return await invoices.issue_invoice(uow, draft.id)

        async def run(period: str = period) -> Invoice:
            async with unit_of_work(billing.state, billing.finance()) as uow:
                return await invoices.run_invoice(uow, soest, period)

        outcomes = await asyncio.gather(issue(), run(), issue(), run(), return_exceptions=True)
        _not_a_deadlock(list(outcomes))
        assert any(isinstance(o, Invoice) for o in outcomes)
    listed = await _all_of(billing, "soest")
    for period in ("2026-09", "2026-10"):
        mine = [i for i in listed if i.period_label == period and i.status is not InvoiceStatus.DISCARDED]
        assert len(mine) == 1, mine  # issued or a draft, never both
