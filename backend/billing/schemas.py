"""Tariffs, invoices, cost bases, agreement terms and 115 figures.

Money is `decimal.Decimal` everywhere (PostgreSQL `numeric`); on the wire msgspec writes it as a
string ("0.95"), GraphQL as the `Decimal` scalar. No float ever touches an amount.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, TypeVar, cast
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from backend.structs import LINES, Input, Schema

T = TypeVar("T")

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Note = Annotated[str, msgspec.Meta(max_length=500), LINES]
Year = Annotated[int, msgspec.Meta(ge=2000, le=2999)]
# A month (2026-03) or a year (2026).
PeriodText = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")]
# The trade's billing increments (Taktung): a first period, then an increment, "60/1" etc.
Increment = Literal[1, 10, 30, 60]
FirstPeriod = Annotated[int, msgspec.Meta(ge=1, le=600)]


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoicePurpose(StrEnum):
    USAGE = "usage"  # call minutes of a month or year (with corrections for late calls)
    CANCELLATION = "cancellation"  # a credit note cancelling an invoice
    TRUE_UP = "true_up"  # difference to the cost-covering rate of a year


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    DISCARDED = "discarded"  # replaced by a later run of the same period; never numbered
    ISSUED = "issued"
    CANCELLED = "cancelled"  # by a credit note


class LineKind(StrEnum):
    USAGE = "usage"
    MINIMUM_CHARGE = "minimum_charge"
    TRUE_UP = "true_up"


# --- tariffs ------------------------------------------------------------------------------------


class Tariff(Schema, frozen=True):
    """Price per call minute for an agreement over local days `validFrom` … `validTo` (inclusive;
    None: open-ended). The tariff of a call's start day applies."""

    tenant_id: UUID
    id: UUID
    agreement_id: UUID
    operator_tenant_id: UUID
    valid_from: date
    valid_to: date | None
    price_per_minute: Decimal
    first_period_seconds: int  # billed whole for any talk up to it …
    increment_seconds: int  # … then each started increment
    billing_increment: str  # as the trade writes it: "60/60", "60/1", "30/1", "1/1"
    minimum_charge: Decimal | None
    note: str
    cost_base_year: int | None
    version: int


class TariffInput(Input, frozen=True):
    """The full new state of a tariff (PUT replaces): a field left out takes its default
    (`validTo` open-ended, `incrementSeconds` 60, `firstPeriodSeconds` the increment, no
    `minimumCharge`), except `note`, which is kept when left out or null and cleared by "".
    A call is billed `firstPeriodSeconds` whole, then each started `incrementSeconds` (60/60: per
    started minute; 60/1: the first minute, then to the second; 1/1: to the second); the first
    period is a multiple of the increment. `minimumCharge` is the least a billed call costs."""

    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: Increment = 60
    first_period_seconds: FirstPeriod | None = None
    minimum_charge: Decimal | None = None
    # Free text a clerk wrote, not a term of the price: a client that sends only the terms
    # (issue 17) must not wipe it, so absence keeps it.
    note: Note | None = None
    version: int | None = None


class TariffPatch(Input, frozen=True):
    """A change to some of a tariff's terms (PATCH merges): a field left out keeps its current
    value; null clears `validTo` (open-ended), `minimumCharge` (none) and `firstPeriodSeconds`
    (back to the increment). The same checks as a full change (`TariffInput`) apply to the result."""

    valid_from: date | UnsetType = UNSET
    price_per_minute: Decimal | UnsetType = UNSET
    valid_to: date | UnsetType | None = UNSET
    increment_seconds: Increment | UnsetType = UNSET
    first_period_seconds: FirstPeriod | UnsetType | None = UNSET
    minimum_charge: Decimal | UnsetType | None = UNSET
    note: Note | UnsetType = UNSET
    version: int | None = None

    def merged(self, current: Tariff) -> TariffInput:
        """The full new state: the fields sent over the tariff's current terms."""

        def pick(sent: T | UnsetType, kept: T) -> T:
            return kept if isinstance(sent, UnsetType) else sent

        return TariffInput(
            valid_from=pick(self.valid_from, current.valid_from),
            price_per_minute=pick(self.price_per_minute, current.price_per_minute),
            valid_to=pick(self.valid_to, current.valid_to),
            # A stored tariff's increment passed the same check when it was written.
            increment_seconds=pick(self.increment_seconds, cast(Increment, current.increment_seconds)),
            first_period_seconds=pick(self.first_period_seconds, current.first_period_seconds),
            minimum_charge=pick(self.minimum_charge, current.minimum_charge),
            note=pick(self.note, current.note),
            version=self.version,
        )


