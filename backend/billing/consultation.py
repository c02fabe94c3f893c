"""The yearly rate by mutual agreement ("einvernehmlich", issue 17): the operator proposes the
cost-covering rate (`rates`) to every client town with a date to answer by; each town's finance
or town admin accepts, or objects with a note; the operator adopts it as every client's tariff
once all have accepted, or after that date with a reason on record. Every step is an event each
town reads for itself (one row per town, under its own row-level security)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import msgspec

from auth.permissions import Operation
from backend import clock
from backend.billing import repository
from backend.billing.rates import _proposal
from backend.billing.schemas import (
    RateAdoption,
    RateAdoptionInput,
    RateConsent,
    RateConsultation,
    RateDecision,
    RateDecisionInput,
    RateEventKind,
    RateProposal,
    RateProposalInput,
    Tariff,
    TariffCreate,
    TariffInput,
)
from backend.billing.tariffs import MAX_PRICE_PER_MINUTE, _insert_tariff, _update_tariff
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants import service as tenants_service
from backend.tenants.reach import reach, reach_home, reach_optional, reachable
from backend.tenants.schemas import Tenant


async def _derivable(uow: UnitOfWork, operator: Tenant, year: int) -> RateProposal:
    """The year's proposal, refused when its cost base is missing or adopted, or no sane rate follows."""
    base = await repository.find_cost_base(uow.conn, operator.id, year, for_update=True)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=year))
    if base.adopted_rate is not None:
        raise InvalidTransition(
            _l(
                "the rate from the {year} cost base was adopted already ({adopted_rate} EUR/min)",
                year=year,
                adopted_rate=base.adopted_rate,
            )
        )
    proposal = await _proposal(uow, operator, base)
    if proposal.proposed_rate is None:
        raise ValidationFailed(_l("no billable minutes in {year}: no rate can be derived", year=year), field="year")
    if proposal.proposed_rate >= MAX_PRICE_PER_MINUTE:
        # A tariff's price stays below 1000 EUR per minute: a rate that high means the cost base
        # or the minutes are wrong, not that days are invoiced.
        raise ValidationFailed(
            _l(
                "the rate from the {year} cost base would be {rate} EUR/min; a price per minute is below "
                "1000 EUR: check the cost base",
                year=year,
                rate=proposal.proposed_rate,
            ),
            field="year",
        )
    return proposal


async def _clients_from(uow: UnitOfWork, operator: Tenant, proposal: RateProposal) -> list[tuple[UUID, UUID, str]]:
    """(client, agreement, name) of every agreement running on the day the rate would apply."""
    day = proposal.applies_from
    rows = await repository.agreements_of_operator(
        uow.conn, operator.id, sorted(uow.principal.acting_tenant_ids), day, day + timedelta(days=1)
    )
    return [(r["tenant_id"], r["id"], r["name"]) for r in rows]


async def propose_rate(uow: UnitOfWork, data: RateProposalInput) -> RateConsultation:
    """Propose the year's cost-covering rate to every client town it would apply to."""
    operator = await reach_home(uow, Operation.COST_BASE_WRITE, operator=True)
    if data.respond_by <= clock.today():
        raise ValidationFailed(_l("give the towns a date after today to answer by"), field="respondBy")
    await repository.lock_rate_year(uow.conn, operator.id, data.year)  # the costs hold still
    proposal = await _derivable(uow, operator, data.year)
    assert proposal.proposed_rate is not None
    clients = await _clients_from(uow, operator, proposal)
    if not clients:
        raise ValidationFailed(
            _l("no client town has an agreement on {day}", day=proposal.applies_from.isoformat()), field="year"
        )
    by = uow.principal.log_id
    if not await repository.insert_rate_proposal(
        uow.conn, operator.id, data.year, proposal.proposed_rate, data.respond_by, by
    ):
        raise Duplicate(_l("the rate for {year} was proposed to the towns already", year=data.year))
    ids = [c[0] for c in clients]
    await repository.insert_consents(uow.conn, ids, operator.id, data.year, proposal.proposed_rate, data.respond_by)
    note = f"{proposal.proposed_rate} EUR/min from {proposal.applies_from.isoformat()}; " + "; ".join(
        proposal.calculation
    )
    await repository.insert_rate_events(
        uow.conn, ids, operator.id, data.year, RateEventKind.PROPOSED, proposal.proposed_rate, note[:2000], by
    )
    return await _view(uow, ids, data.year)


