"""SQL for the centre's figures read straight from the calls: the service level with its
thresholds (which the daily rollups cannot know in advance) and the live view of the centre."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

import asyncpg

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
    the outcomes the first-contact rate counts.
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
                   count(*) FILTER (WHERE c.outcome = 'transferred_to_department') AS transferred
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
