"""The third sweep (decision 004): a year's rate answered, changed and adopted at once, and an
issued invoice cancelled several times at once or while its period is run again. No deadlock's
"try again", no 500; the towns' answers and the adoption agree afterwards; an invoice is cancelled
by one credit note."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta

import pytest
import time_machine

from backend.billing import consultation, invoices
from backend.billing.schemas import (
    CancellationInput,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    RateAdoption,
    RateDecision,
    RateEventKind,
)
from backend.billing.schemas import RateAdoptionInput as Adoption
from backend.errors import Conflict, InvalidTransition
from backend.state import unit_of_work
from tests.billing.support import Billing, add_calls, make_billing, talks
from tests.billing.test_concurrent_runs import _all_of, _not_a_deadlock
from tests.billing.test_consultation import PROPOSED_ON, _decide, _proposed
from tests.support.world import World

pytestmark = pytest.mark.clock  # the date to answer by is compared with the clock
ROUNDS = int(os.environ.get("SWEEP_ROUNDS", "3"))
AT_ONCE = 4


async def _adopt(billing: Billing) -> object:
    with time_machine.travel(PROPOSED_ON + timedelta(days=8), tick=True):
        async with unit_of_work(billing.state, billing.finance()) as uow:
            return await consultation.adopt_rate(uow, Adoption(year=2024))


async def _answer(billing: Billing, town: str, decision: RateDecision, note: str = "", delay: float = 0) -> object:
    await asyncio.sleep(delay)
    return await _decide(billing, town, decision, note)


async def _events(billing: Billing, town: str) -> list[tuple[RateEventKind, str]]:
    tenant = billing.clients[town]
    async with unit_of_work(billing.state, billing.finance(tenant), readonly=True) as uow:
        view = await consultation.rate_consultation(uow, 2024)
    return [(e.kind, e.note) for e in view.events]


async def test_a_towns_answers_sent_at_once_leave_its_last_answer_standing(world: World, billing: Billing) -> None:
    """Identical answers at once are one answer (a retry adds no event); an acceptance and an
    objection at once: the consent is the last event's answer."""
    await _proposed(world, billing)
    same = await asyncio.gather(
        *(_answer(billing, "soest", RateDecision.ACCEPTED) for _ in range(AT_ONCE)), return_exceptions=True
    )
    _not_a_deadlock(list(same))
    assert all(not isinstance(a, BaseException) for a in same), same
    assert [k for k, _ in await _events(billing, "soest")] == [RateEventKind.PROPOSED, RateEventKind.ACCEPTED]
    mixed = await asyncio.gather(
        *(
            _answer(billing, "geseke", RateDecision.OBJECTED if n % 2 else RateDecision.ACCEPTED, f"Antwort {n}")
            for n in range(AT_ONCE)
        ),
        return_exceptions=True,
    )
    _not_a_deadlock(list(mixed))
    assert all(not isinstance(a, BaseException) for a in mixed), mixed
    kind, note = (await _events(billing, "geseke"))[-1]
    async with unit_of_work(billing.state, billing.finance(billing.clients["geseke"]), readonly=True) as uow:
        view = await consultation.rate_consultation(uow, 2024)
    assert (view.consents[0].decision.value, view.consents[0].note) == (kind.value, note)


async def test_an_adoption_and_a_town_changing_its_answer_at_once_agree(world: World) -> None:
    """Found by this sweep: the adoption read the towns' answers unlocked, so a town objecting at
    that moment was told its objection was taken (200) while the rate was adopted as accepted by
    all ("adopted", not "adopted after the deadline with a reason"). Now either the objection
    comes first and the adoption is refused, or the adoption does and the objection is refused."""
    outcomes: set[str] = set()
    for round_ in range(ROUNDS + 1):
        billing = await make_billing(world.state)
        await _proposed(world, billing)
        await _decide(billing, "soest", RateDecision.ACCEPTED)
        await _decide(billing, "geseke", RateDecision.ACCEPTED)
        delay = (round_ % 4) * 0.004  # the objection a little later each round: the adoption's window
        adopted, objected = await asyncio.gather(
            _adopt(billing),
            _answer(billing, "geseke", RateDecision.OBJECTED, "doch nicht", delay=delay),
            return_exceptions=True,
        )
        _not_a_deadlock([adopted, objected])
        events = await _events(billing, "geseke")
        if isinstance(adopted, RateAdoption):
            outcomes.add("adopted")
            assert isinstance(objected, InvalidTransition), (objected, events)
            assert events[-1][0] is RateEventKind.ADOPTED and RateEventKind.OBJECTED not in {k for k, _ in events}
        else:
            outcomes.add("objected")
            assert isinstance(adopted, Conflict) and not isinstance(objected, BaseException), (adopted, objected)
            assert events[-1] == (RateEventKind.OBJECTED, "doch nicht")
    assert outcomes  # which came first varies with the machine; either way they agree


