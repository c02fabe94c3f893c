"""REST for finance: tariffs, invoice runs, invoices and their XRechnung, cost bases and rates,
agreement terms, 115 figures (JSON and CSV). Thin: parse → service → response."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Response, get, patch, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.billing import consultation, figures, invoices, rates, reports, tariffs
from backend.billing.itemised import itemised_csv
from backend.billing.schemas import (
    AgreementTerm,
    BillingProfile,
    BillingProfileInput,
    CancellationInput,
    CostBase,
    CostBaseInput,
    CsvDialect,
    FiguresReport,
    FigureTargets,
    FigureTargetsInput,
    Invoice,
    InvoiceRunInput,
    ItemisedCallList,
    RateAdoption,
    RateAdoptionInput,
    RateConsent,
    RateConsultation,
    RateDecisionInput,
    RateProposal,
    RateProposalInput,
    Tariff,
    TariffCreate,
    TariffInput,
    TariffPatch,
    TrueUpInput,
)
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.state import AppState, unit_of_work

BERLIN = ZoneInfo("Europe/Berlin")  # the towns' time zone (every tenant's, today)
TenantSlug = Annotated[str | None, Parameter(query="tenant", description="slug of one tenant (default: all I may see)")]
From = Annotated[date, Parameter(query="from", description="first day (local)")]
To = Annotated[date, Parameter(query="to", description="last day (local, inclusive)")]


class BillingController(AuthenticatedController):
    path = "/v1"
    tags = ["billing"]

    # --- tariffs ---

    @get(
        "/tariffs",
        summary="Tariffs (price per minute, increment, minimum) I may see",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_tariffs(self, app_state: AppState, principal: Principal, tenant: TenantSlug = None) -> list[Tariff]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await tariffs.list_tariffs(uow, tenant)

    @post(
        "/tariffs",
        summary="Add a tariff period to an agreement (operator's finance, platform admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def create_tariff(self, app_state: AppState, principal: Principal, data: TariffCreate) -> Tariff:
        async with unit_of_work(app_state, principal) as uow:
            return await tariffs.create_tariff(uow, data)

    @put(
        "/tariffs/{tariff_id:uuid}",
        summary="Change a tariff; refused for days already invoiced",
        description="Replaces the tariff's terms and days with the body: a field left out takes its default "
        "(`validTo` open-ended, `incrementSeconds` 60, no `minimumCharge`). Only `note` is kept when left out "
        'or null; send "" to clear it.',
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def change_tariff(
        self, app_state: AppState, principal: Principal, tariff_id: UUID, data: TariffInput
    ) -> Tariff:
        async with unit_of_work(app_state, principal) as uow:
            return await tariffs.change_tariff(uow, tariff_id, data)

    @patch(
        "/tariffs/{tariff_id:uuid}",
        summary="Change some of a tariff's terms; refused for days already invoiced",
        description="Merges the body into the tariff: a field left out keeps its value, null clears "
        "`validTo`, `minimumCharge` and `firstPeriodSeconds`. Send `version` to refuse a change over "
        "someone else's (409).",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def amend_tariff(
        self, app_state: AppState, principal: Principal, tariff_id: UUID, data: TariffPatch
    ) -> Tariff:
        async with unit_of_work(app_state, principal) as uow:
            return await tariffs.amend_tariff(uow, tariff_id, data)

    # --- invoices ---

    @get(
        "/invoices",
        summary="Invoices and credit notes I may see (a town's finance: its own)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_invoices(
        self,
        app_state: AppState,
        principal: Principal,
        tenant: TenantSlug = None,
        year: Annotated[int | None, Parameter(ge=2000, le=2999)] = None,
        include_discarded: Annotated[bool, Parameter(query="includeDiscarded")] = False,
    ) -> list[Invoice]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await invoices.list_invoices(uow, tenant, year, include_discarded)

    @post(
        "/invoice-runs",
        summary="Draft a client's invoice for a month or a year (operator's finance)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def run_invoice(self, app_state: AppState, principal: Principal, data: InvoiceRunInput) -> Invoice:
        async with unit_of_work(app_state, principal) as uow:
            return await invoices.run_invoice(uow, data.tenant_id, data.period)

    @get(
        "/invoices/{invoice_id:uuid}",
        summary="One invoice or credit note with its lines",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def get_invoice(self, app_state: AppState, principal: Principal, invoice_id: UUID) -> Invoice:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await invoices.invoice(uow, invoice_id)

    @post(
        "/invoices/{invoice_id:uuid}/issue",
        status_code=200,
        summary="Issue a draft: numbered without gaps per operator and year, then never changed",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def issue_invoice(self, app_state: AppState, principal: Principal, invoice_id: UUID) -> Invoice:
        async with unit_of_work(app_state, principal) as uow:
            return await invoices.issue_invoice(uow, invoice_id)

    @post(
        "/invoices/{invoice_id:uuid}/cancellation",
        summary="Cancel an issued invoice by a credit note (numbered itself); returns the credit note",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def cancel_invoice(
        self, app_state: AppState, principal: Principal, invoice_id: UUID, data: CancellationInput
    ) -> Invoice:
        async with unit_of_work(app_state, principal) as uow:
            return await invoices.cancel_invoice(uow, invoice_id, data)

    @get(
        "/invoices/{invoice_id:uuid}/xrechnung",
        media_type="application/xml",
        summary="XRechnung 3.0 (UBL 2.1) of an issued invoice or credit note",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def xrechnung(self, app_state: AppState, principal: Principal, invoice_id: UUID) -> Response[bytes]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            filename, xml = await invoices.xrechnung(uow, invoice_id)
        return Response(
            content=xml,
            media_type="application/xml",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @get(
        "/invoices/{invoice_id:uuid}/calls",
        summary="The itemised call list of an invoice (Einzelverbindungsnachweis)",
        description="Every call behind the invoice's lines with start, talk and billed seconds and its share of "
        "the line in cents (the calls of a line add up to it exactly); the caller's number shortened or left "
        "out as the town's billing profile says (`itemisedCaller`, `itemisedHiddenDigits`).",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def itemised_calls(self, app_state: AppState, principal: Principal, invoice_id: UUID) -> ItemisedCallList:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await invoices.itemised_calls(uow, invoice_id)

    @get(
        "/invoices/{invoice_id:uuid}/calls.csv",
        media_type="text/csv",
        summary="The same itemised call list as CSV (start times in Berlin time); `dialect=de` for German spreadsheets",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def itemised_calls_csv(
        self, app_state: AppState, principal: Principal, invoice_id: UUID, dialect: CsvDialect = CsvDialect.RFC4180
    ) -> Response[str]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            listing = await invoices.itemised_calls(uow, invoice_id)
        name = f"einzelverbindungsnachweis-{listing.number or listing.invoice_id}.csv"
        return Response(
            content=itemised_csv(listing, BERLIN, dialect),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @post(
        "/true-ups",
        summary="Draft a client's true-up of a fully invoiced year to the cost-covering rate",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def true_up(self, app_state: AppState, principal: Principal, data: TrueUpInput) -> Invoice:
        async with unit_of_work(app_state, principal) as uow:
            return await rates.true_up(uow, data.tenant_id, data.year)

    # --- party data and targets ---

    @get(
        "/tenants/{slug:str}/billing-profile",
        summary="A tenant's invoice address and contact (null: none yet)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def get_billing_profile(self, app_state: AppState, principal: Principal, slug: str) -> BillingProfile | None:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await invoices.billing_profile(uow, slug)

    @put(
        "/tenants/{slug:str}/billing-profile",
        summary="Set a tenant's invoice address, contact and bank account",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_billing_profile(
        self, app_state: AppState, principal: Principal, slug: str, data: BillingProfileInput
    ) -> BillingProfile:
        async with unit_of_work(app_state, principal) as uow:
            return await invoices.set_billing_profile(uow, slug, data)

    @put(
        "/tenants/{slug:str}/figure-targets",
        summary="First-contact targets (default 60 %, 115 calls 65 %)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_figure_targets(
        self, app_state: AppState, principal: Principal, slug: str, data: FigureTargetsInput
    ) -> FigureTargets:
        async with unit_of_work(app_state, principal) as uow:
            return await figures.set_figure_targets(uow, slug, data)

    # --- yearly rate from costs ---

    @get("/cost-bases", summary="The operator's yearly cost bases", responses=problem_responses(400, 401, 403, 422))
    async def list_cost_bases(self, app_state: AppState, principal: Principal) -> list[CostBase]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await rates.cost_bases(uow)

    @put(
        "/cost-bases",
        summary="Record a year's cost base (operator's finance); fixed once adopted",
        responses=problem_responses(400, 401, 403, 409, 422),
    )
    async def record_cost_base(self, app_state: AppState, principal: Principal, data: CostBaseInput) -> CostBase:
        async with unit_of_work(app_state, principal) as uow:
            return await rates.record_cost_base(uow, data)

    @get(
        "/rate-proposal",
        summary="Next year's cost-covering rate per minute, with the calculation",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def rate_proposal(
        self, app_state: AppState, principal: Principal, year: Annotated[int, Parameter(ge=2000, le=2998)]
    ) -> RateProposal:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await rates.rate_proposal(uow, year)

    @post(
        "/rate-proposals",
        summary="Propose the year's cost-covering rate to every client town (operator's finance)",
        description="Each town answers by `respondBy` (POST /v1/tenants/{slug}/rate-decisions); every step "
        "is an event the towns read (GET /v1/rate-consultation).",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def propose_rate(
        self, app_state: AppState, principal: Principal, data: RateProposalInput
    ) -> RateConsultation:
        async with unit_of_work(app_state, principal) as uow:
            return await consultation.propose_rate(uow, data)

    @get(
        "/rate-consultation",
        summary="Where a year's rate stands with the towns: each one's answer and every step",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def rate_consultation(
        self,
        app_state: AppState,
        principal: Principal,
        year: Annotated[int, Parameter(ge=2000, le=2999)],
        tenant: TenantSlug = None,
    ) -> RateConsultation:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await consultation.rate_consultation(uow, year, tenant)

    @post(
        "/tenants/{slug:str}/rate-decisions",
        status_code=200,
        summary="A town accepts the proposed rate, or objects with a note (its finance or town admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def decide_rate(
        self, app_state: AppState, principal: Principal, slug: str, data: RateDecisionInput
    ) -> RateConsent:
        async with unit_of_work(app_state, principal) as uow:
            return await consultation.decide_rate(uow, slug, data)

    @post(
        "/rate-adoptions",
        summary="Adopt the rate proposed to the towns as every client's tariff from 1 January",
        description="When every town accepted; after the date to answer by also without, with a `reason`.",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def adopt_rate(self, app_state: AppState, principal: Principal, data: RateAdoptionInput) -> RateAdoption:
        async with unit_of_work(app_state, principal) as uow:
            return await consultation.adopt_rate(uow, data)

    # --- agreement terms and figures ---

    @get(
        "/agreement-terms",
        summary="Term ends and notice deadlines; `withinDays`: deadlines in the next N days",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def agreement_terms(
        self,
        app_state: AppState,
        principal: Principal,
        on: date | None = None,
        within_days: Annotated[int | None, Parameter(query="withinDays", ge=0, le=3660)] = None,
    ) -> list[AgreementTerm]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await figures.agreement_terms(uow, on, within_days)

    @get(
        "/figures",
        summary="115 figures per tenant and period, and the total",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def figures(
        self, app_state: AppState, principal: Principal, period_from: From, period_to: To, tenant: TenantSlug = None
    ) -> FiguresReport:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await figures.figures(uow, period_from, period_to, tenant)

    @get(
        "/figures.csv",
        media_type="text/csv",
        summary="The same figures as CSV; `dialect=de` for German spreadsheets (semicolon, decimal comma, BOM)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def figures_csv(
        self,
        app_state: AppState,
        principal: Principal,
        period_from: From,
        period_to: To,
        tenant: TenantSlug = None,
        dialect: CsvDialect = CsvDialect.RFC4180,
    ) -> Response[str]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            report = await figures.figures(uow, period_from, period_to, tenant)
        name = f"kennzahlen-{period_from.isoformat()}-{period_to.isoformat()}.csv"
        return Response(
            content=reports.figures_csv(report, dialect),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
