"""REST for the centre now (a wallboard that polls) and the agent's status. Thin."""

from __future__ import annotations

from typing import Annotated

from litestar import get, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.centre import service
from backend.centre.schemas import AgentStatusInput, AgentStatusView, CentreNow
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.state import AppState, unit_of_work

TenantSlug = Annotated[str | None, Parameter(query="tenant", description="slug of one tenant (default: all I watch)")]


class CentreController(AuthenticatedController):
    path = "/v1"
    tags = ["centre"]

    @get(
        "/centre",
        summary="The centre now: waiting calls, agents, today's service level, callbacks due (supervisors)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def centre_now(self, app_state: AppState, principal: Principal, tenant: TenantSlug = None) -> CentreNow:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.centre_now(uow, tenant)

    @put(
        "/agent-status",
        summary="The agent's client sets its agent's status (available, wrap-up, away, signed out)",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def set_agent_status(
        self, app_state: AppState, principal: Principal, data: AgentStatusInput
    ) -> AgentStatusView:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_agent_status(uow, data)
