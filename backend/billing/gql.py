"""GraphQL for finance and supervisors: tariffs, invoices, cost-based rates, agreement terms and
115 figures. Money and shares are the `Decimal` scalar (a string on the wire). Thin: everything
goes through the service."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
import strawberry

from auth.permissions import Operation
from backend.api.context import Info
from backend.api.payloads import UserError, run_mutation, to_input
from backend.billing import schemas, service
from backend.errors import NotFound
from backend.tenants import service as tenants

strawberry.enum(schemas.InvoiceKind, name="InvoiceKind")
strawberry.enum(schemas.InvoicePurpose, name="InvoicePurpose")
strawberry.enum(schemas.InvoiceStatus, name="InvoiceStatus")
strawberry.enum(schemas.LineKind, name="InvoiceLineKind")
strawberry.enum(schemas.FigureScope, name="FigureScope")


def _fields(struct: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


@strawberry.type(name="Tariff", description="Price per call minute of an agreement over a period of days")
class TariffGQL:
    id: UUID
    tenant_id: UUID
    agreement_id: UUID
    operator_tenant_id: UUID
    valid_from: date
    valid_to: date | None
    price_per_minute: Decimal
    increment_seconds: int
    minimum_charge: Decimal | None
    note: str
    cost_base_year: int | None
    version: int

    @classmethod
    def of(cls, t: schemas.Tariff) -> TariffGQL:
        return cls(**_fields(t))


@strawberry.type(name="InvoiceLine")
class InvoiceLineGQL:
    line_no: int
    kind: schemas.LineKind
    correction: bool
    corrects_invoice_id: UUID | None
    tariff_id: UUID | None
    covers_from: date
    covers_to: date
    description: str
    calls: int
    billable_seconds: int
    minutes: Decimal
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    base_quantity: int
    amount: Decimal


@strawberry.type(name="Invoice", description="An invoice or credit note of a client town")
class InvoiceGQL:
    id: UUID
    tenant_id: UUID
    operator_tenant_id: UUID
    agreement_id: UUID
    kind: schemas.InvoiceKind
    purpose: schemas.InvoicePurpose
    status: schemas.InvoiceStatus
    period_from: date
    period_to: date
    period_label: str
    number: str | None
    issued_on: date | None
    due_on: date | None
    cancels_id: UUID | None
    cancelled_by_id: UUID | None
    reason: str
    net_amount: Decimal
    tax_amount: Decimal
    gross_amount: Decimal
    currency: str
    unrated_calls: int
    buyer_reference: str | None
    created_at: datetime
    lines: list[InvoiceLineGQL]

    @classmethod
    def of(cls, i: schemas.Invoice) -> InvoiceGQL:
        values = _fields(i)
        values["lines"] = [InvoiceLineGQL(**_fields(line)) for line in i.lines]
        return cls(**values)


@strawberry.type(name="BillingProfile", description="A tenant's invoice address, contact and bank account")
class BillingProfileGQL:
    tenant_id: UUID
    legal_name: str
    street: str
    postal_code: str
    city: str
    country_code: str
    email: str
    phone: str
    contact_name: str
    iban: str | None
    bic: str | None
    payment_days: int
    tax_exemption_reason: str
    version: int


@strawberry.type(name="FigureTargets")
class FigureTargetsGQL:
    tenant_id: UUID
    first_contact_target: Decimal
    first_contact_target_115: Decimal


@strawberry.type(name="CostBase", description="The operator's costs of a year (EUR)")
class CostBaseGQL:
    tenant_id: UUID
    year: int
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal
    total: Decimal
    note: str
    adopted_rate: Decimal | None
    adopted_at: datetime | None
    recorded_by: str
    version: int


@strawberry.type(name="ClientMinutes")
class ClientMinutesGQL:
    tenant_id: UUID
    name: str
    billable_seconds: int
    billable_minutes: Decimal
    billed_amount: Decimal


@strawberry.type(name="RateProposal", description="Cost base ÷ billable minutes, rounded up to the cent")
class RateProposalGQL:
    year: int
    applies_from: date
    cost_base: CostBaseGQL
    clients: list[ClientMinutesGQL]
    billable_seconds: int
    billable_minutes: Decimal
    exact_rate: Decimal | None
    proposed_rate: Decimal | None
    calculation: list[str]
    adopted: bool

    @classmethod
    def of(cls, p: schemas.RateProposal) -> RateProposalGQL:
        values = _fields(p)
        values["cost_base"] = CostBaseGQL(**_fields(p.cost_base))
        values["clients"] = [ClientMinutesGQL(**_fields(c)) for c in p.clients]
        return cls(**values)


@strawberry.type(name="RateAdoption")
class RateAdoptionGQL:
    proposal: RateProposalGQL
    tariffs: list[TariffGQL]


@strawberry.type(name="AgreementTerm", description="An agreement's current term end and last day to give notice")
class AgreementTermGQL:
    agreement_id: UUID
    client_tenant_id: UUID
    client_name: str
    operator_tenant_id: UUID
    starts_on: date
    ends_on: date | None
    on: date
    active: bool
    current_term_end: date | None
    notice_deadline: date | None
    days_to_notice_deadline: int | None


@strawberry.type(name="Figures", description="115 figures of a tenant (or the total) for a period")
class FiguresGQL:
    tenant_id: UUID | None
    tenant_name: str
    scope: schemas.FigureScope
    period_from: date
    period_to: date
    offered: int
    answered: int
    abandoned: int
    answered_within_30s: int
    wait_reported: int
    share_answered_within_30s: Decimal | None
    settled_first_contact: int
    forwarded_as_ticket: int
    transferred_to_department: int
    first_contact_rate: Decimal | None
    first_contact_target: Decimal
    meets_first_contact_target: bool | None
    talk_seconds: int
    talk_minutes: Decimal
    billable_seconds: int
    billed_minutes: Decimal
    unrated_calls: int
    tickets_forwarded: int | None = strawberry.field(description=schemas.TICKETS_FORWARDED)
    callbacks_on_time: int | None = strawberry.field(description=schemas.CALLBACKS_ON_TIME)
    callbacks_late: int | None = strawberry.field(description=schemas.CALLBACKS_LATE)


@strawberry.type(name="FiguresReport")
class FiguresReportGQL:
    period_from: date
    period_to: date
    rows: list[FiguresGQL]
    total: list[FiguresGQL]

    @classmethod
    def of(cls, r: schemas.FiguresReport) -> FiguresReportGQL:
        return cls(
            period_from=r.period_from,
            period_to=r.period_to,
            rows=[FiguresGQL(**_fields(f)) for f in r.rows],
            total=[FiguresGQL(**_fields(f)) for f in r.total],
        )


@strawberry.input(name="CreateTariffInput")
class CreateTariffInput:
    agreement_id: UUID
    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: int = 60
    minimum_charge: Decimal | None = None
    note: str = ""


@strawberry.input(name="TariffChangeInput", description="The full new state of a tariff")
class TariffChangeInput:
    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: int = 60
    minimum_charge: Decimal | None = None
    note: str = ""
    version: int | None = None


@strawberry.input(name="BillingProfileInput")
class BillingProfileInputGQL:
    legal_name: str
    street: str
    postal_code: str
    city: str
    email: str
    phone: str
    contact_name: str
    country_code: str = "DE"
    iban: str | None = None
    bic: str | None = None
    payment_days: int = 30
    tax_exemption_reason: str = "Nicht steuerbar (§ 2b UStG, öffentlich-rechtliche Vereinbarung)"


@strawberry.input(name="CostBaseInput")
class CostBaseInputGQL:
    year: int
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal = Decimal("0")
    note: str = ""


@strawberry.input(name="FigureTargetsInput")
class FigureTargetsInputGQL:
    first_contact_target: Decimal = Decimal("0.60")
    first_contact_target_115: Decimal = Decimal("0.65")


@strawberry.type(name="TariffPayload")
class TariffPayload:
    tariff: TariffGQL | None
    errors: list[UserError]


@strawberry.type(name="InvoicePayload")
class InvoicePayload:
    invoice: InvoiceGQL | None
    errors: list[UserError]


@strawberry.type(name="BillingProfilePayload")
class BillingProfilePayload:
    billing_profile: BillingProfileGQL | None
    errors: list[UserError]


@strawberry.type(name="FigureTargetsPayload")
class FigureTargetsPayload:
    figure_targets: FigureTargetsGQL | None
    errors: list[UserError]


@strawberry.type(name="CostBasePayload")
class CostBasePayload:
    cost_base: CostBaseGQL | None
    errors: list[UserError]


@strawberry.type(name="RateAdoptionPayload")
class RateAdoptionPayload:
    adoption: RateAdoptionGQL | None
    errors: list[UserError]


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Tariffs I may see (finance, platform admins), optionally of one tenant")
    async def tariffs(self, info: Info, tenant_slug: str | None = None) -> list[TariffGQL]:
        async with info.context.uow() as uow:
            tenant_id = await tenants.tenant_id_by_slug(uow, tenant_slug, Operation.TARIFF_READ)
            return [TariffGQL.of(t) for t in await service.list_tariffs(uow, tenant_id)]

    @strawberry.field(description="Invoices and credit notes I may see (a town's finance: its own)")
    async def invoices(
        self, info: Info, tenant_slug: str | None = None, year: int | None = None, include_discarded: bool = False
    ) -> list[InvoiceGQL]:
        async with info.context.uow() as uow:
            tenant_id = await tenants.tenant_id_by_slug(uow, tenant_slug, Operation.INVOICE_READ)
            return [InvoiceGQL.of(i) for i in await service.list_invoices(uow, tenant_id, year, include_discarded)]

    @strawberry.field(description="One invoice or credit note; null when missing or not visible")
    async def invoice(self, info: Info, id: UUID) -> InvoiceGQL | None:
        async with info.context.uow() as uow:
            try:
                return InvoiceGQL.of(await service.invoice(uow, id))
            except NotFound:
                return None

    @strawberry.field(description="A tenant's invoice address and contact")
    async def billing_profile(self, info: Info, tenant_slug: str) -> BillingProfileGQL | None:
        async with info.context.uow() as uow:
            tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.BILLING_PROFILE_READ)
            profile = await service.billing_profile(uow, tenant.id)
        return BillingProfileGQL(**_fields(profile)) if profile else None

    @strawberry.field(description="The operator's yearly cost bases (operator's finance)")
    async def cost_bases(self, info: Info) -> list[CostBaseGQL]:
        async with info.context.uow() as uow:
            return [CostBaseGQL(**_fields(c)) for c in await service.cost_bases(uow)]

    @strawberry.field(description="Next year's cost-covering rate from a year's costs, with the calculation")
    async def rate_proposal(self, info: Info, year: int) -> RateProposalGQL:
        async with info.context.uow() as uow:
            return RateProposalGQL.of(await service.rate_proposal(uow, year))

    @strawberry.field(description="Agreements' term ends and notice deadlines (withinDays: due in the next N days)")
    async def agreement_terms(
        self, info: Info, on: date | None = None, within_days: int | None = None
    ) -> list[AgreementTermGQL]:
        async with info.context.uow() as uow:
            terms = await service.agreement_terms(uow, on, within_days)
        return [AgreementTermGQL(**_fields(t)) for t in terms]

    @strawberry.field(description="115 figures per tenant for the days from … to (inclusive), and the total")
    async def figures(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        tenant_slug: str | None = None,
    ) -> FiguresReportGQL:
        start, last = from_, to
        async with info.context.uow() as uow:
            tenant_id = await tenants.tenant_id_by_slug(uow, tenant_slug, Operation.FIGURES_READ)
            return FiguresReportGQL.of(await service.figures(uow, start, last, tenant_id))


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Add a tariff period to an agreement (operator's finance, platform admin)")
    async def create_tariff(self, info: Info, input: CreateTariffInput) -> TariffPayload:
        async def action() -> TariffGQL:
            data = to_input(schemas.TariffCreate, input)
            async with info.context.uow(readonly=False) as uow:
                return TariffGQL.of(await service.create_tariff(uow, data))

        tariff, errors = await run_mutation(action)
        return TariffPayload(tariff=tariff, errors=errors)

    @strawberry.mutation(description="Change a tariff; refused for days already invoiced")
    async def change_tariff(self, info: Info, id: UUID, input: TariffChangeInput) -> TariffPayload:
        async def action() -> TariffGQL:
            data = to_input(schemas.TariffInput, input)
            async with info.context.uow(readonly=False) as uow:
                return TariffGQL.of(await service.change_tariff(uow, id, data))

        tariff, errors = await run_mutation(action)
        return TariffPayload(tariff=tariff, errors=errors)

    @strawberry.mutation(description="Draft a client's invoice for a month (2026-03) or a year (2026)")
    async def run_invoice(self, info: Info, tenant_slug: str, period: str) -> InvoicePayload:
        async def action() -> InvoiceGQL:
            async with info.context.uow(readonly=False) as uow:
                tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.INVOICE_WRITE)
                data = to_input(schemas.InvoiceRunInput, _Namespace(tenant_id=tenant.id, period=period))
                return InvoiceGQL.of(await service.run_invoice(uow, data))

        invoice, errors = await run_mutation(action)
        return InvoicePayload(invoice=invoice, errors=errors)

    @strawberry.mutation(description="Draft a client's true-up of a fully invoiced year to the cost-covering rate")
    async def true_up(self, info: Info, tenant_slug: str, year: int) -> InvoicePayload:
        async def action() -> InvoiceGQL:
            async with info.context.uow(readonly=False) as uow:
                tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.INVOICE_WRITE)
                data = to_input(schemas.TrueUpInput, _Namespace(tenant_id=tenant.id, year=year))
                return InvoiceGQL.of(await service.true_up(uow, data))

        invoice, errors = await run_mutation(action)
        return InvoicePayload(invoice=invoice, errors=errors)

    @strawberry.mutation(description="Issue a draft (numbered without gaps per operator and year)")
    async def issue_invoice(self, info: Info, id: UUID) -> InvoicePayload:
        async def action() -> InvoiceGQL:
            async with info.context.uow(readonly=False) as uow:
                return InvoiceGQL.of(await service.issue_invoice(uow, id))

        invoice, errors = await run_mutation(action)
        return InvoicePayload(invoice=invoice, errors=errors)

    @strawberry.mutation(description="Cancel an issued invoice by a credit note; returns the credit note")
    async def cancel_invoice(self, info: Info, id: UUID, reason: str) -> InvoicePayload:
        async def action() -> InvoiceGQL:
            data = to_input(schemas.CancellationInput, _Namespace(reason=reason))
            async with info.context.uow(readonly=False) as uow:
                return InvoiceGQL.of(await service.cancel_invoice(uow, id, data))

        invoice, errors = await run_mutation(action)
        return InvoicePayload(invoice=invoice, errors=errors)

    @strawberry.mutation(description="Set a tenant's invoice address, contact and bank account")
    async def set_billing_profile(
        self, info: Info, tenant_slug: str, input: BillingProfileInputGQL
    ) -> BillingProfilePayload:
        async def action() -> BillingProfileGQL:
            data = to_input(schemas.BillingProfileInput, input)
            async with info.context.uow(readonly=False) as uow:
                tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.BILLING_PROFILE_WRITE)
                return BillingProfileGQL(**_fields(await service.set_billing_profile(uow, tenant.id, data)))

        profile, errors = await run_mutation(action)
        return BillingProfilePayload(billing_profile=profile, errors=errors)

    @strawberry.mutation(description="Set a tenant's first-contact targets (all calls, 115 calls)")
    async def set_figure_targets(
        self, info: Info, tenant_slug: str, input: FigureTargetsInputGQL
    ) -> FigureTargetsPayload:
        async def action() -> FigureTargetsGQL:
            data = to_input(schemas.FigureTargetsInput, input)
            async with info.context.uow(readonly=False) as uow:
                tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.FIGURES_CONFIGURE)
                return FigureTargetsGQL(**_fields(await service.set_figure_targets(uow, tenant.id, data)))

        targets, errors = await run_mutation(action)
        return FigureTargetsPayload(figure_targets=targets, errors=errors)

    @strawberry.mutation(description="Record a year's cost base (operator's finance)")
    async def record_cost_base(self, info: Info, input: CostBaseInputGQL) -> CostBasePayload:
        async def action() -> CostBaseGQL:
            data = to_input(schemas.CostBaseInput, input)
            async with info.context.uow(readonly=False) as uow:
                return CostBaseGQL(**_fields(await service.record_cost_base(uow, data)))

        base, errors = await run_mutation(action)
        return CostBasePayload(cost_base=base, errors=errors)

    @strawberry.mutation(description="Adopt the proposed rate as every client's tariff from 1 January")
    async def adopt_rate(self, info: Info, year: int) -> RateAdoptionPayload:
        async def action() -> RateAdoptionGQL:
            data = to_input(schemas.RateAdoptionInput, _Namespace(year=year))
            async with info.context.uow(readonly=False) as uow:
                adoption = await service.adopt_rate(uow, data)
            return RateAdoptionGQL(
                proposal=RateProposalGQL.of(adoption.proposal), tariffs=[TariffGQL.of(t) for t in adoption.tariffs]
            )

        adoption, errors = await run_mutation(action)
        return RateAdoptionPayload(adoption=adoption, errors=errors)


class _Namespace:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