async def decide_rate(uow: UnitOfWork, tenant: str, data: RateDecisionInput) -> RateConsent:
    """A town accepts the proposed rate, or objects with a note; it may change its answer until
    the rate is adopted. Sending the same answer again changes nothing (a retry)."""
    town = await reach(uow, tenant, Operation.RATE_DECIDE)
    found = await repository.find_consent(uow.conn, town.id, data.year, for_update=True)
    if found is None:
        raise NotFound(_l("no rate was proposed to {name} for {year}", name=town.name, year=data.year))
    consent, adopted_at = found
    if adopted_at is not None:
        raise InvalidTransition(_l("the rate for {year} was adopted already; answers are closed", year=data.year))
    note = data.note.strip()
    if data.decision is RateDecision.PENDING:
        raise ValidationFailed(_l("answer accepted or objected"), field="decision")
    if data.decision is RateDecision.OBJECTED and not note:
        raise ValidationFailed(_l("an objection says why in its note"), field="note")
    if (consent.decision, consent.note) == (data.decision, note):
        return consent
    decided = await repository.decide_consent(uow.conn, consent, data.decision.value, note, uow.principal.log_id)
    kind = RateEventKind.ACCEPTED if data.decision is RateDecision.ACCEPTED else RateEventKind.OBJECTED
    await repository.insert_rate_events(
        uow.conn, [town.id], consent.operator_tenant_id, data.year, kind, consent.rate, note, uow.principal.log_id
    )
    return decided


async def rate_consultation(uow: UnitOfWork, year: int, tenant: str | None = None) -> RateConsultation:
    """Where the year's rate stands with the towns I may see (a town: itself)."""
    visible = reachable(uow, Operation.RATE_CONSULTATION_READ)
    one = await reach_optional(uow, tenant, Operation.RATE_CONSULTATION_READ)
    if not 2000 <= year <= 2999:
        raise ValidationFailed(_l("a year between 2000 and 2999"), field="year")
    return await _view(uow, [one.id] if one else sorted(visible), year)


async def _view(uow: UnitOfWork, tenant_ids: list[UUID], year: int) -> RateConsultation:
    consents = await repository.list_consents(uow.conn, tenant_ids, year)
    return RateConsultation(
        year=year,
        rate=consents[0].rate if consents else None,
        respond_by=consents[0].respond_by if consents else None,
        adopted=await repository.consents_adopted(uow.conn, tenant_ids, year),
        consents=consents,
        events=await repository.list_rate_events(uow.conn, tenant_ids, year),
    )


async def _agreed(uow: UnitOfWork, operator: Tenant, data: RateAdoptionInput) -> tuple[RateEventKind, str]:
    """Whether the proposed rate may be adopted now, and how: every town accepted, or the date to
    answer by has passed and the operator gives its reason."""
    proposed = await repository.find_rate_proposal(uow.conn, operator.id, data.year, for_update=True)
    if proposed is None:
        raise Conflict(_l("propose the rate for {year} to the towns first", year=data.year), field="year")
    # Locked: a town changing its answer at this moment either comes first (and is counted) or
    # waits and finds the rate adopted; read unlocked, an objection sent meanwhile was answered
    # 200 while the rate went in as accepted by all (the third sweep, decision 004).
    consents = await repository.list_consents(
        uow.conn, sorted(uow.principal.acting_tenant_ids), data.year, for_update=True
    )
    waiting = [c for c in consents if c.operator_tenant_id == operator.id and c.decision is not RateDecision.ACCEPTED]
    if not waiting:
        return RateEventKind.ADOPTED, (data.reason or "").strip()
    if clock.today() <= proposed["respond_by"]:
        raise Conflict(
            _l(
                "{count} towns have not accepted the rate for {year}; they may answer until {respond_by}",
                count=len(waiting),
                year=data.year,
                respond_by=proposed["respond_by"].isoformat(),
            ),
            field="year",
        )
    reason = (data.reason or "").strip()
    if not reason:
        raise ValidationFailed(
            _l("{count} towns have not accepted: give the reason for adopting the rate anyway", count=len(waiting)),
            field="reason",
        )
    return RateEventKind.ADOPTED_AFTER_DEADLINE, reason


