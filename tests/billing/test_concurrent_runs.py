"""Invoicing under simultaneous requests (two finance clerks, a double click, a retry): a period's
runs take turns, so each replaces the draft before it and one draft is left; a year's true-up is
drafted and issued once however many ask at once; issuing and running the same client at once
never deadlocks (a deadlock is answered "try again", which is not an answer a clerk should get
for work that can simply wait its turn)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine

from backend.billing import consultation, invoices, rates, tariffs
from backend.billing.schemas import (
    CostBaseInput,
    Invoice,
    InvoicePurpose,
    InvoiceStatus,
    RateProposalInput,
    Tariff,
    TariffCreate,
    TariffPatch,
)
from backend.errors import Conflict, DomainError
from backend.state import unit_of_work
from tests.billing.support import BERLIN, Billing, add_calls, make_billing, profile, talks
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


async def test_costs_changed_while_the_rate_is_proposed_never_leave_the_towns_asked_about_other_figures(
    world: World,
) -> None:
    """The towns are asked about the rate the year's cost base gives; a change of those costs at
    the same moment either comes first (and the proposal is made from it) or is refused."""
    for _ in range(3):  # a race is not lost every time
        billing = await make_billing(world.state)
        await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
        await add_calls(world.state.pool, billing.clients["soest"], billing.operator, talks(date(2024, 5, 6), 61, 59))
        with time_machine.travel(datetime(2025, 2, 3, 10, 0, tzinfo=BERLIN), tick=True):
            async with unit_of_work(world.state, billing.finance()) as uow:
                await rates.record_cost_base(uow, _costs("10.00"))

            async def record(staff: str, billing: Billing = billing) -> object:
                async with unit_of_work(world.state, billing.finance()) as uow:
                    return await rates.record_cost_base(uow, _costs(staff))

            async def propose(billing: Billing = billing) -> object:
                async with unit_of_work(world.state, billing.finance()) as uow:
                    return await consultation.propose_rate(
                        uow, RateProposalInput(year=2024, respond_by=date(2025, 3, 31))
                    )

            outcomes = await asyncio.gather(record("20.00"), propose(), record("30.00"), return_exceptions=True)
            _not_a_deadlock(list(outcomes))
            async with unit_of_work(world.state, billing.finance(), readonly=True) as uow:
                asked = await consultation.rate_consultation(uow, 2024)
                now = await rates.rate_proposal(uow, 2024)
        assert asked.rate == now.proposed_rate, (asked.rate, now.proposed_rate, outcomes)


def _costs(staff: str) -> CostBaseInput:
    return CostBaseInput(year=2024, staff=Decimal(staff), it=Decimal(0), overheads=Decimal(0))


async def test_a_tariff_changed_while_its_days_are_invoiced_is_refused_or_the_invoice_is(world: World) -> None:
    """Invoiced days keep the tariff they were invoiced at. A price change sent at the moment the
    invoice is issued either comes first (the draft is discarded and not issued) or is refused;
    never are both taken."""
    for _ in range(3):  # a race is not lost every time
        billing = await make_billing(world.state)
        tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
        soest = billing.clients["soest"]
        await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 7, 1), 61, 59))
        async with unit_of_work(billing.state, billing.finance()) as uow:
            draft = await invoices.run_invoice(uow, soest, "2026-07")

        async def issue(billing: Billing = billing, draft: Invoice = draft) -> object:
            async with unit_of_work(billing.state, billing.finance()) as uow:
                return await invoices.issue_invoice(uow, draft.id)

        async def reprice(billing: Billing = billing, tariff: Tariff = tariff) -> object:
            async with unit_of_work(billing.state, billing.finance()) as uow:
                return await tariffs.amend_tariff(uow, tariff.id, TariffPatch(price_per_minute=Decimal("1.20")))

        outcomes = await asyncio.gather(issue(), reprice(), return_exceptions=True)
        _not_a_deadlock(list(outcomes))
        assert any(isinstance(o, DomainError) for o in outcomes), outcomes  # one of them was refused


async def test_one_tariff_sent_six_times_at_once_is_made_once(world: World, billing: Billing) -> None:
    terms = TariffCreate(
        agreement_id=billing.agreements["soest"],
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 3, 31),
        price_per_minute=Decimal("0.95"),
    )

    async def create() -> Tariff:
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await tariffs.create_tariff(uow, terms)

    outcomes = await asyncio.gather(*(create() for _ in range(6)), return_exceptions=True)
    _not_a_deadlock(list(outcomes))
    assert sum(isinstance(o, Tariff) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, (Tariff, Conflict)) for o in outcomes), outcomes


async def test_one_billing_profile_saved_six_times_at_once(world: World, billing: Billing) -> None:
    slug = billing.slugs[billing.clients["geseke"]]

    async def save() -> object:
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await invoices.set_billing_profile(uow, slug, profile("Stadt Geseke", city="Geseke"))

    outcomes = await asyncio.gather(*(save() for _ in range(6)), return_exceptions=True)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
