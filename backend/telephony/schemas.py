"""Service numbers, routing windows, absences, 115 area codes, routing decisions and calls."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from backend.structs import LINES, Input, Schema
from backend.tenants.schemas import ServiceInterval

ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Note = Annotated[str, msgspec.Meta(max_length=200)]
PhoneText = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=86400 * 7)]


class NumberKind(StrEnum):
    NUMBER = "number"  # one full E.164 number
    BLOCK = "block"  # a prefix: every extension behind it


class Purpose(StrEnum):
    CENTRAL = "central"
    ONE_ONE_FIVE = "115"
    DEPARTMENT = "department"


class RoutingWindow(StrEnum):
    """When the centre takes a number's calls. Holidays of the tenant's state and its own
    closing days close every kind."""

    ALWAYS = "always"
    SERVICE_HOURS = "service_hours"
    OPERATOR_ABSENT = "operator_absent"  # only while the town's own operator is absent


class RoutingReason(StrEnum):
    ALWAYS_OPEN = "always_open"
    WITHIN_SERVICE_HOURS = "within_service_hours"
    OPERATOR_ABSENT = "operator_absent"
    PUBLIC_HOLIDAY = "public_holiday"
    CLOSING_DAY = "closing_day"
    OUTSIDE_SERVICE_HOURS = "outside_service_hours"
    OPERATOR_PRESENT = "operator_present"
    NOT_OURS = "not_ours"
    AGREEMENT_ENDED = "agreement_ended"  # the town's agreement with the centre has ended
    AGREEMENT_NOT_STARTED = "agreement_not_started"  # its agreement starts later
    CLOSING_DAY_ANSWERED = "closing_day_answered"  # the town hall is shut; the number answers anyway


class ResolvedBy(StrEnum):
    DIALLED_NUMBER = "dialled_number"
    CALLER_AREA_CODE = "caller_area_code"  # 115, one town for the caller's area code
    AMBIGUOUS_AREA_CODE = "ambiguous_area_code"  # 115, several towns: the agent picks
    OPERATOR_FALLBACK = "operator_fallback"  # 115, hidden/foreign/unknown caller area
    NOT_OURS = "not_ours"
    AGREEMENT_ENDED = "agreement_ended"  # a call to a town without an agreement in force: the centre's own


class Outcome(StrEnum):
    SETTLED_FIRST_CONTACT = "settled_first_contact"
    FORWARDED_AS_TICKET = "forwarded_as_ticket"
    TRANSFERRED_TO_DEPARTMENT = "transferred_to_department"
    ABANDONED = "abandoned"


class CallEventType(StrEnum):
    OFFERED = "offered"  # offered to the centre / queued
    ANSWERED = "answered"
    ENDED = "ended"


# --- service numbers -------------------------------------------------------------------


AnswerOnClosingDays = Annotated[
    bool,
    msgspec.Meta(
        description="Whether the centre answers this number on the town's own closing days (not public holidays)"
    ),
]


class ServiceNumber(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    number: str
    kind: NumberKind
    purpose: Purpose
    department_id: UUID | None
    greeting: str | None
    routing_window: RoutingWindow
    valid_from: date
    valid_to: date | None  # last day (inclusive); None: open-ended
    version: int
    answer_on_closing_days: AnswerOnClosingDays = False


class ServiceNumberCreate(Input, frozen=True):
    tenant_id: UUID
    number: PhoneText
    valid_from: date
    kind: NumberKind = NumberKind.NUMBER
    purpose: Purpose = Purpose.CENTRAL
    routing_window: RoutingWindow = RoutingWindow.SERVICE_HOURS
    department_id: UUID | None = None
    greeting: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    valid_to: date | None = None
    answer_on_closing_days: AnswerOnClosingDays = False


class ServiceNumberUpdate(Input, frozen=True):
    """Only the fields given change; `validTo` ends the number (the last day it is ours)."""

    routing_window: RoutingWindow | None = None
    greeting: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    valid_to: date | None = None
    version: int | None = None
    answer_on_closing_days: bool | None = None


class ServiceNumberMove(Input, frozen=True):
    """From `on` the number belongs to `toTenantId`; calls before that stay with the old owner."""

    to_tenant_id: UUID
    on: date
    routing_window: RoutingWindow | None = None
    department_id: UUID | None = None


class ServiceNumberMoved(Schema, frozen=True):
    previous: ServiceNumber
    current: ServiceNumber


# --- absences of the town's own operator ---------------------------------------------------


class WeeklyAbsence(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    weekday: int
    starts: str
    ends: str
    note: str


class WeeklyAbsenceInput(Input, frozen=True):
    weekday: Annotated[int, msgspec.Meta(ge=1, le=7)]
    starts: ClockTime
    ends: ClockTime
    note: Note = ""


class DatedAbsence(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    starts_at: datetime
    ends_at: datetime
    note: str


class DatedAbsenceInput(Input, frozen=True):
    starts_at: datetime
    ends_at: datetime
    note: Note = ""


class Absences(Schema, frozen=True):
    weekly: list[WeeklyAbsence]
    dated: list[DatedAbsence]


# --- 115 area codes ------------------------------------------------------------------------


class AreaCode(Schema, frozen=True):
    operator_tenant_id: UUID
    area_code: str
    ags: str
    municipality: str
    client_tenant_id: UUID | None


class AreaCodeInput(Input, frozen=True):
    area_code: PhoneText
    ags: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8}$")]
    municipality: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    client_tenant_id: UUID | None = None


# --- the routing decision ------------------------------------------------------------------


class TenantRef(Schema, frozen=True):
    id: UUID
    slug: str
    name: str


class DepartmentRef(Schema, frozen=True):
    id: UUID
    name: str
    phone: str | None = None
    email: str | None = None


class Candidate(Schema, frozen=True):
    tenant: TenantRef
    municipality: str
    ags: str


class MatchedNumber(Schema, frozen=True):
    id: UUID
    number: str
    kind: NumberKind
    purpose: Purpose
    routing_window: RoutingWindow
    valid_from: date
    valid_to: date | None


class RoutingDecision(Schema, frozen=True):
    dialled: str
    at: datetime
    ours: bool
    resolved_by: ResolvedBy
    takes_call: bool
    reason: RoutingReason
    reason_detail: str | None = None  # e.g. the holiday ("Karfreitag")
    service_number: MatchedNumber | None = None
    tenant: TenantRef | None = None  # None when not ours or when 115 leaves a choice
    candidates: list[Candidate] = msgspec.field(default_factory=list)
    greeting: str | None = None
    department: DepartmentRef | None = None  # a department line's department
    departments: list[DepartmentRef] = msgspec.field(default_factory=list)
    service_hours: list[ServiceInterval] = msgspec.field(default_factory=list)


# --- calls ---------------------------------------------------------------------------------


class Call(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    source_system: str
    external_id: str
    service_number_id: UUID
    dialled: str
    purpose: Purpose
    resolved_by: ResolvedBy
    caller: str | None
    queue: str | None
    offered_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    agent: str | None
    wait_seconds: int | None
    talk_seconds: int | None
    outcome: Outcome | None
    outcome_department_id: UUID | None
    ticket_id: UUID | None
    outcome_note: str | None
    # A transfer from a forwarding decision: the directory person it went to (None: the
    # department's line) and whether it was taken (None: not said, as before decision 038).
    outcome_person_id: UUID | None = None
    transfer_taken: bool | None = None


class CallRecordInput(Input, frozen=True):
    """A complete record (or the first part of one): the telephony system's own call id,
    the dialled and caller numbers, queue wait, answer and end times, agent."""

    external_id: ExternalId
    dialled: PhoneText
    offered_at: datetime
    caller: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    queue: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    agent: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    wait_seconds: Seconds | None = None


class CallEventInput(Input, frozen=True):
    """One event of a call. `offered` carries the dialled and caller numbers; `answered` the
    agent (and the queue wait, if the system measured it); `ended` only its time."""

    external_id: ExternalId
    type: CallEventType
    at: datetime
    dialled: PhoneText | None = None
    caller: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    queue: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    agent: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    wait_seconds: Seconds | None = None


class CallOutcomeInput(Input, frozen=True):
    """A transferred call names the department, or the directory person it went to (the
    person's department is then implied), and whether the transfer was taken: only a taken one
    counts as settled by qualified transfer."""

    outcome: Outcome
    department_id: UUID | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000), LINES] | None = None
    person_id: UUID | None = None
    transfer_taken: bool | None = None


class ImportProblem(Schema, frozen=True):
    line: int
    message: str
    external_id: str | None = None


class ImportReport(Schema, frozen=True):
    rows: int
    inserted: int
    duplicates: int
    errors: list[ImportProblem]
    error_count: int


class CallTenantInput(Input, frozen=True):
    """115 with an ambiguous caller area: the town (one of the routing's candidates) the call is for.
    Moving an assigned call again (until it is invoiced) needs a `reason`."""

    tenant_id: UUID
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class CallReassignment(Schema, frozen=True):
    """A 115 call moved from one town to another after its first assignment: who, when and why."""

    id: UUID
    call_id: UUID
    from_tenant_id: UUID
    to_tenant_id: UUID
    reassigned_by: str
    reason: str
    reassigned_at: datetime


# --- per-tenant settings -------------------------------------------------------------------

DEFAULT_CALLER_RETENTION_DAYS = 90
RetentionDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class TelephonySettings(Schema, frozen=True):
    tenant_id: UUID
    caller_retention_days: int  # caller numbers are erased from calls older than this


class TelephonySettingsInput(Input, frozen=True):
    caller_retention_days: RetentionDays
