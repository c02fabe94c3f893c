"""Demo data for `make run`: Kreis Soest (operator), Stadt Soest, Stadt Geseke (paper).

Idempotent: a second run finds what is there and adds only what is missing. It goes through the
same services as the API, as a platform admin of the operator.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import asyncpg
import structlog
from dateutil.easter import easter
from dateutil.relativedelta import relativedelta

from auth.principal import Principal
from auth.roles import OPERATOR_ONLY_ROLES, Role
from backend import clock, devidp
from backend.billing.demo import load_billing_demo
from backend.db.pool import acquire
from backend.db.tenancy import tenant_transaction
from backend.knowledge.demo import load_knowledge_demo
from backend.knowledge.demo_xzufi import load_xzufi_demo
from backend.settings import Settings
from backend.state import AppState, unit_of_work
from backend.telephony.demo import load_demo_telephony
from backend.tenants import repository, service
from backend.tenants.schemas import (
    AgreementCreate,
    ClosingDay,
    DepartmentInput,
    IdentityIssuerInput,
    TenantCreate,
    TenantKind,
    TenantStatus,
)
from backend.tenants.validation import leitweg_id_with_check_digits
from backend.webpages.demo import load_demo_pages

log = structlog.get_logger("demo")

TENANTS = (
    TenantCreate(
        slug="kreis-soest",
        name="Kreis Soest",
        kind=TenantKind.DISTRICT,
        ags="05974",
        is_operator=True,
        status=TenantStatus.ACTIVE,
        leitweg_id=leitweg_id_with_check_digits("05974", "0001"),
    ),
    TenantCreate(
        slug="stadt-soest",
        name="Stadt Soest",
        kind=TenantKind.TOWN,
        ags="05974040",
        status=TenantStatus.ACTIVE,
        leitweg_id=leitweg_id_with_check_digits("05974040", "0001"),
    ),
    TenantCreate(
        slug="stadt-geseke",
        name="Stadt Geseke",
        kind=TenantKind.TOWN,
        ags="05974020",
        status=TenantStatus.ACTIVE,
        leitweg_id=leitweg_id_with_check_digits("05974020", "0001"),
    ),
)
DEPARTMENTS = {
    "kreis-soest": ("Straßenverkehrsamt", "Ausländerbehörde", "Gesundheitsamt", "Jobcenter"),
    "stadt-soest": ("Bürgerbüro", "Ordnungsamt", "Standesamt", "Bauordnung", "Steueramt"),
    "stadt-geseke": ("Bürgerbüro", "Ordnungsamt", "Standesamt", "Bauamt"),
}
# Clients of the operator and the day their agreement began (paper).
AGREEMENTS = {"stadt-soest": date(2016, 1, 1), "stadt-geseke": date(2018, 1, 1)}


def closing_days(year: int, rosenmontag: bool) -> list[ClosingDay]:
    days = [
        ClosingDay(day=date(year, 12, 24), name="Heiligabend"),
        ClosingDay(day=date(year, 12, 31), name="Silvester"),
    ]
    if rosenmontag:
        days.append(ClosingDay(day=easter(year) - relativedelta(days=48), name="Rosenmontag"))
    return days


async def _ids_by_slug(pool: asyncpg.Pool) -> dict[str, UUID]:
    async with acquire(pool) as conn:
        ids = await repository.all_tenant_ids(conn)
    async with tenant_transaction(pool, ids, readonly=True) as conn:
        rows = await conn.fetch("SELECT slug, id FROM tenants WHERE id = ANY($1::uuid[])", ids)
    return {r["slug"]: r["id"] for r in rows}


def _dev_role_mapping(slug: str) -> dict[str, str]:
    """Every role by its own name, except what only an operator's issuer may grant."""
    operator = any(t.slug == slug and t.is_operator for t in TENANTS)
    return {r.value: r.value for r in Role if operator or r not in OPERATOR_ONLY_ROLES}


async def load_demo_data(app: AppState, settings: Settings) -> None:
    existing = await _ids_by_slug(app.pool)
    bootstrap = Principal(
        issuer="system",
        subject="demo-loader",
        tenant_id=UUID(int=0),
        tenant_slug="system",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(existing.values()),
    )
    for data in TENANTS:
        if data.slug not in existing:
            async with unit_of_work(app, bootstrap) as uow:
                existing[data.slug] = (await service.create_tenant(uow, data)).id
    operator = Principal(
        issuer="system",
        subject="demo-loader",
        tenant_id=existing["kreis-soest"],
        tenant_slug="kreis-soest",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(existing.values()),
    )
    this_year = clock.today().year
    async with unit_of_work(app, operator) as uow:
        for slug, names in DEPARTMENTS.items():
            have = {d.name for d in (await service.departments(uow, [existing[slug]]))[existing[slug]]}
            for name in names:
                if name not in have:
                    await service.add_department(uow, slug, DepartmentInput(name=name))
            for year in (this_year, this_year + 1):
                for day in closing_days(year, rosenmontag=slug == "stadt-soest"):
                    await service.set_closing_day(uow, slug, day)
            issuers = {i.issuer for i in await service.identity_issuers(uow, slug)}
            dev_issuer = devidp.issuer_url(settings, slug)
            if dev_issuer not in issuers:
                await service.add_identity_issuer(
                    uow,
                    slug,
                    IdentityIssuerInput(
                        issuer=dev_issuer, audience=devidp.AUDIENCE, role_mapping=_dev_role_mapping(slug)
                    ),
                )
            devidp.signing_key(settings, slug)
        agreements = {a.agreement.tenant_id for a in await service.list_agreements(uow)}
        for slug, starts_on in AGREEMENTS.items():
            if existing[slug] not in agreements:
                await service.create_agreement(
                    uow, AgreementCreate(client_tenant_id=existing[slug], starts_on=starts_on)
                )
    await load_demo_telephony(app, operator, existing)
    await load_billing_demo(app, operator, existing)
    await load_knowledge_demo(app, existing)
    await load_xzufi_demo(app, existing)
    await load_demo_pages(app.pool, existing)
    log.info("demo_data_loaded", tenants=sorted(existing))
