"""SQL for the centre now: open calls and agent statuses. Tenants always given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from backend.centre.schemas import AgentStatusView
from backend.db.rows import row_to


async def open_calls(conn: asyncpg.Connection, tenant_ids: Sequence[UUID], since: datetime) -> list[asyncpg.Record]:
    """Per tenant: calls offered since `since` still waiting (count, oldest offer); and the agents
    talking now (answered, not ended) as one array per tenant."""
    return list(
        await conn.fetch(
            """SELECT tenant_id,
                      count(*) FILTER (WHERE answered_at IS NULL) AS waiting,
                      min(offered_at) FILTER (WHERE answered_at IS NULL) AS oldest_waiting_since,
                      coalesce(array_agg(DISTINCT agent) FILTER (WHERE answered_at IS NOT NULL AND agent IS NOT NULL),
                               '{}') AS talking
               FROM calls
               WHERE tenant_id = ANY($1::uuid[]) AND ended_at IS NULL AND offered_at >= $2
               GROUP BY tenant_id""",
            list(tenant_ids),
            since,
        )
    )


async def agent_statuses(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[AgentStatusView]:
    rows = await conn.fetch(
        "SELECT tenant_id, agent, status, since FROM agent_statuses WHERE tenant_id = ANY($1::uuid[])",
        list(tenant_ids),
    )
    return [row_to(AgentStatusView, r) for r in rows]


async def upsert_agent_status(
    conn: asyncpg.Connection, tenant_id: UUID, agent: str, status: str, since: datetime, set_by: str
) -> AgentStatusView:
    row = await conn.fetchrow(
        """INSERT INTO agent_statuses (tenant_id, agent, status, since, set_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, agent) DO UPDATE SET
               status = EXCLUDED.status, set_by = EXCLUDED.set_by,
               since = CASE WHEN agent_statuses.status = EXCLUDED.status THEN agent_statuses.since
                            ELSE EXCLUDED.since END
           RETURNING tenant_id, agent, status, since""",
        tenant_id,
        agent,
        status,
        since,
        set_by,
    )
    assert row is not None
    return row_to(AgentStatusView, row)
