"""GraphQL for the centre now: the query, the subscription that pushes it, and the agent's
status. Thin: everything goes through the service (and `live` for the push)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from uuid import UUID

import strawberry

from backend.api.context import Info
from backend.api.mapping import mirrors, shown
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import TenantArgument
from backend.centre import live, schemas, service

strawberry.enum(schemas.AgentStatus, name="AgentStatus")


@mirrors(schemas.CentreTown)
@strawberry.type(name="CentreTown", description="One town's part of the centre now; shares of today so far")
class CentreTownGQL:
    tenant_id: UUID
    tenant_name: str
    waiting: int
    longest_wait_seconds: int
    oldest_waiting_since: datetime | None
    offered_today: int
    service_level: Decimal | None
    service_level_target: Decimal
    first_contact_rate: Decimal | None
    first_contact_target: Decimal
    callbacks_due_next_hour: int
    callbacks_overdue: int


@mirrors(schemas.CentreNow)
@strawberry.type(
    name="CentreNow",
    description="Calls waiting, the longest wait, agents talking / available / in wrap-up, today's service "
    "level and first-contact rate so far, callbacks due in the next hour and overdue: in total and per town",
)
class CentreNowGQL:
    at: datetime
    waiting: int
    longest_wait_seconds: int
    agents_talking: int
    agents_available: int
    agents_in_wrap_up: int
    agents_away: int
    service_level: Decimal | None
    first_contact_rate: Decimal | None
    callbacks_due_next_hour: int
    callbacks_overdue: int
    towns: list[CentreTownGQL]


@mirrors(schemas.AgentStatusView)
@strawberry.type(name="AgentStatusView")
class AgentStatusGQL:
    tenant_id: UUID
    agent: str
    status: schemas.AgentStatus
    since: datetime


@strawberry.type(name="AgentStatusPayload")
class AgentStatusPayload:
    agent_status: AgentStatusGQL | None
    errors: list[UserError]


@strawberry.type
class CentreQuery:
    @strawberry.field(description="The centre now (supervisors, the operator's wallboard); of one town or all I watch")
    async def centre_now(self, info: Info, tenant: TenantArgument = None) -> CentreNowGQL:
        async with info.context.uow() as uow:
            return shown(CentreNowGQL, await service.centre_now(uow, tenant))


@strawberry.type
class CentreMutation:
    @strawberry.mutation(description="The agent's client sets its agent's status (agent: the telephone system's id)")
    async def set_agent_status(self, info: Info, agent: str, status: schemas.AgentStatus) -> AgentStatusPayload:
        def data() -> schemas.AgentStatusInput:
            return to_input(schemas.AgentStatusInput, SimpleNamespace(agent=agent, status=status))

        return await mutate(info, AgentStatusPayload, "agent_status", lambda uow: service.set_agent_status(uow, data()))


@strawberry.type
class CentreSubscription:
    @strawberry.subscription(description="The centre now, at once and after every change (on any instance)")
    async def centre_updates(self, info: Info, tenant: TenantArgument = None) -> AsyncGenerator[CentreNowGQL, None]:
        principal = await info.context.principal()
        async with info.context.uow() as uow:
            tenant_ids = await service.scope(uow, tenant)
        # aclosing: the hub forgets this watcher the moment the subscriber goes, not at garbage collection
        async with contextlib.aclosing(live.watch(info.context.app, principal, tenant_ids)) as views:
            async for now in views:
                await info.context.still_signed_in()
                yield shown(CentreNowGQL, now)