class TariffCreate(Input, frozen=True):
    """A tariff period; billing increments as in `TariffInput` (`firstPeriodSeconds` defaults to
    the increment)."""

    agreement_id: UUID
    valid_from: date
    price_per_minute: Decimal
    valid_to: date | None = None
    increment_seconds: Increment = 60
    first_period_seconds: FirstPeriod | None = None
    minimum_charge: Decimal | None = None
    note: Note = ""


# --- invoices -----------------------------------------------------------------------------------


class InvoiceLine(Schema, frozen=True):
    line_no: int
    kind: LineKind
    correction: bool  # late calls of an already invoiced period
    corrects_invoice_id: UUID | None
    tariff_id: UUID | None
    covers_from: date
    covers_to: date  # inclusive
    description: str
    calls: int
    billable_seconds: int
    minutes: Decimal
    quantity: Decimal
    unit_code: str  # UN/ECE Rec. 20: MIN, SEC, C62
    unit_price: Decimal
    base_quantity: int
    amount: Decimal


class Invoice(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    operator_tenant_id: UUID
    agreement_id: UUID
    kind: InvoiceKind
    purpose: InvoicePurpose
    status: InvoiceStatus
    period_from: date
    period_to: date  # inclusive
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
    unrated_calls: int  # calls talked on days without a tariff: not billed
    buyer_reference: str | None
    created_at: datetime
    lines: list[InvoiceLine]


class InvoiceRunInput(Input, frozen=True):
    """Draft the invoice of a client for a month (`2026-03`) or a year (`2026`). A draft of the
    same period is replaced; an issued one must be cancelled first."""

    tenant_id: UUID
    period: PeriodText


class InvoicePeriodInput(Input, frozen=True):
    """The period alone, where the client is given apart (GraphQL's `runInvoice(tenant:, period:)`)."""

    period: PeriodText


class CancellationInput(Input, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S"), LINES]


class ItemisedCall(Schema, frozen=True):
    """One call behind an invoice line (Einzelverbindungsnachweis). `amount` is the call's share of
    its line in cents (largest remainder), so the calls of a line add up to the line exactly."""

    line_no: int
    started_at: datetime
    caller: str | None  # shortened or left out as the town's billing profile says
    purpose: str
    talk_seconds: int
    billed_seconds: int
    at_minimum: bool
    amount: Decimal


class ItemisedLine(Schema, frozen=True):
    line_no: int
    kind: LineKind
    correction: bool  # corrections of earlier invoices are listed as their line only
    description: str
    calls: int
    billable_seconds: int
    amount: Decimal
    itemised: bool  # the calls below add up to this line


class ItemisedCallList(Schema, frozen=True):
    invoice_id: UUID
    tenant_id: UUID
    number: str | None
    period_from: date
    period_to: date
    caller_shown: ItemisedCaller
    lines: list[ItemisedLine]
    calls: list[ItemisedCall]
    total_talk_seconds: int
    total_billed_seconds: int
    total_amount: Decimal


# --- party data ---------------------------------------------------------------------------------


class ItemisedCaller(StrEnum):
    """How a town's itemised call lists show the caller's number."""

    SHORTENED = "shortened"  # the last digits replaced by "x"
    OMITTED = "omitted"


class BillingProfile(Schema, frozen=True):
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
    itemised_caller: ItemisedCaller
    itemised_hidden_digits: int
    version: int


class BillingProfileInput(Input, frozen=True):
    legal_name: Text
    street: Text
    postal_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z -]{3,10}$")]
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
    phone: Annotated[str, msgspec.Meta(min_length=3, max_length=40, pattern=r"\S")]
    contact_name: Text
    country_code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] = "DE"
    iban: str | None = None
    bic: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")] | None = None
    payment_days: Annotated[int, msgspec.Meta(ge=0, le=120)] = 30
    tax_exemption_reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")] = (
        "Nicht steuerbar (§ 2b UStG, öffentlich-rechtliche Vereinbarung)"
    )
    # The itemised call list: caller numbers shortened by their last digits, or left out.
    itemised_caller: ItemisedCaller = ItemisedCaller.SHORTENED
    itemised_hidden_digits: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3


