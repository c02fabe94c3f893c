"""REST for tickets: partner systems (scopes tickets:read / tickets:write), agents and department
staff, and the town admin's settings, audit log and webhooks. Thin: parse → service → response.

No personal data travels in a URL: lists and the change feed carry none, the citizen's data is
only in the body of `GET /v1/tickets/{id}` (and every such read is audited).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import delete, get, patch, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.state import AppState, unit_of_work
from backend.structs import Schema
from backend.tickets import personal, reports, service, webhook_service
from backend.tickets.schemas import (
    AssignmentInput,
    AuditEntry,
    CallbackAttempt,
    CallbackAttemptInput,
    Comment,
    CommentInput,
    DeliveryLogEntry,
    DepartmentChange,
    SlaState,
    StatusChange,
    Ticket,
    TicketCreate,
    TicketDetail,
    TicketEvent,
    TicketRoute,
    TicketRoutesInput,
    TicketSettings,
    TicketSettingsInput,
    TicketStatus,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointInput,
    WebhookSecret,
)

PageSize = Annotated[int, Parameter(ge=1, le=100, description="page size (at most 100)")]
VIA = "rest"


class TicketPage(Schema, frozen=True):
    items: list[Ticket]
    next_cursor: str | None


class TicketChanges(Schema, frozen=True):
    """Tickets changed after the cursor, in change order. Pass `cursor` back to continue."""

    items: list[Ticket]
    cursor: str
    has_more: bool


class AuditPage(Schema, frozen=True):
    items: list[AuditEntry]
    next_cursor: str | None


class TicketRoutes(Schema, frozen=True):
    routes: list[TicketRoute]


class TicketController(AuthenticatedController):
    path = "/v1"
    tags = ["tickets"]

    @post(
        "/tickets",
        summary="Create a ticket for a town (agent, department staff, partner system)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def create_ticket(self, app_state: AppState, principal: Principal, data: TicketCreate) -> Ticket:
        async with unit_of_work(app_state, principal) as uow:
            return await service.create_ticket(uow, data)

    @get(
        "/tickets",
        summary="Tickets I may see, the most urgent first; no personal data",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_tickets(
        self,
        app_state: AppState,
        principal: Principal,
        tenant: Annotated[str | None, Parameter(description="tenant slug")] = None,
        status: TicketStatus | None = None,
        sla_state: Annotated[SlaState | None, Parameter(query="slaState")] = None,
        department_id: Annotated[UUID | None, Parameter(query="departmentId")] = None,
        assignee: str | None = None,
        first: PageSize = 50,
        after: str | None = None,
        all_departments: Annotated[
            bool,
            Parameter(
                query="allDepartments",
                description="department staff see their own department's tickets unless this is true",
            ),
        ] = False,
    ) -> TicketPage:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            page = await service.list_tickets(
                uow,
                tenant_slug=tenant,
                status=status,
                sla_state=sla_state,
                department_id=department_id,
                assignee=assignee,
                all_departments=all_departments,
                first=first,
                after=after,
            )
        return TicketPage(items=page.items, next_cursor=page.next_cursor)

    @get(
        "/tickets/changes",
        summary="Tickets changed since a cursor, in change order (partner systems)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def changes(
        self,
        app_state: AppState,
        principal: Principal,
        tenant: Annotated[str | None, Parameter(description="tenant slug; default: my own")] = None,
        cursor: str | None = None,
        first: PageSize = 50,
    ) -> TicketChanges:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            changes = await service.changes_since(uow, tenant, cursor, first)
        return TicketChanges(items=changes.items, cursor=changes.cursor, has_more=changes.has_more)

    @get(
        "/tickets/{ticket_id:uuid}",
        summary="One ticket with the citizen's data (the read is audited)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_ticket(self, app_state: AppState, principal: Principal, ticket_id: UUID) -> TicketDetail:
        async with unit_of_work(app_state, principal) as uow:  # writes the audit row
            return await personal.ticket_detail(uow, ticket_id, VIA)

    @get(
        "/tickets/{ticket_id:uuid}/events",
        summary="What happened to a ticket: who and when",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def events(self, app_state: AppState, principal: Principal, ticket_id: UUID) -> list[TicketEvent]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.events(uow, ticket_id)

    @post(
        "/tickets/{ticket_id:uuid}/status",
        summary="Move a ticket on in its workflow",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def change_status(
        self, app_state: AppState, principal: Principal, ticket_id: UUID, data: StatusChange
    ) -> Ticket:
        async with unit_of_work(app_state, principal) as uow:
            return await service.change_status(uow, ticket_id, data)

    @post(
        "/tickets/{ticket_id:uuid}/callback-attempts",
        summary="Record a callback attempt (callback result)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def record_callback(
        self, app_state: AppState, principal: Principal, ticket_id: UUID, data: CallbackAttemptInput
    ) -> CallbackAttempt:
        async with unit_of_work(app_state, principal) as uow:
            return await service.record_callback(uow, ticket_id, data)

    @post(
        "/tickets/{ticket_id:uuid}/comments",
        summary="Add an internal comment",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def add_comment(
        self, app_state: AppState, principal: Principal, ticket_id: UUID, data: CommentInput
    ) -> Comment:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_comment(uow, ticket_id, data)

    @put(
        "/tickets/{ticket_id:uuid}/assignment",
        summary="Assign the ticket to a person (or nobody)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def assign(self, app_state: AppState, principal: Principal, ticket_id: UUID, data: AssignmentInput) -> Ticket:
        async with unit_of_work(app_state, principal) as uow:
            return await service.assign(uow, ticket_id, data)

    @put(
        "/tickets/{ticket_id:uuid}/department",
        summary="Hand the ticket to another department of the town",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def change_department(
        self, app_state: AppState, principal: Principal, ticket_id: UUID, data: DepartmentChange
    ) -> Ticket:
        async with unit_of_work(app_state, principal) as uow:
            return await service.change_department(uow, ticket_id, data)

    @get(
        "/tenants/{slug:str}/ticket-settings",
        summary="Deadline rule, retention and due-soon window",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_settings(self, app_state: AppState, principal: Principal, slug: str) -> TicketSettings:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.settings(uow, slug)

    @patch(
        "/tenants/{slug:str}/ticket-settings",
        summary="Change the ticket settings (town admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def update_settings(
        self, app_state: AppState, principal: Principal, slug: str, data: TicketSettingsInput
    ) -> TicketSettings:
        async with unit_of_work(app_state, principal) as uow:
            return await service.update_settings(uow, slug, data)

    @get(
        "/tenants/{slug:str}/ticket-routes",
        summary="Responsibility table: LeiKa key or group → department",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_routes(self, app_state: AppState, principal: Principal, slug: str) -> TicketRoutes:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return TicketRoutes(routes=await service.routes(uow, slug))

    @put(
        "/tenants/{slug:str}/ticket-routes",
        summary="Replace the responsibility table (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def replace_routes(
        self, app_state: AppState, principal: Principal, slug: str, data: TicketRoutesInput
    ) -> TicketRoutes:
        entries = [(r.key_prefix, r.department_id) for r in data.routes]
        async with unit_of_work(app_state, principal) as uow:
            return TicketRoutes(routes=await service.replace_routes(uow, slug, data.default_department_id, entries))

    @get(
        "/tenants/{slug:str}/ticket-audit",
        summary="Who read which ticket's personal data, when (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def audit(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        ticket_id: Annotated[UUID | None, Parameter(query="ticketId")] = None,
        first: PageSize = 50,
        after: str | None = None,
    ) -> AuditPage:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            page = await reports.audit_log(uow, slug, ticket_id, first, after)
        return AuditPage(items=page.items, next_cursor=page.next_cursor)

    @get(
        "/tenants/{slug:str}/webhooks",
        summary="Webhook endpoints for ticket events",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_webhooks(self, app_state: AppState, principal: Principal, slug: str) -> list[WebhookEndpoint]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await webhook_service.webhook_endpoints(uow, slug)

    @post(
        "/tenants/{slug:str}/webhooks",
        summary="Register an endpoint; the signing secret is shown once",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_webhook(
        self, app_state: AppState, principal: Principal, slug: str, data: WebhookEndpointInput
    ) -> WebhookEndpointCreated:
        async with unit_of_work(app_state, principal) as uow:
            return await webhook_service.add_webhook_endpoint(uow, slug, data)

    @delete(
        "/tenants/{slug:str}/webhooks/{endpoint_id:uuid}",
        summary="Stop sending to an endpoint",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_webhook(self, app_state: AppState, principal: Principal, slug: str, endpoint_id: UUID) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await webhook_service.remove_webhook_endpoint(uow, slug, endpoint_id)

    @post(
        "/tenants/{slug:str}/webhooks/{endpoint_id:uuid}/resume",
        summary="Resume a paused webhook endpoint: its waiting deliveries go out at once, in order",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def resume_webhook(
        self, app_state: AppState, principal: Principal, slug: str, endpoint_id: UUID
    ) -> WebhookEndpoint:
        async with unit_of_work(app_state, principal) as uow:
            return await webhook_service.resume_webhook_endpoint(uow, slug, endpoint_id)

    @post(
        "/tenants/{slug:str}/webhooks/{endpoint_id:uuid}/secret-rotation",
        summary="New signing secret; the old one keeps signing for 24 hours",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def rotate_secret(
        self, app_state: AppState, principal: Principal, slug: str, endpoint_id: UUID
    ) -> WebhookSecret:
        async with unit_of_work(app_state, principal) as uow:
            return await webhook_service.rotate_webhook_secret(uow, slug, endpoint_id)

    @get(
        "/tenants/{slug:str}/webhook-deliveries",
        summary="Delivery log: every delivery with its attempts",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def deliveries(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        endpoint_id: Annotated[UUID | None, Parameter(query="endpointId")] = None,
        status: str | None = None,
        first: PageSize = 50,
    ) -> list[DeliveryLogEntry]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            log = await webhook_service.webhook_deliveries(uow, slug, endpoint_id, status, first)
        return [DeliveryLogEntry(delivery=d, attempts=a) for d, a in log]
