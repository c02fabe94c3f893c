"""The yearly cost-based rate: the operator's cost bases, next year's cost-covering rate per
minute (cost base less the operator's own items ÷ every minute the centre handled, rounded up to
the cent), adopting it as every client's tariff, and the true-up of a fully invoiced year to that
rate. Only the operator's own finance does any of it; agreeing it with the towns is `consent`."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID, uuid4

from auth.permissions import Operation, reachable_tenants
from backend import clock
from backend.billing import invoice_repository, rating, repository
from backend.billing.common import money, reach_client, tariff_terms
from backend.billing.invoice_repository import NewLine
from backend.billing.rating import german_amount
from backend.billing.schemas import (
    ClientMinutes,
    CostBase,
    CostBaseInput,
    Invoice,
    InvoiceKind,
    InvoicePurpose,
    LineKind,
    RateProposal,
)
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach_home
from backend.tenants.schemas import Tenant, first_year_end


async def record_cost_base(uow: UnitOfWork, data: CostBaseInput) -> CostBase:
    """The operator's costs of a year; fixed once a rate was adopted from them."""
    operator = await reach_home(uow, Operation.COST_BASE_WRITE, operator=True)
    for value, field in ((data.staff, "staff"), (data.it, "it"), (data.overheads, "overheads"), (data.other, "other")):
        money(value, field, 2, positive=False)
    total = data.staff + data.it + data.overheads + data.other
    if total <= 0:
        raise ValidationFailed(_l("a cost base has costs"), field="staff")
    for item in data.own_items:
        money(item.amount, "ownItems", 2, positive=True)
    if sum((item.amount for item in data.own_items), Decimal(0)) >= total:
        raise ValidationFailed(
            _l("the operator's own items are part of the costs and less than them"), field="ownItems"
        )
    # Taken before the check: a proposal at the same moment either came first (refused below)
    # or waits and is made from these costs. Without it the towns were asked about a rate from
    # costs that a simultaneous change had just replaced (tests/billing/test_concurrent_runs.py).
    await repository.lock_rate_year(uow.conn, operator.id, data.year)
    if await repository.find_rate_proposal(uow.conn, operator.id, data.year) is not None:
        # The towns were asked about a rate from these costs: changing them now would leave them
        # agreeing to figures nobody shows any more.
        raise InvalidTransition(
            _l("the rate from the {year} cost base was proposed to the towns; it no longer changes", year=data.year)
        )
    recorded = await repository.upsert_cost_base(uow.conn, operator.id, data, uow.principal.log_id)
    if recorded is None:
        raise InvalidTransition(
            _l("a rate was adopted from the {year} cost base; it no longer changes", year=data.year)
        )
    return recorded


async def cost_bases(uow: UnitOfWork) -> list[CostBase]:
    operator = await reach_home(uow, Operation.COST_BASE_READ, operator=True)
    return await repository.list_cost_bases(uow.conn, operator.id)


async def _counting(uow: UnitOfWork, client_ids: list[UUID], day: date) -> tuple[int, int]:
    """How calls without a tariff (the operator's own, 115 not assigned to a town, a client's
    days without one) are counted: as the clients' tariffs on `day` bill, when they all bill
    alike; otherwise per started minute, as the paper's rate was set."""
    schemes = set()
    for client in client_ids:
        tariff = await repository.tariff_in_force(uow.conn, client, day)
        if tariff is not None:
            schemes.add((tariff.first_period_seconds, tariff.increment_seconds))
    return schemes.pop() if len(schemes) == 1 else (60, 60)


