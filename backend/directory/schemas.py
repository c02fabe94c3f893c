"""The directory of a town (Ansprechpartner, Zuständigkeit, Vertretung), presence, and the
forwarding decision (qualifizierte Vermittlung). Decision 023."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from backend.structs import Input, Schema
from backend.tenants.schemas import ServiceInterval
from backend.tickets.schemas import Citizen, Concern, Priority
from backend.tickets.schemas import Subject as TicketSubject

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
GivenName = Annotated[str, msgspec.Meta(max_length=100)]
Function = Annotated[str, msgspec.Meta(max_length=200)]
Room = Annotated[str, msgspec.Meta(max_length=50)]
PhoneText = Annotated[str, msgspec.Meta(min_length=2, max_length=40)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$", description="ISO 639 code, e.g. de, en, tr")]
LeikaKey = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,14}$", description="LeiKa key or key prefix (digits)")]
Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Letters = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-zÄÖÜäöü]{1,3}$", description="initial letters, e.g. A or K")]
Area = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
UserName = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class Salutation(StrEnum):
    """How the person is named aloud ("Frau Müller"); empty: by full name."""

    NONE = ""
    FRAU = "Frau"
    HERR = "Herr"


class Person(Schema, frozen=True):
    """A contact person of a town (Ansprechpartner/in)."""

    tenant_id: UUID
    id: UUID
    salutation: Salutation
    given_name: str
    family_name: str
    function: str
    department_id: UUID | None
    phone: str | None  # E.164 direct number (Durchwahl)
    email: str | None
    room: str
    languages: list[str]
    user_name: str | None
    external_id: str | None
    subject: str | None
    active: bool
    substitute_ids: list[UUID]
    version: int


class PersonInput(Input, frozen=True):
    family_name: Name
    given_name: GivenName = ""
    salutation: Salutation = Salutation.NONE
    function: Function = ""
    department_id: UUID | None = None
    phone: PhoneText | None = None  # any German format; stored as E.164
    email: Email | None = None
    room: Room = ""
    languages: Annotated[list[Language], msgspec.Meta(max_length=20)] = []
    user_name: UserName | None = None
    external_id: UserName | None = None
    subject: Subject | None = None
    active: bool = True
    substitute_ids: Annotated[list[UUID], msgspec.Meta(max_length=10)] = []
    version: int | None = None  # optimistic concurrency on replace


class Responsibility(Schema, frozen=True):
    """What a person is responsible for: a LeiKa service (key or prefix) or a topic, optionally
    only for citizens whose surname starts within [surnameFrom, surnameTo], or for an area."""

    tenant_id: UUID
    id: UUID
    person_id: UUID
    leika_key: str | None
    topic: str | None
    surname_from: str | None
    surname_to: str | None
    area: str | None


class ResponsibilityInput(Input, frozen=True):
    person_id: UUID
    leika_key: LeikaKey | None = None
    topic: Topic | None = None
    surname_from: Letters | None = None
    surname_to: Letters | None = None
    area: Area | None = None


class DepartmentLine(Schema, frozen=True):
    """A department's general line and its hours (null: the town's service hours)."""

    tenant_id: UUID
    department_id: UUID
    name: str
    phone: str | None
    hours: list[ServiceInterval] | None


class DepartmentLineInput(Input, frozen=True):
    phone: PhoneText | None = None
    hours: Annotated[list[ServiceInterval], msgspec.Meta(max_length=50)] | None = None


# --- presence -------------------------------------------------------------------------------


class SwitchState(StrEnum):
    """The person's own switch."""

    AVAILABLE = "available"
    AWAY = "away"
    IN_MEETING = "in_meeting"


class PhoneState(StrEnum):
    """What the telephone system reports for a person's extension."""

    BUSY = "busy"
    RINGING = "ringing"
    IDLE = "idle"
    LOGGED_OFF = "logged_off"


class PresenceSource(StrEnum):
    PHONE = "phone"
    SWITCH = "switch"
    DATED_ABSENCE = "dated_absence"
    WEEKLY_ABSENCE = "weekly_absence"
    CALENDAR = "calendar"  # holiday, closing day, outside the department's hours
    DEFAULT = "default"


class PresenceSwitchInput(Input, frozen=True):
    state: SwitchState
    until: datetime | None = None  # None: until the end of the (local) day


class PresenceEventInput(Input, frozen=True):
    """From the telephone system: the person is named by their direct number (any format)."""

    number: PhoneText
    state: PhoneState
    at: datetime | None = None
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=86400)] = 300


class Presence(Schema, frozen=True):
    """Whether a person is reachable at a moment, and which source said so."""

    person_id: UUID
    reachable: bool
    source: PresenceSource
    state: str  # the source's own word: away, in_meeting, busy, holiday, outside_hours, …
    until: datetime | None
    reason: str  # English, for logs and screens ("away until 14:00")
    at: datetime


# --- the forwarding decision ------------------------------------------------------------------


class OptionKind(StrEnum):
    PERSON = "person"  # transfer to the responsible person
    SUBSTITUTE = "substitute"  # transfer to a substitute
    DEPARTMENT = "department"  # transfer to the department's general line
    MESSAGE = "message"  # take a message: a ticket for the person or department


