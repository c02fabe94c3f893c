"""GraphQL for agents and department staff: tickets, their workflow, and live changes. Thin.

The citizen's data (`personalData`), internal comments and callback notes are fields of their
own: asking for them writes one audit row per ticket read, in the same transaction as the read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.dataloader import DataLoader

from backend.api.context import GraphQLContext, Info
from backend.api.mapping import PageInfoGQL, mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import (
    USE_TENANT,
    DeprecatedTenantArgument,
    TenantArgument,
    optional_tenant,
    required_tenant,
)
from backend.errors import NotFound
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tickets import personal, pubsub, schemas, service

VIA = "graphql"

strawberry.enum(schemas.TicketStatus, name="TicketStatus")
strawberry.enum(schemas.Priority, name="TicketPriority")
strawberry.enum(schemas.Channel, name="ContactChannel", description="How the citizen wants the answer")
strawberry.enum(schemas.CallbackChannel, name="CallbackChannel")
strawberry.enum(schemas.Source, name="TicketSource")
strawberry.enum(schemas.DeadlineRule, name="DeadlineRule")
strawberry.enum(schemas.SlaState, name="SlaState")
strawberry.enum(schemas.EventKind, name="TicketEventKind")
strawberry.enum(schemas.ActorKind, name="ActorKind")


@mirrors(schemas.PersonalData)
@strawberry.type(name="TicketPersonalData", description="The citizen's concern and contact (personal data)")
class PersonalDataGQL:
    concern: str
    name: str | None
    callback_number: str | None
    email: str | None
    preferred_channel: schemas.Channel
    consent: bool
    consent_at: datetime | None


@mirrors(schemas.Comment, exclude=("ticket_id",))
@strawberry.type(name="TicketComment", description="Internal comment (may hold personal data)")
class CommentGQL:
    id: UUID
    body: str | None = strawberry.field(description="null once erased after retention")
    author_subject: str
    author_tenant_id: UUID
    created_at: datetime


@mirrors(schemas.CallbackAttempt, exclude=("ticket_id", "created_at"))
@strawberry.type(name="CallbackAttempt")
class CallbackAttemptGQL:
    id: UUID
    channel: schemas.CallbackChannel
    attempted_at: datetime
    reached: bool
    note: str | None
    recorded_by: str


@mirrors(schemas.TicketEvent, exclude=("ticket_id",))
@strawberry.type(name="TicketEvent", description="What happened to a ticket: who (pseudonymous id) and when")
class TicketEventGQL:
    id: UUID
    change_seq: int
    kind: schemas.EventKind
    from_status: schemas.TicketStatus | None
    to_status: schemas.TicketStatus | None
    actor_kind: schemas.ActorKind
    actor_subject: str | None
    actor_tenant_id: UUID | None
    details: strawberry.scalars.JSON
    at: datetime


def _personal_loader(ctx: GraphQLContext) -> DataLoader[UUID, PersonalDataGQL | None]:
    async def load(ticket_ids: list[UUID]) -> list[PersonalDataGQL | None]:
        async with ctx.uow(readonly=False) as uow:  # the audit rows are written with the read
            found = await personal.personal_data(uow, ticket_ids, VIA)
        return [shown(PersonalDataGQL, p) if (p := found.get(t)) else None for t in ticket_ids]

    return DataLoader(load_fn=load)


def _comments_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[CommentGQL]]:
    async def load(ticket_ids: list[UUID]) -> list[list[CommentGQL]]:
        async with ctx.uow(readonly=False) as uow:
            grouped = await personal.comments(uow, ticket_ids, VIA)
        return [[shown(CommentGQL, c) for c in grouped.get(t, [])] for t in ticket_ids]

    return DataLoader(load_fn=load)


def _attempts_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[CallbackAttemptGQL]]:
    async def load(ticket_ids: list[UUID]) -> list[list[CallbackAttemptGQL]]:
        async with ctx.uow(readonly=False) as uow:
            grouped = await personal.callback_attempts(uow, ticket_ids, VIA, with_notes=True)
        return [[shown(CallbackAttemptGQL, a) for a in grouped.get(t, [])] for t in ticket_ids]

    return DataLoader(load_fn=load)


def _events_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[TicketEventGQL]]:
    async def load(ticket_ids: list[UUID]) -> list[list[TicketEventGQL] | BaseException]:
        async with ctx.uow() as uow:
            grouped = await service.events_by_ticket(uow, ticket_ids)
        return [
            [shown(TicketEventGQL, e) for e in grouped[t]] if t in grouped else NotFound(_l("ticket not found"))
            for t in ticket_ids
        ]

    return DataLoader(load_fn=load)


@mirrors(schemas.Ticket)
@strawberry.type(name="Ticket", description="Anliegen / Rückrufbitte forwarded to a town's department")
class TicketGQL:
    id: UUID
    tenant_id: UUID
    number: int
    department_id: UUID
    department_name: str
    status: schemas.TicketStatus
    priority: schemas.Priority
    subject: str
    leika_key: str | None
    article_id: UUID | None
    call_id: UUID | None
    source: schemas.Source
    assignee: str | None = strawberry.field(description="the name shown; use assigneePersonId for who it is")
    assignee_person_id: UUID | None = strawberry.field(description="the person of the town's directory")
    created_at: datetime
    updated_at: datetime
    deadline_started_at: datetime
    due_at: datetime
    deadline_rule: schemas.DeadlineRule
    calendar_version: str
    answered_at: datetime | None
    closed_at: datetime | None
    personal_data_erased_at: datetime | None
    sla_state: schemas.SlaState
    change_seq: int
    version: int

    @strawberry.field(description="The citizen's concern and contact; reading it is recorded in the audit log")
    async def personal_data(self, info: Info) -> PersonalDataGQL | None:
        result: PersonalDataGQL | None = await info.context.loader("ticket_personal", _personal_loader).load(self.id)
        return result

    @strawberry.field(description="Internal comments; reading them is recorded in the audit log")
    async def comments(self, info: Info) -> list[CommentGQL]:
        result: list[CommentGQL] = await info.context.loader("ticket_comments", _comments_loader).load(self.id)
        return result

    @strawberry.field(description="Callback attempts with notes; reading notes is recorded in the audit log")
    async def callback_attempts(self, info: Info) -> list[CallbackAttemptGQL]:
        result: list[CallbackAttemptGQL] = await info.context.loader("ticket_attempts", _attempts_loader).load(self.id)
        return result

    @strawberry.field(description="History: every transition and change with who and when")
    async def events(self, info: Info) -> list[TicketEventGQL]:
        result: list[TicketEventGQL] = await info.context.loader("ticket_events", _events_loader).load(self.id)
        return result


@strawberry.type(name="TicketConnection")
class TicketConnectionGQL:
    nodes: list[TicketGQL]
    page_info: PageInfoGQL


@mirrors(schemas.TicketRoute, exclude=("tenant_id", "id"))
@strawberry.type(name="TicketRoute", description="LeiKa key or key prefix → department (no prefix: default)")
class TicketRouteGQL:
    key_prefix: str | None
    department_id: UUID
    department_name: str


@mirrors(schemas.TicketSettings)
@strawberry.type(name="TicketSettings")
class TicketSettingsGQL:
    tenant_id: UUID
    deadline_rule: schemas.DeadlineRule
    retention_days: int
    due_soon_minutes: int
    version: int


@mirrors(schemas.TicketChange)
@strawberry.type(name="TicketChange", description="A ticket changed: ids and status only, fetch the ticket for more")
class TicketChangeGQL:
    tenant_id: UUID
    ticket_id: UUID
    number: int
    kind: schemas.EventKind
    status: schemas.TicketStatus
    change_seq: int
    at: datetime


@strawberry.input(name="CitizenInput")
class CitizenInput:
    consent: bool
    preferred_channel: schemas.Channel = schemas.Channel.PHONE
    name: str | None = None
    callback_number: str | None = None
    email: str | None = None


@strawberry.input(name="CreateTicketInput")
class CreateTicketInput:
    tenant: str | None = strawberry.field(default=None, description="The town, by its slug (required)")
    tenant_slug: str | None = strawberry.field(default=None, deprecation_reason=USE_TENANT)
    subject: str
    concern: str
    citizen: CitizenInput
    department_id: UUID | None = strawberry.field(default=None, description="null: proposed by the routing table")
    leika_key: str | None = None
    article_id: UUID | None = None
    call_id: UUID | None = None
    priority: schemas.Priority = schemas.Priority.NORMAL
    forward: bool = True


@strawberry.input(name="CallbackAttemptInput")
class CallbackAttemptInputGQL:
    channel: schemas.CallbackChannel
    reached: bool
    attempted_at: datetime | None = None
    note: str | None = None
    mark_answered: bool = False


@strawberry.input(name="TicketSettingsInput", description="Only the fields given change")
class TicketSettingsInputGQL:
    deadline_rule: schemas.DeadlineRule | None = None
    retention_days: int | None = None
    due_soon_minutes: int | None = None
    version: int | None = None


@strawberry.input(name="TicketRouteInput")
class TicketRouteInputGQL:
    key_prefix: str
    department_id: UUID


@strawberry.input(name="TicketRoutesInput")
class TicketRoutesInputGQL:
    routes: list[TicketRouteInputGQL]
    default_department_id: UUID | None = None


@strawberry.type(name="TicketPayload")
class TicketPayload:
    ticket: TicketGQL | None
    errors: list[UserError]


@strawberry.type(name="TicketCommentPayload")
class CommentPayload:
    comment: CommentGQL | None
    errors: list[UserError]


@strawberry.type(name="CallbackAttemptPayload")
class CallbackAttemptPayload:
    callback_attempt: CallbackAttemptGQL | None
    errors: list[UserError]


@strawberry.type(name="TicketSettingsPayload")
class TicketSettingsPayload:
    settings: TicketSettingsGQL | None
    errors: list[UserError]


@strawberry.type(name="TicketRoutesPayload")
class TicketRoutesPayload:
    routes: list[TicketRouteGQL] | None
    errors: list[UserError]


@strawberry.type
class TicketQuery:
    @strawberry.field(description="Tickets I may see, the most urgent first (at most 100 per page)")
    async def tickets(
        self,
        info: Info,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
        status: schemas.TicketStatus | None = None,
        sla_state: schemas.SlaState | None = None,
        department_id: UUID | None = None,
        assignee: str | None = None,
        first: int = 50,
        after: str | None = None,
        all_departments: Annotated[
            bool, strawberry.argument(description="department staff see their own department's tickets unless true")
        ] = False,
    ) -> TicketConnectionGQL:
        async with info.context.uow() as uow:
            page = await service.list_tickets(
                uow,
                tenant_slug=optional_tenant(tenant, tenant_slug),
                status=status,
                sla_state=sla_state,
                department_id=department_id,
                assignee=assignee,
                all_departments=all_departments,
                first=first,
                after=after,
            )
        return TicketConnectionGQL(
            nodes=shown_all(TicketGQL, page.items),
            page_info=PageInfoGQL.after(page.next_cursor),
        )

    @strawberry.field(description="One ticket; null when it does not exist or is not visible")
    async def ticket(self, info: Info, id: UUID) -> TicketGQL | None:
        async with info.context.uow() as uow:
            found = await service.tickets_by_ids(uow, [id])
        return shown(TicketGQL, found[id]) if id in found else None

    @strawberry.field(description="A town's responsibility table (LeiKa key or group → department)")
    async def ticket_routes(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> list[TicketRouteGQL]:
        slug = required_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown_all(TicketRouteGQL, await service.routes(uow, slug))

    @strawberry.field(description="The department the routing table proposes for a LeiKa key")
    async def proposed_department_id(
        self,
        info: Info,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
        leika_key: str | None = None,
    ) -> UUID | None:
        slug = required_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return await service.propose_department(uow, slug, leika_key)

    @strawberry.field(description="A town's ticket settings (town admin)")
    async def ticket_settings(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> TicketSettingsGQL:
        slug = required_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown(TicketSettingsGQL, await service.settings(uow, slug))


@strawberry.type
class TicketMutation:
    @strawberry.mutation(description="Create a ticket for a town; forwarded to the department unless forward=false")
    async def create_ticket(self, info: Info, input: CreateTicketInput) -> TicketPayload:
        def data() -> schemas.TicketCreate:
            slug = required_tenant(input.tenant, input.tenant_slug)
            return to_input(schemas.TicketCreate, _Values(**{**vars(input), "tenant_slug": slug}))

        return await mutate(info, TicketPayload, "ticket", lambda uow: service.create_ticket(uow, data()))

    @strawberry.mutation(description="Move a ticket on: forwarded → in_progress → answered → closed, or reopen")
    async def change_ticket_status(
        self,
        info: Info,
        id: UUID,
        status: schemas.TicketStatus,
        version: int | None = None,
    ) -> TicketPayload:
        data = schemas.StatusChange(status=status, version=version)
        return await mutate(info, TicketPayload, "ticket", lambda uow: service.change_status(uow, id, data))

    @strawberry.mutation(
        description="Assign a ticket to a person of the town's directory (personId, or their name or userName "
        "as assignee; unknown ones are refused), or to nobody with both null"
    )
    async def assign_ticket(
        self,
        info: Info,
        id: UUID,
        assignee: str | None = None,
        version: int | None = None,
        person_id: UUID | None = None,
    ) -> TicketPayload:
        values = _Values(assignee=assignee, person_id=person_id, version=version)
        return await mutate(
            info,
            TicketPayload,
            "ticket",
            lambda uow: service.assign(uow, id, to_input(schemas.AssignmentInput, values)),
        )

    @strawberry.mutation(description="Hand an open ticket to another department of the town")
    async def change_ticket_department(
        self, info: Info, id: UUID, department_id: UUID, version: int | None = None
    ) -> TicketPayload:
        data = schemas.DepartmentChange(department_id=department_id, version=version)
        return await mutate(info, TicketPayload, "ticket", lambda uow: service.change_department(uow, id, data))

    @strawberry.mutation(description="Add an internal comment")
    async def add_ticket_comment(self, info: Info, id: UUID, body: str) -> CommentPayload:
        return await mutate(
            info,
            CommentPayload,
            "comment",
            lambda uow: service.add_comment(uow, id, to_input(schemas.CommentInput, _Values(body=body))),
        )

    @strawberry.mutation(description="Record a callback attempt; markAnswered also answers the ticket")
    async def record_callback_attempt(
        self, info: Info, id: UUID, input: CallbackAttemptInputGQL
    ) -> CallbackAttemptPayload:
        return await mutate(
            info,
            CallbackAttemptPayload,
            "callback_attempt",
            lambda uow: service.record_callback(uow, id, to_input(schemas.CallbackAttemptInput, input)),
        )

    @strawberry.mutation(description="Change a town's ticket settings: deadline rule, retention, due-soon window")
    async def update_ticket_settings(
        self,
        info: Info,
        input: TicketSettingsInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> TicketSettingsPayload:
        return await mutate(
            info,
            TicketSettingsPayload,
            "settings",
            lambda uow: service.update_settings(
                uow, required_tenant(tenant, tenant_slug), to_input(schemas.TicketSettingsInput, input)
            ),
        )

    @strawberry.mutation(description="Replace a town's responsibility table")
    async def set_ticket_routes(
        self,
        info: Info,
        input: TicketRoutesInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> TicketRoutesPayload:
        async def replace(uow: UnitOfWork) -> list[schemas.TicketRoute]:
            slug = required_tenant(tenant, tenant_slug)
            data = to_input(schemas.TicketRoutesInput, input)
            entries = [(r.key_prefix, r.department_id) for r in data.routes]
            return await service.replace_routes(uow, slug, data.default_department_id, entries)

        return await mutate(info, TicketRoutesPayload, "routes", replace)


class _Values:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@strawberry.type
class TicketSubscription:
    @strawberry.subscription(description="Ticket changes of the towns I work for (or of one town), as they commit")
    async def ticket_changes(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> AsyncGenerator[TicketChangeGQL, None]:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            tenant_ids = await service.subscription_tenants(uow, slug)
        async for change in pubsub.listen(info.context.app.redis, tenant_ids):
            await info.context.still_signed_in()
            yield shown(TicketChangeGQL, change)
