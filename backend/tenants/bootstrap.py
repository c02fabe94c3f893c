"""The first operator of a new installation (`python -m backend.cli bootstrap-operator`).

An empty database has no tenant, so nobody can sign in to create one: this command makes the
operator tenant, trusts its identity provider's issuer with the audience and role claim, and
maps one claim value (a realm role, an app role, a group path) to `platform-admin`. Idempotent:
run it on every deployment (the compose stack does); what is already so stays, an issuer
registered with another audience or role claim is re-registered with the values given and the
mapping it had plus the admin mapping (decision 016).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from auth.claims import ClaimPathError, parse_claim_path
from auth.principal import Principal
from auth.roles import Role
from backend.db.pool import acquire
from backend.errors import NotFound
from backend.state import AppState, unit_of_work
from backend.tenants import repository, service
from backend.tenants.schemas import IdentityIssuerInput, Tenant, TenantCreate, TenantKind, TenantStatus


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    slug: str
    name: str
    issuer: str
    audience: str
    role_claim: str
    admin_value: str  # the claim value that makes a platform admin
    kind: TenantKind = TenantKind.DISTRICT
    ags: str | None = None


class BootstrapRefused(Exception):
    """The database holds something this command must not change (said in the message)."""


async def bootstrap_operator(app: AppState, spec: OperatorSpec) -> list[str]:
    """Make it so; returns what was done, one line per step ("… already" when nothing was)."""
    done: list[str] = []
    try:  # before anything is written: a typo here would leave an operator nobody can sign in to
        parse_claim_path(spec.role_claim)
    except ClaimPathError as error:
        raise BootstrapRefused(f"role claim {spec.role_claim!r} is not a claim path: {error} (roleClaim)") from None
    async with acquire(app.pool) as conn:
        every = frozenset(await repository.all_tenant_ids(conn))
    # Who acts here: the command line itself, as platform admin of every tenant there is.
    system = Principal(
        issuer="system",
        subject="bootstrap-operator",
        tenant_id=UUID(int=0),
        tenant_slug="system",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=every,
    )
    async with unit_of_work(app, system) as uow:
        tenant: Tenant | None
        try:
            tenant = await service.tenant(uow, spec.slug)
        except NotFound:
            tenant = None
        if tenant is None:
            data = TenantCreate(
                slug=spec.slug,
                name=spec.name,
                kind=spec.kind,
                ags=spec.ags,
                is_operator=True,
                status=TenantStatus.ACTIVE,
            )
            tenant = await service.create_tenant(uow, data)
            done.append(f"created operator tenant {spec.slug}")
        elif not tenant.is_operator:
            raise BootstrapRefused(f"tenant {spec.slug} exists and is not the operator; choose another slug")
        else:
            done.append(f"operator tenant {spec.slug} already")
    operator = Principal(
        issuer="system",
        subject="bootstrap-operator",
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=every | {tenant.id},
    )
    async with unit_of_work(app, operator) as uow:
        registered = [i for i in await service.identity_issuers(uow, tenant.slug) if i.issuer == spec.issuer]
        mapping = {spec.admin_value: Role.PLATFORM_ADMIN.value}
        current = registered[0] if registered else None
        if (
            current is not None
            and current.audience == spec.audience
            and current.role_claim == spec.role_claim
            and current.role_mapping.get(spec.admin_value) == Role.PLATFORM_ADMIN.value
        ):
            done.append(f"issuer {spec.issuer} with {spec.admin_value!r} → platform-admin already")
            return done
        if current is not None:
            mapping = {**current.role_mapping, **mapping}
            await service.remove_identity_issuer(uow, tenant.slug, current.id)
        await service.add_identity_issuer(
            uow,
            tenant.slug,
            IdentityIssuerInput(
                issuer=spec.issuer, audience=spec.audience, role_claim=spec.role_claim, role_mapping=mapping
            ),
        )
        done.append(
            f"{'re-registered' if current else 'registered'} issuer {spec.issuer} (audience {spec.audience}, "
            f"role claim {spec.role_claim}, {spec.admin_value!r} → platform-admin)"
        )
    return done