async def _proposal(uow: UnitOfWork, operator: Tenant, base: CostBase) -> RateProposal:
    """The cost base, less the items the operator declares as its own, ÷ every minute the centre
    handled in the year: its clients' and its own (the operator's central number, 115 calls not
    assigned to a town), counted as calls are billed (issue 17: dividing by the clients' minutes
    alone made them pay for the operator's calls)."""
    start, end = date(base.year, 1, 1), date(base.year + 1, 1, 1)
    # Every client of the year, former ones too (finance settles with them: Reach.SETTLED).
    settled = reachable_tenants(uow.principal, Operation.INVOICE_READ)
    agreements = await repository.agreements_of_operator(uow.conn, operator.id, sorted(settled), start, end)
    names = {a["tenant_id"]: a["name"] for a in agreements}
    first, step = await _counting(uow, list(names), end - timedelta(days=1))
    rated = await repository.billable_seconds_by_client(uow.conn, [*names, operator.id], start, end)
    unrated = await repository.unrated_seconds_by_tenant(uow.conn, [*names, operator.id], start, end, first, step)
    billed = await repository.billed_by_client(uow.conn, list(names), start, end)

    def handled(tenant_id: UUID) -> int:
        return rated.get(tenant_id, 0) + unrated.get(tenant_id, 0)

    clients = [
        ClientMinutes(
            tenant_id=tenant_id,
            name=name,
            billable_seconds=handled(tenant_id),
            billable_minutes=rating.minutes(handled(tenant_id)),
            billed_amount=billed.get(tenant_id, Decimal("0.00")),
        )
        for tenant_id, name in names.items()
    ]
    own_seconds = handled(operator.id)
    total_seconds = sum(c.billable_seconds for c in clients) + own_seconds
    total_minutes = rating.minutes(total_seconds)
    own_costs = sum((item.amount for item in base.own_items), Decimal("0.00"))
    covered = base.total - own_costs
    calculation = [
        f"cost base {base.year}: staff {base.staff} + IT {base.it} + overheads {base.overheads} "
        f"+ other {base.other} = {base.total} EUR",
        *(f"left out as the operator's own: {item.label} {item.amount} EUR" for item in base.own_items),
    ]
    if base.own_items:
        calculation.append(f"costs the rate covers: {base.total} − {own_costs} = {covered} EUR")
    calculation += [
        *(f"minutes handled {base.year}, {c.name}: {c.billable_seconds} s = {c.billable_minutes} min" for c in clients),
        f"minutes handled {base.year}, {operator.name} (its own numbers, 115 not assigned to a town): "
        f"{own_seconds} s = {rating.minutes(own_seconds)} min",
        f"calls without a tariff counted as {first}/{step} (first period/increment, seconds)",
        f"all minutes the centre handled {base.year}: {total_seconds} s ÷ 60 = {total_minutes} min",
    ]
    exact = proposed = None
    if total_seconds > 0 and covered > 0:
        exact = (covered * 60 / total_seconds).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        proposed = rating.rate_rounded_up(covered, total_seconds)
        calculation += [
            f"{covered} EUR ÷ {total_minutes} min = {exact} EUR/min",
            f"rounded up to the cent: {proposed} EUR/min, from {end.isoformat()}",
        ]
    else:
        calculation.append("no billable minutes in the year: no rate can be derived")
    return RateProposal(
        year=base.year,
        applies_from=end,
        cost_base=base,
        covered_costs=covered,
        clients=clients,
        operator_seconds=own_seconds,
        operator_minutes=rating.minutes(own_seconds),
        billable_seconds=total_seconds,
        billable_minutes=total_minutes,
        exact_rate=exact,
        proposed_rate=proposed,
        calculation=calculation,
        adopted=base.adopted_rate is not None,
    )


async def rate_proposal(uow: UnitOfWork, year: int) -> RateProposal:
    """Next year's cost-covering rate from a year's cost base and billable minutes, explained."""
    operator = await reach_home(uow, Operation.COST_BASE_READ, operator=True)
    if not 2000 <= year <= 2998:
        raise ValidationFailed(_l("a year between 2000 and 2998"), field="year")
    base = await repository.find_cost_base(uow.conn, operator.id, year)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=year))
    return await _proposal(uow, operator, base)


