"""SQL for ticket webhooks: endpoints, their sealed secrets, the deliveries fanned out from the
outbox, and each delivery's attempts. Explicit columns, $n parameters, tenants always given
(the worker's claims run across the tenants of its transaction)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from backend.db.rows import row_to
from backend.errors import NotFound
from backend.i18n import _l
from backend.tickets.schemas import WebhookAttempt, WebhookDelivery, WebhookEndpoint

ENDPOINT_COLUMNS = "tenant_id, id, url, description, active, created_at, failing_since, paused_at, paused_reason"
DELIVERY_COLUMNS = """d.id, d.event_id, d.endpoint_id, d.ticket_id, o.kind, d.change_seq, d.status, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at"""


async def insert_endpoint(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, url: str, description: str
) -> WebhookEndpoint:
    row = await conn.fetchrow(
        f"""INSERT INTO ticket_webhook_endpoints (tenant_id, id, url, description) VALUES ($1, $2, $3, $4)
            RETURNING {ENDPOINT_COLUMNS}""",
        tenant_id,
        endpoint_id,
        url,
        description,
    )
    return row_to(WebhookEndpoint, row)


async def list_endpoints(conn: asyncpg.Connection, tenant_id: UUID) -> list[WebhookEndpoint]:
    rows = await conn.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM ticket_webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at",
        tenant_id,
    )
    return [row_to(WebhookEndpoint, r) for r in rows]


async def get_endpoint(conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID) -> WebhookEndpoint:
    row = await conn.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS} FROM ticket_webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        endpoint_id,
    )
    if row is None:
        raise NotFound(_l("webhook endpoint not found"))
    return row_to(WebhookEndpoint, row)


async def deactivate_endpoint(conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID) -> None:
    await conn.execute(
        "UPDATE ticket_webhook_endpoints SET active = false WHERE tenant_id = $1 AND id = $2", tenant_id, endpoint_id
    )
    await conn.execute(
        """UPDATE ticket_webhook_deliveries SET status = 'cancelled'
           WHERE tenant_id = $1 AND endpoint_id = $2 AND status = 'pending'""",
        tenant_id,
        endpoint_id,
    )


async def endpoint_answered(conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID) -> None:
    await conn.execute(
        """UPDATE ticket_webhook_endpoints SET failing_since = NULL
           WHERE tenant_id = $1 AND id = $2 AND failing_since IS NOT NULL""",
        tenant_id,
        endpoint_id,
    )


async def endpoint_failed(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, now: datetime, give_up_after: timedelta
) -> bool:
    """Note the failure; pause the endpoint once it has failed for `give_up_after`. True when
    this call paused it."""
    paused = await conn.fetchval(
        """UPDATE ticket_webhook_endpoints
           SET failing_since = coalesce(failing_since, $3),
               -- (the old failing_since: NULL on a first failure, which never pauses)
               paused_at = CASE WHEN failing_since <= $3 - $4::interval THEN $3 END,
               paused_reason = CASE WHEN failing_since <= $3 - $4::interval
                                    THEN 'every attempt failed since ' || to_char(failing_since AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI"Z"') END
           WHERE tenant_id = $1 AND id = $2 AND paused_at IS NULL
           RETURNING paused_at IS NOT NULL""",
        tenant_id,
        endpoint_id,
        now,
        give_up_after,
    )
    return bool(paused)


async def resume_endpoint(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, now: datetime
) -> WebhookEndpoint | None:
    """Deliveries are attempted again, the waiting ones at once (in order, as ever)."""
    row = await conn.fetchrow(
        f"""UPDATE ticket_webhook_endpoints SET paused_at = NULL, paused_reason = NULL, failing_since = NULL
            WHERE tenant_id = $1 AND id = $2 AND active
            RETURNING {ENDPOINT_COLUMNS}""",
        tenant_id,
        endpoint_id,
    )
    if row is None:
        return None
    await conn.execute(
        """UPDATE ticket_webhook_deliveries SET next_attempt_at = $3
           WHERE tenant_id = $1 AND endpoint_id = $2 AND status = 'pending' AND next_attempt_at > $3""",
        tenant_id,
        endpoint_id,
        now,
    )
    return row_to(WebhookEndpoint, row)


async def insert_secret(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, secret: str, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO ticket_webhook_secrets (tenant_id, id, endpoint_id, secret, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        tenant_id,
        uuid4(),
        endpoint_id,
        secret,
        at,
    )


async def retire_secrets(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, now: datetime, grace: timedelta
) -> datetime:
    """Let the current secrets expire after `grace` and drop those already expired."""
    expires = now + grace
    await conn.execute(
        """DELETE FROM ticket_webhook_secrets
           WHERE tenant_id = $1 AND endpoint_id = $2 AND expires_at IS NOT NULL AND expires_at <= $3""",
        tenant_id,
        endpoint_id,
        now,
    )
    await conn.execute(
        """UPDATE ticket_webhook_secrets SET expires_at = $3
           WHERE tenant_id = $1 AND endpoint_id = $2 AND (expires_at IS NULL OR expires_at > $3)""",
        tenant_id,
        endpoint_id,
        expires,
    )
    return expires


async def all_secrets(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every stored secret of the acting tenants (a few per endpoint), for re-sealing."""
    return list(await conn.fetch("SELECT tenant_id, id, endpoint_id, secret FROM ticket_webhook_secrets"))


async def replace_secret(conn: asyncpg.Connection, tenant_id: UUID, secret_id: UUID, old: str, new: str) -> None:
    await conn.execute(
        "UPDATE ticket_webhook_secrets SET secret = $4 WHERE tenant_id = $1 AND id = $2 AND secret = $3",
        tenant_id,
        secret_id,
        old,
        new,
    )


async def signing_secrets(conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, now: datetime) -> list[str]:
    rows = await conn.fetch(
        """SELECT secret FROM ticket_webhook_secrets
           WHERE tenant_id = $1 AND endpoint_id = $2 AND (expires_at IS NULL OR expires_at > $3)
           ORDER BY created_at DESC""",
        tenant_id,
        endpoint_id,
        now,
    )
    return [r["secret"] for r in rows]


async def claim_deliveries(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Pending deliveries that are due, at most one per (endpoint, ticket): the earliest change.
    Locked until the transaction ends; another instance skips them, and a delivery waits while
    an earlier change of the same ticket to the same endpoint is still pending."""
    return list(
        await conn.fetch(
            """SELECT d.tenant_id, d.id, d.event_id, d.endpoint_id, d.ticket_id, d.change_seq, d.attempts,
                      e.url, o.kind, o.payload, o.created_at AS event_at
               FROM ticket_webhook_deliveries d
               JOIN ticket_webhook_endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
               JOIN ticket_outbox o ON o.tenant_id = d.tenant_id AND o.id = d.event_id
               WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.active AND e.paused_at IS NULL
                 AND NOT EXISTS (
                     SELECT 1 FROM ticket_webhook_deliveries p
                     WHERE p.tenant_id = d.tenant_id AND p.endpoint_id = d.endpoint_id
                       AND p.ticket_id = d.ticket_id AND p.status = 'pending' AND p.change_seq < d.change_seq)
               ORDER BY d.next_attempt_at, d.change_seq
               LIMIT $2
               FOR UPDATE OF d SKIP LOCKED""",
            now,
            limit,
        )
    )


async def record_attempt(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    delivery_id: UUID,
    *,
    attempt: int,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    delivered: bool,
    next_attempt_at: datetime | None,
) -> None:
    await conn.execute(
        """INSERT INTO ticket_webhook_attempts (tenant_id, id, delivery_id, attempt, attempted_at, status_code, error,
                                                duration_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        tenant_id,
        uuid4(),
        delivery_id,
        attempt,
        attempted_at,
        status_code,
        error,
        duration_ms,
    )
    await conn.execute(
        """UPDATE ticket_webhook_deliveries
           SET attempts = $3, last_attempt_at = $4, last_status_code = $5, last_error = $6,
               status = CASE WHEN $7::boolean THEN 'delivered' ELSE status END,
               delivered_at = CASE WHEN $7::boolean THEN $4 ELSE delivered_at END,
               next_attempt_at = coalesce($8::timestamptz, next_attempt_at)
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        delivery_id,
        attempt,
        attempted_at,
        status_code,
        error,
        delivered,
        next_attempt_at,
    )


async def list_deliveries(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, status: str | None, limit: int
) -> list[WebhookDelivery]:
    rows = await conn.fetch(
        f"""SELECT {DELIVERY_COLUMNS}
            FROM ticket_webhook_deliveries d
            JOIN ticket_outbox o ON o.tenant_id = d.tenant_id AND o.id = d.event_id
            WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND ($3::text IS NULL OR d.status = $3)
            ORDER BY d.created_at DESC, d.change_seq DESC LIMIT $4""",
        tenant_id,
        endpoint_id,
        status,
        limit,
    )
    return [row_to(WebhookDelivery, r) for r in rows]


async def list_attempts(conn: asyncpg.Connection, tenant_id: UUID, delivery_id: UUID) -> list[WebhookAttempt]:
    rows = await conn.fetch(
        """SELECT attempt, attempted_at, status_code, error, duration_ms FROM ticket_webhook_attempts
           WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempt""",
        tenant_id,
        delivery_id,
    )
    return [row_to(WebhookAttempt, r) for r in rows]


async def fan_out_deliveries(
    conn: asyncpg.Connection, tenant_id: UUID, event_id: UUID, ticket_id: UUID, change_seq: int, at: datetime
) -> int:
    """One pending delivery per active endpoint of the tenant, in the change's transaction."""
    status = await conn.execute(
        """INSERT INTO ticket_webhook_deliveries (tenant_id, id, event_id, endpoint_id, ticket_id, change_seq,
                                                  next_attempt_at, created_at)
           SELECT e.tenant_id, gen_random_uuid(), $2, e.id, $3, $4, $5, $5
           FROM ticket_webhook_endpoints e WHERE e.tenant_id = $1 AND e.active""",
        tenant_id,
        event_id,
        ticket_id,
        change_seq,
        at,
    )
    return int(status.split()[-1])


# --- figures for the metrics (per town, across the tenants of the transaction) ----------------


async def operations_figures(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Per town, for the metrics: webhook deliveries waiting and the oldest one's age, paused
    endpoints, open tickets past their callback deadline (as of `now`)."""
    return list(
        await conn.fetch(
            """SELECT t.slug,
                      coalesce(d.waiting, 0) AS deliveries_waiting,
                      coalesce(d.oldest_seconds, 0) AS oldest_waiting_seconds,
                      (SELECT count(*) FROM ticket_webhook_endpoints e
                        WHERE e.tenant_id = t.id AND e.active AND e.paused_at IS NOT NULL) AS endpoints_paused,
                      (SELECT count(*) FROM tickets k
                        WHERE k.tenant_id = t.id AND k.status IN ('new', 'forwarded', 'in_progress')
                          AND k.due_at <= $1::timestamptz) AS tickets_overdue
               FROM tenants t
               LEFT JOIN LATERAL (
                   SELECT count(*) AS waiting,
                          extract(epoch FROM $1::timestamptz - min(w.created_at))::float8 AS oldest_seconds
                   FROM ticket_webhook_deliveries w WHERE w.tenant_id = t.id AND w.status = 'pending') d ON true
               ORDER BY t.slug""",
            now,
        )
    )
