"""The yearly rate by mutual agreement ("einvernehmlich"): the operator proposes, each town accepts
or objects with a note, the rate is adopted when all accepted or, after the date to answer by, by
the operator with a reason on record. Every step is an event the town it concerns reads, and
only that town."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from auth.errors import Forbidden
from backend.billing import consultation, rates
from backend.billing.schemas import (
    CostBaseInput,
    RateAdoptionInput,
    RateDecision,
    RateDecisionInput,
    RateEventKind,
    RateProposalInput,
)
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed
from backend.state import unit_of_work
from tests.billing.support import BERLIN, Billing, add_calls, talks
from tests.support.world import World

pytestmark = pytest.mark.clock  # the date to answer by is compared with the clock

PROPOSED_ON = datetime(2025, 2, 3, 10, 0, tzinfo=BERLIN)
RESPOND_BY = date(2025, 3, 31)


async def _proposed(world: World, billing: Billing) -> None:
    """2024: 7 billed minutes, 10.00 EUR of costs → 1.43 EUR/min, proposed on 3 February 2025."""
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2024, 1, 1), "0.95")
    await add_calls(world.state.pool, billing.clients["soest"], billing.operator, talks(date(2024, 5, 6), 61, 59, 110))
    await add_calls(world.state.pool, billing.clients["geseke"], billing.operator, talks(date(2024, 9, 9), 60, 60))
    with time_machine.travel(PROPOSED_ON, tick=True):
        async with unit_of_work(world.state, billing.finance()) as uow:
            await rates.record_cost_base(
                uow, CostBaseInput(year=2024, staff=Decimal("10.00"), it=Decimal(0), overheads=Decimal(0))
            )
            with pytest.raises(ValidationFailed, match="after today") as early:
                await consultation.propose_rate(uow, RateProposalInput(year=2024, respond_by=date(2025, 2, 3)))
            assert early.value.field == "respondBy"
            proposed = await consultation.propose_rate(uow, RateProposalInput(year=2024, respond_by=RESPOND_BY))
    assert proposed.rate == Decimal("1.43") and proposed.respond_by == RESPOND_BY and not proposed.adopted
    assert {(c.tenant_id, c.decision) for c in proposed.consents} == {
        (billing.clients["soest"], RateDecision.PENDING),
        (billing.clients["geseke"], RateDecision.PENDING),
    }
    assert [e.kind for e in proposed.events] == [RateEventKind.PROPOSED] * 2


async def _decide(billing: Billing, town: str, decision: RateDecision, note: str = "") -> object:
    tenant = billing.clients[town]
    with time_machine.travel(PROPOSED_ON + timedelta(days=7), tick=True):
        async with unit_of_work(billing.state, billing.finance(tenant)) as uow:
            return await consultation.decide_rate(
                uow, billing.slugs[tenant], RateDecisionInput(year=2024, decision=decision, note=note)
            )


async def test_adopted_when_every_town_accepted(world: World, billing: Billing) -> None:
    await _proposed(world, billing)
    finance = billing.finance()
    await _decide(billing, "soest", RateDecision.ACCEPTED)
    with time_machine.travel(PROPOSED_ON + timedelta(days=8), tick=True):
        async with unit_of_work(world.state, finance) as uow:
            with pytest.raises(Conflict, match="1 towns have not accepted the rate for 2024; they may answer until"):
                await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
            with pytest.raises(Duplicate, match="proposed to the towns already"):
                await consultation.propose_rate(uow, RateProposalInput(year=2024, respond_by=RESPOND_BY))
            with pytest.raises(InvalidTransition, match="was proposed to the towns; it no longer changes"):
                await rates.record_cost_base(
                    uow, CostBaseInput(year=2024, staff=Decimal("99.00"), it=Decimal(0), overheads=Decimal(0))
                )
    await _decide(billing, "geseke", RateDecision.OBJECTED, "Bitte Kostenaufstellung erläutern")
    await _decide(billing, "geseke", RateDecision.ACCEPTED, "nach Erläuterung einverstanden")
    again = await _decide(billing, "geseke", RateDecision.ACCEPTED, "nach Erläuterung einverstanden")  # a retry
    with time_machine.travel(PROPOSED_ON + timedelta(days=9), tick=True):
        async with unit_of_work(world.state, finance) as uow:
            adoption = await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
            view = await consultation.rate_consultation(uow, 2024)
    assert again.decision is RateDecision.ACCEPTED
    assert {t.price_per_minute for t in adoption.tariffs} == {Decimal("1.43")}
    assert view.adopted and {c.decision for c in view.consents} == {RateDecision.ACCEPTED}
    geseke = billing.clients["geseke"]
    assert [(e.kind, e.note) for e in view.events if e.tenant_id == geseke] == [
        (RateEventKind.PROPOSED, view.events[0].note),
        (RateEventKind.OBJECTED, "Bitte Kostenaufstellung erläutern"),
        (RateEventKind.ACCEPTED, "nach Erläuterung einverstanden"),  # the retry added nothing
        (RateEventKind.ADOPTED, ""),
    ]
    assert "1.43 EUR/min from 2025-01-01" in view.events[0].note  # the calculation travels with it
    with pytest.raises(InvalidTransition, match="answers are closed"):
        await _decide(billing, "soest", RateDecision.OBJECTED, "zu spät")


async def test_after_the_deadline_the_operator_adopts_with_a_reason(world: World, billing: Billing) -> None:
    await _proposed(world, billing)
    await _decide(billing, "soest", RateDecision.ACCEPTED)
    await _decide(billing, "geseke", RateDecision.OBJECTED, "Minutenpreis zu hoch")
    finance = billing.finance()
    with time_machine.travel(datetime(2025, 3, 31, 16, 0, tzinfo=BERLIN), tick=True):  # the last day to answer
        async with unit_of_work(world.state, finance) as uow:
            with pytest.raises(Conflict, match="may answer until 2025-03-31"):
                await consultation.adopt_rate(uow, RateAdoptionInput(year=2024, reason="Frist abgelaufen"))
    with time_machine.travel(datetime(2025, 4, 1, 9, 0, tzinfo=BERLIN), tick=True):
        async with unit_of_work(world.state, finance) as uow:
            with pytest.raises(ValidationFailed, match="give the reason") as no_reason:
                await consultation.adopt_rate(uow, RateAdoptionInput(year=2024, reason="  "))
            assert no_reason.value.field == "reason"
        async with unit_of_work(world.state, finance) as uow:
            reason = "Kreistagsbeschluss vom 28.03.2025; Einwand Geseke im Finanzausschuss erörtert"
            adoption = await consultation.adopt_rate(uow, RateAdoptionInput(year=2024, reason=reason))
    assert len(adoption.tariffs) == 2
    # Each town reads the steps that concern it, and only those.
    geseke = billing.clients["geseke"]
    async with unit_of_work(world.state, billing.finance(geseke), readonly=True) as uow:
        own = await consultation.rate_consultation(uow, 2024)
        with pytest.raises(NotFound):
            await consultation.rate_consultation(uow, 2024, billing.slugs[billing.clients["soest"]])
    assert {e.tenant_id for e in own.events} == {geseke} and [c.tenant_id for c in own.consents] == [geseke]
    assert [(e.kind, e.note) for e in own.events][-1] == (RateEventKind.ADOPTED_AFTER_DEADLINE, reason)
    assert own.adopted and own.rate == Decimal("1.43")


async def test_answers_are_checked(world: World, billing: Billing) -> None:
    await _proposed(world, billing)
    with pytest.raises(ValidationFailed, match="says why") as no_note:
        await _decide(billing, "geseke", RateDecision.OBJECTED, "   ")
    assert no_note.value.field == "note"
    with pytest.raises(ValidationFailed, match="accepted or objected"):
        await _decide(billing, "geseke", RateDecision.PENDING)
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    async with unit_of_work(world.state, billing.finance(geseke)) as uow:
        with pytest.raises(NotFound):  # another town's answer is out of reach
            await consultation.decide_rate(
                uow, billing.slugs[soest], RateDecisionInput(year=2024, decision=RateDecision.ACCEPTED)
            )
        with pytest.raises(NotFound, match="no rate was proposed"):
            await consultation.decide_rate(
                uow, billing.slugs[geseke], RateDecisionInput(year=2023, decision=RateDecision.ACCEPTED)
            )
        with pytest.raises(Forbidden):  # proposing is the operator's
            await consultation.propose_rate(uow, RateProposalInput(year=2024, respond_by=date(2099, 1, 1)))


async def test_no_adoption_without_a_proposal(world: World, billing: Billing) -> None:
    await billing.add_tariff("soest", date(2024, 1, 1), "0.95")
    await add_calls(world.state.pool, billing.clients["soest"], billing.operator, talks(date(2024, 5, 6), 60))
    async with unit_of_work(world.state, billing.finance()) as uow:
        await rates.record_cost_base(
            uow, CostBaseInput(year=2024, staff=Decimal("1.00"), it=Decimal(0), overheads=Decimal(0))
        )
        with pytest.raises(Conflict, match="propose the rate for 2024 to the towns first"):
            await consultation.adopt_rate(uow, RateAdoptionInput(year=2024))
