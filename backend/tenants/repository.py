"""SQL for tenants and what hangs off them. Explicit columns, $n parameters, tenant always given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.db.rows import row_to
from backend.errors import NotFound
from backend.i18n import _l
from backend.tenants.schemas import (
    Agreement,
    ClosingDay,
    Department,
    IdentityIssuer,
    Tenant,
    TenantCreate,
)

TENANT_COLUMNS = """id, slug, name, kind, is_operator, ags, federal_state, time_zone, service_hours,
    leitweg_id, status, version, created_at, updated_at"""
AGREEMENT_COLUMNS = """tenant_id, id, operator_tenant_id, starts_on, initial_term_months,
    renewal_term_months, notice_period_months, ends_on, scope_notes, version, noticed_on, noticed_by_party"""


def _tenant(row: asyncpg.Record) -> Tenant:
    return row_to(Tenant, row)


async def find_tenant(conn: asyncpg.Connection, tenant_id: UUID) -> Tenant | None:
    row = await conn.fetchrow(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
    return _tenant(row) if row else None


async def get_tenant(conn: asyncpg.Connection, tenant_id: UUID) -> Tenant:
    tenant = await find_tenant(conn, tenant_id)
    if tenant is None:
        raise NotFound(_l("tenant not found"))
    return tenant


async def find_tenant_by_slug(conn: asyncpg.Connection, slug: str, tenant_ids: Sequence[UUID]) -> Tenant | None:
    row = await conn.fetchrow(
        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1 AND id = ANY($2::uuid[])", slug, list(tenant_ids)
    )
    return _tenant(row) if row else None


async def list_tenants(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], after_slug: str | None, limit: int
) -> list[Tenant]:
    rows = await conn.fetch(
        f"""SELECT {TENANT_COLUMNS} FROM tenants
            WHERE id = ANY($1::uuid[]) AND ($2::text IS NULL OR slug > $2)
            ORDER BY slug LIMIT $3""",
        list(tenant_ids),
        after_slug,
        limit,
    )
    return [_tenant(r) for r in rows]


async def list_tenants_by_ids(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[Tenant]:
    rows = await conn.fetch(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ANY($1::uuid[])", list(tenant_ids))
    return [_tenant(r) for r in rows]


async def insert_tenant(conn: asyncpg.Connection, tenant_id: UUID, data: TenantCreate) -> Tenant:
    row = await conn.fetchrow(
        f"""INSERT INTO tenants (id, slug, name, kind, is_operator, ags, federal_state, time_zone,
                                 service_hours, leitweg_id, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING {TENANT_COLUMNS}""",
        tenant_id,
        data.slug,
        data.name,
        data.kind.value,
        data.is_operator,
        data.ags,
        data.federal_state,
        data.time_zone,
        msgspec.to_builtins(data.service_hours),
        data.leitweg_id,
        data.status.value,
    )
    assert row is not None
    return _tenant(row)


async def update_tenant(
    conn: asyncpg.Connection, tenant_id: UUID, changes: dict[str, Any], expected_version: int | None
) -> Tenant | None:
    """Apply `changes` (column → value); None when the row is missing or the version moved on."""
    columns = sorted(changes)
    assignments = ", ".join(f"{column} = ${i + 3}" for i, column in enumerate(columns))
    row = await conn.fetchrow(
        f"""UPDATE tenants SET {assignments}{", " if assignments else ""}
                   version = version + 1, updated_at = now()
            WHERE id = $1 AND ($2::int IS NULL OR version = $2)
            RETURNING {TENANT_COLUMNS}""",
        tenant_id,
        expected_version,
        *(changes[c] for c in columns),
    )
    return _tenant(row) if row else None


def _department(row: asyncpg.Record) -> Department:
    return row_to(Department, row)


async def list_departments(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[Department]:
    rows = await conn.fetch(
        """SELECT tenant_id, id, name, email, phone, active FROM departments
           WHERE tenant_id = ANY($1::uuid[]) ORDER BY tenant_id, name""",
        list(tenant_ids),
    )
    return [_department(r) for r in rows]


async def insert_department(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    department_id: UUID,
    name: str,
    email: str | None,
    phone: str | None,
    active: bool,
) -> Department:
    row = await conn.fetchrow(
        """INSERT INTO departments (tenant_id, id, name, email, phone, active)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING tenant_id, id, name, email, phone, active""",
        tenant_id,
        department_id,
        name,
        email,
        phone,
        active,
    )
    assert row is not None
    return _department(row)


async def update_department(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    department_id: UUID,
    name: str,
    email: str | None,
    phone: str | None,
    active: bool,
) -> Department | None:
    row = await conn.fetchrow(
        """UPDATE departments SET name = $3, email = $4, phone = $5, active = $6
           WHERE tenant_id = $1 AND id = $2
           RETURNING tenant_id, id, name, email, phone, active""",
        tenant_id,
        department_id,
        name,
        email,
        phone,
        active,
    )
    return _department(row) if row else None


async def list_closing_days(conn: asyncpg.Connection, tenant_id: UUID) -> list[ClosingDay]:
    rows = await conn.fetch("SELECT day, name FROM closing_days WHERE tenant_id = $1 ORDER BY day", tenant_id)
    return [ClosingDay(day=r["day"], name=r["name"]) for r in rows]


async def list_closing_days_of(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[tuple[UUID, ClosingDay]]:
    """Closing days of several tenants in one query (GraphQL lists)."""
    rows = await conn.fetch(
        "SELECT tenant_id, day, name FROM closing_days WHERE tenant_id = ANY($1::uuid[]) ORDER BY tenant_id, day",
        list(tenant_ids),
    )
    return [(r["tenant_id"], ClosingDay(day=r["day"], name=r["name"])) for r in rows]


async def upsert_closing_day(conn: asyncpg.Connection, tenant_id: UUID, day: date, name: str) -> None:
    await conn.execute(
        """INSERT INTO closing_days (tenant_id, day, name) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, day) DO UPDATE SET name = EXCLUDED.name""",
        tenant_id,
        day,
        name,
    )


async def delete_closing_day(conn: asyncpg.Connection, tenant_id: UUID, day: date) -> bool:
    status = await conn.execute("DELETE FROM closing_days WHERE tenant_id = $1 AND day = $2", tenant_id, day)
    return bool(status != "DELETE 0")


def _issuer(row: asyncpg.Record) -> IdentityIssuer:
    return row_to(IdentityIssuer, row)


ISSUER_COLUMNS = "tenant_id, id, issuer, audience, org_claim, org_value, role_claim, role_mapping"


async def list_identity_issuers(conn: asyncpg.Connection, tenant_id: UUID) -> list[IdentityIssuer]:
    rows = await conn.fetch(
        f"SELECT {ISSUER_COLUMNS} FROM identity_issuers WHERE tenant_id = $1 ORDER BY issuer, org_value",
        tenant_id,
    )
    return [_issuer(r) for r in rows]


async def get_identity_issuer(conn: asyncpg.Connection, tenant_id: UUID, issuer_id: UUID) -> IdentityIssuer:
    row = await conn.fetchrow(
        f"SELECT {ISSUER_COLUMNS} FROM identity_issuers WHERE tenant_id = $1 AND id = $2", tenant_id, issuer_id
    )
    if row is None:
        raise NotFound(_l("identity issuer not found"))
    return _issuer(row)


async def list_identity_issuers_of(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[IdentityIssuer]:
    rows = await conn.fetch(
        f"""SELECT {ISSUER_COLUMNS} FROM identity_issuers WHERE tenant_id = ANY($1::uuid[])
            ORDER BY tenant_id, issuer, org_value""",
        list(tenant_ids),
    )
    return [_issuer(r) for r in rows]


async def insert_identity_issuer(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    issuer_id: UUID,
    issuer: str,
    audience: str,
    org_claim: str | None,
    org_value: str | None,
    role_claim: str,
    role_mapping: dict[str, str],
) -> IdentityIssuer:
    row = await conn.fetchrow(
        f"""INSERT INTO identity_issuers
                (tenant_id, id, issuer, audience, org_claim, org_value, role_claim, role_mapping)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING {ISSUER_COLUMNS}""",
        tenant_id,
        issuer_id,
        issuer,
        audience,
        org_claim,
        org_value,
        role_claim,
        role_mapping,
    )
    assert row is not None
    return _issuer(row)


async def delete_identity_issuer(conn: asyncpg.Connection, tenant_id: UUID, issuer_id: UUID) -> str | None:
    """Delete and return the issuer URL (to drop its cached bindings), None when missing."""
    issuer: str | None = await conn.fetchval(
        "DELETE FROM identity_issuers WHERE tenant_id = $1 AND id = $2 RETURNING issuer", tenant_id, issuer_id
    )
    return issuer


async def issuer_bindings(conn: asyncpg.Connection, issuer: str) -> list[asyncpg.Record]:
    """All tenants that trust `issuer` (SECURITY DEFINER lookup: no tenant is known yet)."""
    return list(
        await conn.fetch(
            """SELECT tenant_id, tenant_slug, is_operator, audience, org_claim, org_value, role_claim, role_mapping,
                  group_claim
           FROM auth_issuer_bindings($1)""",
            issuer,
        )
    )


async def issuer_sharing(conn: asyncpg.Connection, issuer: str) -> list[asyncpg.Record]:
    """(org_claim, told_apart) of every tenant trusting `issuer`: a cross-tenant lookup that names
    no tenant and no claim value (SECURITY DEFINER, for the shared-issuer rule inside a request)."""
    return list(await conn.fetch("SELECT org_claim, told_apart FROM identity_issuer_sharing($1)", issuer))


async def client_tenant_ids(conn: asyncpg.Connection, operator_id: UUID, day: date) -> list[UUID]:
    return list(await conn.fetchval("SELECT auth_client_tenant_ids($1, $2)", operator_id, day))


async def settled_client_tenant_ids(conn: asyncpg.Connection, operator_id: UUID, day: date) -> list[UUID]:
    return list(await conn.fetchval("SELECT auth_settled_client_tenant_ids($1, $2)", operator_id, day))


async def all_tenant_ids(conn: asyncpg.Connection) -> list[UUID]:
    return list(await conn.fetchval("SELECT auth_all_tenant_ids()"))


def _agreement(row: asyncpg.Record) -> Agreement:
    return row_to(Agreement, row)


async def list_agreements(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[Agreement]:
    rows = await conn.fetch(
        f"""SELECT {AGREEMENT_COLUMNS} FROM agreements
            WHERE tenant_id = ANY($1::uuid[]) OR operator_tenant_id = ANY($1::uuid[])
            ORDER BY starts_on, tenant_id""",
        list(tenant_ids),
    )
    return [_agreement(r) for r in rows]


async def find_agreement(conn: asyncpg.Connection, tenant_id: UUID, agreement_id: UUID) -> Agreement | None:
    row = await conn.fetchrow(
        f"SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE tenant_id = $1 AND id = $2", tenant_id, agreement_id
    )
    return _agreement(row) if row else None


async def find_agreement_by_id(
    conn: asyncpg.Connection, agreement_id: UUID, tenant_ids: Sequence[UUID]
) -> Agreement | None:
    row = await conn.fetchrow(
        f"SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE id = $1 AND tenant_id = ANY($2::uuid[])",
        agreement_id,
        list(tenant_ids),
    )
    return _agreement(row) if row else None


async def insert_agreement(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    agreement_id: UUID,
    operator_tenant_id: UUID,
    starts_on: date,
    initial_term_months: int,
    renewal_term_months: int,
    notice_period_months: int,
    scope_notes: str,
) -> Agreement:
    row = await conn.fetchrow(
        f"""INSERT INTO agreements (tenant_id, id, operator_tenant_id, starts_on, initial_term_months,
                                    renewal_term_months, notice_period_months, scope_notes)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING {AGREEMENT_COLUMNS}""",
        tenant_id,
        agreement_id,
        operator_tenant_id,
        starts_on,
        initial_term_months,
        renewal_term_months,
        notice_period_months,
        scope_notes,
    )
    assert row is not None
    return _agreement(row)


async def set_agreement_end(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    agreement_id: UUID,
    ends_on: date,
    noticed_on: date,
    noticed_by_party: str,
    noticed_by: str,
) -> Agreement | None:
    row = await conn.fetchrow(
        f"""UPDATE agreements SET ends_on = $3, noticed_on = $4, noticed_by_party = $5, noticed_by = $6,
                   version = version + 1
            WHERE tenant_id = $1 AND id = $2 AND ends_on IS NULL
            RETURNING {AGREEMENT_COLUMNS}""",
        tenant_id,
        agreement_id,
        ends_on,
        noticed_on,
        noticed_by_party,
        noticed_by,
    )
    return _agreement(row) if row else None


async def lock_agreements_between(conn: asyncpg.Connection, tenant_id: UUID, operator_tenant_id: UUID) -> None:
    """Until the transaction ends, the one who concludes an agreement between these two. Two
    inserts racing on the exclusion constraint wait on each other and, three or more at once,
    deadlock; taken in turn, the second finds the first's agreement and is told so."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('agreement:' || $1::uuid::text || ':' || $2::uuid::text, 0))",
        tenant_id,
        operator_tenant_id,
    )


async def overlapping_agreement_exists(
    conn: asyncpg.Connection, tenant_id: UUID, operator_tenant_id: UUID, starts_on: date
) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM agreements
                          WHERE tenant_id = $1 AND operator_tenant_id = $2
                            AND (ends_on IS NULL OR ends_on >= $3))""",
            tenant_id,
            operator_tenant_id,
            starts_on,
        )
    )