class Party(Schema, frozen=True):
    """Seller or buyer as frozen into an issued invoice."""

    tenant_id: UUID
    name: str
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
    ags: str | None
    leitweg_id: str | None
    payment_days: int
    tax_exemption_reason: str


# --- yearly rate from costs ---------------------------------------------------------------------


class OwnCostItem(Schema, frozen=True):
    """A cost the operator declares as its own (part of the totals, not covered by the rate)."""

    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
    amount: Decimal


class CostBase(Schema, frozen=True):
    tenant_id: UUID
    year: int
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal
    total: Decimal
    own_items: list[OwnCostItem]
    note: str
    adopted_rate: Decimal | None
    adopted_at: datetime | None
    recorded_by: str
    version: int


class CostBaseInput(Input, frozen=True):
    """The operator's costs of a year (EUR): staff, IT, overheads and other; total is their sum."""

    year: Year
    staff: Decimal
    it: Decimal
    overheads: Decimal
    other: Decimal = msgspec.field(default_factory=lambda: Decimal(0))
    # Items within those costs the operator declares as its own: left out of what the rate covers.
    own_items: Annotated[list[OwnCostItem], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ClientMinutes(Schema, frozen=True):
    tenant_id: UUID
    name: str
    billable_seconds: int
    billable_minutes: Decimal
    billed_amount: Decimal  # net of the year's issued usage invoices (credit notes deducted)


class RateProposal(Schema, frozen=True):
    """Next year's cost-covering rate: the cost base (less the operator's own items) ÷ every
    minute the centre handled (the operator's own calls and 115 included), counted as calls are
    billed, rounded up to the cent."""

    year: int
    applies_from: date
    cost_base: CostBase
    covered_costs: Decimal  # the cost base less the operator's own items
    clients: list[ClientMinutes]
    operator_seconds: int  # the operator's own calls (its central number, unassigned 115)
    operator_minutes: Decimal
    billable_seconds: int  # all minutes the centre handled: clients and operator
    billable_minutes: Decimal
    exact_rate: Decimal | None
    proposed_rate: Decimal | None
    calculation: list[str]
    adopted: bool


class RateAdoptionInput(Input, frozen=True):
    """Adopt the rate proposed to the towns: when every town accepted, or after the deadline with
    a `reason` the operator records (objections and silence are then overruled, on record)."""

    year: Year
    reason: Annotated[str, msgspec.Meta(max_length=2000), LINES] | None = None


class RateProposalInput(Input, frozen=True):
    """Propose the year's cost-covering rate to every client town; they answer by `respondBy`."""

    year: Year
    respond_by: date


class RateDecision(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    OBJECTED = "objected"


class RateDecisionInput(Input, frozen=True):
    """A town's answer: `accepted`, or `objected` with a note saying why."""

    year: Year
    decision: RateDecision
    note: Annotated[str, msgspec.Meta(max_length=2000), LINES] = ""


class RateEventKind(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    OBJECTED = "objected"
    ADOPTED = "adopted"  # every town accepted
    ADOPTED_AFTER_DEADLINE = "adopted_after_deadline"  # by the operator, with its reason


class RateConsent(Schema, frozen=True):
    """A town's answer to the operator's proposal of a year's rate."""

    tenant_id: UUID
    operator_tenant_id: UUID
    year: int
    rate: Decimal
    respond_by: date
    decision: RateDecision
    note: str
    decided_by: str | None
    decided_at: datetime | None


class RateEvent(Schema, frozen=True):
    """One step of a rate consultation, as the town it concerns reads it."""

    tenant_id: UUID
    id: UUID
    operator_tenant_id: UUID
    year: int
    kind: RateEventKind
    rate: Decimal
    note: str
    actor: str
    at: datetime


class RateConsultation(Schema, frozen=True):
    """Where a year's rate stands with the towns I may see: each one's answer and every step."""

    year: int
    rate: Decimal | None
    respond_by: date | None
    adopted: bool
    consents: list[RateConsent]
    events: list[RateEvent]


class YearInput(Input, frozen=True):
    """The year alone, where the client is given apart (GraphQL's `trueUp(tenant:, year:)`)."""

    year: Year


class TrueUpInput(Input, frozen=True):
    """Draft the true-up of a client's year: its billable minutes at the year's cost-covering rate
    minus what its usage invoices charged (an invoice when positive, a credit note when not)."""

    tenant_id: UUID
    year: Year


class RateAdoption(Schema, frozen=True):
    proposal: RateProposal
    tariffs: list[Tariff]


# --- agreement terms ----------------------------------------------------------------------------


class AgreementTerm(Schema, frozen=True):
    agreement_id: UUID
    client_tenant_id: UUID
    client_name: str
    operator_tenant_id: UUID
    starts_on: date
    ends_on: date | None
    on: date
    active: bool
    current_term_end: date | None
    notice_deadline: date | None  # last day to give notice for `notice_term_end`
    days_to_notice_deadline: int | None
    notice_term_end: date | None = None  # the earliest end still reachable by notice (the deadline's term)


# --- 115 figures --------------------------------------------------------------------------------


class CsvDialect(StrEnum):
    """`rfc4180`: comma, decimal point, UTF-8 (programs); `de`: semicolon, decimal comma, UTF-8
    with byte order mark (German spreadsheets open it as it is)."""

    RFC4180 = "rfc4180"
    DE = "de"


class FigureScope(StrEnum):
    ALL = "all"
    ONE_ONE_FIVE = "115"


# From the tickets domain (backend.tickets.reports.callback_figures).
TICKET_FIGURES_NOTE = "Tickets are not split by the number dialled: null on the 115 rows."
TICKETS_FORWARDED = "Tickets handed to a town department (new → forwarded) in the period. " + TICKET_FIGURES_NOTE
CALLBACKS_ON_TIME = (
    "Tickets due in the period whose first callback that reached the citizen came at or before the due time. "
    + TICKET_FIGURES_NOTE
)
CALLBACKS_LATE = (
    "Tickets due in the period whose first callback that reached the citizen came after the due time, or that are "
    "still open and overdue without one (open tickets not yet due count in neither). " + TICKET_FIGURES_NOTE
)
TicketsForwarded = Annotated[int | None, msgspec.Meta(description=TICKETS_FORWARDED)]
CallbacksOnTime = Annotated[int | None, msgspec.Meta(description=CALLBACKS_ON_TIME)]
CallbacksLate = Annotated[int | None, msgspec.Meta(description=CALLBACKS_LATE)]
CALLBACK_ON_TIME_RATE = "Callbacks on time ÷ (on time + late). " + TICKET_FIGURES_NOTE
CallbackOnTimeRate = Annotated[Decimal | None, msgspec.Meta(description=CALLBACK_ON_TIME_RATE)]
CallbackTarget = Annotated[Decimal | None, msgspec.Meta(description=TICKET_FIGURES_NOTE)]
MeetsCallbackTarget = Annotated[bool | None, msgspec.Meta(description=TICKET_FIGURES_NOTE)]


# The qualified transfer (decision 038): a call put through to the responsible person or the
# department's line counts as settled only when the transfer was taken.
TRANSFERS_TAKEN = "Transferred calls the person or the department's line took: settled by qualified transfer."
TRANSFERS_NOT_TAKEN = (
    "Transfers not taken (whatever became of the call then, usually a message): not settled. "
    "Transfers recorded without saying whether they were taken count in neither."
)
QUALIFIED_TRANSFER_RATE = "transfersTaken ÷ (settled at first contact + forwarded as ticket + transferred)."
SETTLED_RATE = (
    "(settled at first contact + transfers taken) ÷ (settled at first contact + forwarded as ticket + "
    "transferred): the calls the centre settled, at first contact or by qualified transfer."
)
TransfersTaken = Annotated[int, msgspec.Meta(description=TRANSFERS_TAKEN)]
TransfersNotTaken = Annotated[int, msgspec.Meta(description=TRANSFERS_NOT_TAKEN)]
QualifiedTransferRate = Annotated[Decimal | None, msgspec.Meta(description=QUALIFIED_TRANSFER_RATE)]
SettledRate = Annotated[Decimal | None, msgspec.Meta(description=SETTLED_RATE)]


class Figures(Schema, frozen=True):
    tenant_id: UUID | None  # None: the operator's total over all tenants in the report
    tenant_name: str
    scope: FigureScope
    period_from: date
    period_to: date  # inclusive
    offered: int
    answered: int
    abandoned: int
    answered_within_30s: int
    wait_reported: int
    share_answered_within_30s: Decimal | None  # of answered calls with a reported wait time (not the service level)
    settled_first_contact: int
    forwarded_as_ticket: int
    transferred_to_department: int
    first_contact_rate: Decimal | None  # settled ÷ (settled + forwarded + transferred)
    first_contact_target: Decimal
    meets_first_contact_target: bool | None
    transfers_taken: TransfersTaken
    transfers_not_taken: TransfersNotTaken
    qualified_transfer_rate: QualifiedTransferRate
    settled_rate: SettledRate
    talk_seconds: int
    talk_minutes: Decimal
    billable_seconds: int
    billed_minutes: Decimal
    unrated_calls: int
    tickets_forwarded: TicketsForwarded
    callbacks_on_time: CallbacksOnTime
    callbacks_late: CallbacksLate
    # The service level as the standard counts it (decision 029): answered within
    # `service_level_seconds` ÷ (offered − hung up within `short_abandon_seconds`).
    service_level_seconds: int
    short_abandon_seconds: int
    abandoned_short: int
    service_level_offered: int
    service_level_answered: int
    service_level: Decimal | None
    service_level_target: Decimal
    meets_service_level_target: bool | None
    callback_on_time_rate: CallbackOnTimeRate
    callback_target: CallbackTarget
    meets_callback_target: MeetsCallbackTarget


class FiguresReport(Schema, frozen=True):
    period_from: date
    period_to: date
    rows: list[Figures]
    total: list[Figures]


SERVICE_LEVEL_SECONDS = "A call counts for the service level when answered within this many seconds (the 30 of 75/30)."
SHORT_ABANDON_SECONDS = (
    "Calls hung up unanswered within this many seconds are left out of the service level (the standard's "
    "'abandoned within the first few seconds')."
)
CALLBACK_TARGET = "Share of the callbacks due that should come within the promise (on time ÷ (on time + late))."
ServiceLevelSeconds = Annotated[int, msgspec.Meta(ge=1, le=600, description=SERVICE_LEVEL_SECONDS)]
ShortAbandonSeconds = Annotated[int, msgspec.Meta(ge=0, le=60, description=SHORT_ABANDON_SECONDS)]


class FigureTargets(Schema, frozen=True):
    tenant_id: UUID
    first_contact_target: Decimal
    first_contact_target_115: Decimal
    service_level_target: Decimal
    service_level_seconds: int
    short_abandon_seconds: int
    callback_target: Decimal


class FigureTargetsInput(Input, frozen=True):
    """Shares between 0 and 1 (first contact 0.60, 115 calls 0.65, service level 0.75 of the calls
    answered within 30 s, callbacks within the promise 0.90); a PUT replaces all of them, a field
    left out takes its default."""

    first_contact_target: Decimal = msgspec.field(default_factory=lambda: Decimal("0.60"))
    first_contact_target_115: Decimal = msgspec.field(default_factory=lambda: Decimal("0.65"))
    service_level_target: Decimal = msgspec.field(default_factory=lambda: Decimal("0.75"))
    service_level_seconds: ServiceLevelSeconds = 30
    short_abandon_seconds: ShortAbandonSeconds = 5
    callback_target: Decimal = msgspec.field(default_factory=lambda: Decimal("0.90"))