async def true_up(uow: UnitOfWork, tenant: str | UUID, year: int) -> Invoice:
    """Draft the difference between a fully invoiced year's usage invoices and the cost-covering
    rate of that year (cost base ÷ billable minutes of all clients, rounded up to the cent)."""
    operator = await reach_home(uow, Operation.INVOICE_WRITE, operator=True)
    client = (await reach_client(uow, tenant, Operation.INVOICE_WRITE)).id
    if year >= clock.today().year:
        # Its minutes and costs are not final before 31 December: a true-up drafted now would
        # settle a year that is still running (issue 17).
        raise Conflict(_l("{year} is not over yet; a true-up comes after 31 December", year=year), field="year")
    base = await repository.find_cost_base(uow.conn, operator.id, year)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=year), field="year")
    proposal = await _proposal(uow, operator, base)
    rate = proposal.proposed_rate
    if rate is None:
        raise ValidationFailed(_l("no billable minutes in {year}: no rate can be derived", year=year), field="year")
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    agreement = await repository.agreement_for_period(uow.conn, client, operator.id, start, end)
    if agreement is None:
        raise NotFound(_l("no agreement with this client in that year"), field="tenantId")
    # Simultaneous true-ups of a client take turns, so the later one replaces the earlier draft
    # (two drafts of one year could both be issued: the year charged twice).
    await invoice_repository.lock_client_invoicing(uow.conn, client)
    done = await invoice_repository.issued_true_up(uow.conn, client, start, end)
    if done is not None:
        raise Duplicate(_l("{year} was trued up already (invoice {done})", year=year, done=done))
    # The first year's introductory rate is the agreed price, not an advance on the cost-covering
    # one: only the days after the agreement's first year are trued up.
    first_year_ends = first_year_end(agreement["starts_on"])
    settled_from = max(start, first_year_ends + timedelta(days=1))
    if settled_from >= end:
        raise ValidationFailed(
            _l(
                "{year} lies in the agreement's first year (until {day}), whose rate is not trued up",
                year=year,
                day=first_year_ends.isoformat(),
            ),
            field="year",
        )
    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [client])}
    at_tariffs, seconds = Decimal("0.00"), 0
    for row in await invoice_repository.usage_by_tariff(uow.conn, client, settled_from, end):
        if row.tariff_id is None:
            continue
        seconds += row.usage.billable_seconds
        terms = tariff_terms(tariffs[row.tariff_id])
        for line in rating.group_lines(terms, row.usage, rating.Billed(), rating.Billed()):
            at_tariffs += line.amount
    billed = (await repository.billed_by_client(uow.conn, [client], settled_from, end)).get(client, Decimal("0.00"))
    if billed != at_tariffs:
        raise Conflict(
            _l(
                "invoice all of {year} first: {at_tariffs} EUR are due at the tariffs, {billed} EUR are invoiced",
                year=year,
                at_tariffs=at_tariffs,
                billed=billed,
            )
        )
    due = rating.cents(rating.minute_amount(rate, seconds))
    difference = due - billed
    if difference == 0:
        raise ValidationFailed(_l("nothing to true up: {year} was billed at cost", year=year))
    await invoice_repository.discard_true_up_drafts(uow.conn, client, start, end)
    amount = abs(difference)
    line = rating.LineDraft(LineKind.TRUE_UP, 0, seconds, Decimal(1), "C62", amount, 1, amount)
    after_first_year = f" ab {settled_from:%d.%m.%Y}" if settled_from > start else ""
    description = (
        f"Ausgleich {year}{after_first_year} auf den kostendeckenden Minutenpreis {german_amount(rate)} EUR/Min.: "
        f"{german_amount(rating.minutes(seconds))} Min. = {german_amount(due)} EUR, "
        f"abgerechnet {german_amount(billed)} EUR"
    )
    invoice_id = uuid4()
    await invoice_repository.insert_invoice(
        uow.conn,
        tenant_id=client,
        invoice_id=invoice_id,
        operator_id=operator.id,
        agreement_id=agreement["id"],
        kind=(InvoiceKind.INVOICE if difference > 0 else InvoiceKind.CREDIT_NOTE).value,
        purpose=InvoicePurpose.TRUE_UP.value,
        start=start,
        end=end,
        label=str(year),
        net=amount,
        unrated_calls=0,
        created_by=uow.principal.log_id,
        reason=f"Ausgleich {year} (kostendeckender Minutenpreis)",
    )
    await invoice_repository.insert_lines(
        uow.conn, client, invoice_id, [NewLine(line, False, None, None, (settled_from, end), description)]
    )
    return await invoice_repository.get_invoice(uow.conn, invoice_id, [client])
