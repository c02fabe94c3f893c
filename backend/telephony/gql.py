"""GraphQL for agents: the routing decision, service numbers, calls and their outcome, and the
screen pop subscription. Thin: everything goes through the service."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from types import SimpleNamespace
from typing import Annotated
from uuid import UUID

import strawberry

from backend import generations
from backend.api.context import Info
from backend.api.mapping import mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import DeprecatedTenantArgument, TenantArgument, optional_tenant, required_tenant
from backend.errors import NotFound
from backend.state import UnitOfWork
from backend.telephony import calls, events, schemas, service
from backend.telephony.numbers import spoken
from backend.tenants.gql import ServiceIntervalGQL

strawberry.enum(schemas.NumberKind, name="NumberKind")
strawberry.enum(schemas.Purpose, name="ServiceNumberPurpose")
strawberry.enum(schemas.RoutingWindow, name="RoutingWindow")
strawberry.enum(schemas.RoutingReason, name="RoutingReason")
strawberry.enum(schemas.ResolvedBy, name="ResolvedBy")
strawberry.enum(schemas.Outcome, name="CallOutcome")


@mirrors(schemas.TenantRef)
@strawberry.type(name="RoutingTenant")
class RoutingTenantGQL:
    id: UUID
    slug: str
    name: str


@mirrors(schemas.DepartmentRef)
@strawberry.type(name="RoutingDepartment")
class RoutingDepartmentGQL:
    id: UUID
    name: str
    phone: str | None
    email: str | None


@mirrors(schemas.Candidate)
@strawberry.type(name="RoutingCandidate", description="115: a town the caller's area code may stand for")
class RoutingCandidateGQL:
    tenant: RoutingTenantGQL
    municipality: str
    ags: str


@mirrors(schemas.ServiceNumber, exclude=("version",))
@strawberry.type(name="ServiceNumber", description="A dialled number or number block mapped to a tenant")
class ServiceNumberGQL:
    id: UUID
    tenant_id: UUID
    number: str
    kind: schemas.NumberKind
    purpose: schemas.Purpose
    department_id: UUID | None
    greeting: str | None
    routing_window: schemas.RoutingWindow
    valid_from: date
    valid_to: date | None
    answer_on_closing_days: bool = strawberry.field(
        description="Whether the centre answers this number on the town's own closing days (not public holidays)"
    )


@mirrors(schemas.MatchedNumber)
@strawberry.type(name="MatchedServiceNumber")
class MatchedNumberGQL:
    id: UUID
    number: str
    kind: schemas.NumberKind
    purpose: schemas.Purpose
    routing_window: schemas.RoutingWindow
    valid_from: date
    valid_to: date | None


@mirrors(schemas.RoutingDecision)
@strawberry.type(name="RoutingDecision", description="For whom a call is, and whether the centre takes it now")
class RoutingDecisionGQL:
    dialled: str
    at: datetime
    ours: bool
    resolved_by: schemas.ResolvedBy
    takes_call: bool
    reason: schemas.RoutingReason
    reason_detail: str | None
    service_number: MatchedNumberGQL | None
    tenant: RoutingTenantGQL | None
    candidates: list[RoutingCandidateGQL]
    greeting: str | None
    department: RoutingDepartmentGQL | None
    departments: list[RoutingDepartmentGQL]
    service_hours: list[ServiceIntervalGQL]


@mirrors(schemas.Call, exclude=("source_system", "service_number_id"))
@strawberry.type(name="Call", description="One call as the telephony system reported it, with its outcome")
class CallGQL:
    id: UUID
    tenant_id: UUID
    external_id: str
    dialled: str
    purpose: schemas.Purpose
    resolved_by: schemas.ResolvedBy
    caller: str | None
    queue: str | None
    offered_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    agent: str | None
    wait_seconds: int | None
    talk_seconds: int | None
    outcome: schemas.Outcome | None
    outcome_department_id: UUID | None
    ticket_id: UUID | None
    outcome_note: str | None
    outcome_person_id: UUID | None = strawberry.field(
        description="The directory person a transferred call went to (null: the department's line)"
    )
    transfer_taken: bool | None = strawberry.field(
        description="Whether the transfer was taken; only a taken transfer is settled by qualified transfer"
    )

    @strawberry.field(description="The caller's number written to be read aloud (screen readers, braille)")
    def caller_spoken(self) -> str | None:
        return spoken(self.caller)


@strawberry.type(name="CallPageInfo")
class CallPageInfoGQL:
    end_cursor: str | None
    has_next_page: bool


@strawberry.type(name="CallConnection")
class CallConnectionGQL:
    nodes: list[CallGQL]
    page_info: CallPageInfoGQL


@strawberry.type(name="ScreenPop", description="A call event for the agent's screen")
class ScreenPopGQL:
    kind: str
    call: CallGQL
    tenant: RoutingTenantGQL | None
    dialled_spoken: str | None
    caller_spoken: str | None
    greeting: str | None
    reason: schemas.RoutingReason | None


@strawberry.input(name="CallOutcomeInput")
class CallOutcomeInputGQL:
    outcome: schemas.Outcome
    department_id: UUID | None = None
    note: str | None = None
    person_id: UUID | None = strawberry.field(
        default=None, description="TRANSFERRED_TO_DEPARTMENT: the directory person (the option's personId)"
    )
    transfer_taken: bool | None = strawberry.field(
        default=None, description="TRANSFERRED_TO_DEPARTMENT: whether the person or line took the call"
    )


@strawberry.input(name="CreateServiceNumberInput")
class CreateServiceNumberInput:
    tenant_id: UUID
    number: str
    valid_from: date
    kind: schemas.NumberKind = schemas.NumberKind.NUMBER
    purpose: schemas.Purpose = schemas.Purpose.CENTRAL
    routing_window: schemas.RoutingWindow = schemas.RoutingWindow.SERVICE_HOURS
    department_id: UUID | None = None
    greeting: str | None = None
    valid_to: date | None = None
    answer_on_closing_days: bool = False


@strawberry.input(name="MoveServiceNumberInput")
class MoveServiceNumberInput:
    to_tenant_id: UUID
    on: date
    routing_window: schemas.RoutingWindow | None = None
    department_id: UUID | None = None


@strawberry.type(name="CallPayload")
class CallPayload:
    call: CallGQL | None
    errors: list[UserError]


@strawberry.type(name="ServiceNumberPayload")
class ServiceNumberPayload:
    service_number: ServiceNumberGQL | None
    errors: list[UserError]


@strawberry.type(name="MoveServiceNumberPayload")
class MoveServiceNumberPayload:
    previous: ServiceNumberGQL | None
    current: ServiceNumberGQL | None
    errors: list[UserError]


@mirrors(schemas.TelephonySettings)
@strawberry.type(name="TelephonySettings", description="A tenant's telephony settings")
class TelephonySettingsGQL:
    tenant_id: UUID
    caller_retention_days: int = strawberry.field(description="Caller numbers are erased from older calls")


@strawberry.type(name="TelephonySettingsPayload")
class TelephonySettingsPayload:
    telephony_settings: TelephonySettingsGQL | None
    errors: list[UserError]


@strawberry.type
class TelephonyQuery:
    @strawberry.field(description="For whom is a call to `dialled` (from `caller`), and does the centre take it now?")
    async def routing_decision(
        self, info: Info, dialled: str, caller: str | None = None, at: datetime | None = None
    ) -> RoutingDecisionGQL:
        principal = await info.context.principal()
        read = generations.of_request(info.context.request)
        decision = await service.routing_decision(info.context.app, principal, dialled, caller, at, read)
        return shown(RoutingDecisionGQL, decision)

    @strawberry.field(description="Service numbers I may see (of one tenant, valid on a day)")
    async def service_numbers(
        self,
        info: Info,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
        on: date | None = None,
    ) -> list[ServiceNumberGQL]:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown_all(ServiceNumberGQL, await service.list_service_numbers(uow, slug, on))

    @strawberry.field(description="Calls I may see, oldest first (at most 100 per page)")
    async def calls(
        self,
        info: Info,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CallConnectionGQL:
        slug = optional_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            page = await calls.list_calls(uow, slug, since, until, first, after)
        return CallConnectionGQL(
            nodes=shown_all(CallGQL, page.items),
            page_info=CallPageInfoGQL(end_cursor=page.next_cursor, has_next_page=page.next_cursor is not None),
        )

    @strawberry.field(description="A tenant's telephony settings (town admin, platform admin)")
    async def telephony_settings(
        self, info: Info, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> TelephonySettingsGQL:
        slug = required_tenant(tenant, tenant_slug)
        async with info.context.uow() as uow:
            return shown(TelephonySettingsGQL, await service.telephony_settings(uow, slug))

    @strawberry.field(description="One call; null when it does not exist or is not visible")
    async def call(self, info: Info, id: UUID) -> CallGQL | None:
        async with info.context.uow() as uow:
            try:
                return shown(CallGQL, await calls.call(uow, id))
            except NotFound:
                return None


def _moved(moved: schemas.ServiceNumberMoved | None, errors: list[UserError]) -> MoveServiceNumberPayload:
    return MoveServiceNumberPayload(
        previous=shown(ServiceNumberGQL, moved.previous) if moved else None,
        current=shown(ServiceNumberGQL, moved.current) if moved else None,
        errors=errors,
    )


@strawberry.type
class TelephonyMutation:
    @strawberry.mutation(description="Record the outcome of a call (agent)")
    async def record_call_outcome(self, info: Info, id: UUID, input: CallOutcomeInputGQL) -> CallPayload:
        return await mutate(
            info,
            CallPayload,
            "call",
            lambda uow: calls.record_outcome(uow, id, to_input(schemas.CallOutcomeInput, input)),
        )

    @strawberry.mutation(
        description="115 with an ambiguous caller area: assign the call to one of its candidate towns (agent)"
    )
    async def assign_call_tenant(
        self,
        info: Info,
        call_id: UUID,
        tenant_id: UUID,
        reason: Annotated[
            str | None, strawberry.argument(description="Why an assigned call moves again (required then)")
        ] = None,
    ) -> CallPayload:
        def data() -> schemas.CallTenantInput:
            return to_input(schemas.CallTenantInput, SimpleNamespace(tenant_id=tenant_id, reason=reason))

        return await mutate(info, CallPayload, "call", lambda uow: calls.assign_call_tenant(uow, call_id, data()))

    @strawberry.mutation(description="Set how many days a tenant's caller numbers are kept (1 to 3650)")
    async def set_telephony_settings(
        self,
        info: Info,
        caller_retention_days: int,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> TelephonySettingsPayload:
        async def action(uow: UnitOfWork) -> schemas.TelephonySettings:
            slug = required_tenant(tenant, tenant_slug)
            values = SimpleNamespace(caller_retention_days=caller_retention_days)
            return await service.set_telephony_settings(uow, slug, to_input(schemas.TelephonySettingsInput, values))

        return await mutate(info, TelephonySettingsPayload, "telephony_settings", action)

    @strawberry.mutation(description="Add a service number or number block (platform admin)")
    async def create_service_number(self, info: Info, input: CreateServiceNumberInput) -> ServiceNumberPayload:
        return await mutate(
            info,
            ServiceNumberPayload,
            "service_number",
            lambda uow: service.create_service_number(uow, to_input(schemas.ServiceNumberCreate, input)),
        )

    @strawberry.mutation(description="Move a service number to another tenant from a day on (platform admin)")
    async def move_service_number(
        self, info: Info, id: UUID, input: MoveServiceNumberInput
    ) -> MoveServiceNumberPayload:
        return await mutate(
            info,
            _moved,
            "moved",
            lambda uow: service.move_service_number(uow, id, to_input(schemas.ServiceNumberMove, input)),
        )


@strawberry.type
class TelephonySubscription:
    @strawberry.subscription(description="Screen pop: calls of my tenants as they are offered, answered and end")
    async def call_events(self, info: Info) -> AsyncGenerator[ScreenPopGQL, None]:
        principal = await info.context.principal()
        reachable = service.screen_pop_tenants(principal)
        app = info.context.app
        async for event in events.call_events(app, reachable):
            read = await info.context.still_signed_in()
            decision = await service.screen_pop_decision(app, principal, event.call, read)
            yield ScreenPopGQL(
                kind=event.kind,
                call=shown(CallGQL, event.call),
                tenant=shown(RoutingTenantGQL, decision.tenant) if decision.tenant else None,
                dialled_spoken=spoken(event.call.dialled),
                caller_spoken=spoken(event.call.caller),
                greeting=decision.greeting,
                reason=decision.reason,
            )
