"""The test world: three tenants as in the paper, each trusting its own issuer at the test IdP.

Slugs carry a random suffix so several sessions can share one Redis without meeting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from litestar import Litestar

from auth.principal import Principal
from auth.roles import MACHINE_CLIENT_SCOPES, OPERATOR_ONLY_ROLES, Role
from backend.state import AppState, unit_of_work
from backend.tenants import service
from backend.tenants.schemas import (
    AgreementCreate,
    DepartmentInput,
    IdentityIssuerInput,
    TenantCreate,
    TenantKind,
    TenantStatus,
)
from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider

AUDIENCE = "buergerservice-test"
ISSUER_SLUGS = ("kreis-soest", "stadt-soest", "stadt-geseke", "rogue")
PEOPLE = tuple(role.value for role in Role)
MACHINES = tuple(MACHINE_CLIENT_SCOPES)


def oidc_issuers() -> list[IssuerSpec]:
    """One issuer per town (plus one nobody registered), one client per role and machine kind."""
    specs = []
    for index, slug in enumerate(ISSUER_SLUGS):
        clients = [
            ClientSpec(f"{slug}-{role}", f"secret-{role}", extra_claims={"roles": [role], "org": slug})
            for role in PEOPLE
        ]
        clients += [
            ClientSpec(f"{slug}-{kind}", f"secret-{kind}", scope=" ".join(sorted(MACHINE_CLIENT_SCOPES[kind])))
            for kind in MACHINES
        ]
        specs.append(IssuerSpec(slug, AUDIENCE, clients, alg="ES256" if index % 2 else "RS256"))
    return specs


@dataclass
class World:
    app: Litestar
    oidc: OIDCProvider
    suffix: str
    tenant_ids: dict[str, UUID] = field(default_factory=dict)  # by issuer slug (kreis-soest …)

    def token(self, town: str, role: str) -> str:
        return self.oidc.token(town, f"{town}-{role}")

    def headers(self, town: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(town, role)}"}

    def slug(self, town: str) -> str:
        return f"{town}-{self.suffix}"

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.app_state
        return state


def system_principal(tenant_id: UUID, acting: set[UUID]) -> Principal:
    return Principal(
        issuer="test",
        subject="builder",
        tenant_id=tenant_id,
        tenant_slug="test",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(acting),
    )


async def make_tenant(state: AppState, slug: str, **fields: Any) -> UUID:
    data = TenantCreate(
        slug=slug,
        name=fields.pop("name", slug.replace("-", " ").title()),
        kind=fields.pop("kind", TenantKind.TOWN),
        status=fields.pop("status", TenantStatus.ACTIVE),
        **fields,
    )
    async with unit_of_work(state, system_principal(UUID(int=0), set())) as uow:
        return (await service.create_tenant(uow, data)).id


async def build_world(app: Litestar, oidc: OIDCProvider) -> World:
    world = World(app=app, oidc=oidc, suffix=uuid.uuid4().hex[:6])
    state = world.state
    world.tenant_ids["kreis-soest"] = await make_tenant(
        state, world.slug("kreis-soest"), kind=TenantKind.DISTRICT, is_operator=True, ags="05974"
    )
    world.tenant_ids["stadt-soest"] = await make_tenant(state, world.slug("stadt-soest"), ags="05974040")
    world.tenant_ids["stadt-geseke"] = await make_tenant(state, world.slug("stadt-geseke"), ags="05974020")
    operator = system_principal(world.tenant_ids["kreis-soest"], set(world.tenant_ids.values()))
    async with unit_of_work(state, operator) as uow:
        for town in world.tenant_ids:
            await service.add_identity_issuer(
                uow,
                world.slug(town),
                IdentityIssuerInput(
                    issuer=oidc.issuer_url(town),
                    audience=AUDIENCE,
                    role_mapping={
                        role: role for role in PEOPLE if town == "kreis-soest" or role not in OPERATOR_ONLY_ROLES
                    },
                    role_claim="roles",
                ),
            )
            await service.add_department(uow, world.slug(town), DepartmentInput(name="Bürgerbüro"))
        for town, starts_on in (("stadt-soest", date(2016, 1, 1)), ("stadt-geseke", date(2018, 1, 1))):
            await service.create_agreement(
                uow, AgreementCreate(client_tenant_id=world.tenant_ids[town], starts_on=starts_on)
            )
    return world
