"""The yearly rate from costs: cost base ÷ billable minutes of all clients, rounded up to the cent,
with the calculation shown; adopted as every client's next tariff period (calls already recorded
for the new year are re-rated). And the agreement terms view."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from auth.errors import Forbidden
from auth.permissions import Operation
from backend import clock
from backend.billing import consultation, figures, invoices, rates, tariffs
from backend.billing.schemas import (
    CostBaseInput,
    OwnCostItem,
    RateAdoptionInput,
    RateDecision,
    RateDecisionInput,
    RateProposalInput,
    TariffCreate,
)
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.state import unit_of_work
from backend.tenants import service as tenants_service
from tests.billing.support import BERLIN, Billing, CallSpec, add_calls, local, talks
from tests.billing.xrechnung_check import Validator
from tests.support.world import World


async def test_rate_proposal_and_adoption(world: World, billing: Billing) -> None:
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2024, 1, 1), "0.95", increment=1, minimum="0.20")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2024, 5, 6), 61, 59, 110))  # 300 s
    await add_calls(world.state.pool, geseke, billing.operator, talks(date(2024, 9, 9), 70, 50))  # 120 s
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2025, 1, 2), 61))  # next year, 0.95 so far
    finance = billing.finance()
    async with unit_of_work(world.state, finance) as uow:
        january = await invoices.run_invoice(uow, soest, "2024")
        await invoices.issue_invoice(uow, january.id)
        with pytest.raises(NotFound):
            await rates.rate_proposal(uow, 2024)
        with pytest.raises(ValidationFailed, match="decimal places"):
            await rates.record_cost_base(
                uow, CostBaseInput(year=2024, staff=Decimal("6.001"), it=Decimal(3), overheads=Decimal(1))
            )
        base = await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal("6.00"), it=Decimal("3.00"), overheads=Decimal("1.00"))
        )
        assert base.total == Decimal("10.00") and base.adopted_rate is None
        proposal = await rates.rate_proposal(uow, 2024)
    assert proposal.billable_seconds == 420 and proposal.billable_minutes == Decimal("7.0000")
    assert {c.name: c.billable_seconds for c in proposal.clients} == {"Stadt Soest": 300, "Stadt Geseke": 120}
    assert {c.name: c.billed_amount for c in proposal.clients} == {
        "Stadt Soest": Decimal("4.75"),
        "Stadt Geseke": Decimal("0.00"),
    }
    assert proposal.exact_rate == Decimal("1.428571") and proposal.proposed_rate == Decimal("1.43")  # rounded UP
    assert proposal.applies_from == date(2025, 1, 1) and not proposal.adopted
    assert proposal.calculation[0] == "cost base 2024: staff 6.00 + IT 3.00 + overheads 1.00 + other 0.00 = 10.00 EUR"
    assert "10.00 EUR ÷ 7.0000 min = 1.428571 EUR/min" in proposal.calculation
    assert proposal.calculation[-1] == "rounded up to the cent: 1.43 EUR/min, from 2025-01-01"

    async with unit_of_work(world.state, finance) as uow:
        await consultation.propose_rate(
            uow, RateProposalInput(year=2024, respond_by=clock.today() + timedelta(days=30))
        )
    for town in (soest, geseke):
        async with unit_of_work(world.state, billing.finance(town)) as uow:
            await consultation.decide_rate(
                uow, billing.slugs[town], RateDecisionInput(year=2024, decision=RateDecision.ACCEPTED)
            )
    async with unit_of_work(world.state, finance) as uow:
        adoption = await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
        with pytest.raises(Conflict, match="adopted already"):
            await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
        with pytest.raises(Conflict, match="no longer changes"):
            await rates.record_cost_base(
                uow, CostBaseInput(year=2024, staff=Decimal(1), it=Decimal(0), overheads=Decimal(0))
            )
        listed = await tariffs.list_tariffs(uow)
        draft = await invoices.run_invoice(uow, soest, "2025-01")
    assert adoption.proposal.adopted and adoption.proposal.cost_base.adopted_rate == Decimal("1.4300")
    new = {t.tenant_id: t for t in adoption.tariffs}
    assert set(new) == {soest, geseke}
    assert all(
        t.valid_from == date(2025, 1, 1) and t.valid_to is None and t.cost_base_year == 2024 for t in new.values()
    )
    assert new[soest].price_per_minute == Decimal("1.43") and new[soest].increment_seconds == 60
    assert new[geseke].increment_seconds == 1 and new[geseke].minimum_charge == Decimal("0.20")  # carried over
    old = {t.tenant_id: t for t in listed if t.valid_from == date(2024, 1, 1)}
    assert old[soest].valid_to == old[geseke].valid_to == date(2024, 12, 31)
    # The call of 2 January 2025 was rated 0.95 when it arrived; the adoption re-rated it.
    assert [(line.unit_price, line.amount) for line in draft.lines] == [(Decimal("1.43"), Decimal("2.86"))]


async def test_without_minutes_there_is_no_rate(world: World, billing: Billing) -> None:
    async with unit_of_work(world.state, billing.finance()) as uow:
        await rates.record_cost_base(
            uow, CostBaseInput(year=2023, staff=Decimal("1.00"), it=Decimal(0), overheads=Decimal(0))
        )
        proposal = await rates.rate_proposal(uow, 2023)
        assert proposal.proposed_rate is None and proposal.calculation[-1].startswith("no billable minutes")
        with pytest.raises(ValidationFailed, match="no billable minutes"):
            await consultation.adopt_rate(uow, RateAdoptionInput(year=2023))


async def test_only_the_operators_finance_records_costs(world: World, billing: Billing) -> None:
    async with unit_of_work(world.state, billing.finance(billing.clients["soest"])) as uow:
        with pytest.raises(Forbidden):
            await rates.record_cost_base(
                uow, CostBaseInput(year=2024, staff=Decimal(1), it=Decimal(0), overheads=Decimal(0))
            )
        with pytest.raises(Forbidden):
            await rates.cost_bases(uow)


async def test_agreement_terms_and_notice_deadlines(world: World, billing: Billing) -> None:
    """Start 2018-01-01, 24 months, then yearly, 6 months' notice: on 1 May 2026 the term ends
    31 Dec 2026 and notice is due by 30 June 2026 (60 days later)."""
    async with unit_of_work(world.state, billing.finance()) as uow:
        terms = await figures.agreement_terms(uow, on=date(2026, 5, 1))
        mine = [t for t in terms if t.client_tenant_id in billing.clients.values()]
        assert {(t.client_name, t.current_term_end, t.notice_deadline, t.days_to_notice_deadline) for t in mine} == {
            ("Stadt Soest", date(2026, 12, 31), date(2026, 6, 30), 60),
            ("Stadt Geseke", date(2026, 12, 31), date(2026, 6, 30), 60),
        }
        due = await figures.agreement_terms(uow, on=date(2026, 5, 1), within_days=60)
        assert {t.client_tenant_id for t in due} >= set(billing.clients.values())
        assert not [
            t
            for t in await figures.agreement_terms(uow, on=date(2026, 5, 1), within_days=59)
            if t.client_tenant_id in billing.clients.values()
        ]
        # Past the deadline, the earliest reachable end moves on a year.
        later = await figures.agreement_terms(uow, on=date(2026, 7, 1))
        soest = next(t for t in later if t.client_tenant_id == billing.clients["soest"])
        assert (soest.current_term_end, soest.notice_deadline) == (date(2026, 12, 31), date(2027, 6, 30))


async def _year_invoiced(world: World, billing: Billing, cost: str) -> None:
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2024, 1, 1), "0.95", increment=1)
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2024, 5, 6), 61, 59, 110))  # 5 min
    await add_calls(world.state.pool, geseke, billing.operator, talks(date(2024, 9, 9), 70, 50))  # 2 min
    async with unit_of_work(world.state, billing.finance()) as uow:
        await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal(cost), it=Decimal("0.00"), overheads=Decimal("0.00"))
        )
        soest_2024 = await invoices.run_invoice(uow, soest, "2024")
        await invoices.issue_invoice(uow, soest_2024.id)  # 4.75 EUR at 0.95 per started minute


@pytest.mark.parametrize(
    ("cost", "kind", "amount"),
    [
        ("10.00", "invoice", Decimal("2.40")),  # 1.43 EUR/min × 5 min = 7.15 EUR, invoiced 4.75 EUR
        ("5.00", "credit_note", Decimal("1.15")),  # 0.72 EUR/min × 5 min = 3.60 EUR, invoiced 4.75 EUR
    ],
)
async def test_true_up_to_the_cost_covering_rate(
    world: World, billing: Billing, validator: Validator, cost: str, kind: str, amount: Decimal
) -> None:
    await _year_invoiced(world, billing, cost)
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    async with unit_of_work(world.state, billing.finance()) as uow:
        with pytest.raises(Conflict, match="invoice all of 2024 first"):
            await rates.true_up(uow, geseke, 2024)
        draft = await rates.true_up(uow, soest, 2024)
        assert (draft.kind.value, draft.purpose.value, draft.net_amount) == (kind, "true_up", amount)
        assert [(line.kind.value, line.amount, line.billable_seconds) for line in draft.lines] == [
            ("true_up", amount, 300)
        ]
        issued = await invoices.issue_invoice(uow, draft.id)
        with pytest.raises(Conflict, match="trued up already"):
            await rates.true_up(uow, soest, 2024)
        _, xml = await invoices.xrechnung(uow, issued.id)
    report = validator.validate(xml)
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])


async def test_a_rate_beyond_the_price_limit_names_the_real_cause(world: World, billing: Billing) -> None:
    """8 billable minutes and 70000 EUR of costs make 8750 EUR/min: above what a tariff may carry.
    The answer says so (422 on the year), not "those days are already invoiced"."""
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2024, 5, 6), 61, 59, 110, 70, 50))
    async with unit_of_work(world.state, billing.finance()) as uow:
        await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal("70000.00"), it=Decimal(0), overheads=Decimal(0))
        )
        with pytest.raises(ValidationFailed, match=r"8750\.00 EUR/min; a price per minute is below 1000") as refused:
            await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
        assert refused.value.field == "year"
        # Past the checks in code, the table's own limit is still reported as the price, not as invoiced days.
        agreement = await tenants_service.agreement(uow, billing.agreements["soest"], Operation.TARIFF_WRITE)
        terms = TariffCreate(agreement_id=agreement.id, valid_from=date(2025, 1, 1), price_per_minute=Decimal(1000))
        with pytest.raises(ValidationFailed, match="below 1000 EUR") as limit:
            await tariffs._insert_tariff(uow, agreement, terms)
        assert limit.value.field == "pricePerMinute"


@pytest.mark.clock
async def test_a_true_up_waits_until_the_year_is_over(world: World, billing: Billing) -> None:
    """On 6 December 2024 the year 2024 is still running: no true-up (409 naming the year); on
    New Year's Day 2025 it is drafted."""
    await _year_invoiced(world, billing, "10.00")
    soest = billing.clients["soest"]
    with time_machine.travel(datetime(2024, 12, 6, 10, 0, tzinfo=BERLIN), tick=True):
        async with unit_of_work(world.state, billing.finance()) as uow:
            with pytest.raises(Conflict, match="2024 is not over yet") as refused:
                await rates.true_up(uow, soest, 2024)
            assert refused.value.data == {"field": "year"}
            with pytest.raises(Conflict, match="2025 is not over yet"):
                await rates.true_up(uow, soest, 2025)
    with time_machine.travel(datetime(2025, 1, 1, 0, 5, tzinfo=BERLIN), tick=True):
        async with unit_of_work(world.state, billing.finance()) as uow:
            draft = await rates.true_up(uow, soest, 2024)
    assert draft.purpose.value == "true_up" and draft.period_label == "2024"


