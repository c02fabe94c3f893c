"""The demo's billing (issue 17): a newcomer's first invoice run over last month's demo calls
yields an invoice — tariffs for Geseke (0.95 EUR per started minute from 2018-01-01) and Soest
(0.95 EUR, 60/1), billing profiles, and a month of calls on working days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.billing import invoices, tariffs
from backend.billing.demo import CALLS_PER_DAY, demo_calls, last_month, load_billing_setup
from backend.state import unit_of_work
from tests.billing.support import Billing, CallSpec, add_calls
from tests.support.world import system_principal


def test_a_month_of_demo_calls_on_working_days_the_same_every_time() -> None:
    assert last_month(date(2026, 12, 6)) == (2026, 11) and last_month(date(2027, 1, 1)) == (2026, 12)
    calls = demo_calls(2026, 11)
    assert calls == demo_calls(2026, 11)  # idempotent import: the same ids and values every run
    assert len({c.external_id for c in calls}) == len(calls) == 21 * sum(n for _, n in CALLS_PER_DAY.values())
    assert {c.offered_at.weekday() for c in calls} <= {0, 1, 2, 3, 4}
    assert {(c.offered_at.year, c.offered_at.month) for c in calls} == {(2026, 11)}
    talked = [c for c in calls if c.answered_at is not None]
    assert 0.8 < len(talked) / len(calls) < 1


async def test_the_first_invoice_run_over_the_demo_month_yields_an_invoice(billing: Billing) -> None:
    names = {
        "kreis-soest": billing.operator,
        "stadt-soest": billing.clients["soest"],
        "stadt-geseke": billing.clients["geseke"],
    }
    slugs = {name: billing.slugs[tenant_id] for name, tenant_id in names.items()}
    admin = system_principal(billing.operator, set(names.values()))
    await load_billing_setup(billing.state, admin, slugs)
    await load_billing_setup(billing.state, admin, slugs)  # a second `make run` adds nothing
    async with unit_of_work(billing.state, billing.finance(), readonly=True) as uow:
        set_up = await tariffs.list_tariffs(uow)
    mine = {t.tenant_id: t for t in set_up if t.tenant_id in names.values()}
    assert len([t for t in set_up if t.tenant_id in names.values()]) == 2
    geseke, soest = mine[billing.clients["geseke"]], mine[billing.clients["soest"]]
    assert (geseke.valid_from, geseke.price_per_minute, geseke.billing_increment) == (
        date(2018, 1, 1),
        Decimal("0.95"),
        "60/60",
    )
    assert (soest.price_per_minute, soest.billing_increment) == (Decimal("0.95"), "60/1")
    # The month's calls as the telephone system would import them for these two towns.
    for name, town in (("stadt-soest", "soest"), ("stadt-geseke", "geseke")):
        dialled = CALLS_PER_DAY[name][0]
        specs = [
            CallSpec(
                c.offered_at,
                talk_seconds=int((c.ended_at - c.answered_at).total_seconds())
                if c.answered_at and c.ended_at
                else None,
                caller=c.caller,
            )
            for c in demo_calls(2026, 11)
            if c.dialled == dialled
        ]
        await add_calls(billing.state.pool, billing.clients[town], billing.operator, specs)
    async with unit_of_work(billing.state, billing.finance()) as uow:
        for town in ("soest", "geseke"):
            draft = await invoices.run_invoice(uow, billing.clients[town], "2026-11")
            assert draft.unrated_calls == 0 and draft.lines and draft.net_amount > 0
            issued = await invoices.issue_invoice(uow, draft.id)
            assert issued.number is not None


@pytest.mark.parametrize("name", ["stadt-soest", "stadt-geseke"])
def test_demo_numbers_are_the_demo_towns(name: str) -> None:
    from backend.telephony.demo import NUMBERS
    from backend.telephony.numbers import normalise_block

    dialled = CALLS_PER_DAY[name][0]
    blocks = [normalise_block(raw) for slug, raw, kind, *_ in NUMBERS if slug == name and kind.value == "block"]
    assert any(dialled.startswith(block) for block in blocks)