async def adopt_rate(uow: UnitOfWork, data: RateAdoptionInput) -> RateAdoption:
    """Adopt the rate proposed to the towns as every client's tariff from 1 January of the next
    year (open-ended; a running tariff ends on 31 December). Increment and minimum carry over."""
    operator = await reach_home(uow, Operation.COST_BASE_WRITE, operator=True)
    await repository.lock_rate_year(uow.conn, operator.id, data.year)  # one adoption at a time
    proposal = await _derivable(uow, operator, data.year)
    kind, reason = await _agreed(uow, operator, data)
    proposed = await repository.find_rate_proposal(uow.conn, operator.id, data.year)
    assert proposed is not None
    rate = proposed["rate"]  # what the towns were asked, whatever late calls changed since
    created: list[Tariff] = []
    # The towns that were asked; a client that joined since agrees its tariff on its own.
    asked = {
        c.tenant_id
        for c in await repository.list_consents(uow.conn, sorted(uow.principal.acting_tenant_ids), data.year)
    }
    clients = [c for c in await _clients_from(uow, operator, proposal) if c[0] in asked]
    for client_id, agreement_id, name in clients:
        agreement = await tenants_service.agreement(uow, agreement_id, Operation.TARIFF_WRITE)
        # A town still in its agreement's first year keeps the introductory rate to its end
        # (an agreement from 15 July 2026 pays 0.95 until 14 July 2027, the new rate after).
        applies_from = max(proposal.applies_from, agreement.first_year_end + timedelta(days=1))
        if agreement.ends_on is not None and applies_from > agreement.ends_on:
            continue  # the agreement ends within its first year: nothing to adopt for it
        running = await repository.tariff_in_force(uow.conn, client_id, applies_from)
        previous = running or await repository.tariff_in_force(uow.conn, client_id, applies_from - timedelta(days=1))
        if running is not None:
            if running.valid_from >= applies_from:
                raise Conflict(
                    _l(
                        "{name} already has a tariff from {applies_from}",
                        name=name,
                        applies_from=applies_from.isoformat(),
                    )
                )
            await _update_tariff(
                uow,
                running,
                TariffInput(
                    valid_from=running.valid_from,
                    valid_to=applies_from - timedelta(days=1),
                    price_per_minute=running.price_per_minute,
                    increment_seconds=running.increment_seconds,  # type: ignore[arg-type]  # as stored
                    first_period_seconds=running.first_period_seconds,
                    minimum_charge=running.minimum_charge,
                    note=running.note,
                ),
            )
        terms = TariffCreate(
            agreement_id=agreement.id,
            valid_from=applies_from,
            valid_to=agreement.ends_on,
            price_per_minute=rate,
            increment_seconds=60 if previous is None else previous.increment_seconds,  # type: ignore[arg-type]
            first_period_seconds=None if previous is None else previous.first_period_seconds,
            minimum_charge=previous.minimum_charge if previous else None,
            note=f"cost-covering rate from the {data.year} cost base",
        )
        created.append(await _insert_tariff(uow, agreement, terms, cost_base_year=data.year))
    by = uow.principal.log_id
    ids = [c[0] for c in clients]
    await repository.mark_adopted(uow.conn, operator.id, data.year, rate, by)
    await repository.mark_rate_adopted(uow.conn, operator.id, data.year, ids, by, reason or None)
    await repository.insert_rate_events(uow.conn, ids, operator.id, data.year, kind, rate, reason, by)
    adopted = await repository.find_cost_base(uow.conn, operator.id, data.year)
    assert adopted is not None
    return RateAdoption(proposal=msgspec.structs.replace(proposal, cost_base=adopted, adopted=True), tariffs=created)
