"""GraphQL for finance and supervisors: tariffs, invoices, cost-based rates, agreement terms and
115 figures. Money and shares are the `Decimal` scalar (a string on the wire). Thin: every type
mirrors its Struct (decision 020), resolvers hand the Structs over, and the tenant's slug goes to
the service untouched (the door is there)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import strawberry

from backend.api.context import Info
from backend.api.mapping import mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import DeprecatedTenantArgument, TenantArgument, optional_tenant, required_tenant
from backend.billing import consultation, figures, invoices, rates, schemas, tariffs
from backend.errors import NotFound
from backend.state import UnitOfWork

strawberry.enum(schemas.InvoiceKind, name="InvoiceKind")
strawberry.enum(schemas.InvoicePurpose, name="InvoicePurpose")
strawberry.enum(schemas.InvoiceStatus, name="InvoiceStatus")
strawberry.enum(schemas.LineKind, name="InvoiceLineKind")
strawberry.enum(schemas.FigureScope, name="FigureScope")
strawberry.enum(schemas.ItemisedCaller, name="ItemisedCaller")
strawberry.enum(schemas.RateDecision, name="RateDecision")
strawberry.enum(schemas.RateEventKind, name="RateEventKind")


@mirrors(schemas.Tariff)
@strawberry.type(name="Tariff", description="Price per call minute of an agreement over a period of days")
class TariffGQL:
    id: UUID
    tenant_id: UUID
    agreement_id: UUID
    operator_tenant_id: UUID
    valid_from: date
    valid_to: date | None
    price_per_minute: Decimal
    first_period_seconds: int
    increment_seconds: int
    billing_increment: str
    minimum_charge: Decimal | None
    note: str
    cost_base_year: int | None
    version: int


@mirrors(schemas.InvoiceLine)
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


@mirrors(schemas.Invoice)
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


@mirrors(schemas.ItemisedCall)
@strawberry.type(name="ItemisedCall", description="One call behind an invoice line, with its share of the line")
class ItemisedCallGQL:
    line_no: int
    started_at: datetime
    caller: str | None
    purpose: str
    talk_seconds: int
    billed_seconds: int
    at_minimum: bool
    amount: Decimal


@mirrors(schemas.ItemisedLine)
@strawberry.type(name="ItemisedLine")
class ItemisedLineGQL:
    line_no: int
    kind: schemas.LineKind
    correction: bool
    description: str
    calls: int
    billable_seconds: int
    amount: Decimal
    itemised: bool


@mirrors(schemas.ItemisedCallList)
@strawberry.type(
    name="ItemisedCallList", description="The itemised call list of an invoice (Einzelverbindungsnachweis)"
)
class ItemisedCallListGQL:
    invoice_id: UUID
    tenant_id: UUID
    number: str | None
    period_from: date
    period_to: date
    caller_shown: schemas.ItemisedCaller
    lines: list[ItemisedLineGQL]
    calls: list[ItemisedCallGQL]
    total_talk_seconds: int
    total_billed_seconds: int
    total_amount: Decimal


@mirrors(schemas.BillingProfile)
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
    itemised_caller: schemas.ItemisedCaller
    itemised_hidden_digits: int
    version: int


@mirrors(schemas.FigureTargets)
@strawberry.type(name="FigureTargets")
class FigureTargetsGQL:
    tenant_id: UUID
    first_contact_target: Decimal
    first_contact_target_115: Decimal
    service_level_target: Decimal
    service_level_seconds: int = strawberry.field(description=schemas.SERVICE_LEVEL_SECONDS)
    short_abandon_seconds: int = strawberry.field(description=schemas.SHORT_ABANDON_SECONDS)
    callback_target: Decimal = strawberry.field(description=schemas.CALLBACK_TARGET)


@mirrors(schemas.OwnCostItem)
@strawberry.type(name="OwnCostItem", description="A cost the operator declares as its own: not covered by the rate")
class OwnCostItemGQL:
    label: str
    amount: Decimal


@mirrors(schemas.CostBase)
@strawberry.type(name="CostBase", description="The operator's costs of a year (EUR)")
class CostBaseGQL:
    tenant_id: UUID
    year: int
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal
    total: Decimal
    own_items: list[OwnCostItemGQL]
    note: str
    adopted_rate: Decimal | None
    adopted_at: datetime | None
    recorded_by: str
    version: int


@mirrors(schemas.ClientMinutes)
@strawberry.type(name="ClientMinutes")
class ClientMinutesGQL:
    tenant_id: UUID
    name: str
    billable_seconds: int
    billable_minutes: Decimal
    billed_amount: Decimal


@mirrors(schemas.RateProposal)
@strawberry.type(name="RateProposal", description="Cost base ÷ billable minutes, rounded up to the cent")
class RateProposalGQL:
    year: int
    applies_from: date
    cost_base: CostBaseGQL
    covered_costs: Decimal
    clients: list[ClientMinutesGQL]
    operator_seconds: int
    operator_minutes: Decimal
    billable_seconds: int
    billable_minutes: Decimal
    exact_rate: Decimal | None
    proposed_rate: Decimal | None
    calculation: list[str]
    adopted: bool


@mirrors(schemas.RateConsent)
@strawberry.type(name="RateConsent", description="A town's answer to the operator's proposal of a year's rate")
class RateConsentGQL:
    tenant_id: UUID
    operator_tenant_id: UUID
    year: int
    rate: Decimal
    respond_by: date
    decision: schemas.RateDecision
    note: str
    decided_by: str | None
    decided_at: datetime | None


@mirrors(schemas.RateEvent)
@strawberry.type(name="RateEvent", description="One step of a rate consultation, as the town it concerns reads it")
class RateEventGQL:
    tenant_id: UUID
    id: UUID
    operator_tenant_id: UUID
    year: int
    kind: schemas.RateEventKind
    rate: Decimal
    note: str
    actor: str
    at: datetime


@mirrors(schemas.RateConsultation)
@strawberry.type(name="RateConsultation", description="Where a year's rate stands with the towns I may see")
class RateConsultationGQL:
    year: int
    rate: Decimal | None
    respond_by: date | None
    adopted: bool
    consents: list[RateConsentGQL]
    events: list[RateEventGQL]


@mirrors(schemas.RateAdoption)
@strawberry.type(name="RateAdoption")
class RateAdoptionGQL:
    proposal: RateProposalGQL
    tariffs: list[TariffGQL]


@mirrors(schemas.AgreementTerm)
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
    notice_deadline: date | None = strawberry.field(description="The last day to give notice for noticeTermEnd")
    days_to_notice_deadline: int | None
    notice_term_end: date | None = strawberry.field(
        description="The earliest term end still reachable by notice: the term noticeDeadline belongs to"
    )


@mirrors(schemas.Figures)
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
    transfers_taken: int = strawberry.field(description=schemas.TRANSFERS_TAKEN)
    transfers_not_taken: int = strawberry.field(description=schemas.TRANSFERS_NOT_TAKEN)
    qualified_transfer_rate: Decimal | None = strawberry.field(description=schemas.QUALIFIED_TRANSFER_RATE)
    settled_rate: Decimal | None = strawberry.field(description=schemas.SETTLED_RATE)
    talk_seconds: int
    talk_minutes: Decimal
    billable_seconds: int
    billed_minutes: Decimal
    unrated_calls: int
    tickets_forwarded: int | None = strawberry.field(description=schemas.TICKETS_FORWARDED)
    callbacks_on_time: int | None = strawberry.field(description=schemas.CALLBACKS_ON_TIME)
    callbacks_late: int | None = strawberry.field(description=schemas.CALLBACKS_LATE)
    service_level_seconds: int = strawberry.field(description=schemas.SERVICE_LEVEL_SECONDS)
    short_abandon_seconds: int = strawberry.field(description=schemas.SHORT_ABANDON_SECONDS)
    abandoned_short: int = strawberry.field(description="Offered calls hung up within shortAbandonSeconds")
    service_level_offered: int = strawberry.field(
        description="The service level's denominator: offered calls less the short abandons"
    )
    service_level_answered: int = strawberry.field(description="Calls answered within serviceLevelSeconds")
    service_level: Decimal | None = strawberry.field(
        description="serviceLevelAnswered ÷ serviceLevelOffered (the 115 standard's 75/30)"
    )
    service_level_target: Decimal
    meets_service_level_target: bool | None
    callback_on_time_rate: Decimal | None = strawberry.field(description=schemas.CALLBACK_ON_TIME_RATE)
    callback_target: Decimal | None = strawberry.field(description=schemas.TICKET_FIGURES_NOTE)
    meets_callback_target: bool | None = strawberry.field(description=schemas.TICKET_FIGURES_NOTE)


@mirrors(schemas.FiguresReport)
@strawberry.type(name="FiguresReport")
class FiguresReportGQL:
    period_from: date
    period_to: date
    rows: list[FiguresGQL]
    total: list[FiguresGQL]


@strawberry.input(name="CreateTariffInput")
class CreateTariffInput:
    agreement_id: UUID
    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: int = 60
    first_period_seconds: int | None = None
    minimum_charge: Decimal | None = None
    note: str = ""


@strawberry.input(
    name="TariffChangeInput",
    description="The full new state of a tariff (a field left out takes its default), except `note`: "
    'kept when left out or null, cleared by ""',
)
class TariffChangeInput:
    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: int = 60
    first_period_seconds: int | None = None
    minimum_charge: Decimal | None = None
    note: str | None = None
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
    itemised_caller: schemas.ItemisedCaller = schemas.ItemisedCaller.SHORTENED
    itemised_hidden_digits: int = 3


@strawberry.input(name="OwnCostItemInput")
class OwnCostItemInputGQL:
    label: str
    amount: Decimal


@strawberry.input(name="CostBaseInput")
class CostBaseInputGQL:
    year: int
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal = Decimal("0")
    own_items: list[OwnCostItemInputGQL] = strawberry.field(default_factory=list)
    note: str = ""


@strawberry.input(name="FigureTargetsInput")
class FigureTargetsInputGQL:
    first_contact_target: Decimal = Decimal("0.60")
    first_contact_target_115: Decimal = Decimal("0.65")
    service_level_target: Decimal = Decimal("0.75")
    service_level_seconds: int = strawberry.field(default=30, description=schemas.SERVICE_LEVEL_SECONDS)
    short_abandon_seconds: int = strawberry.field(default=5, description=schemas.SHORT_ABANDON_SECONDS)
    callback_target: Decimal = strawberry.field(default=Decimal("0.90"), description=schemas.CALLBACK_TARGET)


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


@strawberry.type(name="RateConsultationPayload")
class RateConsultationPayload:
    consultation: RateConsultationGQL | None
    errors: list[UserError]


@strawberry.type(name="RateConsentPayload")
class RateConsentPayload:
    consent: RateConsentGQL | None
    errors: list[UserError]


@strawberry.type(name="RateAdoptionPayload")
class RateAdoptionPayload:
    adoption: RateAdoptionGQL | None
    errors: list[UserError]


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Tariffs I may see (finance, platform admins), optionally of one tenant")
    async def tariffs(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> list[TariffGQL]:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown_all(TariffGQL, await tariffs.list_tariffs(uow, slug))

    @strawberry.field(description="Invoices and credit notes I may see (a town's finance: its own)")
    async def invoices(
        self,
        info: Info,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
        year: int | None = None,
        include_discarded: bool = False,
    ) -> list[InvoiceGQL]:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown_all(InvoiceGQL, await invoices.list_invoices(uow, slug, year, include_discarded))

    @strawberry.field(description="One invoice or credit note; null when missing or not visible")
    async def invoice(self, info: Info, id: UUID) -> InvoiceGQL | None:
        async with info.context.uow() as uow:
            try:
                return shown(InvoiceGQL, await invoices.invoice(uow, id))
            except NotFound:
                return None

    @strawberry.field(description="The calls behind an invoice's lines; null when missing or not visible")
    async def itemised_calls(self, info: Info, invoice_id: UUID) -> ItemisedCallListGQL | None:
        async with info.context.uow() as uow:
            try:
                return shown(ItemisedCallListGQL, await invoices.itemised_calls(uow, invoice_id))
            except NotFound:
                return None

    @strawberry.field(description="A tenant's invoice address and contact")
    async def billing_profile(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> BillingProfileGQL | None:
        slug = required_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            profile = await invoices.billing_profile(uow, slug)
        return shown(BillingProfileGQL, profile) if profile else None

    @strawberry.field(description="The operator's yearly cost bases (operator's finance)")
    async def cost_bases(self, info: Info) -> list[CostBaseGQL]:
        async with info.context.uow() as uow:
            return shown_all(CostBaseGQL, await rates.cost_bases(uow))

    @strawberry.field(description="Next year's cost-covering rate from a year's costs, with the calculation")
    async def rate_proposal(self, info: Info, year: int) -> RateProposalGQL:
        async with info.context.uow() as uow:
            return shown(RateProposalGQL, await rates.rate_proposal(uow, year))

    @strawberry.field(description="Where a year's rate stands with the towns: each one's answer and every step")
    async def rate_consultation(self, info: Info, year: int, tenant: TenantArgument = None) -> RateConsultationGQL:
        async with info.context.uow() as uow:
            return shown(RateConsultationGQL, await consultation.rate_consultation(uow, year, tenant))

    @strawberry.field(description="Agreements' term ends and notice deadlines (withinDays: due in the next N days)")
    async def agreement_terms(
        self, info: Info, on: date | None = None, within_days: int | None = None
    ) -> list[AgreementTermGQL]:
        async with info.context.uow() as uow:
            return shown_all(AgreementTermGQL, await figures.agreement_terms(uow, on, within_days))

    @strawberry.field(description="115 figures per tenant for the days from … to (inclusive), and the total")
    async def figures(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> FiguresReportGQL:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown(FiguresReportGQL, await figures.figures(uow, from_, to, slug))


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Add a tariff period to an agreement (operator's finance, platform admin)")
    async def create_tariff(self, info: Info, input: CreateTariffInput) -> TariffPayload:
        return await mutate(
            info, TariffPayload, "tariff", lambda uow: tariffs.create_tariff(uow, to_input(schemas.TariffCreate, input))
        )

    @strawberry.mutation(description="Change a tariff; refused for days already invoiced")
    async def change_tariff(self, info: Info, id: UUID, input: TariffChangeInput) -> TariffPayload:
        return await mutate(
            info,
            TariffPayload,
            "tariff",
            lambda uow: tariffs.change_tariff(uow, id, to_input(schemas.TariffInput, input)),
        )

    @strawberry.mutation(description="Draft a client's invoice for a month (2026-03) or a year (2026)")
    async def run_invoice(
        self, info: Info, period: str, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> InvoicePayload:
        async def run(uow: UnitOfWork) -> schemas.Invoice:
            slug = required_tenant(tenant, tenant_slug)
            data = to_input(schemas.InvoicePeriodInput, _Values(period=period))
            return await invoices.run_invoice(uow, slug, data.period)

        return await mutate(info, InvoicePayload, "invoice", run)

    @strawberry.mutation(description="Draft a client's true-up of a fully invoiced year to the cost-covering rate")
    async def true_up(
        self, info: Info, year: int, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> InvoicePayload:
        async def run(uow: UnitOfWork) -> schemas.Invoice:
            slug = required_tenant(tenant, tenant_slug)
            data = to_input(schemas.YearInput, _Values(year=year))
            return await rates.true_up(uow, slug, data.year)

        return await mutate(info, InvoicePayload, "invoice", run)

    @strawberry.mutation(description="Issue a draft (numbered without gaps per operator and year)")
    async def issue_invoice(self, info: Info, id: UUID) -> InvoicePayload:
        return await mutate(info, InvoicePayload, "invoice", lambda uow: invoices.issue_invoice(uow, id))

    @strawberry.mutation(description="Cancel an issued invoice by a credit note; returns the credit note")
    async def cancel_invoice(self, info: Info, id: UUID, reason: str) -> InvoicePayload:
        return await mutate(
            info,
            InvoicePayload,
            "invoice",
            lambda uow: invoices.cancel_invoice(uow, id, to_input(schemas.CancellationInput, _Values(reason=reason))),
        )

    @strawberry.mutation(description="Set a tenant's invoice address, contact and bank account")
    async def set_billing_profile(
        self,
        info: Info,
        input: BillingProfileInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> BillingProfilePayload:
        async def run(uow: UnitOfWork) -> schemas.BillingProfile:
            slug = required_tenant(tenant, tenant_slug)
            return await invoices.set_billing_profile(uow, slug, to_input(schemas.BillingProfileInput, input))

        return await mutate(info, BillingProfilePayload, "billing_profile", run)

    @strawberry.mutation(description="Set a tenant's first-contact targets (all calls, 115 calls)")
    async def set_figure_targets(
        self,
        info: Info,
        input: FigureTargetsInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> FigureTargetsPayload:
        async def run(uow: UnitOfWork) -> schemas.FigureTargets:
            slug = required_tenant(tenant, tenant_slug)
            return await figures.set_figure_targets(uow, slug, to_input(schemas.FigureTargetsInput, input))

        return await mutate(info, FigureTargetsPayload, "figure_targets", run)

    @strawberry.mutation(description="Record a year's cost base (operator's finance)")
    async def record_cost_base(self, info: Info, input: CostBaseInputGQL) -> CostBasePayload:
        return await mutate(
            info,
            CostBasePayload,
            "cost_base",
            lambda uow: rates.record_cost_base(uow, to_input(schemas.CostBaseInput, input)),
        )

    @strawberry.mutation(description="Propose the year's cost-covering rate to every client town")
    async def propose_rate(self, info: Info, year: int, respond_by: date) -> RateConsultationPayload:
        return await mutate(
            info,
            RateConsultationPayload,
            "consultation",
            lambda uow: consultation.propose_rate(
                uow, to_input(schemas.RateProposalInput, _Values(year=year, respond_by=respond_by))
            ),
        )

    @strawberry.mutation(description="A town accepts the proposed rate, or objects with a note")
    async def decide_rate(
        self, info: Info, year: int, decision: schemas.RateDecision, tenant: TenantArgument = None, note: str = ""
    ) -> RateConsentPayload:
        async def run(uow: UnitOfWork) -> schemas.RateConsent:
            slug = required_tenant(tenant, None)
            data = to_input(schemas.RateDecisionInput, _Values(year=year, decision=decision, note=note))
            return await consultation.decide_rate(uow, slug, data)

        return await mutate(info, RateConsentPayload, "consent", run)

    @strawberry.mutation(
        description="Adopt the rate proposed to the towns as every client's tariff from 1 January: when every "
        "town accepted, or after the date to answer by with a reason"
    )
    async def adopt_rate(self, info: Info, year: int, reason: str | None = None) -> RateAdoptionPayload:
        return await mutate(
            info,
            RateAdoptionPayload,
            "adoption",
            lambda uow: consultation.adopt_rate(
                uow, to_input(schemas.RateAdoptionInput, _Values(year=year, reason=reason))
            ),
        )


class _Values:
    """Arguments as attributes, for `to_input`."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
