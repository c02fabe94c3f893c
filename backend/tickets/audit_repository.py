"""SQL of the audit trail of reads of the citizen's data: append-only, one row per ticket read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from backend.db.rows import row_to
from backend.tickets.schemas import AuditEntry, AuditWhat


async def insert_audit(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[UUID, UUID]],
    *,
    actor_subject: str,
    actor_issuer: str,
    actor_tenant_id: UUID,
    via: str,
    what: AuditWhat,
) -> None:
    """One audit row per (tenant, ticket) read."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO ticket_audit (tenant_id, id, ticket_id, actor_subject, actor_issuer, actor_tenant_id, via, what)
           SELECT r.tenant_id, gen_random_uuid(), r.ticket_id, $3, $4, $5, $6, $7
           FROM unnest($1::uuid[], $2::uuid[]) AS r (tenant_id, ticket_id)""",
        [r[0] for r in rows],
        [r[1] for r in rows],
        actor_subject,
        actor_issuer,
        actor_tenant_id,
        via,
        what.value,
    )


async def list_audit(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    ticket_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[AuditEntry]:
    rows = await conn.fetch(
        """SELECT id, ticket_id, actor_subject, actor_issuer, actor_tenant_id, via, what, at FROM ticket_audit
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR ticket_id = $2)
             AND ($3::timestamptz IS NULL OR (at, id) > ($3, $4::uuid))
           ORDER BY at, id LIMIT $5""",
        tenant_id,
        ticket_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [row_to(AuditEntry, r) for r in rows]