class ForwardingOption(Schema, frozen=True):
    rank: int
    kind: OptionKind
    available: bool  # false: listed for the agent's information (who is away, and why)
    person_id: UUID | None
    person_name: str | None
    department_id: UUID | None
    department_name: str | None
    number: str | None  # E.164 to transfer to
    reason: str
    speakable: str  # German, for screen readers and braille displays
    callback_due_at: datetime | None  # for a message: when the callback is due


class ForwardingDecision(Schema, frozen=True):
    tenant_id: UUID
    at: datetime
    leika_key: str | None
    surname: str | None
    options: list[ForwardingOption]
    speakable: str  # the whole answer in one German text


# --- import --------------------------------------------------------------------------------


class DirectoryImportProblem(Schema, frozen=True):
    """A line of the CSV that did not go in: its number (the header is line 1), the column, why."""

    line: int
    field: str | None
    message: str
    external_id: str | None


class DirectoryImportReport(Schema, frozen=True):
    """What an import did; lines with problems changed nothing, the others went in."""

    created: int
    updated: int
    unchanged: int
    deprovisioned: int  # marked inactive in the file, or (with prune) missing from it
    problems: list[DirectoryImportProblem]


# --- search --------------------------------------------------------------------------------


class HitKind(StrEnum):
    PERSON = "person"
    DEPARTMENT = "department"


class DirectoryHit(Schema, frozen=True):
    """A person or a department line that matches what the agent typed ("Frau Müller
    Bürgerbüro", "Ansprechpartner Bauamt", a direct number), best first."""

    kind: HitKind
    score: float
    person: Person | None
    department: DepartmentLine | None
    matched: list[str]  # which words (or the number) matched, for the agent's screen


# --- presence changes, private numbers, group membership (decision 037) ----------------------


class PresenceCause(StrEnum):
    """What changed a person's presence."""

    SWITCH = "switch"  # their own switch
    ABSENCE = "absence"  # their absence calendar
    PHONE = "phone"  # a telephone system's event
    EXPIRED = "expired"  # a telephone event or an own switch ran out (announced by the worker)


class PresenceChange(Schema, frozen=True):
    """A person's new presence, pushed to agents' clients on every instance."""

    tenant_id: UUID
    person_id: UUID
    person_name: str
    presence: Presence
    speakable: str  # German: "Frau Müller ist bis 14 Uhr in einer Besprechung."
    cause: PresenceCause


class PrivateNumber(Schema, frozen=True):
    """A person's private number (E.164); every read is audited."""

    person_id: UUID
    number: str | None


class PrivateNumberInput(Input, frozen=True):
    number: PhoneText | None = None  # any German format; null removes it


class PrivateNumberRead(Schema, frozen=True):
    """Who read a private number, when, and through which route."""

    id: UUID
    person_id: UUID
    actor_subject: str
    actor_issuer: str
    actor_tenant_id: UUID
    via: str
    at: datetime


class PrivateNumberReadPage(Schema, frozen=True):
    items: list[PrivateNumberRead]
    next_cursor: str | None


GroupName = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
ClaimPath = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="e.g. groups, realm_access.groups")]


class DepartmentGroup(Schema, frozen=True):
    """A group of the town's identity provider whose members work in a department."""

    group_name: str
    department_id: UUID
    department_name: str


class DepartmentGroupInput(Input, frozen=True):
    group_name: GroupName  # a value of the claim; starting with "/": a group path, its subgroups too
    department_id: UUID


class GroupMembership(Schema, frozen=True):
    """Which token claim carries the town's groups, and which group means which department."""

    claim: str | None
    groups: list[DepartmentGroup]


class GroupMembershipInput(Input, frozen=True):
    claim: ClaimPath | None = None  # null: membership from the directory only
    groups: Annotated[list[DepartmentGroupInput], msgspec.Meta(max_length=200)] = []


class DirectoryEntry(Schema, frozen=True):
    """A person or an office next to the knowledge search's articles (decision 038): who, their
    function and department, the number to put the caller through to, and whether they can be
    reached now (a person's presence; a department line: open now)."""

    kind: HitKind
    person_id: UUID | None
    name: str  # "Frau Anna Müller", or the department's name
    function: str | None
    department_id: UUID | None
    department_name: str | None
    number: str | None  # E.164
    reachable_now: bool
    reason: str  # why (not) reachable: "away until 14:00", "outside the department's hours"
    matched: list[str]
    # A department: when its line is open (its own hours, else the town's service hours), for
    # "wann hat das Bürgerbüro auf"; None for a person.
    hours: list[ServiceInterval] | None = None


# --- a message taken from the decision (decision 038) ---------------------------------------


class MessageInput(Input, frozen=True):
    """Take a message from the forwarding decision's "take a message" option: the decision's
    question as asked (town, service, surname, area) and its moment `at` (the decision's `at`,
    whose callback deadline was announced to the citizen), and the ticket's content."""

    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=63, description="the town, by its slug")]
    at: datetime
    subject: TicketSubject
    concern: Concern
    citizen: Citizen
    leika_key: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,14}$")] | None = None
    surname: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    area: Area | None = None
    article_id: UUID | None = None
    call_id: UUID | None = None
    priority: Priority = Priority.NORMAL
