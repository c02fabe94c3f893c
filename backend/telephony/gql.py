"""GraphQL for agents: the routing decision, service numbers, calls and their outcome, and the
screen pop subscription. Thin: everything goes through the service."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from types import SimpleNamespace
from uuid import UUID

import strawberry

from auth.permissions import Operation, require
from backend import generations
from backend.api.context import Info
from backend.api.payloads import UserError, from_struct, run_mutation, to_input
from backend.errors import NotFound
from backend.telephony import events, schemas, service
from backend.telephony.numbers import spoken
from backend.tenants import service as tenants
from backend.tenants.gql import ServiceIntervalGQL

strawberry.enum(schemas.NumberKind, name="NumberKind")
strawberry.enum(schemas.Purpose, name="ServiceNumberPurpose")
strawberry.enum(schemas.RoutingWindow, name="RoutingWindow")
strawberry.enum(schemas.RoutingReason, name="RoutingReason")
strawberry.enum(schemas.ResolvedBy, name="ResolvedBy")
strawberry.enum(schemas.Outcome, name="CallOutcome")


@strawberry.type(name="RoutingTenant")
class RoutingTenantGQL:
    id: UUID
    slug: str
    name: str


@strawberry.type(name="RoutingDepartment")
class RoutingDepartmentGQL:
    id: UUID
    name: str
    phone: str | None
    email: str | None

    @classmethod
    def of(cls, d: schemas.DepartmentRef) -> RoutingDepartmentGQL:
        return cls(id=d.id, name=d.name, phone=d.phone, email=d.email)


@strawberry.type(name="RoutingCandidate", description="115: a town the caller's area code may stand for")
class RoutingCandidateGQL:
    tenant: RoutingTenantGQL
    municipality: str
    ags: str


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

    @classmethod
    def of(cls, n: schemas.ServiceNumber) -> ServiceNumberGQL:
        return from_struct(cls, n)


@strawberry.type(name="MatchedServiceNumber")
class MatchedNumberGQL:
    id: UUID
    number: str
    kind: schemas.NumberKind
    purpose: schemas.Purpose
    routing_window: schemas.RoutingWindow
    valid_from: date
    valid_to: date | None


def _tenant(t: schemas.TenantRef) -> RoutingTenantGQL:
    return RoutingTenantGQL(id=t.id, slug=t.slug, name=t.name)


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

    @classmethod
    def of(cls, d: schemas.RoutingDecision) -> RoutingDecisionGQL:
        number = d.service_number
        return cls(
            dialled=d.dialled,
            at=d.at,
            ours=d.ours,
            resolved_by=d.resolved_by,
            takes_call=d.takes_call,
            reason=d.reason,
            reason_detail=d.reason_detail,
            service_number=MatchedNumberGQL(
                id=number.id,
                number=number.number,
                kind=number.kind,
                purpose=number.purpose,
                routing_window=number.routing_window,
                valid_from=number.valid_from,
                valid_to=number.valid_to,
            )
            if number
            else None,
            tenant=_tenant(d.tenant) if d.tenant else None,
            candidates=[
                RoutingCandidateGQL(tenant=_tenant(c.tenant), municipality=c.municipality, ags=c.ags)
                for c in d.candidates
            ],
            greeting=d.greeting,
            department=RoutingDepartmentGQL.of(d.department) if d.department else None,
            departments=[RoutingDepartmentGQL.of(x) for x in d.departments],
            service_hours=[
                ServiceIntervalGQL(weekday=s.weekday, opens=s.opens, closes=s.closes) for s in d.service_hours
            ],
        )


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

    @strawberry.field(description="The caller's number written to be read aloud (screen readers, braille)")
    def caller_spoken(self) -> str | None:
        return spoken(self.caller)

    @classmethod
    def of(cls, c: schemas.Call) -> CallGQL:
        return from_struct(cls, c)


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


@strawberry.type(name="TelephonySettings", description="A tenant's telephony settings")
class TelephonySettingsGQL:
    tenant_id: UUID
    caller_retention_days: int = strawberry.field(description="Caller numbers are erased from older calls")

    @classmethod
    def of(cls, s: schemas.TelephonySettings) -> TelephonySettingsGQL:
        return cls(tenant_id=s.tenant_id, caller_retention_days=s.caller_retention_days)


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
        return RoutingDecisionGQL.of(decision)

    @strawberry.field(description="Service numbers I may see (of one tenant, valid on a day)")
    async def service_numbers(
        self, info: Info, tenant_slug: str | None = None, on: date | None = None
    ) -> list[ServiceNumberGQL]:
        async with info.context.uow() as uow:
            tenant_id = await tenants.tenant_id_by_slug(uow, tenant_slug)
            numbers = await service.list_service_numbers(uow, tenant_id, on)
        return [ServiceNumberGQL.of(n) for n in numbers]

    @strawberry.field(description="Calls I may see, oldest first (at most 100 per page)")
    async def calls(
        self,
        info: Info,
        tenant_slug: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CallConnectionGQL:
        async with info.context.uow() as uow:
            tenant_id = await tenants.tenant_id_by_slug(uow, tenant_slug)
            page = await service.list_calls(uow, tenant_id, since, until, first, after)
        return CallConnectionGQL(
            nodes=[CallGQL.of(c) for c in page.items],
            page_info=CallPageInfoGQL(end_cursor=page.next_cursor, has_next_page=page.next_cursor is not None),
        )

    @strawberry.field(description="A tenant's telephony settings (town admin, platform admin)")
    async def telephony_settings(self, info: Info, tenant_slug: str) -> TelephonySettingsGQL:
        async with info.context.uow() as uow:
            tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.TELEPHONY_SETTINGS)
            return TelephonySettingsGQL.of(await service.telephony_settings(uow, tenant.id))

    @strawberry.field(description="One call; null when it does not exist or is not visible")
    async def call(self, info: Info, id: UUID) -> CallGQL | None:
        async with info.context.uow() as uow:
            try:
                return CallGQL.of(await service.call(uow, id))
            except NotFound:
                return None


@strawberry.type
class TelephonyMutation:
    @strawberry.mutation(description="Record the outcome of a call (agent)")
    async def record_call_outcome(self, info: Info, id: UUID, input: CallOutcomeInputGQL) -> CallPayload:
        async def action() -> CallGQL:
            data = to_input(schemas.CallOutcomeInput, input)
            async with info.context.uow(readonly=False) as uow:
                return CallGQL.of(await service.record_outcome(uow, id, data))

        call, errors = await run_mutation(action)
        return CallPayload(call=call, errors=errors)

    @strawberry.mutation(
        description="115 with an ambiguous caller area: assign the call to one of its candidate towns (agent)"
    )
    async def assign_call_tenant(self, info: Info, call_id: UUID, tenant_id: UUID) -> CallPayload:
        async def action() -> CallGQL:
            data = to_input(schemas.CallTenantInput, SimpleNamespace(tenant_id=tenant_id))
            async with info.context.uow(readonly=False) as uow:
                return CallGQL.of(await service.assign_call_tenant(uow, call_id, data))

        call, errors = await run_mutation(action)
        return CallPayload(call=call, errors=errors)

    @strawberry.mutation(description="Set how many days a tenant's caller numbers are kept (1 to 3650)")
    async def set_telephony_settings(
        self, info: Info, tenant_slug: str, caller_retention_days: int
    ) -> TelephonySettingsPayload:
        async def action() -> TelephonySettingsGQL:
            data = to_input(
                schemas.TelephonySettingsInput, SimpleNamespace(caller_retention_days=caller_retention_days)
            )
            async with info.context.uow(readonly=False) as uow:
                tenant = await tenants.tenant_by_slug(uow, tenant_slug, Operation.TELEPHONY_SETTINGS)
                return TelephonySettingsGQL.of(await service.set_telephony_settings(uow, tenant.id, data))

        settings, errors = await run_mutation(action)
        return TelephonySettingsPayload(telephony_settings=settings, errors=errors)

    @strawberry.mutation(description="Add a service number or number block (platform admin)")
    async def create_service_number(self, info: Info, input: CreateServiceNumberInput) -> ServiceNumberPayload:
        async def action() -> ServiceNumberGQL:
            data = to_input(schemas.ServiceNumberCreate, input)
            async with info.context.uow(readonly=False) as uow:
                return ServiceNumberGQL.of(await service.create_service_number(uow, data))

        number, errors = await run_mutation(action)
        return ServiceNumberPayload(service_number=number, errors=errors)

    @strawberry.mutation(description="Move a service number to another tenant from a day on (platform admin)")
    async def move_service_number(
        self, info: Info, id: UUID, input: MoveServiceNumberInput
    ) -> MoveServiceNumberPayload:
        async def action() -> schemas.ServiceNumberMoved:
            data = to_input(schemas.ServiceNumberMove, input)
            async with info.context.uow(readonly=False) as uow:
                return await service.move_service_number(uow, id, data)

        moved, errors = await run_mutation(action)
        return MoveServiceNumberPayload(
            previous=ServiceNumberGQL.of(moved.previous) if moved else None,
            current=ServiceNumberGQL.of(moved.current) if moved else None,
            errors=errors,
        )


@strawberry.type
class TelephonySubscription:
    @strawberry.subscription(description="Screen pop: calls of my tenants as they are offered, answered and end")
    async def call_events(self, info: Info) -> AsyncGenerator[ScreenPopGQL, None]:
        principal = await info.context.principal()
        reachable = require(principal, Operation.CALL_READ)
        app = info.context.app
        async for event in events.call_events(app, reachable):
            read = await info.context.still_signed_in()
            decision = await service.screen_pop_decision(app, principal, event.call, read)
            yield ScreenPopGQL(
                kind=event.kind,
                call=CallGQL.of(event.call),
                tenant=_tenant(decision.tenant) if decision.tenant else None,
                dialled_spoken=spoken(event.call.dialled),
                caller_spoken=spoken(event.call.caller),
                greeting=decision.greeting,
                reason=decision.reason,
            )
