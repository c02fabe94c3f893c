"""GraphQL types, queries and mutations for tenants: thin, everything goes through the service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from auth.roles import Role, Scope
from backend.api.context import GraphQLContext, Info
from backend.api.mapping import PageInfoGQL, mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.api.tenant_argument import DeprecatedTenantArgument, TenantArgument, required_tenant
from backend.errors import NotFound
from backend.state import UnitOfWork
from backend.tenants import schemas, service

strawberry.enum(schemas.TenantKind, name="TenantKind")
strawberry.enum(schemas.TenantStatus, name="TenantStatus")
strawberry.enum(schemas.NoticeParty, name="NoticeParty")
strawberry.enum(Role, name="Role")
strawberry.enum(Scope, name="Scope")


@mirrors(schemas.ServiceInterval)
@strawberry.type(name="ServiceInterval", description="Opening interval on an ISO weekday (1 = Monday), local time")
class ServiceIntervalGQL:
    weekday: int
    opens: str
    closes: str


@mirrors(schemas.Department, exclude=("tenant_id",))
@strawberry.type(name="Department")
class DepartmentGQL:
    id: UUID
    name: str
    email: str | None
    phone: str | None
    active: bool


@mirrors(schemas.ClosingDay)
@strawberry.type(name="ClosingDay")
class ClosingDayGQL:
    day: date
    name: str


@mirrors(schemas.SignInRefusalView)
@strawberry.type(name="SignInRefusal", description="A refused token: why and when, the names of its claims only")
class SignInRefusalGQL:
    reason: str
    message: str
    at: datetime
    claim: str | None
    token_claims: list[str]


@mirrors(schemas.IdentityIssuer, exclude=("tenant_id", "discovery"))
@strawberry.type(name="IdentityIssuer")
class IdentityIssuerGQL:
    id: UUID
    issuer: str
    audience: str
    org_claim: str | None
    org_value: str | None
    role_claim: str = strawberry.field(
        description="claim path of the roles or groups: dotted (realm_access.roles, a dot in a key escaped as \\.) "
        "or a JSON Pointer (/resource_access/buergerservice.app/roles)"
    )
    role_mapping: JSON

    @strawberry.field(description="The last refused tokens of this issuer, newest first (kept 30 days, at most 50)")
    async def recent_refusals(self, info: Info, first: int = 20) -> list[SignInRefusalGQL]:
        issuer = cast(schemas.IdentityIssuer, self)  # shown: the root is the Struct itself
        async with info.context.uow() as uow:
            return shown_all(SignInRefusalGQL, await service.issuer_refusals(uow, issuer, first))


def _departments_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[DepartmentGQL]]:
    async def load(tenant_ids: list[UUID]) -> list[list[DepartmentGQL]]:
        async with ctx.uow() as uow:
            grouped = await service.departments(uow, tenant_ids)
        return [[shown(DepartmentGQL, d) for d in grouped.get(t, [])] for t in tenant_ids]

    return DataLoader(load_fn=load)


def _closing_days_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[ClosingDayGQL]]:
    async def load(tenant_ids: list[UUID]) -> list[list[ClosingDayGQL] | NotFound]:
        async with ctx.uow() as uow:
            grouped = await service.closing_days_by_tenant(uow, tenant_ids)
        return [
            days if isinstance(days, NotFound) else shown_all(ClosingDayGQL, days)
            for days in (grouped[t] for t in tenant_ids)
        ]

    return DataLoader(load_fn=load)


def _identity_issuers_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[IdentityIssuerGQL]]:
    async def load(tenant_ids: list[UUID]) -> list[list[IdentityIssuerGQL] | NotFound]:
        async with ctx.uow() as uow:
            grouped = await service.identity_issuers_by_tenant(uow, tenant_ids)
        return [
            issuers if isinstance(issuers, NotFound) else shown_all(IdentityIssuerGQL, issuers)
            for issuers in (grouped[t] for t in tenant_ids)
        ]

    return DataLoader(load_fn=load)


@mirrors(schemas.Tenant, exclude=("created_at", "updated_at"))
@strawberry.type(name="Tenant", description="A municipality or district (Kommune, Verwaltung)")
class TenantGQL:
    id: UUID
    slug: str
    name: str
    kind: schemas.TenantKind
    is_operator: bool
    ags: str | None
    federal_state: str
    time_zone: str
    service_hours: list[ServiceIntervalGQL]
    leitweg_id: str | None
    status: schemas.TenantStatus
    version: int

    @strawberry.field(description="Departments (Fachbereiche) that receive tickets")
    async def departments(self, info: Info) -> list[DepartmentGQL]:
        loader = info.context.loader("departments", _departments_loader)
        result: list[DepartmentGQL] = await loader.load(self.id)
        return result

    @strawberry.field(description="The tenant's own closing days (e.g. 24 and 31 December)")
    async def closing_days(self, info: Info) -> list[ClosingDayGQL]:
        result: list[ClosingDayGQL] = await info.context.loader("closing_days", _closing_days_loader).load(self.id)
        return result

    @strawberry.field(description="Trusted OIDC issuers (platform admins; a town admin for its own town)")
    async def identity_issuers(self, info: Info) -> list[IdentityIssuerGQL]:
        loader = info.context.loader("identity_issuers", _identity_issuers_loader)
        result: list[IdentityIssuerGQL] = await loader.load(self.id)
        return result


@strawberry.type(name="TenantConnection")
class TenantConnectionGQL:
    nodes: list[TenantGQL]
    page_info: PageInfoGQL


@strawberry.type(name="Me", description="The signed-in principal")
class MeGQL:
    subject: str
    issuer: str
    tenant: TenantGQL
    roles: list[Role]
    scopes: list[Scope]
    acting_tenant_ids: list[UUID]


# Not a mirror: the published type flattens the view and names the client (`clientTenantId`,
# the Struct's `tenant_id`), so it is the one type here still copied from its Struct.
@strawberry.type(name="Agreement", description="Agreement (öffentlich-rechtliche Vereinbarung) operator ↔ client")
class AgreementGQL:
    id: UUID
    client_tenant_id: UUID
    operator_tenant_id: UUID
    starts_on: date
    initial_term_months: int
    renewal_term_months: int
    notice_period_months: int
    ends_on: date | None
    scope_notes: str
    on: date
    active: bool
    current_term_end: date | None
    notice_deadline: date | None = strawberry.field(description="The last day to give notice for noticeTermEnd")
    notice_term_end: date | None = strawberry.field(
        description="The term end a notice given on `on` reaches (the one noticeDeadline belongs to)"
    )
    noticed_on: date | None = strawberry.field(description="When notice was given")
    noticed_by_party: schemas.NoticeParty | None = strawberry.field(description="Which party gave notice")

    @classmethod
    def of(cls, v: schemas.AgreementView) -> AgreementGQL:
        a = v.agreement
        return cls(
            id=a.id,
            client_tenant_id=a.tenant_id,
            operator_tenant_id=a.operator_tenant_id,
            starts_on=a.starts_on,
            initial_term_months=a.initial_term_months,
            renewal_term_months=a.renewal_term_months,
            notice_period_months=a.notice_period_months,
            ends_on=a.ends_on,
            scope_notes=a.scope_notes,
            on=v.on,
            active=v.active,
            current_term_end=v.current_term_end,
            notice_deadline=v.notice_deadline,
            notice_term_end=v.notice_term_end,
            noticed_on=a.noticed_on,
            noticed_by_party=a.noticed_by_party,
        )


@strawberry.input(name="ServiceIntervalInput")
class ServiceIntervalInput:
    weekday: int
    opens: str
    closes: str


@strawberry.input(name="CreateTenantInput")
class CreateTenantInput:
    slug: str
    name: str
    kind: schemas.TenantKind
    federal_state: str = "NW"
    ags: str | None = None
    time_zone: str = "Europe/Berlin"
    service_hours: list[ServiceIntervalInput] | None = None
    leitweg_id: str | None = None
    is_operator: bool = False
    status: schemas.TenantStatus = schemas.TenantStatus.ONBOARDING


@strawberry.input(name="UpdateTenantInput", description="Only the fields given change")
class UpdateTenantInput:
    name: str | None = None
    ags: str | None = None
    federal_state: str | None = None
    time_zone: str | None = None
    service_hours: list[ServiceIntervalInput] | None = None
    leitweg_id: str | None = None
    status: schemas.TenantStatus | None = None
    version: int | None = None


@strawberry.input(name="DepartmentInput")
class DepartmentInputGQL:
    name: str
    email: str | None = None
    phone: str | None = None
    active: bool = True


@mirrors(schemas.TokenReason)
@strawberry.type(name="TokenReason")
class TokenReasonGQL:
    code: str
    message: str
    claim: str | None


@mirrors(schemas.TokenVerdict)
@strawberry.type(name="TokenVerdict", description="Whether a token would sign in now, and every reason it would not")
class TokenVerdictGQL:
    accepted: bool
    reasons: list[TokenReasonGQL]
    issuer: str | None
    tenant_slug: str | None
    roles: list[str]
    scopes: list[str]
    role_claim: str | None
    role_claim_values: list[str]
    expires_at: datetime | None


@strawberry.input(name="IdentityIssuerInput")
class IdentityIssuerInputGQL:
    issuer: str
    audience: str
    # Nullable without a default: a default object ({}) of the JSON scalar cannot be printed
    # in introspection (graphql-core turns only plain values into literals), which made every
    # GraphiQL load an INTERNAL error. Null means no mapping.
    role_mapping: strawberry.scalars.JSON | None = None
    role_claim: str = "roles"
    org_claim: str | None = None
    org_value: str | None = None


@strawberry.input(name="CreateAgreementInput")
class CreateAgreementInput:
    client_tenant_id: UUID
    starts_on: date
    initial_term_months: int = 24
    renewal_term_months: int = 12
    notice_period_months: int = 6
    scope_notes: str = ""


@strawberry.type(name="TenantPayload")
class TenantPayload:
    tenant: TenantGQL | None
    errors: list[UserError]


@strawberry.type(name="DepartmentPayload")
class DepartmentPayload:
    department: DepartmentGQL | None
    errors: list[UserError]


@strawberry.type(name="ClosingDaysPayload")
class ClosingDaysPayload:
    closing_days: list[ClosingDayGQL] | None
    errors: list[UserError]


@mirrors(schemas.IssuerDiscovery)
@strawberry.type(
    name="IssuerDiscovery", description="Whether the issuer's discovery document could be fetched when registered"
)
class IssuerDiscoveryGQL:
    fetched: bool
    problem: str | None = strawberry.field(description="What to check when it could not be fetched")


@strawberry.type(name="IdentityIssuerPayload")
class IdentityIssuerPayload:
    identity_issuer: IdentityIssuerGQL | None
    discovery: IssuerDiscoveryGQL | None = strawberry.field(
        description="The discovery document, tried once on registering: sign-in fails until it can be fetched"
    )
    errors: list[UserError]


@strawberry.type(name="RemoveIdentityIssuerPayload")
class RemoveIdentityIssuerPayload:
    removed: bool
    errors: list[UserError]


@mirrors(schemas.IssuerKeys)
@strawberry.type(name="IssuerKeys", description="The signing keys an issuer publishes now, as just fetched")
class IssuerKeysGQL:
    issuer_id: UUID
    issuer: str
    key_ids: list[str]
    fetched_at: datetime


@strawberry.type(name="IssuerKeysPayload")
class IssuerKeysPayload:
    issuer_keys: IssuerKeysGQL | None
    errors: list[UserError]


@strawberry.type(name="AgreementPayload")
class AgreementPayload:
    agreement: AgreementGQL | None
    errors: list[UserError]


def _create_data(data: CreateTenantInput) -> schemas.TenantCreate:
    values: dict[str, Any] = {k: getattr(data, k) for k in schemas.TenantCreate.__struct_fields__}
    if values["service_hours"] is None:
        values["service_hours"] = list(schemas.DEFAULT_SERVICE_HOURS)
    return to_input(schemas.TenantCreate, _Namespace(values))


class _Namespace:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


@strawberry.type
class TenantQuery:
    @strawberry.field(description="Who is signed in, for which tenant, acting for which tenants")
    async def me(self, info: Info) -> MeGQL:
        principal = await info.context.principal()
        async with info.context.uow() as uow:
            tenant = await service.home_tenant(uow)
        return MeGQL(
            subject=principal.subject,
            issuer=principal.issuer,
            tenant=shown(TenantGQL, tenant),
            roles=sorted(principal.roles),
            scopes=sorted(principal.scopes),
            acting_tenant_ids=sorted(principal.acting_tenant_ids),
        )

    @strawberry.field(description="Tenants visible to me, ordered by slug (at most 100 per page)")
    async def tenants(self, info: Info, first: int = 50, after: str | None = None) -> TenantConnectionGQL:
        async with info.context.uow() as uow:
            page = await service.list_tenants(uow, first, after)
        return TenantConnectionGQL(
            nodes=shown_all(TenantGQL, page.items),
            page_info=PageInfoGQL.after(page.next_cursor),
        )

    @strawberry.field(description="One tenant by slug; null when it does not exist or is not visible")
    async def tenant(
        self, info: Info, tenant: TenantArgument = None, slug: DeprecatedTenantArgument = None
    ) -> TenantGQL | None:
        wanted = required_tenant(tenant, slug)
        async with info.context.uow() as uow:
            try:
                return shown(TenantGQL, await service.tenant(uow, wanted))
            except NotFound:
                return None

    @strawberry.field(
        description="Check a token against the issuers of my tenants without signing anyone in: the verdict "
        "sign-in would reach now and every reason it would refuse it (platform admin, town admin)"
    )
    async def verify_token(self, info: Info, token: str) -> TokenVerdictGQL:
        data = to_input(schemas.TokenCheck, _Namespace({"token": token}))
        principal = await info.context.principal()
        return shown(TokenVerdictGQL, await service.check_token(info.context.app, principal, data.token))

    @strawberry.field(description="Agreements I may see, with current term end and notice deadline")
    async def agreements(self, info: Info, on: date | None = None) -> list[AgreementGQL]:
        async with info.context.uow() as uow:
            views = await service.list_agreements(uow, on)
        return [AgreementGQL.of(v) for v in views]


def _issuer_payload(issuer: schemas.IdentityIssuer | None, errors: list[UserError]) -> IdentityIssuerPayload:
    discovery = issuer.discovery if issuer is not None else None
    return IdentityIssuerPayload(
        identity_issuer=shown(IdentityIssuerGQL, issuer) if issuer is not None else None,
        discovery=shown(IssuerDiscoveryGQL, discovery) if discovery is not None else None,
        errors=errors,
    )


def _removed_payload(removed: bool | None, errors: list[UserError]) -> RemoveIdentityIssuerPayload:
    return RemoveIdentityIssuerPayload(removed=bool(removed), errors=errors)


@strawberry.type
class TenantMutation:
    @strawberry.mutation(description="Onboard a tenant (platform admin)")
    async def create_tenant(self, info: Info, input: CreateTenantInput) -> TenantPayload:
        return await mutate(info, TenantPayload, "tenant", lambda uow: service.create_tenant(uow, _create_data(input)))

    @strawberry.mutation(description="Change a tenant (platform admin)")
    async def update_tenant(
        self,
        info: Info,
        input: UpdateTenantInput,
        tenant: TenantArgument = None,
        slug: DeprecatedTenantArgument = None,
    ) -> TenantPayload:
        async def action(uow: UnitOfWork) -> schemas.Tenant:
            return await service.update_tenant(
                uow, required_tenant(tenant, slug), to_input(schemas.TenantUpdate, input)
            )

        return await mutate(info, TenantPayload, "tenant", action)

    @strawberry.mutation(description="Add a department (platform admin, own town admin)")
    async def add_department(
        self,
        info: Info,
        input: DepartmentInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> DepartmentPayload:
        async def action(uow: UnitOfWork) -> schemas.Department:
            slug = required_tenant(tenant, tenant_slug)
            return await service.add_department(uow, slug, to_input(schemas.DepartmentInput, input))

        return await mutate(info, DepartmentPayload, "department", action)

    @strawberry.mutation(description="Change a department (platform admin, own town admin)")
    async def update_department(
        self,
        info: Info,
        id: UUID,
        input: DepartmentInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> DepartmentPayload:
        async def action(uow: UnitOfWork) -> schemas.Department:
            slug = required_tenant(tenant, tenant_slug)
            return await service.update_department(uow, slug, id, to_input(schemas.DepartmentInput, input))

        return await mutate(info, DepartmentPayload, "department", action)

    @strawberry.mutation(description="Set one of the tenant's own closing days (idempotent)")
    async def set_closing_day(
        self,
        info: Info,
        day: date,
        name: str,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> ClosingDaysPayload:
        async def action(uow: UnitOfWork) -> list[schemas.ClosingDay]:
            slug = required_tenant(tenant, tenant_slug)
            closing = to_input(schemas.ClosingDay, _Namespace({"day": day, "name": name}))
            return await service.set_closing_day(uow, slug, closing)

        return await mutate(info, ClosingDaysPayload, "closing_days", action)

    @strawberry.mutation(description="Remove one of the tenant's own closing days (a day set by mistake)")
    async def remove_closing_day(
        self, info: Info, day: date, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> ClosingDaysPayload:
        return await mutate(
            info,
            ClosingDaysPayload,
            "closing_days",
            lambda uow: service.remove_closing_day(uow, required_tenant(tenant, tenant_slug), day),
        )

    @strawberry.mutation(description="Trust an OIDC issuer for a tenant (platform admin, own town admin)")
    async def add_identity_issuer(
        self,
        info: Info,
        input: IdentityIssuerInputGQL,
        tenant: TenantArgument = None,
        tenant_slug: DeprecatedTenantArgument = None,
    ) -> IdentityIssuerPayload:
        async def action(uow: UnitOfWork) -> schemas.IdentityIssuer:
            slug = required_tenant(tenant, tenant_slug)
            mapping: object = input.role_mapping if input.role_mapping is not None else {}
            data = to_input(schemas.IdentityIssuerInput, _Namespace({**vars(input), "role_mapping": mapping}))
            return await service.add_identity_issuer(uow, slug, data)

        return await mutate(info, _issuer_payload, "issuer", action)

    @strawberry.mutation(
        description="Stop trusting an issuer: its tokens are refused at once on every instance "
        "(platform admin, own town admin)"
    )
    async def remove_identity_issuer(
        self, info: Info, id: UUID, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> RemoveIdentityIssuerPayload:
        async def action(uow: UnitOfWork) -> bool:
            await service.remove_identity_issuer(uow, required_tenant(tenant, tenant_slug), id)
            return True

        return await mutate(info, _removed_payload, "removed", action)

    @strawberry.mutation(
        description="Fetch an issuer's signing keys now, after its identity provider withdrew one: tokens "
        "signed with that key are refused from then on, on every instance. SERVICE_UNAVAILABLE when the keys "
        "cannot be fetched (nothing changes then)."
    )
    async def refresh_identity_issuer_keys(
        self, info: Info, id: UUID, tenant: TenantArgument = None, tenant_slug: DeprecatedTenantArgument = None
    ) -> IssuerKeysPayload:
        return await mutate(
            info,
            IssuerKeysPayload,
            "issuer_keys",
            lambda uow: service.refresh_issuer_keys(uow, required_tenant(tenant, tenant_slug), id),
        )

    @strawberry.mutation(description="Conclude an agreement with a client tenant (operator platform admin)")
    async def create_agreement(self, info: Info, input: CreateAgreementInput) -> AgreementPayload:
        async def action(uow: UnitOfWork) -> AgreementGQL:
            return AgreementGQL.of(await service.create_agreement(uow, to_input(schemas.AgreementCreate, input)))

        return await mutate(info, AgreementPayload, "agreement", action)

    @strawberry.mutation(description="Give notice; the agreement ends at the first term end still reachable")
    async def terminate_agreement(self, info: Info, id: UUID, noticed_on: date) -> AgreementPayload:
        async def action(uow: UnitOfWork) -> AgreementGQL:
            data = schemas.AgreementTermination(noticed_on=noticed_on)
            return AgreementGQL.of(await service.terminate_agreement(uow, id, data))

        return await mutate(info, AgreementPayload, "agreement", action)
