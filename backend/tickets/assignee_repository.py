"""SQL for tickets assigned to people of the town's directory (decision 027). The directory's
table is read here, not through the directory's code: the directory calls the tickets service
(callback promise, returning tickets), so tickets importing the directory would go in a circle."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

_NAME = "btrim(p.given_name || ' ' || p.family_name)"


async def directory_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> asyncpg.Record | None:
    """An active person of the town's directory: id and the name tickets show. Held FOR KEY
    SHARE: a deprovisioning's lock of the person (FOR UPDATE) waits for the assignment and then
    returns its ticket to the queue, or came first and the person is found gone or inactive (the
    row is read again). KEY SHARE, not SHARE: an assignment locks its ticket first, and a
    deactivation updates the person before returning their tickets; SHARE would deadlock them."""
    return await conn.fetchrow(
        f"""SELECT p.id, {_NAME} AS name FROM directory_people p WHERE p.tenant_id = $1 AND p.id = $2 AND p.active
            FOR KEY SHARE""",
        tenant_id,
        person_id,
    )


async def directory_people_named(conn: asyncpg.Connection, tenant_id: UUID, text: str) -> list[asyncpg.Record]:
    """Active people whose userName, full name or family name is `text` (case does not matter)."""
    return await conn.fetch(
        f"""SELECT p.id, {_NAME} AS name FROM directory_people p
            WHERE p.tenant_id = $1 AND p.active
              AND (lower(p.user_name) = lower($2) OR lower({_NAME}) = lower($2) OR lower(p.family_name) = lower($2))
            ORDER BY p.id LIMIT 2""",
        tenant_id,
        text,
    )


async def has_directory(conn: asyncpg.Connection, tenant_id: UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM directory_people WHERE tenant_id = $1 AND active)", tenant_id)
    )


async def lock_open_tickets_of(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        """SELECT id FROM tickets WHERE tenant_id = $1 AND assignee_person_id = $2
              AND status IN ('new', 'forwarded', 'in_progress')
           ORDER BY number FOR UPDATE""",
        tenant_id,
        person_id,
    )
    return [r["id"] for r in rows]


async def department_of(conn: asyncpg.Connection, tenant_id: UUID, subject: str) -> UUID | None:
    department: UUID | None = await conn.fetchval(
        "SELECT department_id FROM directory_people WHERE tenant_id = $1 AND subject = $2 AND active",
        tenant_id,
        subject,
    )
    return department


async def group_departments(conn: asyncpg.Connection, tenant_id: UUID, groups: Sequence[str]) -> list[UUID]:
    """The open departments the town maps these groups of its identity provider to (decision
    037); a group path (`/a/b`) counts for its subgroups too (`/a/b/c`)."""
    rows = await conn.fetch(
        """SELECT DISTINCT g.department_id FROM directory_department_groups g
           JOIN departments d ON d.tenant_id = g.tenant_id AND d.id = g.department_id AND d.active
           WHERE g.tenant_id = $1
             AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS v (name)
                         WHERE v.name = g.group_name
                            OR (left(g.group_name, 1) = '/'
                                AND starts_with(v.name, rtrim(g.group_name, '/') || '/')))
           ORDER BY g.department_id""",
        tenant_id,
        list(groups),
    )
    return [r["department_id"] for r in rows]
