"""GraphQL for the directory and the forwarding decision (agents, supervisors, the town's own
people). Thin: the types mirror their Structs, mutations go through `mutate`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from uuid import UUID

import strawberry

from backend import generations
from backend.api.context import Info
from backend.api.mapping import mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import TenantArgument
from backend.directory import importing, membership, messages, presence_feed, schemas, search, service, staff_data
from backend.state import UnitOfWork
from backend.telephony.schemas import Absences, DatedAbsence, DatedAbsenceInput, WeeklyAbsence, WeeklyAbsenceInput
from backend.tenants.gql import ServiceIntervalGQL
from backend.tickets.gql import CitizenInput, TicketPayload
from backend.tickets.schemas import Priority

strawberry.enum(schemas.Salutation, name="Salutation")
strawberry.enum(schemas.SwitchState, name="PresenceSwitchState")
strawberry.enum(schemas.PresenceSource, name="PresenceSource")
strawberry.enum(schemas.OptionKind, name="ForwardingOptionKind")
strawberry.enum(schemas.PresenceCause, name="PresenceCause")


@mirrors(schemas.Person)
@strawberry.type(name="DirectoryPerson", description="A contact person of a town (Ansprechpartner/in)")
class PersonGQL:
    tenant_id: UUID
    id: UUID
    salutation: schemas.Salutation
    given_name: str
    family_name: str
    function: str
    department_id: UUID | None
    phone: str | None = strawberry.field(description="direct number (E.164)")
    email: str | None
    room: str
    languages: list[str]
    user_name: str | None
    external_id: str | None
    subject: str | None
    active: bool
    substitute_ids: list[UUID] = strawberry.field(description="substitutes (Vertretung), in order")
    version: int


@mirrors(schemas.Responsibility)
@strawberry.type(name="Responsibility", description="What a person is responsible for (Zuständigkeit)")
class ResponsibilityGQL:
    tenant_id: UUID
    id: UUID
    person_id: UUID
    leika_key: str | None
    topic: str | None
    surname_from: str | None
    surname_to: str | None
    area: str | None


@mirrors(schemas.DepartmentLine)
@strawberry.type(name="DepartmentLine", description="A department's general line and its hours")
class DepartmentLineGQL:
    tenant_id: UUID
    department_id: UUID
    name: str
    phone: str | None
    hours: list[ServiceIntervalGQL] | None = strawberry.field(description="null: the town's service hours")


@mirrors(schemas.Presence)
@strawberry.type(name="Presence", description="Whether a person is reachable, and which source says so")
class PresenceGQL:
    person_id: UUID
    reachable: bool
    source: schemas.PresenceSource
    state: str
    until: datetime | None
    reason: str
    at: datetime


@mirrors(WeeklyAbsence)
@strawberry.type(name="PersonWeeklyAbsence")
class WeeklyAbsenceGQL:
    tenant_id: UUID
    id: UUID
    weekday: int
    starts: str
    ends: str
    note: str


@mirrors(DatedAbsence)
@strawberry.type(name="PersonDatedAbsence")
class DatedAbsenceGQL:
    tenant_id: UUID
    id: UUID
    starts_at: datetime
    ends_at: datetime
    note: str


@mirrors(Absences)
@strawberry.type(name="PersonAbsences", description="A person's absence calendar")
class AbsencesGQL:
    weekly: list[WeeklyAbsenceGQL]
    dated: list[DatedAbsenceGQL]


@mirrors(schemas.PresenceChange)
@strawberry.type(name="PresenceChange", description="A person's new presence, pushed on any instance")
class PresenceChangeGQL:
    tenant_id: UUID
    person_id: UUID
    person_name: str
    presence: PresenceGQL
    speakable: str = strawberry.field(description="German, for screen readers and braille displays")
    cause: schemas.PresenceCause


@mirrors(schemas.PrivateNumber)
@strawberry.type(name="PrivateNumber", description="A person's private number; every read is audited")
class PrivateNumberGQL:
    person_id: UUID
    number: str | None = strawberry.field(description="E.164")


@mirrors(schemas.PrivateNumberRead)
@strawberry.type(name="PrivateNumberRead", description="Who read a private number, when, through which route")
class PrivateNumberReadGQL:
    id: UUID
    person_id: UUID
    actor_subject: str
    actor_issuer: str
    actor_tenant_id: UUID
    via: str
    at: datetime


@mirrors(schemas.PrivateNumberReadPage)
@strawberry.type(name="PrivateNumberReadPage")
class PrivateNumberReadPageGQL:
    items: list[PrivateNumberReadGQL]
    next_cursor: str | None


@mirrors(schemas.DepartmentGroup)
@strawberry.type(name="DepartmentGroup", description="A group of the town's identity provider that is a department")
class DepartmentGroupGQL:
    group_name: str
    department_id: UUID
    department_name: str


@mirrors(schemas.GroupMembership)
@strawberry.type(
    name="GroupMembership",
    description="Which token claim carries the town's groups, and which group is which department",
)
class GroupMembershipGQL:
    claim: str | None
    groups: list[DepartmentGroupGQL]


@mirrors(schemas.ForwardingOption)
@strawberry.type(name="ForwardingOption")
class ForwardingOptionGQL:
    rank: int
    kind: schemas.OptionKind
    available: bool = strawberry.field(description="false: shown so the agent knows who is away, and why")
    person_id: UUID | None
    person_name: str | None
    department_id: UUID | None
    department_name: str | None
    number: str | None = strawberry.field(description="E.164 number to transfer to")
    reason: str
    speakable: str = strawberry.field(description="German, for screen readers and braille displays")
    callback_due_at: datetime | None


@mirrors(schemas.ForwardingDecision)
@strawberry.type(name="ForwardingDecision", description="Who to put the caller through to, in order")
class ForwardingDecisionGQL:
    tenant_id: UUID
    at: datetime
    leika_key: str | None
    surname: str | None
    options: list[ForwardingOptionGQL]
    speakable: str


@strawberry.input(name="DirectoryPersonInput")
class PersonInputGQL:
    family_name: str
    given_name: str = ""
    salutation: schemas.Salutation = schemas.Salutation.NONE
    function: str = ""
    department_id: UUID | None = None
    phone: str | None = None
    email: str | None = None
    room: str = ""
    languages: list[str] = strawberry.field(default_factory=list)
    user_name: str | None = None
    external_id: str | None = None
    subject: str | None = None
    active: bool = True
    substitute_ids: list[UUID] = strawberry.field(default_factory=list)
    version: int | None = None


@strawberry.input(name="ResponsibilityInput")
class ResponsibilityInputGQL:
    person_id: UUID
    leika_key: str | None = None
    topic: str | None = None
    surname_from: str | None = None
    surname_to: str | None = None
    area: str | None = None


@strawberry.input(name="DepartmentLineServiceInterval")
class IntervalInputGQL:
    weekday: int
    opens: str
    closes: str


@strawberry.input(name="DepartmentLineInput")
class DepartmentLineInputGQL:
    phone: str | None = None
    hours: list[IntervalInputGQL] | None = None


@strawberry.input(name="PresenceSwitchInput")
class PresenceSwitchInputGQL:
    state: schemas.SwitchState
    until: datetime | None = None


@strawberry.input(name="PrivateNumberInput")
class PrivateNumberInputGQL:
    number: str | None = strawberry.field(default=None, description="any German format; null removes it")


@strawberry.input(name="DepartmentGroupInput")
class DepartmentGroupInputGQL:
    group_name: str = strawberry.field(description='a value of the claim; starting with "/": its subgroups too')
    department_id: UUID


@strawberry.input(name="GroupMembershipInput")
class GroupMembershipInputGQL:
    claim: str | None = strawberry.field(default=None, description="null: membership from the directory only")
    groups: list[DepartmentGroupInputGQL] = strawberry.field(default_factory=list)


@strawberry.type(name="PrivateNumberPayload")
class PrivateNumberPayload:
    private_number: PrivateNumberGQL | None
    errors: list[UserError]


@strawberry.type(name="GroupMembershipPayload")
class GroupMembershipPayload:
    group_membership: GroupMembershipGQL | None
    errors: list[UserError]


@strawberry.input(name="PersonWeeklyAbsenceInput")
class WeeklyAbsenceInputGQL:
    weekday: int
    starts: str
    ends: str
    note: str = ""


@strawberry.input(name="PersonDatedAbsenceInput")
class DatedAbsenceInputGQL:
    starts_at: datetime
    ends_at: datetime
    note: str = ""


@strawberry.type(name="DirectoryPersonPayload")
class PersonPayload:
    person: PersonGQL | None
    errors: list[UserError]


@strawberry.type(name="ResponsibilityPayload")
class ResponsibilityPayload:
    responsibility: ResponsibilityGQL | None
    errors: list[UserError]


@strawberry.type(name="DepartmentLinePayload")
class DepartmentLinePayload:
    department_line: DepartmentLineGQL | None
    errors: list[UserError]


@strawberry.type(name="PresencePayload")
class PresencePayload:
    presence: PresenceGQL | None
    errors: list[UserError]


@strawberry.type(name="PersonAbsencesPayload")
class AbsencesPayload:
    absences: AbsencesGQL | None
    errors: list[UserError]


@mirrors(schemas.DirectoryImportProblem)
@strawberry.type(name="DirectoryImportProblem", description="A line that did not go in, and why")
class ImportProblemGQL:
    line: int = strawberry.field(description="line number in the file (the header is line 1)")
    field: str | None = strawberry.field(description="the column")
    message: str
    external_id: str | None


@mirrors(schemas.DirectoryImportReport)
@strawberry.type(name="DirectoryImportReport", description="What a CSV import of a town's people did")
class ImportReportGQL:
    created: int
    updated: int
    unchanged: int
    deprovisioned: int
    problems: list[ImportProblemGQL]


strawberry.enum(schemas.HitKind, name="DirectoryHitKind")


@mirrors(schemas.DirectoryHit)
@strawberry.type(name="DirectoryHit", description="A person or a department line that matches, best first")
class DirectoryHitGQL:
    kind: schemas.HitKind
    score: float
    person: PersonGQL | None
    department: DepartmentLineGQL | None
    matched: list[str]


@mirrors(schemas.DirectoryEntry)
@strawberry.type(
    name="DirectoryEntry",
    description="A person or an office of the town's directory that a knowledge question names, next to the articles",
)
class DirectoryEntryGQL:
    kind: schemas.HitKind
    person_id: UUID | None
    name: str = strawberry.field(description='"Frau Anna Müller", or the department\'s name')
    function: str | None
    department_id: UUID | None
    department_name: str | None
    number: str | None = strawberry.field(description="E.164: the number to put the caller through to")
    reachable_now: bool = strawberry.field(
        description="A person: present and with a direct number now; a department: its line is open now"
    )
    reason: str = strawberry.field(description='Why (not): "away until 14:00", "outside the department\'s hours"')
    matched: list[str]
    hours: list[ServiceIntervalGQL] | None = strawberry.field(
        description="A department: when its line is open (its own hours, else the town's service hours); "
        "null for a person"
    )


@strawberry.type(name="DirectoryImportPayload")
class ImportPayload:
    report: ImportReportGQL | None
    errors: list[UserError]


@strawberry.type(name="DirectoryRemovalPayload")
class RemovalPayload:
    removed_id: UUID | None
    errors: list[UserError]


@strawberry.input(
    name="TakeMessageInput",
    description="The forwarding decision's question as asked (tenant, leikaKey, surname, area) and its `at`, "
    "whose callback deadline was announced to the citizen; and the ticket's content",
)
class TakeMessageInputGQL:
    tenant: str
    at: datetime
    subject: str
    concern: str
    citizen: CitizenInput
    leika_key: str | None = None
    surname: str | None = None
    area: str | None = None
    article_id: UUID | None = None
    call_id: UUID | None = None
    priority: Priority = Priority.NORMAL


@strawberry.type
class DirectoryQuery:
    @strawberry.field(description="A town's contact persons")
    async def directory_people(self, info: Info, tenant: str) -> list[PersonGQL]:
        async with info.context.uow() as uow:
            return shown_all(PersonGQL, await service.list_people(uow, tenant))

    @strawberry.field(
        description='Find people and offices of a town: "Frau Müller Bürgerbüro", "Ansprechpartner Bauamt", '
        "a direct number"
    )
    async def directory_search(self, info: Info, tenant: str, query: str, limit: int = 20) -> list[DirectoryHitGQL]:
        async with info.context.uow() as uow:
            return shown_all(DirectoryHitGQL, await search.search_directory(uow, tenant, query, limit))

    @strawberry.field(description="One contact person")
    async def directory_person(self, info: Info, tenant: str, id: UUID) -> PersonGQL:
        async with info.context.uow() as uow:
            return shown(PersonGQL, await service.person(uow, tenant, id))

    @strawberry.field(description="Who is responsible for which service or topic")
    async def responsibilities(self, info: Info, tenant: str, person_id: UUID | None = None) -> list[ResponsibilityGQL]:
        async with info.context.uow() as uow:
            return shown_all(ResponsibilityGQL, await service.responsibilities(uow, tenant, person_id))

    @strawberry.field(description="The departments' general lines and hours")
    async def department_lines(self, info: Info, tenant: str) -> list[DepartmentLineGQL]:
        async with info.context.uow() as uow:
            return shown_all(DepartmentLineGQL, await service.department_lines(uow, tenant))

    @strawberry.field(description="Whether a person is reachable (now, or at a moment)")
    async def person_presence(self, info: Info, tenant: str, id: UUID, at: datetime | None = None) -> PresenceGQL:
        async with info.context.uow() as uow:
            return shown(PresenceGQL, await service.presence(uow, tenant, id, at))

    @strawberry.field(description="A person's absence calendar")
    async def person_absences(self, info: Info, tenant: str, id: UUID) -> AbsencesGQL:
        async with info.context.uow() as uow:
            return shown(AbsencesGQL, await service.absences(uow, tenant, id))

    @strawberry.field(description="A person's private number (the read is audited: who, when, which person)")
    async def directory_private_number(self, info: Info, tenant: str, id: UUID) -> PrivateNumberGQL:
        async with info.context.uow(readonly=False) as uow:  # writes the audit row
            return shown(
                PrivateNumberGQL, await staff_data.private_number(uow, tenant, id, "GraphQL directoryPrivateNumber")
            )

    @strawberry.field(description="Who read which private number, when and how (town admin), oldest first")
    async def private_number_reads(
        self, info: Info, tenant: str, person_id: UUID | None = None, first: int = 50, after: str | None = None
    ) -> PrivateNumberReadPageGQL:
        async with info.context.uow() as uow:
            page = await staff_data.private_number_reads(uow, tenant, person_id, first, after)
        return shown(PrivateNumberReadPageGQL, page)

    @strawberry.field(
        description="Which claim of the town's identity provider carries groups, and which is which department"
    )
    async def directory_group_membership(self, info: Info, tenant: str) -> GroupMembershipGQL:
        async with info.context.uow() as uow:
            return shown(GroupMembershipGQL, await membership.group_membership(uow, tenant))

    @strawberry.field(description="Who to put the caller through to (qualifizierte Vermittlung), in order")
    async def forwarding_decision(
        self,
        info: Info,
        tenant: str,
        leika_key: str | None = None,
        surname: str | None = None,
        at: datetime | None = None,
        area: str | None = None,
    ) -> ForwardingDecisionGQL:
        read = generations.of_request(info.context.request)
        principal = await info.context.principal()
        decision = await service.forwarding_decision(
            info.context.app, principal, tenant, leika_key, surname, at, area, read
        )
        return shown(ForwardingDecisionGQL, decision)


@strawberry.type
class DirectoryMutation:
    @strawberry.mutation(description="Add a contact person (town admin)")
    async def create_directory_person(self, info: Info, tenant: str, input: PersonInputGQL) -> PersonPayload:
        return await mutate(
            info,
            PersonPayload,
            "person",
            lambda uow: service.create_person(uow, tenant, to_input(schemas.PersonInput, input)),
        )

    @strawberry.mutation(description="Replace a contact person (town admin)")
    async def replace_directory_person(self, info: Info, tenant: str, id: UUID, input: PersonInputGQL) -> PersonPayload:
        return await mutate(
            info,
            PersonPayload,
            "person",
            lambda uow: service.replace_person(uow, tenant, id, to_input(schemas.PersonInput, input)),
        )

    @strawberry.mutation(description="Remove a contact person (town admin)")
    async def remove_directory_person(self, info: Info, tenant: str, id: UUID) -> RemovalPayload:
        async def remove(uow: UnitOfWork) -> UUID:
            await service.remove_person(uow, tenant, id)
            return id

        return await mutate(info, RemovalPayload, "removed_id", remove)

    @strawberry.mutation(
        description="Import the town's people and responsibilities from CSV (town admin): lines with problems "
        "are reported with their number and change nothing, the rest go in; with prune, imported people "
        "missing from the file are deprovisioned"
    )
    async def import_directory(self, info: Info, tenant: str, csv: str, prune: bool = False) -> ImportPayload:
        return await mutate(
            info, ImportPayload, "report", lambda uow: importing.import_people_csv(uow, tenant, csv, prune=prune)
        )

    @strawberry.mutation(description="Make a person responsible for a service or topic (town admin)")
    async def add_responsibility(self, info: Info, tenant: str, input: ResponsibilityInputGQL) -> ResponsibilityPayload:
        return await mutate(
            info,
            ResponsibilityPayload,
            "responsibility",
            lambda uow: service.add_responsibility(uow, tenant, to_input(schemas.ResponsibilityInput, input)),
        )

    @strawberry.mutation(description="Remove a responsibility (town admin)")
    async def remove_responsibility(self, info: Info, tenant: str, id: UUID) -> RemovalPayload:
        async def remove(uow: UnitOfWork) -> UUID:
            await service.remove_responsibility(uow, tenant, id)
            return id

        return await mutate(info, RemovalPayload, "removed_id", remove)

    @strawberry.mutation(description="Set a department's general line and hours (town admin)")
    async def set_department_line(
        self, info: Info, tenant: str, department_id: UUID, input: DepartmentLineInputGQL
    ) -> DepartmentLinePayload:
        return await mutate(
            info,
            DepartmentLinePayload,
            "department_line",
            lambda uow: service.set_department_line(
                uow, tenant, department_id, to_input(schemas.DepartmentLineInput, input)
            ),
        )

    @strawberry.mutation(description="Set my own presence switch (away / in a meeting / available, until a moment)")
    async def set_my_presence(self, info: Info, input: PresenceSwitchInputGQL) -> PresencePayload:
        return await mutate(
            info,
            PresencePayload,
            "presence",
            lambda uow: service.set_my_presence(uow, to_input(schemas.PresenceSwitchInput, input)),
        )

    @strawberry.mutation(description="Add a recurring weekly absence to a person's calendar (local time)")
    async def add_person_weekly_absence(
        self, info: Info, tenant: str, id: UUID, input: WeeklyAbsenceInputGQL
    ) -> AbsencesPayload:
        return await mutate(
            info,
            AbsencesPayload,
            "absences",
            lambda uow: service.add_absence(uow, tenant, id, to_input(WeeklyAbsenceInput, input)),
        )

    @strawberry.mutation(description="Add a dated absence to a person's calendar")
    async def add_person_dated_absence(
        self, info: Info, tenant: str, id: UUID, input: DatedAbsenceInputGQL
    ) -> AbsencesPayload:
        return await mutate(
            info,
            AbsencesPayload,
            "absences",
            lambda uow: service.add_absence(uow, tenant, id, to_input(DatedAbsenceInput, input)),
        )

    @strawberry.mutation(description="Remove one of a person's absences")
    async def remove_person_absence(self, info: Info, tenant: str, id: UUID, absence_id: UUID) -> RemovalPayload:
        async def remove(uow: UnitOfWork) -> UUID:
            await service.remove_absence(uow, tenant, id, absence_id)
            return absence_id

        return await mutate(info, RemovalPayload, "removed_id", remove)

    @strawberry.mutation(description="Set or (with null) remove a person's private number (town admin)")
    async def set_directory_private_number(
        self, info: Info, tenant: str, id: UUID, input: PrivateNumberInputGQL
    ) -> PrivateNumberPayload:
        return await mutate(
            info,
            PrivateNumberPayload,
            "private_number",
            lambda uow: staff_data.set_private_number(uow, tenant, id, to_input(schemas.PrivateNumberInput, input)),
        )

    @strawberry.mutation(
        description="Set the claim of the town's identity provider that carries groups, and which group is which "
        "department (town admin); replaces the whole"
    )
    async def set_directory_group_membership(
        self, info: Info, tenant: str, input: GroupMembershipInputGQL
    ) -> GroupMembershipPayload:
        return await mutate(
            info,
            GroupMembershipPayload,
            "group_membership",
            lambda uow: membership.set_group_membership(uow, tenant, to_input(schemas.GroupMembershipInput, input)),
        )

    @strawberry.mutation(
        description="Take a message from the forwarding decision: the ticket, assigned to the option's person "
        "(or the department's queue), with the callback deadline the option announced (agent)"
    )
    async def take_message(self, info: Info, input: TakeMessageInputGQL) -> TicketPayload:
        return await mutate(
            info,
            TicketPayload,
            "ticket",
            lambda uow: messages.take_message(uow, to_input(schemas.MessageInput, input)),
        )


@strawberry.type
class DirectorySubscription:
    @strawberry.subscription(
        description="Presence changes of the people of my towns (or of one), on any instance: own switch, absence "
        "calendar, telephone events and their expiry"
    )
    async def presence_changed(
        self, info: Info, tenant: TenantArgument = None
    ) -> AsyncGenerator[PresenceChangeGQL, None]:
        async with info.context.uow() as uow:
            tenant_ids = await service.presence_watch(uow, tenant)
        app = info.context.app
        async with contextlib.aclosing(presence_feed.changes(app, tenant_ids)) as changes:
            async for change in changes:
                await info.context.still_signed_in()
                yield shown(PresenceChangeGQL, change)