async def test_the_rate_divides_by_every_minute_the_centre_handled(world: World, billing: Billing) -> None:
    """The operator's own calls (its central number, a 115 call not assigned to a town) are in
    the divisor, counted as the clients' 60/60 tariffs bill; an item the operator declares as its
    own is left out of the costs: (14.00 − 2.00) EUR ÷ 12 min = 1.00 EUR/min. Dividing by the
    clients' 8 minutes alone made them pay 1.75 EUR/min, the operator's calls included."""
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2024, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2024, 5, 6), 61, 59, 110))  # 300 s
    await add_calls(world.state.pool, geseke, billing.operator, talks(date(2024, 9, 9), 70, 50))  # 180 s
    own = [*talks(date(2024, 3, 4), 61, 59), CallSpec(local(date(2024, 3, 5)), talk_seconds=30, purpose="115")]
    await add_calls(world.state.pool, billing.operator, billing.operator, own)  # 120 + 60 + 60 = 240 s
    async with unit_of_work(world.state, billing.finance()) as uow:
        with pytest.raises(ValidationFailed, match="own items") as refused:
            await rates.record_cost_base(
                uow,
                CostBaseInput(
                    year=2024,
                    staff=Decimal("1.00"),
                    it=Decimal(0),
                    overheads=Decimal(0),
                    own_items=[OwnCostItem(label="Telefonzentrale", amount=Decimal("1.00"))],
                ),
            )
        assert refused.value.field == "ownItems"
        base = await rates.record_cost_base(
            uow,
            CostBaseInput(
                year=2024,
                staff=Decimal("10.00"),
                it=Decimal("3.00"),
                overheads=Decimal("1.00"),
                own_items=[OwnCostItem(label="Telefonzentrale Kreishaus", amount=Decimal("2.00"))],
            ),
        )
        assert base.own_items == [OwnCostItem(label="Telefonzentrale Kreishaus", amount=Decimal("2.00"))]
        proposal = await rates.rate_proposal(uow, 2024)
    assert {c.tenant_id: c.billable_seconds for c in proposal.clients} == {soest: 300, geseke: 180}
    assert proposal.operator_seconds == 240 and proposal.billable_seconds == 720
    assert proposal.covered_costs == Decimal("12.00")
    assert proposal.exact_rate == Decimal("1.000000") and proposal.proposed_rate == Decimal("1.00")
    lines = proposal.calculation
    assert "left out as the operator's own: Telefonzentrale Kreishaus 2.00 EUR" in lines
    assert "costs the rate covers: 14.00 − 2.00 = 12.00 EUR" in lines
    assert any(line.startswith("minutes handled 2024, ") and ": 240 s = 4.0000 min" in line for line in lines)
    assert "calls without a tariff counted as 60/60 (first period/increment, seconds)" in lines
    assert "all minutes the centre handled 2024: 720 s ÷ 60 = 12.0000 min" in lines
    assert "12.00 EUR ÷ 12.0000 min = 1.000000 EUR/min" in lines


async def test_the_operators_calls_are_counted_as_the_clients_are_billed(world: World, billing: Billing) -> None:
    """Clients billed 60/1: the operator's 20 s call counts 60 s, its 61 s call 61 s."""
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95", increment=1, first_period=60)
    await billing.add_tariff("geseke", date(2024, 1, 1), "0.95", increment=1, first_period=60)
    await add_calls(world.state.pool, billing.clients["soest"], billing.operator, talks(date(2024, 5, 6), 20))
    await add_calls(world.state.pool, billing.operator, billing.operator, talks(date(2024, 3, 4), 20, 61))
    async with unit_of_work(world.state, billing.finance()) as uow:
        await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal("1.81"), it=Decimal(0), overheads=Decimal(0))
        )
        proposal = await rates.rate_proposal(uow, 2024)
    assert proposal.operator_seconds == 121 and proposal.billable_seconds == 181
    assert "calls without a tariff counted as 60/1 (first period/increment, seconds)" in proposal.calculation
    assert proposal.proposed_rate == Decimal("0.60")
