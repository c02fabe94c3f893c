"""REST for platform admins, town admins and machine clients: thin, parse → service → response."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import delete, get, patch, post, put
from litestar.params import Parameter

from auth.principal import Principal
from backend.http.auth import AuthenticatedController
from backend.http.openapi import problem_responses
from backend.state import AppState, unit_of_work
from backend.structs import Schema
from backend.tenants import service
from backend.tenants.schemas import (
    AgreementCreate,
    AgreementTermination,
    AgreementView,
    ClosingDay,
    Department,
    DepartmentInput,
    IdentityIssuer,
    IdentityIssuerInput,
    IssuerKeys,
    SignInRefusalView,
    Tenant,
    TenantCreate,
    TenantUpdate,
    TokenCheck,
    TokenVerdict,
)

PageSize = Annotated[int, Parameter(ge=1, le=100, description="page size (at most 100)")]


class TenantPage(Schema, frozen=True):
    items: list[Tenant]
    next_cursor: str | None


class Me(Schema, frozen=True):
    subject: str
    issuer: str
    tenant: Tenant
    roles: list[str]
    scopes: list[str]
    acting_tenant_ids: list[UUID]


class TenantController(AuthenticatedController):
    path = "/v1"
    tags = ["tenants"]

    @get(
        "/me",
        summary="Who am I: principal, home tenant, roles and the tenants I act for",
        responses=problem_responses(401),
    )
    async def me(self, app_state: AppState, principal: Principal) -> Me:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            tenant = await service.home_tenant(uow)
        return Me(
            subject=principal.subject,
            issuer=principal.issuer,
            tenant=tenant,
            roles=sorted(principal.roles),
            scopes=sorted(principal.scopes),
            acting_tenant_ids=sorted(principal.acting_tenant_ids),
        )

    @get(
        "/tenants",
        summary="Tenants I may see, by slug, cursor-paginated",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def list_tenants(
        self, app_state: AppState, principal: Principal, first: PageSize = 50, after: str | None = None
    ) -> TenantPage:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            page = await service.list_tenants(uow, first, after)
        return TenantPage(items=page.items, next_cursor=page.next_cursor)

    @post("/tenants", summary="Onboard a tenant (platform admin)", responses=problem_responses(400, 401, 403, 409, 422))
    async def create_tenant(self, app_state: AppState, principal: Principal, data: TenantCreate) -> Tenant:
        async with unit_of_work(app_state, principal) as uow:
            return await service.create_tenant(uow, data)

    @get("/tenants/{slug:str}", summary="One tenant", responses=problem_responses(400, 401, 403, 404))
    async def get_tenant(self, app_state: AppState, principal: Principal, slug: str) -> Tenant:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.tenant(uow, slug)

    @patch(
        "/tenants/{slug:str}",
        summary="Change a tenant (platform admin); send `version` to avoid lost updates",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def update_tenant(self, app_state: AppState, principal: Principal, slug: str, data: TenantUpdate) -> Tenant:
        async with unit_of_work(app_state, principal) as uow:
            return await service.update_tenant(uow, slug, data)

    @get(
        "/tenants/{slug:str}/departments",
        summary="Departments of a tenant",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_departments(self, app_state: AppState, principal: Principal, slug: str) -> list[Department]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.tenant_departments(uow, slug)

    @post(
        "/tenants/{slug:str}/departments",
        summary="Add a department (platform admin, town admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def add_department(
        self, app_state: AppState, principal: Principal, slug: str, data: DepartmentInput
    ) -> Department:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_department(uow, slug, data)

    @put(
        "/tenants/{slug:str}/departments/{department_id:uuid}",
        summary="Change a department",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def update_department(
        self, app_state: AppState, principal: Principal, slug: str, department_id: UUID, data: DepartmentInput
    ) -> Department:
        async with unit_of_work(app_state, principal) as uow:
            return await service.update_department(uow, slug, department_id, data)

    @get(
        "/tenants/{slug:str}/closing-days",
        summary="The tenant's own closing days",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_closing_days(self, app_state: AppState, principal: Principal, slug: str) -> list[ClosingDay]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.closing_days(uow, slug)

    @put(
        "/tenants/{slug:str}/closing-days/{day:date}",
        summary="Set a closing day (idempotent)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def set_closing_day(
        self, app_state: AppState, principal: Principal, slug: str, day: date, name: str = "Schließtag"
    ) -> list[ClosingDay]:
        async with unit_of_work(app_state, principal) as uow:
            return await service.set_closing_day(uow, slug, ClosingDay(day=day, name=name))

    @delete(
        "/tenants/{slug:str}/closing-days/{day:date}",
        summary="Remove a closing day",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def remove_closing_day(
        self, app_state: AppState, principal: Principal, slug: str, day: date
    ) -> list[ClosingDay]:
        async with unit_of_work(app_state, principal) as uow:
            return await service.remove_closing_day(uow, slug, day)

    @get(
        "/tenants/{slug:str}/identity-issuers",
        summary="Trusted OIDC issuers (platform admin, own town admin)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_identity_issuers(self, app_state: AppState, principal: Principal, slug: str) -> list[IdentityIssuer]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.identity_issuers(uow, slug)

    @post(
        "/tenants/{slug:str}/identity-issuers",
        summary="Trust an OIDC issuer for this tenant",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def add_identity_issuer(
        self, app_state: AppState, principal: Principal, slug: str, data: IdentityIssuerInput
    ) -> IdentityIssuer:
        async with unit_of_work(app_state, principal) as uow:
            return await service.add_identity_issuer(uow, slug, data)

    @get(
        "/tenants/{slug:str}/identity-issuers/{issuer_id:uuid}/refusals",
        summary="Why this issuer's tokens were refused lately (platform admin, own town admin)",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def list_sign_in_refusals(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        issuer_id: UUID,
        limit: Annotated[int, Parameter(ge=1, le=50, description="at most 50")] = 50,
    ) -> list[SignInRefusalView]:
        """The last refused tokens of the issuer, newest first, kept 30 days: reason code and
        sentence, time, the claim concerned and the names of the token's claims. Never the
        token, its subject or a claim's value."""
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.sign_in_refusals(uow, slug, issuer_id, limit)

    @post(
        "/identity-issuers/verify-token",
        status_code=200,
        summary="Check a token against the issuers of my tenants, without signing anyone in",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def verify_token(self, app_state: AppState, principal: Principal, data: TokenCheck) -> TokenVerdict:
        """For a town admin whose people are refused: the verdict sign-in would reach now and
        every reason it would refuse the token (expired, wrong audience, role claim missing,
        no value mapped …), with the role claim's values and the roles they map to. The token
        is not remembered, counted or logged. An issuer none of my tenants trusts is answered
        as unknown, whether or not another tenant trusts it."""
        return await service.check_token(app_state, principal, data.token)

    @delete(
        "/tenants/{slug:str}/identity-issuers/{issuer_id:uuid}",
        summary="Stop trusting an issuer",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def remove_identity_issuer(
        self, app_state: AppState, principal: Principal, slug: str, issuer_id: UUID
    ) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_identity_issuer(uow, slug, issuer_id)

    @post(
        "/tenants/{slug:str}/identity-issuers/{issuer_id:uuid}/key-refresh",
        summary="Fetch the issuer's signing keys now (after its identity provider withdrew a key)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def refresh_issuer_keys(
        self, app_state: AppState, principal: Principal, slug: str, issuer_id: UUID
    ) -> IssuerKeys:
        """Tokens signed with a key the issuer no longer publishes are refused from now on, on
        every instance; otherwise the cached keys are replaced when they expire
        (`JWKS_CACHE_SECONDS`). 503 when the keys cannot be fetched: nothing changes then."""
        async with unit_of_work(app_state, principal) as uow:
            return await service.refresh_issuer_keys(uow, slug, issuer_id)

    @get(
        "/agreements",
        summary="Agreements I may see, with term end and notice deadline",
        responses=problem_responses(400, 401, 403, 422),
    )
    async def list_agreements(
        self, app_state: AppState, principal: Principal, on: date | None = None
    ) -> list[AgreementView]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.list_agreements(uow, on)

    @post(
        "/agreements",
        summary="Conclude an agreement with a client tenant (operator platform admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def create_agreement(self, app_state: AppState, principal: Principal, data: AgreementCreate) -> AgreementView:
        async with unit_of_work(app_state, principal) as uow:
            return await service.create_agreement(uow, data)

    @post(
        "/agreements/{agreement_id:uuid}/termination",
        summary="Give notice; ends at the first reachable term end",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def terminate_agreement(
        self, app_state: AppState, principal: Principal, agreement_id: UUID, data: AgreementTermination
    ) -> AgreementView:
        async with unit_of_work(app_state, principal) as uow:
            return await service.terminate_agreement(uow, agreement_id, data)
