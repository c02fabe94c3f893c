"""REST for the directory: a town's contact persons, responsibilities, department lines and
absences (town admin), presence (the person themself, the telephone system), and the forwarding
decision for the telephone system's attended transfer. Thin: parse → service → response."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, delete, get, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.directory import importing, lane, membership, messages, search, service, staff_data
from backend.directory.schemas import (
    DepartmentLine,
    DepartmentLineInput,
    DirectoryHit,
    DirectoryImportReport,
    ForwardingDecision,
    GroupMembership,
    GroupMembershipInput,
    MessageInput,
    Person,
    PersonInput,
    Presence,
    PresenceEventInput,
    PresenceSwitchInput,
    PrivateNumber,
    PrivateNumberInput,
    PrivateNumberReadPage,
    Responsibility,
    ResponsibilityInput,
)
from backend.errors import ValidationFailed
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.i18n import _l
from backend.state import AppState, unit_of_work
from backend.telephony.schemas import Absences, DatedAbsenceInput, WeeklyAbsenceInput
from backend.tickets.schemas import Ticket

PEOPLE = "/tenants/{slug:str}/directory/people"
PERSON = PEOPLE + "/{person_id:uuid}"
PRIVATE_NUMBER_ROUTE = "GET /v1/tenants/{slug}/directory/people/{personId}/private-number"  # as the audit names it


async def csv_text(request: Request[Any, Any, Any]) -> str:
    """The CSV of an upload: `text/csv` as UTF-8 (a spreadsheet's Windows-1252 export too), or
    `{"csv": "…"}` for clients that only send JSON."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    if "json" in request.headers.get("content-type", ""):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValidationFailed(_l("the body is not JSON; send the CSV as text/csv"), field="csv") from None
        if not isinstance(value, dict) or not isinstance(value.get("csv"), str):
            raise ValidationFailed(_l('send the CSV as text/csv, or as JSON with the field "csv"'), field="csv")
        text = value["csv"]
    return text


class DirectoryController(AuthenticatedController):
    path = "/v1"
    tags = ["directory"]

    @get(PEOPLE, summary="A town's contact persons", responses=problem_responses(400, 401, 403, 404))
    async def list_people(self, app_state: AppState, principal: Principal, slug: str) -> list[Person]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.list_people(uow, slug)

    @post(
        PEOPLE, summary="Add a contact person (town admin)", responses=problem_responses(400, 401, 403, 404, 409, 422)
    )
    async def create_person(self, app_state: AppState, principal: Principal, slug: str, data: PersonInput) -> Person:
        async with unit_of_work(app_state, principal) as uow:
            return await service.create_person(uow, slug, data)

    @post(
        "/tenants/{slug:str}/directory/import",
        summary="Import the town's people and responsibilities from CSV (town admin; bad lines reported, the rest in)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def import_people(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        request: Request[Any, Any, Any],
        prune: Annotated[bool, Parameter(description="deprovision imported people missing from the file")] = False,
    ) -> DirectoryImportReport:
        text = await csv_text(request)
        async with unit_of_work(app_state, principal) as uow:
            return await importing.import_people_csv(uow, slug, text, prune=prune)

    @get(
        "/tenants/{slug:str}/directory/search",
        summary="Find people and offices: names with or without salutation, an office, a direct number",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def search_directory(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        q: Annotated[str, Parameter(description='e.g. "Frau Müller Bürgerbüro", "Ansprechpartner Bauamt"')],
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> list[DirectoryHit]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await search.search_directory(uow, slug, q, limit)

    @get(PERSON, summary="One contact person", responses=problem_responses(400, 401, 403, 404))
    async def get_person(self, app_state: AppState, principal: Principal, slug: str, person_id: UUID) -> Person:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.person(uow, slug, person_id)

    @put(
        PERSON,
        summary="Replace a contact person (town admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def replace_person(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, data: PersonInput
    ) -> Person:
        async with unit_of_work(app_state, principal) as uow:
            return await service.replace_person(uow, slug, person_id, data)

    @delete(PERSON, summary="Remove a contact person (town admin)", responses=problem_responses(400, 401, 403, 404))
    async def remove_person(self, app_state: AppState, principal: Principal, slug: str, person_id: UUID) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_person(uow, slug, person_id)

    @get(
        PERSON + "/presence",
        summary="Whether the person is reachable (now, or at a moment), and which source says so",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def get_presence(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, at: datetime | None = None
    ) -> Presence:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.presence(uow, slug, person_id, at)

    @get(PERSON + "/absences", summary="The person's absence calendar", responses=problem_responses(400, 401, 403, 404))
    async def list_absences(self, app_state: AppState, principal: Principal, slug: str, person_id: UUID) -> Absences:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.absences(uow, slug, person_id)

    @post(
        PERSON + "/absences/weekly",
        summary="Add a recurring weekly absence (local time)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_weekly_absence(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, data: WeeklyAbsenceInput
    ) -> Absences:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_absence(uow, slug, person_id, data)

    @post(
        PERSON + "/absences/dated",
        summary="Add a dated absence (leave, training)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_dated_absence(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, data: DatedAbsenceInput
    ) -> Absences:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_absence(uow, slug, person_id, data)

    @delete(
        PERSON + "/absences/{absence_id:uuid}",
        summary="Remove one of the person's absences",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_absence(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, absence_id: UUID
    ) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_absence(uow, slug, person_id, absence_id)

    @get(
        "/tenants/{slug:str}/directory/responsibilities",
        summary="Who is responsible for which service or topic (optionally of one person)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def list_responsibilities(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        person_id: Annotated[UUID | None, Parameter(query="personId")] = None,
    ) -> list[Responsibility]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.responsibilities(uow, slug, person_id)

    @post(
        "/tenants/{slug:str}/directory/responsibilities",
        summary="Make a person responsible for a service or topic (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def add_responsibility(
        self, app_state: AppState, principal: Principal, slug: str, data: ResponsibilityInput
    ) -> Responsibility:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_responsibility(uow, slug, data)

    @delete(
        "/tenants/{slug:str}/directory/responsibilities/{responsibility_id:uuid}",
        summary="Remove a responsibility (town admin)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_responsibility(
        self, app_state: AppState, principal: Principal, slug: str, responsibility_id: UUID
    ) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_responsibility(uow, slug, responsibility_id)

    @get(
        "/tenants/{slug:str}/directory/department-lines",
        summary="The departments' general lines and hours",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_department_lines(self, app_state: AppState, principal: Principal, slug: str) -> list[DepartmentLine]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.department_lines(uow, slug)

    @put(
        "/tenants/{slug:str}/directory/department-lines/{department_id:uuid}",
        summary="Set a department's general line and hours (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_department_line(
        self, app_state: AppState, principal: Principal, slug: str, department_id: UUID, data: DepartmentLineInput
    ) -> DepartmentLine:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_department_line(uow, slug, department_id, data)

    @put(
        "/directory/my-presence",
        summary="Set my own presence switch (away / in a meeting / available, until a moment)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_my_presence(self, app_state: AppState, principal: Principal, data: PresenceSwitchInput) -> Presence:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_my_presence(uow, data)

    @post(
        "/tenants/{slug:str}/directory/presence-events",
        summary="The telephone system reports an extension's state (busy, ringing, idle, logged off)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def record_presence_event(
        self, app_state: AppState, principal: Principal, slug: str, data: PresenceEventInput
    ) -> Presence:
        async with unit_of_work(app_state, principal) as uow:
            return await service.record_presence_event(uow, slug, data)

    @get(
        "/forwarding",
        summary="Who to put the caller through to: the ordered options, each with why and a German sentence",
        responses=problem_responses(400, 401, 403, 404, 422),
        # A plain query string is answered by the lane, without litestar's parameter and
        # response machinery (~25 µs per request in process; decision 040, seventh round).
        middleware=[lane.forwarding_lane],
    )
    async def forwarding(
        self,
        request: Request[Any, Any, Any],
        tenant: Annotated[str, Parameter(description="tenant slug")],
        leika_key: Annotated[str | None, Parameter(query="leikaKey", max_length=14)] = None,
        surname: Annotated[str | None, Parameter(max_length=100)] = None,
        area: Annotated[str | None, Parameter(max_length=100)] = None,
        at: datetime | None = None,
    ) -> ForwardingDecision:
        # The hot path signs in itself, as the `principal` dependency would (same refusals):
        # litestar resolving `app_state` and `principal` cost ~110–135 µs of CPU per request
        # (decision 040's second amendment). No unit of work: the town is held (decision 039).
        return await lane.decide(request, tenant, leika_key, surname, area, at)

    @get(
        PERSON + "/private-number",
        summary="The person's private number (the read is audited: who, when, which person, this route)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_private_number(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID
    ) -> PrivateNumber:
        async with unit_of_work(app_state, principal) as uow:  # writes the audit row
            return await staff_data.private_number(uow, slug, person_id, PRIVATE_NUMBER_ROUTE)

    @put(
        PERSON + "/private-number",
        summary="Set or (with null) remove the person's private number (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_private_number(
        self, app_state: AppState, principal: Principal, slug: str, person_id: UUID, data: PrivateNumberInput
    ) -> PrivateNumber:
        async with unit_of_work(app_state, principal) as uow:
            return await staff_data.set_private_number(uow, slug, person_id, data)

    @get(
        "/tenants/{slug:str}/directory/private-number-reads",
        summary="Who read which private number, when and through which route (town admin), oldest first",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def private_number_reads(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        person_id: Annotated[UUID | None, Parameter(query="personId")] = None,
        first: Annotated[int, Parameter(ge=1, le=100)] = 50,
        after: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> PrivateNumberReadPage:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await staff_data.private_number_reads(uow, slug, person_id, first, after)

    @get(
        "/tenants/{slug:str}/directory/group-membership",
        summary="Which claim of the town's identity provider carries groups, and which group is which department",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def group_membership(self, app_state: AppState, principal: Principal, slug: str) -> GroupMembership:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await membership.group_membership(uow, slug)

    @put(
        "/tenants/{slug:str}/directory/group-membership",
        summary="Set the group claim and which group is which department (town admin); replaces the whole",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_group_membership(
        self, app_state: AppState, principal: Principal, slug: str, data: GroupMembershipInput
    ) -> GroupMembership:
        async with unit_of_work(app_state, principal) as uow:
            return await membership.set_group_membership(uow, slug, data)

    @post(
        "/forwarding/messages",
        summary="Take a message from the forwarding decision: the ticket, assigned to the option's person "
        "(or the department's queue), with the callback deadline the option announced (agent)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def take_message(
        self, app_state: AppState, principal: Principal, request: Request[Any, Any, Any], data: MessageInput
    ) -> Ticket:
        async with unit_of_work(app_state, principal) as uow:
            return await messages.take_message(uow, data)
