"""SQL of the tickets' background work: deadlines ("due soon", "overdue") and retention (the
citizen's data erased from closed tickets). Across all tenants of the worker's transaction; rows
another instance or a request holds are skipped until the next round.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def lock_deadline_candidates(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Open tickets that reached "due soon" or "overdue" without that event yet, locked and
    ordered by tenant (counter locks are then always taken in the same order); tickets another
    instance or a request holds right now are skipped until the next round."""
    return list(
        await conn.fetch(
            """SELECT t.tenant_id, t.id, t.due_at, t.deadline_seq,
                      t.due_at <= $1 AS overdue,
                      EXISTS (SELECT 1 FROM ticket_outbox o WHERE o.tenant_id = t.tenant_id AND o.ticket_id = t.id
                                AND o.dedupe_key = 'due_soon:' || t.deadline_seq) AS due_soon_sent,
                      EXISTS (SELECT 1 FROM ticket_outbox o WHERE o.tenant_id = t.tenant_id AND o.ticket_id = t.id
                                AND o.dedupe_key = 'overdue:' || t.deadline_seq) AS overdue_sent
               FROM tickets t LEFT JOIN ticket_settings s ON s.tenant_id = t.tenant_id
               WHERE t.status IN ('new', 'forwarded', 'in_progress')
                 AND t.due_at <= $1::timestamptz + interval '1 day'  -- the widest window: uses the index
                 AND t.due_at - make_interval(mins => coalesce(s.due_soon_minutes, 120)) <= $1
                 AND (NOT EXISTS (SELECT 1 FROM ticket_outbox o WHERE o.tenant_id = t.tenant_id AND o.ticket_id = t.id
                                    AND o.dedupe_key = 'due_soon:' || t.deadline_seq)
                      OR (t.due_at <= $1 AND NOT EXISTS (
                              SELECT 1 FROM ticket_outbox o WHERE o.tenant_id = t.tenant_id AND o.ticket_id = t.id
                                AND o.dedupe_key = 'overdue:' || t.deadline_seq)))
               ORDER BY t.tenant_id, t.due_at
               LIMIT $2
               FOR UPDATE OF t SKIP LOCKED""",
            now,
            limit,
        )
    )


async def lock_purgeable(conn: asyncpg.Connection, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
    """Closed tickets past their tenant's retention period whose personal data is still there."""
    rows = await conn.fetch(
        """SELECT t.tenant_id, t.id FROM tickets t LEFT JOIN ticket_settings s ON s.tenant_id = t.tenant_id
           WHERE t.status = 'closed' AND t.personal_data_erased_at IS NULL
             AND t.closed_at <= $1::timestamptz - make_interval(days => coalesce(s.retention_days, 90))
           ORDER BY t.tenant_id, t.closed_at
           LIMIT $2
           FOR UPDATE OF t SKIP LOCKED""",
        now,
        limit,
    )
    return [(r["tenant_id"], r["id"]) for r in rows]


async def erase_personal_data(conn: asyncpg.Connection, tenant_id: UUID, ticket_id: UUID) -> None:
    """Delete the citizen's data and every free text that may hold it; keep the ticket's facts."""
    await conn.execute("DELETE FROM ticket_personal_data WHERE tenant_id = $1 AND ticket_id = $2", tenant_id, ticket_id)
    await conn.execute(
        "UPDATE ticket_comments SET body = '', erased = true WHERE tenant_id = $1 AND ticket_id = $2",
        tenant_id,
        ticket_id,
    )
    await conn.execute(
        "UPDATE ticket_callback_attempts SET note = NULL WHERE tenant_id = $1 AND ticket_id = $2",
        tenant_id,
        ticket_id,
    )
