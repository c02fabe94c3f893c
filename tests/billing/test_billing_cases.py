"""Billing cases as the towns' finance checks them: per call minute, Decimal money, calls across
midnight, month and year end, a leap day, zero-second calls, many small calls without drift, the
introductory rate for the agreement's first year when it ends mid-month (decision 008), and each
issued invoice valid XRechnung."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from backend.billing import consultation, invoices, rates
from backend.billing.schemas import (
    CostBaseInput,
    Invoice,
    RateAdoptionInput,
    RateDecision,
    RateDecisionInput,
    RateProposalInput,
)
from backend.errors import ValidationFailed
from backend.state import unit_of_work
from backend.tenants.schemas import Agreement
from tests.billing.support import BERLIN, Billing, CallSpec, add_calls, local, make_billing, talks
from tests.billing.xrechnung_check import Validator
from tests.support.world import World

pytestmark = pytest.mark.clock  # invoices are issued on today's date


async def _run(billing: Billing, town: str, period: str) -> Invoice:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await invoices.run_invoice(uow, billing.clients[town], period)


def _lines(invoice: Invoice) -> list[tuple[date, date, int, int, Decimal]]:
    return [(li.covers_from, li.covers_to, li.calls, li.billable_seconds, li.amount) for li in invoice.lines]


async def test_calls_belong_to_the_berlin_day_they_start_on(world: World, billing: Billing) -> None:
    """Across midnight, month end and year end a call is billed on its start day."""
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(
        world.state.pool,
        soest,
        billing.operator,
        [
            CallSpec(local(date(2026, 11, 30), 23, 59, 0), talk_seconds=125, wait_seconds=10),  # → 1 Dec: November
            CallSpec(local(date(2026, 12, 31), 23, 59, 30), talk_seconds=61, wait_seconds=5),  # → 2027: December
            CallSpec(local(date(2027, 1, 1), 0, 0, 5), talk_seconds=60),  # 2027
        ],
    )
    found = [await _run(billing, "soest", p) for p in ("2026-11", "2026-12", "2027-01")]
    assert [x.net_amount for x in found] == [
        Decimal("2.85"),  # 125 s per started minute: 3 min
        Decimal("1.90"),  # 61 s: 2 min
        Decimal("0.95"),
    ]


async def test_a_leap_day_and_zero_second_calls(world: World, billing: Billing) -> None:
    geseke = billing.clients["geseke"]
    await billing.add_tariff("geseke", date(2028, 1, 1), "0.95")
    await add_calls(
        world.state.pool,
        geseke,
        billing.operator,
        [
            *talks(date(2028, 2, 29), 30, 0, 0),  # 0-second calls: answered, nothing talked
            CallSpec(local(date(2028, 2, 29), 23, 59, 59), talk_seconds=1),
            CallSpec(local(date(2028, 3, 1), 0, 0, 0), talk_seconds=0),
        ],
    )
    february = await _run(billing, "geseke", "2028-02")
    assert february.period_to == date(2028, 2, 29)
    assert _lines(february) == [(date(2028, 2, 1), date(2028, 2, 29), 2, 120, Decimal("1.90"))]
    march = await _run(billing, "geseke", "2028-03")
    assert march.lines == [] and march.net_amount == 0


@pytest.mark.parametrize(
    ("increment", "first", "talk", "calls", "expected"),
    [
        (1, 1, 7, 997, Decimal("110.50")),  # 6,979 s × 0.95/60 = 110.5008…; per call rounded: 109.67
        (60, 60, 1, 1000, Decimal("950.00")),  # every started minute
        (1, 60, 61, 333, Decimal("321.62")),  # 60/1: 20,313 s = 321.6225 EUR
        (30, 30, 31, 400, Decimal("380.00")),  # 30/1 … 30/30: 60 s each
    ],
)
async def test_many_small_calls_add_up_exactly(
    world: World, billing: Billing, increment: int, first: int, talk: int, calls: int, expected: Decimal
) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", increment=increment, first_period=first)
    day = date(2026, 6, 1)
    await add_calls(
        world.state.pool,
        soest,
        billing.operator,
        [
            CallSpec(datetime(2026, 6, 1, 6, tzinfo=BERLIN) + timedelta(seconds=40 * i), talk_seconds=talk)
            for i in range(calls)
        ],
    )
    invoice = await _run(billing, "soest", "2026-06")
    assert invoice.net_amount == expected and isinstance(invoice.net_amount, Decimal)
    assert sum(li.calls for li in invoice.lines) == calls and invoice.lines[0].covers_from == day


@pytest.mark.parametrize(
    ("starts_on", "last_day"),
    [
        (date(2026, 7, 15), date(2027, 7, 14)),
        (date(2024, 2, 29), date(2025, 2, 28)),
        (date(2026, 1, 31), date(2027, 1, 30)),
        (date(2027, 3, 1), date(2028, 2, 29)),
        (date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_the_first_year_of_an_agreement(starts_on: date, last_day: date) -> None:
    agreement = Agreement(
        tenant_id=None,  # type: ignore[arg-type]
        id=None,  # type: ignore[arg-type]
        operator_tenant_id=None,  # type: ignore[arg-type]
        starts_on=starts_on,
        initial_term_months=24,
        renewal_term_months=12,
        notice_period_months=6,
        ends_on=None,
        scope_notes="",
        version=1,
    )
    assert agreement.first_year_end == last_day


async def test_the_first_year_ends_mid_month_at_the_introductory_rate(world: World, validator: Validator) -> None:
    """Geseke joins on 15 July 2024 at 0.95 EUR; the 2024 cost-based rate (1.43 EUR) is adopted
    from 1 January 2025 for Soest, but Geseke keeps 0.95 to 14 July 2025, its first year."""
    billing = await make_billing(world.state, starts_on={"geseke": date(2024, 7, 15)})
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2024, 7, 15), "0.95")
    await add_calls(world.state.pool, billing.clients["soest"], billing.operator, talks(date(2024, 5, 6), 61, 59, 110))
    await add_calls(world.state.pool, billing.clients["geseke"], billing.operator, talks(date(2024, 9, 9), 60, 60))
    with time_machine.travel(datetime(2025, 2, 3, 10, tzinfo=BERLIN), tick=True):
        async with unit_of_work(world.state, billing.finance()) as uow:
            await rates.record_cost_base(
                uow, CostBaseInput(year=2024, staff=Decimal("10.00"), it=Decimal(0), overheads=Decimal(0))
            )
            await consultation.propose_rate(uow, RateProposalInput(year=2024, respond_by=date(2025, 3, 31)))
        for town in ("soest", "geseke"):
            tenant = billing.clients[town]
            async with unit_of_work(world.state, billing.finance(tenant)) as uow:
                await consultation.decide_rate(
                    uow, billing.slugs[tenant], RateDecisionInput(year=2024, decision=RateDecision.ACCEPTED)
                )
        async with unit_of_work(world.state, billing.finance()) as uow:
            adoption = await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
    starts = {t.tenant_id: (t.valid_from, t.price_per_minute) for t in adoption.tariffs}
    assert starts == {
        billing.clients["soest"]: (date(2025, 1, 1), Decimal("1.43")),
        billing.clients["geseke"]: (date(2025, 7, 15), Decimal("1.43")),
    }
    geseke = billing.clients["geseke"]
    await add_calls(
        world.state.pool,
        geseke,
        billing.operator,
        [*talks(date(2025, 1, 2), 60), *talks(date(2025, 7, 14), 60), *talks(date(2025, 7, 15), 60)],
    )
    january = await _run(billing, "geseke", "2025-01")
    assert january.net_amount == Decimal("0.95")  # still the first year
    july = await _run(billing, "geseke", "2025-07")
    assert [(li.covers_from, li.covers_to, li.amount) for li in july.lines] == [
        (date(2025, 7, 1), date(2025, 7, 14), Decimal("0.95")),
        (date(2025, 7, 15), date(2025, 7, 31), Decimal("1.43")),
    ]
    async with unit_of_work(world.state, billing.finance()) as uow:
        issued = await invoices.issue_invoice(uow, july.id)
        _, xml = await invoices.xrechnung(uow, issued.id)
    report = validator.validate(xml)
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])


async def test_a_true_up_leaves_the_first_year_at_its_rate(world: World, validator: Validator) -> None:
    """Geseke joins on 15 July 2024: 0.95 EUR to 14 July 2025, then 1.00 EUR. The 2025 cost rate is
    2.00 EUR (6.00 EUR ÷ 3 minutes); the true-up settles only the 2 minutes after the first year
    (4.00 − 2.00 = 2.00 EUR), and 2024 lies wholly in the first year."""
    billing = await make_billing(world.state, starts_on={"geseke": date(2024, 7, 15)})
    geseke = billing.clients["geseke"]
    await billing.add_tariff("geseke", date(2024, 7, 15), "0.95", valid_to=date(2025, 7, 14))
    await billing.add_tariff("geseke", date(2025, 7, 15), "1.00")
    await add_calls(
        world.state.pool,
        geseke,
        billing.operator,
        [*talks(date(2024, 9, 9), 60), *talks(date(2025, 3, 3), 60), *talks(date(2025, 9, 1), 60, 60)],
    )
    # On a day after 2025 (a true-up waits for the year's end), whatever day the tests run.
    with time_machine.travel(datetime(2026, 1, 5, 10, tzinfo=BERLIN), tick=True):
        await _true_up_2025(billing, validator)


async def _true_up_2025(billing: Billing, validator: Validator) -> None:
    geseke = billing.clients["geseke"]
    async with unit_of_work(billing.state, billing.finance()) as uow:
        for year, cost in ((2024, "1.00"), (2025, "6.00")):
            await rates.record_cost_base(
                uow, CostBaseInput(year=year, staff=Decimal(cost), it=Decimal(0), overheads=Decimal(0))
            )
        year_2025 = await invoices.run_invoice(uow, geseke, "2025")
        assert [li.amount for li in year_2025.lines] == [Decimal("0.95"), Decimal("2.00")]
        await invoices.issue_invoice(uow, year_2025.id)
        with pytest.raises(ValidationFailed, match="first year") as first_year:
            await rates.true_up(uow, geseke, 2024)
        assert first_year.value.field == "year"
        draft = await rates.true_up(uow, geseke, 2025)
        assert draft.net_amount == Decimal("2.00")
        assert [(li.covers_from, li.covers_to, li.billable_seconds) for li in draft.lines] == [
            (date(2025, 7, 15), date(2025, 12, 31), 120)
        ]
        issued = await invoices.issue_invoice(uow, draft.id)
        _, xml = await invoices.xrechnung(uow, issued.id)
    report = validator.validate(xml)
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])
