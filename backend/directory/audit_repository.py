"""SQL of a person's private number, the audit of its reads (append-only), and the town's
department groups of its identity provider (decision 037)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from backend.db.rows import row_to
from backend.directory.schemas import DepartmentGroup, PrivateNumberRead


async def find_private_number(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> str | None:
    number: str | None = await conn.fetchval(
        "SELECT number FROM directory_private_numbers WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id
    )
    return number


async def set_private_number(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, number: str | None) -> None:
    if number is None:
        await conn.execute(
            "DELETE FROM directory_private_numbers WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id
        )
        return
    await conn.execute(
        """INSERT INTO directory_private_numbers (tenant_id, person_id, number) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, person_id) DO UPDATE SET number = $3""",
        tenant_id,
        person_id,
        number,
    )


async def insert_read(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    person_id: UUID,
    *,
    actor_subject: str,
    actor_issuer: str,
    actor_tenant_id: UUID,
    via: str,
) -> None:
    await conn.execute(
        """INSERT INTO directory_private_number_reads
               (tenant_id, id, person_id, actor_subject, actor_issuer, actor_tenant_id, via)
           VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, $6)""",
        tenant_id,
        person_id,
        actor_subject,
        actor_issuer,
        actor_tenant_id,
        via,
    )


async def list_reads(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    person_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[PrivateNumberRead]:
    rows = await conn.fetch(
        """SELECT id, person_id, actor_subject, actor_issuer, actor_tenant_id, via, at
           FROM directory_private_number_reads
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR person_id = $2)
             AND ($3::timestamptz IS NULL OR (at, id) > ($3, $4::uuid))
           ORDER BY at, id LIMIT $5""",
        tenant_id,
        person_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [row_to(PrivateNumberRead, r) for r in rows]


async def group_claim(conn: asyncpg.Connection, tenant_id: UUID) -> str | None:
    claim: str | None = await conn.fetchval("SELECT claim FROM directory_group_claims WHERE tenant_id = $1", tenant_id)
    return claim


async def department_groups(conn: asyncpg.Connection, tenant_id: UUID) -> list[DepartmentGroup]:
    rows = await conn.fetch(
        """SELECT g.group_name, g.department_id, d.name AS department_name
           FROM directory_department_groups g
           JOIN departments d ON d.tenant_id = g.tenant_id AND d.id = g.department_id
           WHERE g.tenant_id = $1 ORDER BY g.group_name""",
        tenant_id,
    )
    return [row_to(DepartmentGroup, r) for r in rows]


async def replace_group_membership(
    conn: asyncpg.Connection, tenant_id: UUID, claim: str | None, groups: Sequence[tuple[str, UUID]]
) -> None:
    """The town's claim and its groups, replaced whole (no claim: membership from the directory only).
    Replacements of one town take turns: two at once each deleted what they saw (nothing new)
    and inserted, and the second met the first's claim on the primary key, a 500."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('group-membership:' || $1::uuid::text, 0))", tenant_id
    )
    await conn.execute("DELETE FROM directory_department_groups WHERE tenant_id = $1", tenant_id)
    await conn.execute("DELETE FROM directory_group_claims WHERE tenant_id = $1", tenant_id)
    if claim is None:
        return
    await conn.execute("INSERT INTO directory_group_claims (tenant_id, claim) VALUES ($1, $2)", tenant_id, claim)
    await conn.execute(
        """INSERT INTO directory_department_groups (tenant_id, group_name, department_id)
           SELECT $1, g.name, g.department_id FROM unnest($2::text[], $3::uuid[]) AS g (name, department_id)""",
        tenant_id,
        [g[0] for g in groups],
        [g[1] for g in groups],
    )


async def active_departments(conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT id FROM departments WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND active", tenant_id, list(ids)
    )
    return {r["id"] for r in rows}
