"""REST for telephony systems (routing decisions, call records and imports) and for the
administration of service numbers, absences and 115 area codes: thin, parse → service → response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, delete, get, patch, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend import generations
from backend.http.auth import AuthenticatedController
from backend.http.input_guard import refuse_unencoded_plus
from backend.http.openapi import problem_responses
from backend.state import AppState, unit_of_work
from backend.structs import Schema
from backend.telephony import call_import, calls, calls_reassigned, service
from backend.telephony.schemas import (
    Absences,
    AreaCode,
    AreaCodeInput,
    Call,
    CallEventInput,
    CallOutcomeInput,
    CallReassignment,
    CallRecordInput,
    CallTenantInput,
    DatedAbsence,
    DatedAbsenceInput,
    ImportReport,
    RoutingDecision,
    ServiceNumber,
    ServiceNumberCreate,
    ServiceNumberMove,
    ServiceNumberMoved,
    ServiceNumberUpdate,
    TelephonySettings,
    TelephonySettingsInput,
    WeeklyAbsence,
    WeeklyAbsenceInput,
)

PageSize = Annotated[int, Parameter(ge=1, le=100, description="page size (at most 100)")]
IMPORT_MAX_BYTES = 64 * 1024 * 1024  # a day's records of a large centre, with room


class CallPage(Schema, frozen=True):
    items: list[Call]
    next_cursor: str | None


class TelephonyController(AuthenticatedController):
    path = "/v1"
    tags = ["telephony"]

    @get(
        "/routing",
        summary="Routing decision: for whom is this call, and does the centre take it now?",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def routing(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        principal: Principal,
        dialled: Annotated[str, Parameter(description="the dialled number, any common format", max_length=40)],
        caller: Annotated[
            str | None, Parameter(description="the caller's number (115: picks the town)", max_length=40)
        ] = None,
        at: Annotated[datetime | None, Parameter(description="when (default: now), with offset")] = None,
    ) -> RoutingDecision:
        """Scope `routing:read` (telephony systems) or an agent. Unknown numbers and numbers of
        tenants the caller does not act for are answered `ours: false`, never an error.
        Write `+` as `%2B`: a bare `+` in a query string is a space (422 says so)."""
        refuse_unencoded_plus(request.scope.get("query_string", b""), "dialled", "caller")
        read = generations.of_request(request)
        return await service.routing_decision(app_state, principal, dialled, caller, at, read)

    @get(
        "/service-numbers",
        summary="Service numbers I may see (optionally of one tenant, valid on a day)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_service_numbers(
        self, app_state: AppState, principal: Principal, tenant: str | None = None, on: date | None = None
    ) -> list[ServiceNumber]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.list_service_numbers(uow, tenant, on)

    @post(
        "/service-numbers",
        summary="Add a service number or number block (platform admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def create_service_number(
        self, app_state: AppState, principal: Principal, data: ServiceNumberCreate
    ) -> ServiceNumber:
        async with unit_of_work(app_state, principal) as uow:
            return await service.create_service_number(uow, data)

    @get(
        "/service-numbers/{number_id:uuid}",
        summary="One service number",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_service_number(self, app_state: AppState, principal: Principal, number_id: UUID) -> ServiceNumber:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.service_number(uow, number_id)

    @patch(
        "/service-numbers/{number_id:uuid}",
        summary="Change routing window, greeting or last day",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def update_service_number(
        self, app_state: AppState, principal: Principal, number_id: UUID, data: ServiceNumberUpdate
    ) -> ServiceNumber:
        async with unit_of_work(app_state, principal) as uow:
            return await service.update_service_number(uow, number_id, data)

    @post(
        "/service-numbers/{number_id:uuid}/move",
        summary="Move a number to another tenant from a day on",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def move_service_number(
        self, app_state: AppState, principal: Principal, number_id: UUID, data: ServiceNumberMove
    ) -> ServiceNumberMoved:
        async with unit_of_work(app_state, principal) as uow:
            return await service.move_service_number(uow, number_id, data)

    @get(
        "/tenants/{slug:str}/operator-absences",
        summary="When the town's own operator is absent",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_absences(self, app_state: AppState, principal: Principal, slug: str) -> Absences:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.absences(uow, slug)

    @post(
        "/tenants/{slug:str}/operator-absences/weekly",
        summary="Add a recurring weekly absence (lunch break)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_weekly_absence(
        self, app_state: AppState, principal: Principal, slug: str, data: WeeklyAbsenceInput
    ) -> WeeklyAbsence:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_weekly_absence(uow, slug, data)

    @post(
        "/tenants/{slug:str}/operator-absences/dated",
        summary="Add a dated absence (leave, training)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_dated_absence(
        self, app_state: AppState, principal: Principal, slug: str, data: DatedAbsenceInput
    ) -> DatedAbsence:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_dated_absence(uow, slug, data)

    @delete(
        "/tenants/{slug:str}/operator-absences/{absence_id:uuid}",
        summary="Remove an absence",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_absence(self, app_state: AppState, principal: Principal, slug: str, absence_id: UUID) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_absence(uow, slug, absence_id)

    @get(
        "/tenants/{slug:str}/area-codes",
        summary="115: the operator's area code → municipality table",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_area_codes(self, app_state: AppState, principal: Principal, slug: str) -> list[AreaCode]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.area_codes(uow, slug)

    @put(
        "/tenants/{slug:str}/area-codes",
        summary="115: set the municipality (and client tenant) of an area code",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_area_code(
        self, app_state: AppState, principal: Principal, slug: str, data: AreaCodeInput
    ) -> AreaCode:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_area_code(uow, slug, data)

    @delete(
        "/tenants/{slug:str}/area-codes/{area_code:str}/{ags:str}",
        summary="115: remove an area code entry",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def remove_area_code(
        self, app_state: AppState, principal: Principal, slug: str, area_code: str, ags: str
    ) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_area_code(uow, slug, area_code, ags)

    @post(
        "/calls",
        summary="Record a call (complete record); idempotent on the system's call id",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def record_call(self, app_state: AppState, principal: Principal, data: CallRecordInput) -> Call:
        """Scope `calls:write`. The same record again gets the same answer and changes nothing;
        other values for a recorded call id get 409 and change nothing. Answered after commit."""
        async with unit_of_work(app_state, principal) as uow:
            return await calls.record_call(uow, data)

    @post(
        "/calls/events",
        summary="Record one call event (offered, answered, ended); idempotent",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def record_call_event(self, app_state: AppState, principal: Principal, data: CallEventInput) -> Call:
        async with unit_of_work(app_state, principal) as uow:
            return await calls.record_call_event(uow, data)

    @post(
        "/calls/import",
        summary="Import call detail records (text/csv or application/x-ndjson)",
        status_code=200,
        request_max_body_size=IMPORT_MAX_BYTES,
        responses=problem_responses(400, 401, 403, 422),
    )
    async def import_calls(
        self, app_state: AppState, principal: Principal, request: Request[Any, Any, Any]
    ) -> ImportReport:
        """Lines with errors are reported by number and left out; the good lines go in. Importing
        the same file again adds nothing."""
        body = await request.body()
        async with unit_of_work(app_state, principal) as uow:
            return await call_import.import_calls(uow, body, request.headers.get("content-type", ""))

    @get(
        "/calls",
        summary="Calls I may see, oldest first, cursor-paginated",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_calls(
        self,
        app_state: AppState,
        principal: Principal,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: PageSize = 50,
        after: str | None = None,
    ) -> CallPage:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            page = await calls.list_calls(uow, tenant, since, until, first, after)
        return CallPage(items=page.items, next_cursor=page.next_cursor)

    @get("/calls/{call_id:uuid}", summary="One call", responses=problem_responses(400, 401, 403, 404))
    async def get_call(self, app_state: AppState, principal: Principal, call_id: UUID) -> Call:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await calls.call(uow, call_id)

    @put(
        "/calls/{call_id:uuid}/outcome",
        summary="Record the outcome of a call (agent)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def record_outcome(
        self, app_state: AppState, principal: Principal, call_id: UUID, data: CallOutcomeInput
    ) -> Call:
        async with unit_of_work(app_state, principal) as uow:
            return await calls.record_outcome(uow, call_id, data)

    @put(
        "/calls/{call_id:uuid}/tenant",
        summary="115 with an ambiguous caller area: assign the call to one of its candidate towns (agent)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def assign_call_tenant(
        self, app_state: AppState, principal: Principal, call_id: UUID, data: CallTenantInput
    ) -> Call:
        """Only a town the routing decision offered for this call, only while the call is still
        stored under the operator, and only a town the agent acts for. Recorded on the call."""
        async with unit_of_work(app_state, principal) as uow:
            return await calls.assign_call_tenant(uow, call_id, data)

    @get(
        "/calls/{call_id:uuid}/reassignments",
        summary="The moves of a 115 call after its first assignment: who, when, from where to where, why",
        responses=problem_responses(401, 403, 404),
    )
    async def call_reassignments(
        self, app_state: AppState, principal: Principal, call_id: UUID
    ) -> list[CallReassignment]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await calls_reassigned.reassignments(uow, call_id)

    @get(
        "/tenants/{slug:str}/telephony-settings",
        summary="A tenant's telephony settings (how long caller numbers are kept)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_telephony_settings(self, app_state: AppState, principal: Principal, slug: str) -> TelephonySettings:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.telephony_settings(uow, slug)

    @put(
        "/tenants/{slug:str}/telephony-settings",
        summary="Set how many days caller numbers are kept (1 to 3650; default 90)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_telephony_settings(
        self, app_state: AppState, principal: Principal, slug: str, data: TelephonySettingsInput
    ) -> TelephonySettings:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_telephony_settings(uow, slug, data)
