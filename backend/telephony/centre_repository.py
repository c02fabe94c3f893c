"""SQL for the centre's figures read straight from the calls: the service level with its
thresholds (which the daily rollups cannot know in advance) and the live view of the centre."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

import asyncpg
from asyncpg import Record

# A call's wait: as reported, else derived from its times (answered, or hung up, or still waiting).
_WAIT = "coalesce(c.wait_seconds, extract(epoch FROM coalesce(c.answered_at, c.ended_at, $5) - c.offered_at))"


async def service_level_counts(
    conn: asyncpg.Connection,
    settings: Sequence[tuple[UUID, int, int]],
    start: date,
    end: date,
    now: datetime,
) -> list[asyncpg.Record]:
    """Per tenant and purpose ('115' or other) for the local days [start, end): calls offered,
    those hung up unanswered within the tenant's grace seconds, those answered within its
    service-level seconds, those still waiting no longer than that at `now` (undecided), and
    the outcomes the first-contact rate counts, and the transfers taken (settled by qualified
    transfer) and not taken (whatever became of the call then: usually a message).
    `settings`: (tenant id, service-level seconds, grace seconds) per tenant."""
    return list(
        await conn.fetch(
            f"""SELECT c.tenant_id, c.purpose = '115' AS one_one_five,
                   count(*) AS offered,
                   count(*) FILTER (WHERE c.answered_at IS NULL AND c.ended_at IS NOT NULL
                                      AND {_WAIT} <= s.grace) AS abandoned_short,
                   count(*) FILTER (WHERE c.answered_at IS NOT NULL AND {_WAIT} <= s.within) AS answered_in_time,
                   count(*) FILTER (WHERE c.answered_at IS NULL AND c.ended_at IS NULL
                                      AND {_WAIT} <= s.within) AS undecided,
                   count(*) FILTER (WHERE c.outcome = 'settled_first_contact') AS settled_first_contact,
                   count(*) FILTER (WHERE c.outcome = 'forwarded_as_ticket') AS forwarded_as_ticket,
                   count(*) FILTER (WHERE c.outcome = 'transferred_to_department') AS transferred,
                   count(*) FILTER (WHERE c.outcome = 'transferred_to_department'
                                      AND c.transfer_taken) AS transfers_taken,
                   count(*) FILTER (WHERE NOT c.transfer_taken) AS transfers_not_taken
            FROM unnest($1::uuid[], $2::int[], $3::int[]) AS s(tenant_id, within, grace)
            JOIN tenants t ON t.id = s.tenant_id
            JOIN calls c ON c.tenant_id = s.tenant_id
             AND c.offered_at >= ($4::date - 1)::timestamp AT TIME ZONE 'UTC'
             AND c.offered_at < ($6::date + 1)::timestamp AT TIME ZONE 'UTC'
             AND (c.offered_at AT TIME ZONE t.time_zone)::date >= $4
             AND (c.offered_at AT TIME ZONE t.time_zone)::date < $6
            GROUP BY 1, 2""",
            [s[0] for s in settings],
            [s[1] for s in settings],
            [s[2] for s in settings],
            start,
            now,
            end,
        )
    )


# --- re-assigning 115 calls --------------------------------------------------------------------


async def call_invoiced(conn: asyncpg.Connection, tenant_id: UUID, call_id: UUID) -> bool:
    """Whether an issued invoice of the call's tenant covers the call's local day (a cancelled
    one does not: its days are open again)."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (
                   SELECT 1 FROM calls c
                   JOIN tenants t ON t.id = c.tenant_id
                   JOIN invoices i ON i.tenant_id = c.tenant_id AND i.status = 'issued' AND i.kind = 'invoice'
                    AND i.period @> (c.offered_at AT TIME ZONE t.time_zone)::date
                   WHERE c.tenant_id = $1 AND c.id = $2)""",
            tenant_id,
            call_id,
        )
    )


async def assigned_before(conn: asyncpg.Connection, tenant_id: UUID, call_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT tenant_assigned_from IS NOT NULL FROM calls WHERE tenant_id = $1 AND id = $2", tenant_id, call_id
        )
    )


async def reassign_call(
    conn: asyncpg.Connection,
    from_tenant_id: UUID,
    call_id: UUID,
    to_tenant_id: UUID,
    by: str,
    reason: str,
    at: datetime,
) -> UUID | None:
    """Move an assigned call to another tenant and record the event; None when it moved meanwhile.
    An UPDATE of the key: the billing triggers take the old row off and put the new one on."""
    source_tenant_id = await conn.fetchval(
        """UPDATE calls SET tenant_id = $3, tenant_assigned_from = $1, tenant_assigned_by = $4,
                   tenant_assigned_at = $5, updated_at = now()
           WHERE tenant_id = $1 AND id = $2 AND tenant_assigned_from IS NOT NULL
           RETURNING source_tenant_id""",
        from_tenant_id,
        call_id,
        to_tenant_id,
        by,
        at,
    )
    if source_tenant_id is None:
        return None
    await conn.execute(
        """INSERT INTO call_reassignments (tenant_id, id, call_id, from_tenant_id, to_tenant_id, reassigned_by,
                                           reason, reassigned_at)
           VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, $6, $7)""",
        source_tenant_id,
        call_id,
        from_tenant_id,
        to_tenant_id,
        by,
        reason,
        at,
    )
    return call_id


async def list_reassignments(conn: asyncpg.Connection, tenant_ids: Sequence[UUID], call_id: UUID) -> list[Record]:
    return list(
        await conn.fetch(
            """SELECT id, call_id, from_tenant_id, to_tenant_id, reassigned_by, reason, reassigned_at
               FROM call_reassignments WHERE tenant_id = ANY($1::uuid[]) AND call_id = $2
               ORDER BY reassigned_at, id""",
            list(tenant_ids),
            call_id,
        )
    )