async def test_one_rate_adopted_four_times_at_once_makes_one_tariff_a_town(world: World, billing: Billing) -> None:
    await _proposed(world, billing)
    await _decide(billing, "soest", RateDecision.ACCEPTED)
    await _decide(billing, "geseke", RateDecision.ACCEPTED)
    outcomes = await asyncio.gather(*(_adopt(billing) for _ in range(AT_ONCE)), return_exceptions=True)
    _not_a_deadlock(list(outcomes))
    adopted = [o for o in outcomes if isinstance(o, RateAdoption)]
    assert len(adopted) == 1 and len(adopted[0].tariffs) == 2, outcomes
    assert all(isinstance(o, (RateAdoption, InvalidTransition)) for o in outcomes), outcomes
    assert [k for k, _ in await _events(billing, "soest")].count(RateEventKind.ADOPTED) == 1


async def _issued(world: World, billing: Billing, period: str, day: date) -> Invoice:
    soest = billing.clients["soest"]
    await add_calls(world.state.pool, soest, billing.operator, talks(day, 61, 59))
    async with unit_of_work(billing.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, period)
        return await invoices.issue_invoice(uow, draft.id)


async def _cancel(billing: Billing, invoice: Invoice) -> object:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await invoices.cancel_invoice(uow, invoice.id, CancellationInput(reason="Storno"))


async def _run(billing: Billing, period: str) -> object:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await invoices.run_invoice(uow, billing.clients["soest"], period)


async def test_an_invoice_cancelled_four_times_at_once_has_one_credit_note(world: World, billing: Billing) -> None:
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    for month in range(1, 1 + ROUNDS):
        issued = await _issued(world, billing, f"2026-{month:02d}", date(2026, month, 5))
        outcomes = await asyncio.gather(*(_cancel(billing, issued) for _ in range(AT_ONCE)), return_exceptions=True)
        _not_a_deadlock(list(outcomes))
        credits = [o for o in outcomes if isinstance(o, Invoice)]
        assert len(credits) == 1 and all(isinstance(o, (Invoice, InvalidTransition)) for o in outcomes), outcomes
        listed = await _all_of(billing, "soest")
        assert [i.id for i in listed if i.cancels_id == issued.id] == [credits[0].id]
        assert next(i for i in listed if i.id == issued.id).status is InvoiceStatus.CANCELLED


async def test_a_cancellation_and_runs_of_its_period_at_once(world: World, billing: Billing) -> None:
    """A run waits for the cancellation before it (and drafts the period anew) or comes first
    (and is refused: the period is invoiced); never a draft beside an issued invoice, one credit note."""
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    for month in range(4, 4 + ROUNDS):
        period = f"2026-{month:02d}"
        issued = await _issued(world, billing, period, date(2026, month, 6))
        outcomes = await asyncio.gather(
            _run(billing, period),
            _cancel(billing, issued),
            _run(billing, period),
            _cancel(billing, issued),
            return_exceptions=True,
        )
        _not_a_deadlock(list(outcomes))
        assert all(isinstance(o, (Invoice, Conflict)) for o in outcomes), outcomes
        mine = [i for i in await _all_of(billing, "soest") if i.period_label == period]
        assert [i.kind for i in mine].count(InvoiceKind.CREDIT_NOTE) == 1, mine
        assert [i.status for i in mine].count(InvoiceStatus.CANCELLED) == 1, mine
        assert [i.status for i in mine].count(InvoiceStatus.DRAFT) <= 1, mine
