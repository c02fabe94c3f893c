"""Tickets (Anliegen, Rückrufbitte): the workflow, the callback deadline, and the citizen's data.

The workflow is data: `TRANSITIONS` lists every allowed (from, to) pair with its action name; the
service refuses anything else before it writes a single row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec

from backend.structs import LINES, Input, Schema

LeikaKey = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,14}$", description="LeiKa key or key prefix (digits)")]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Concern = Annotated[str, msgspec.Meta(min_length=1, max_length=10000), LINES]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
PhoneText = Annotated[str, msgspec.Meta(min_length=2, max_length=40)]
CitizenName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=2000), LINES]
CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=5000), LINES]
Assignee = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class TicketStatus(StrEnum):
    NEW = "new"
    FORWARDED = "forwarded"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"


OPEN_STATUSES: frozenset[TicketStatus] = frozenset({TicketStatus.NEW, TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS})

# (from, to) → action. Anything not listed is refused and changes nothing.
TRANSITIONS: dict[tuple[TicketStatus, TicketStatus], str] = {
    (TicketStatus.NEW, TicketStatus.FORWARDED): "forward",
    (TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS): "start",
    (TicketStatus.IN_PROGRESS, TicketStatus.ANSWERED): "answer",
    (TicketStatus.ANSWERED, TicketStatus.CLOSED): "close",
    (TicketStatus.ANSWERED, TicketStatus.IN_PROGRESS): "reopen",
    (TicketStatus.CLOSED, TicketStatus.IN_PROGRESS): "reopen",
}


def allowed_targets(status: TicketStatus) -> list[TicketStatus]:
    return [to for (frm, to) in TRANSITIONS if frm == status]


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Channel(StrEnum):
    """How the citizen wants the answer (`none`: no contact data, e.g. an anonymous notice)."""

    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    NONE = "none"


class CallbackChannel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"


class Source(StrEnum):
    AGENT = "agent"  # the service centre, usually from a call
    PARTNER = "partner"  # a town's partner system (machine client)
    STAFF = "staff"  # the town's own staff


class DeadlineRule(StrEnum):
    """`working_days_24h`: 24 hours counted on working days only (the paper's promise);
    `service_hours_24h`: 24 hours counted only inside service hours."""

    WORKING_DAYS_24H = "working_days_24h"
    SERVICE_HOURS_24H = "service_hours_24h"


class SlaState(StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


class ActorKind(StrEnum):
    PERSON = "person"
    MACHINE = "machine"
    SYSTEM = "system"


class EventKind(StrEnum):
    CREATED = "ticket.created"
    STATUS_CHANGED = "ticket.status_changed"
    ASSIGNED = "ticket.assigned"
    DEPARTMENT_CHANGED = "ticket.department_changed"
    COMMENT_ADDED = "ticket.comment_added"
    CALLBACK_RECORDED = "ticket.callback_recorded"
    DUE_SOON = "ticket.due_soon"
    OVERDUE = "ticket.overdue"
    PERSONAL_DATA_ERASED = "ticket.personal_data_erased"


class AuditWhat(StrEnum):
    CONTACT = "contact"  # concern and citizen contact
    COMMENTS = "comments"
    CALLBACK_NOTES = "callback_notes"


class TicketSettings(Schema, frozen=True):
    tenant_id: UUID
    deadline_rule: DeadlineRule
    retention_days: int
    due_soon_minutes: int
    version: int


class TicketSettingsInput(Input, frozen=True):
    deadline_rule: DeadlineRule | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    due_soon_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] | None = None
    version: int | None = None


class TicketRoute(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    key_prefix: str | None  # None: the default department
    department_id: UUID
    department_name: str


class TicketRouteInput(Input, frozen=True):
    department_id: UUID
    key_prefix: LeikaKey | None = None


class Citizen(Input, frozen=True):
    """The citizen's contact. Personal data: minimised, every read recorded, erased after retention."""

    consent: bool
    preferred_channel: Channel = Channel.PHONE
    name: CitizenName | None = None
    callback_number: PhoneText | None = None
    email: Email | None = None


class TicketCreate(Input, frozen=True):
    tenant_slug: str
    subject: Subject
    concern: Concern
    citizen: Citizen
    department_id: UUID | None = None  # None: proposed by the responsibility table
    leika_key: LeikaKey | None = None
    article_id: UUID | None = None
    call_id: UUID | None = None
    priority: Priority = Priority.NORMAL
    forward: bool = True  # hand it to the department right away (new → forwarded)


class Ticket(Schema, frozen=True):
    """A ticket without personal data (what lists, feeds and webhooks show)."""

    tenant_id: UUID
    id: UUID
    number: int
    department_id: UUID
    department_name: str
    status: TicketStatus
    priority: Priority
    subject: str
    leika_key: str | None
    article_id: UUID | None
    call_id: UUID | None
    source: Source
    assignee: str | None  # the name shown; free text on tickets assigned before the directory
    assignee_person_id: UUID | None  # the person of the town's directory (issue 16)
    created_at: datetime
    updated_at: datetime
    deadline_started_at: datetime
    due_at: datetime
    deadline_rule: DeadlineRule
    calendar_version: str
    answered_at: datetime | None
    closed_at: datetime | None
    personal_data_erased_at: datetime | None
    sla_state: SlaState
    change_seq: int
    version: int


class PersonalData(Schema, frozen=True):
    concern: str
    name: str | None
    callback_number: str | None
    email: str | None
    preferred_channel: Channel
    consent: bool
    consent_at: datetime | None


class TicketDetail(Schema, frozen=True):
    """A ticket with the citizen's data (reading it writes an audit row)."""

    ticket: Ticket
    personal_data: PersonalData | None  # None once erased


class TicketEvent(Schema, frozen=True):
    id: UUID
    ticket_id: UUID
    change_seq: int
    kind: EventKind
    from_status: TicketStatus | None
    to_status: TicketStatus | None
    actor_kind: ActorKind
    actor_subject: str | None
    actor_tenant_id: UUID | None
    details: dict[str, Any]
    at: datetime


class Comment(Schema, frozen=True):
    id: UUID
    ticket_id: UUID
    body: str | None  # None once erased
    author_subject: str
    author_tenant_id: UUID
    created_at: datetime


class CommentInput(Input, frozen=True):
    body: CommentBody


class CallbackAttempt(Schema, frozen=True):
    id: UUID
    ticket_id: UUID
    channel: CallbackChannel
    attempted_at: datetime
    reached: bool
    note: str | None
    recorded_by: str
    created_at: datetime


class CallbackAttemptInput(Input, frozen=True):
    channel: CallbackChannel
    reached: bool
    attempted_at: datetime | None = None  # default: now
    note: Note | None = None
    mark_answered: bool = False  # reached → also move the ticket to `answered`


class CallbackFigures(Schema, frozen=True):
    """A tenant's ticket figures for a period of local days (the 115 figures read these).

    `callbacks_on_time`: tickets due in the period whose first reached callback (since the last
    reopen) came at or before the due time; `callbacks_late`: after it, or none yet while the
    ticket is still open and overdue. Open tickets not yet due count in neither."""

    tenant_id: UUID
    tickets_forwarded: int  # handed to a department (new → forwarded) in the period
    callbacks_on_time: int
    callbacks_late: int


class StatusChange(Input, frozen=True):
    status: TicketStatus
    version: int | None = None


class AssignmentInput(Input, frozen=True):
    # A person of the town's directory by id (preferred), or by name or userName; both None:
    # unassign. Free text is kept only for a town without a directory (decision 027).
    assignee: Assignee | None = None
    person_id: UUID | None = None
    version: int | None = None


class DepartmentChange(Input, frozen=True):
    department_id: UUID
    version: int | None = None


class TicketFilter(msgspec.Struct, frozen=True):
    tenant_ids: tuple[UUID, ...] = ()
    status: TicketStatus | None = None
    sla_state: SlaState | None = None
    department_id: UUID | None = None
    assignee: str | None = None
    department_ids: tuple[UUID, ...] = ()  # any of these (department staff's own departments)


class AuditEntry(Schema, frozen=True):
    id: UUID
    ticket_id: UUID
    actor_subject: str
    actor_issuer: str
    actor_tenant_id: UUID
    via: str
    what: AuditWhat
    at: datetime


class WebhookEndpoint(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    url: str
    description: str
    active: bool
    created_at: datetime
    # Since when every attempt failed (None while it answers), and when deliveries were paused
    # because of it: paused deliveries wait, recorded, until the town admin resumes the endpoint.
    failing_since: datetime | None = None
    paused_at: datetime | None = None
    paused_reason: str | None = None


class WebhookEndpointInput(Input, frozen=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=2000)]
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class WebhookSecret(Schema, frozen=True):
    """Shown once, when created or rotated: the receiver verifies signatures with it."""

    endpoint_id: UUID
    secret: str
    previous_secret_expires_at: datetime | None


class WebhookEndpointCreated(Schema, frozen=True):
    endpoint: WebhookEndpoint
    secret: str


class WebhookDelivery(Schema, frozen=True):
    id: UUID
    event_id: UUID
    endpoint_id: UUID
    ticket_id: UUID
    kind: str
    change_seq: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookAttempt(Schema, frozen=True):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class TicketChange(Schema, frozen=True):
    """What subscribers and webhook receivers learn about a change: ids, never personal data."""

    tenant_id: UUID
    ticket_id: UUID
    number: int
    kind: EventKind
    status: TicketStatus
    change_seq: int
    at: datetime


class RouteEntry(Input, frozen=True):
    key_prefix: LeikaKey
    department_id: UUID


class TicketRoutesInput(Input, frozen=True):
    """The whole responsibility table: replaced at once."""

    routes: list[RouteEntry] = msgspec.field(default_factory=list)
    default_department_id: UUID | None = None


class DeliveryLogEntry(Schema, frozen=True):
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]
