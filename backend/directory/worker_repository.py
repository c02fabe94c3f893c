"""SQL of the directory's background work: the telephone events and own switches that have run
out and are not announced yet (decision 037)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def claim_expired_presence(conn: asyncpg.Connection, now: datetime, since: datetime) -> list[asyncpg.Record]:
    """(tenant_id, person_id) of every telephone event and own switch that ran out in
    (since, now] and was not announced, marked announced. Row locks make it once: a second
    instance's UPDATE waits for this one's commit, then finds the rows announced."""
    return list(
        await conn.fetch(
            """WITH phone AS (
                   UPDATE directory_presence_phone SET expiry_announced = true
                   WHERE NOT expiry_announced AND expires_at <= $1 AND expires_at > $2
                   RETURNING tenant_id, person_id),
               switch AS (
                   UPDATE directory_presence_switch SET expiry_announced = true
                   WHERE NOT expiry_announced AND until <= $1 AND until > $2
                   RETURNING tenant_id, person_id)
               SELECT DISTINCT tenant_id, person_id FROM (SELECT * FROM phone UNION ALL SELECT * FROM switch) x
               ORDER BY tenant_id, person_id""",
            now,
            since,
        )
    )
