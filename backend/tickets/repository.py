"""SQL for tickets and what hangs off them. Explicit columns, $n parameters, tenants always given.

Lock order inside one transaction, everywhere: first the ticket row(s), then the tenant's
`ticket_counters` row (taken by `next_change_seq`, held until commit). The counter lock is what
makes change numbers follow commit order; taking it last keeps its hold short and deadlock-free.

The ticket rows and what hangs off them (events, comments, attempts, figures) share
TICKET_SELECT, SLA_STATE_SQL and FIRST_REACHED_SQL. The audit trail's SQL is audit_repository.py,
the background work's (deadlines, retention) worker_repository.py, webhooks' webhook_repository.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from backend.db.rows import row_to
from backend.errors import NotFound
from backend.i18n import _l
from backend.tickets.schemas import (
    CallbackAttempt,
    CallbackFigures,
    Comment,
    DeadlineRule,
    EventKind,
    PersonalData,
    Ticket,
    TicketEvent,
    TicketFilter,
    TicketRoute,
    TicketSettings,
)

DEFAULT_DEADLINE_RULE = DeadlineRule.WORKING_DAYS_24H
DEFAULT_RETENTION_DAYS = 90
DEFAULT_DUE_SOON_MINUTES = 120

# The SLA state as SQL ($1 is "now"); the same rule as service.sla_state (a test checks both agree).
SLA_STATE_SQL = """CASE
    WHEN t.status IN ('answered', 'closed') THEN
        CASE WHEN t.answered_at IS NOT NULL AND t.answered_at <= t.due_at THEN 'on_time' ELSE 'overdue' END
    WHEN $1::timestamptz >= t.due_at THEN 'overdue'
    WHEN $1::timestamptz >= t.due_at - make_interval(mins => coalesce(s.due_soon_minutes, 120)) THEN 'due_soon'
    ELSE 'on_time' END"""

# A ticket's callback time (`t`): when an attempt first reached the citizen, counting only the
# attempts recorded since the last reopen. The ticket's answered_at is set from it (service) and
# the 115 figures count by it, so the SLA state and the figures agree.
FIRST_REACHED_SQL = """(SELECT min(a.attempted_at) FROM ticket_callback_attempts a
    WHERE a.tenant_id = t.tenant_id AND a.ticket_id = t.id AND a.reached
      AND a.created_at >= coalesce(t.reopened_at, '-infinity'))"""

TICKET_SELECT = f"""SELECT t.tenant_id, t.id, t.number, t.department_id, d.name AS department_name, t.status,
           t.priority, t.subject, t.leika_key, t.article_id, t.call_id, t.source, t.assignee, t.assignee_person_id,
           t.created_at, t.updated_at, t.deadline_started_at, t.due_at, t.deadline_rule, t.calendar_version,
           t.answered_at, t.closed_at, t.personal_data_erased_at, {SLA_STATE_SQL} AS sla_state, t.change_seq, t.version
    FROM tickets t
    JOIN departments d ON d.tenant_id = t.tenant_id AND d.id = t.department_id
    LEFT JOIN ticket_settings s ON s.tenant_id = t.tenant_id"""


def _ticket(row: asyncpg.Record) -> Ticket:
    return row_to(Ticket, row)


# --- settings and routes -------------------------------------------------------------------


async def get_settings(conn: asyncpg.Connection, tenant_id: UUID) -> TicketSettings:
    row = await conn.fetchrow(
        """SELECT tenant_id, deadline_rule, retention_days, due_soon_minutes, version
           FROM ticket_settings WHERE tenant_id = $1""",
        tenant_id,
    )
    if row is None:
        return TicketSettings(
            tenant_id=tenant_id,
            deadline_rule=DEFAULT_DEADLINE_RULE,
            retention_days=DEFAULT_RETENTION_DAYS,
            due_soon_minutes=DEFAULT_DUE_SOON_MINUTES,
            version=0,
        )
    return row_to(TicketSettings, row)


async def save_settings(
    conn: asyncpg.Connection, tenant_id: UUID, values: TicketSettings, expected_version: int | None
) -> TicketSettings | None:
    """Insert or update; None when `expected_version` no longer matches."""
    row = await conn.fetchrow(
        """INSERT INTO ticket_settings (tenant_id, deadline_rule, retention_days, due_soon_minutes)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id) DO UPDATE
               SET deadline_rule = EXCLUDED.deadline_rule, retention_days = EXCLUDED.retention_days,
                   due_soon_minutes = EXCLUDED.due_soon_minutes, version = ticket_settings.version + 1,
                   updated_at = now()
               WHERE $5::int IS NULL OR ticket_settings.version = $5
           RETURNING tenant_id, deadline_rule, retention_days, due_soon_minutes, version""",
        tenant_id,
        values.deadline_rule.value,
        values.retention_days,
        values.due_soon_minutes,
        expected_version,
    )
    return row_to(TicketSettings, row) if row else None


async def list_routes(conn: asyncpg.Connection, tenant_id: UUID) -> list[TicketRoute]:
    rows = await conn.fetch(
        """SELECT r.tenant_id, r.id, r.key_prefix, r.department_id, d.name AS department_name
           FROM ticket_routes r JOIN departments d ON d.tenant_id = r.tenant_id AND d.id = r.department_id
           WHERE r.tenant_id = $1 ORDER BY r.key_prefix NULLS FIRST""",
        tenant_id,
    )
    return [row_to(TicketRoute, r) for r in rows]


async def upsert_route(conn: asyncpg.Connection, tenant_id: UUID, key_prefix: str | None, department_id: UUID) -> None:
    await conn.execute(
        """INSERT INTO ticket_routes (tenant_id, id, key_prefix, department_id) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, coalesce(key_prefix, '')) DO UPDATE SET department_id = EXCLUDED.department_id""",
        tenant_id,
        uuid4(),
        key_prefix,
        department_id,
    )


async def delete_route(conn: asyncpg.Connection, tenant_id: UUID, key_prefix: str | None) -> bool:
    status = await conn.execute(
        "DELETE FROM ticket_routes WHERE tenant_id = $1 AND coalesce(key_prefix, '') = coalesce($2, '')",
        tenant_id,
        key_prefix,
    )
    return bool(status != "DELETE 0")


async def propose_department(conn: asyncpg.Connection, tenant_id: UUID, leika_key: str | None) -> UUID | None:
    """The longest key prefix that matches wins; the default route (no prefix) matches anything."""
    department_id: UUID | None = await conn.fetchval(
        """SELECT r.department_id
           FROM ticket_routes r JOIN departments d ON d.tenant_id = r.tenant_id AND d.id = r.department_id
           WHERE r.tenant_id = $1 AND d.active
             AND (r.key_prefix IS NULL
                  OR ($2::text IS NOT NULL AND left($2::text, length(r.key_prefix)) = r.key_prefix))
           ORDER BY length(coalesce(r.key_prefix, '')) DESC
           LIMIT 1""",
        tenant_id,
        leika_key,
    )
    return department_id


async def routes_to_active_departments(conn: asyncpg.Connection, tenant_id: UUID) -> list[asyncpg.Record]:
    """The responsibility table as `propose_department` reads it: only active departments."""
    return await conn.fetch(
        """SELECT r.key_prefix, r.department_id
           FROM ticket_routes r JOIN departments d ON d.tenant_id = r.tenant_id AND d.id = r.department_id
           WHERE r.tenant_id = $1 AND d.active""",
        tenant_id,
    )


async def active_department_exists(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM departments WHERE tenant_id = $1 AND id = $2 AND active)",
            tenant_id,
            department_id,
        )
    )


# --- counters ------------------------------------------------------------------------------


async def next_number_and_change_seq(conn: asyncpg.Connection, tenant_id: UUID) -> tuple[int, int]:
    row = await conn.fetchrow(
        """INSERT INTO ticket_counters (tenant_id, last_number, last_change_seq) VALUES ($1, 1, 1)
           ON CONFLICT (tenant_id) DO UPDATE
               SET last_number = ticket_counters.last_number + 1,
                   last_change_seq = ticket_counters.last_change_seq + 1
           RETURNING last_number, last_change_seq""",
        tenant_id,
    )
    assert row is not None
    return int(row["last_number"]), int(row["last_change_seq"])


async def next_change_seq(conn: asyncpg.Connection, tenant_id: UUID) -> int:
    """Takes the tenant's counter lock until commit: change numbers follow commit order."""
    seq = await conn.fetchval(
        """INSERT INTO ticket_counters (tenant_id, last_change_seq) VALUES ($1, 1)
           ON CONFLICT (tenant_id) DO UPDATE SET last_change_seq = ticket_counters.last_change_seq + 1
           RETURNING last_change_seq""",
        tenant_id,
    )
    return int(seq)


# --- tickets -------------------------------------------------------------------------------


async def insert_ticket(
    conn: asyncpg.Connection,
    *,
    tenant_id: UUID,
    ticket_id: UUID,
    number: int,
    department_id: UUID,
    priority: str,
    subject: str,
    leika_key: str | None,
    article_id: UUID | None,
    call_id: UUID | None,
    source: str,
    created_by: str,
    created_by_tenant_id: UUID,
    created_at: datetime,
    deadline_started_at: datetime,
    due_at: datetime,
    deadline_rule: str,
    calendar_version: str,
    change_seq: int,
) -> None:
    await conn.execute(
        """INSERT INTO tickets (tenant_id, id, number, department_id, priority, subject, leika_key, article_id,
                                call_id, source, created_by, created_by_tenant_id, created_at, updated_at,
                                deadline_started_at, due_at, deadline_rule, calendar_version, change_seq)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18)""",
        tenant_id,
        ticket_id,
        number,
        department_id,
        priority,
        subject,
        leika_key,
        article_id,
        call_id,
        source,
        created_by,
        created_by_tenant_id,
        created_at,
        deadline_started_at,
        due_at,
        deadline_rule,
        calendar_version,
        change_seq,
    )


async def insert_personal_data(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    ticket_id: UUID,
    *,
    concern: str,
    name: str | None,
    callback_number: str | None,
    email: str | None,
    preferred_channel: str,
    consent: bool,
    consent_at: datetime | None,
) -> None:
    await conn.execute(
        """INSERT INTO ticket_personal_data (tenant_id, ticket_id, concern, citizen_name, callback_number, email,
                                             preferred_channel, consent, consent_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        tenant_id,
        ticket_id,
        concern,
        name,
        callback_number,
        email,
        preferred_channel,
        consent,
        consent_at,
    )


async def find_ticket(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_id: UUID, now: datetime, *, lock: bool = False
) -> Ticket | None:
    row = await conn.fetchrow(
        f"""{TICKET_SELECT} WHERE t.tenant_id = ANY($2::uuid[]) AND t.id = $3
            {"FOR UPDATE OF t" if lock else ""}""",
        now,
        list(tenant_ids),
        ticket_id,
    )
    return _ticket(row) if row else None


async def get_ticket(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_id: UUID, now: datetime, *, lock: bool = False
) -> Ticket:
    ticket = await find_ticket(conn, tenant_ids, ticket_id, now, lock=lock)
    if ticket is None:
        raise NotFound(_l("ticket not found"))
    return ticket


async def tickets_by_ids(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_ids: Sequence[UUID], now: datetime
) -> list[Ticket]:
    rows = await conn.fetch(
        f"{TICKET_SELECT} WHERE t.tenant_id = ANY($2::uuid[]) AND t.id = ANY($3::uuid[])",
        now,
        list(tenant_ids),
        list(ticket_ids),
    )
    return [_ticket(r) for r in rows]


async def update_ticket(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    ticket_id: UUID,
    changes: dict[str, Any],
    change_seq: int,
    at: datetime,
    *,
    bump_version: bool = True,
) -> None:
    """Apply `changes` (column → value, columns chosen by the service, never by input)."""
    columns = sorted(changes)
    assignments = "".join(f"{column} = ${i + 5}, " for i, column in enumerate(columns))
    version = "version = version + 1, " if bump_version else ""
    await conn.execute(
        f"""UPDATE tickets SET {assignments}{version}change_seq = $3, updated_at = $4
            WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        ticket_id,
        change_seq,
        at,
        *(changes[c] for c in columns),
    )


async def list_tickets(
    conn: asyncpg.Connection,
    where: TicketFilter,
    now: datetime,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Ticket]:
    """Ordered by due time (the most urgent first), keyset-paginated on (due_at, id)."""
    rows = await conn.fetch(
        f"""SELECT * FROM ({TICKET_SELECT}
               WHERE t.tenant_id = ANY($2::uuid[])
                 AND ($3::text IS NULL OR t.status = $3)
                 AND ($4::uuid IS NULL OR t.department_id = $4)
                 AND ($5::text IS NULL OR t.assignee = $5)
                 AND ($6::timestamptz IS NULL OR (t.due_at, t.id) > ($6, $7::uuid))
                 AND (cardinality($10::uuid[]) = 0 OR t.department_id = ANY($10::uuid[]))) x
            WHERE ($8::text IS NULL OR x.sla_state = $8)
            ORDER BY x.due_at, x.id
            LIMIT $9""",
        now,
        list(where.tenant_ids),
        where.status.value if where.status else None,
        where.department_id,
        where.assignee,
        after[0] if after else None,
        after[1] if after else None,
        where.sla_state.value if where.sla_state else None,
        limit,
        list(where.department_ids),
    )
    return [_ticket(r) for r in rows]


async def changed_since(
    conn: asyncpg.Connection, tenant_id: UUID, after_seq: int, limit: int, now: datetime
) -> list[Ticket]:
    rows = await conn.fetch(
        f"""{TICKET_SELECT} WHERE t.tenant_id = $2 AND t.change_seq > $3 ORDER BY t.change_seq LIMIT $4""",
        now,
        tenant_id,
        after_seq,
        limit,
    )
    return [_ticket(r) for r in rows]


async def personal_data(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_ids: Sequence[UUID]
) -> dict[UUID, PersonalData]:
    rows = await conn.fetch(
        """SELECT ticket_id, concern, citizen_name AS name, callback_number, email, preferred_channel, consent,
                  consent_at
           FROM ticket_personal_data WHERE tenant_id = ANY($1::uuid[]) AND ticket_id = ANY($2::uuid[])""",
        list(tenant_ids),
        list(ticket_ids),
    )
    return {r["ticket_id"]: row_to(PersonalData, {k: v for k, v in r.items() if k != "ticket_id"}) for r in rows}


async def preferred_channel(conn: asyncpg.Connection, tenant_id: UUID, ticket_id: UUID) -> str | None:
    channel: str | None = await conn.fetchval(
        "SELECT preferred_channel FROM ticket_personal_data WHERE tenant_id = $1 AND ticket_id = $2",
        tenant_id,
        ticket_id,
    )
    return channel


# --- events, outbox, deliveries ------------------------------------------------------------


async def insert_event(
    conn: asyncpg.Connection,
    *,
    tenant_id: UUID,
    ticket_id: UUID,
    change_seq: int,
    kind: EventKind,
    from_status: str | None,
    to_status: str | None,
    actor_kind: str,
    actor_subject: str | None,
    actor_tenant_id: UUID | None,
    details: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO ticket_events (tenant_id, id, ticket_id, change_seq, kind, from_status, to_status, actor_kind,
                                      actor_subject, actor_tenant_id, details, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        tenant_id,
        uuid4(),
        ticket_id,
        change_seq,
        kind.value,
        from_status,
        to_status,
        actor_kind,
        actor_subject,
        actor_tenant_id,
        details,
        at,
    )


async def list_events(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_ids: Sequence[UUID]
) -> list[TicketEvent]:
    """Events of several tickets, each ticket's in change order."""
    rows = await conn.fetch(
        """SELECT id, ticket_id, change_seq, kind, from_status, to_status, actor_kind, actor_subject,
                  actor_tenant_id, details, at
           FROM ticket_events WHERE tenant_id = ANY($1::uuid[]) AND ticket_id = ANY($2::uuid[])
           ORDER BY ticket_id, change_seq, at""",
        list(tenant_ids),
        list(ticket_ids),
    )
    return [row_to(TicketEvent, r) for r in rows]


async def insert_outbox(
    conn: asyncpg.Connection,
    *,
    tenant_id: UUID,
    ticket_id: UUID,
    change_seq: int,
    kind: EventKind,
    payload: dict[str, Any],
    dedupe_key: str | None,
    at: datetime,
) -> UUID | None:
    """The event id, or None when an event with the same dedupe key exists already."""
    event_id: UUID | None = await conn.fetchval(
        """INSERT INTO ticket_outbox (tenant_id, id, ticket_id, change_seq, kind, payload, dedupe_key, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (tenant_id, ticket_id, dedupe_key) DO NOTHING
           RETURNING id""",
        tenant_id,
        uuid4(),
        ticket_id,
        change_seq,
        kind.value,
        payload,
        dedupe_key,
        at,
    )
    return event_id


# --- comments, callback attempts ----------------------------------------------------------


async def insert_comment(
    conn: asyncpg.Connection, tenant_id: UUID, ticket_id: UUID, body: str, author: str, author_tenant_id: UUID
) -> Comment:
    row = await conn.fetchrow(
        """INSERT INTO ticket_comments (tenant_id, id, ticket_id, body, author_subject, author_tenant_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, ticket_id, body, author_subject, author_tenant_id, created_at""",
        tenant_id,
        uuid4(),
        ticket_id,
        body,
        author,
        author_tenant_id,
    )
    return row_to(Comment, row)


async def list_comments(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_ids: Sequence[UUID]
) -> list[Comment]:
    rows = await conn.fetch(
        """SELECT id, ticket_id, CASE WHEN erased THEN NULL ELSE body END AS body, author_subject,
                  author_tenant_id, created_at
           FROM ticket_comments WHERE tenant_id = ANY($1::uuid[]) AND ticket_id = ANY($2::uuid[])
           ORDER BY created_at, id""",
        list(tenant_ids),
        list(ticket_ids),
    )
    return [row_to(Comment, r) for r in rows]


async def insert_callback_attempt(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    ticket_id: UUID,
    *,
    channel: str,
    attempted_at: datetime,
    reached: bool,
    note: str | None,
    recorded_by: str,
    recorded_by_tenant_id: UUID,
    created_at: datetime,
) -> CallbackAttempt:
    row = await conn.fetchrow(
        """INSERT INTO ticket_callback_attempts (tenant_id, id, ticket_id, channel, attempted_at, reached, note,
                                                 recorded_by, recorded_by_tenant_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           RETURNING id, ticket_id, channel, attempted_at, reached, note, recorded_by, created_at""",
        tenant_id,
        uuid4(),
        ticket_id,
        channel,
        attempted_at,
        reached,
        note,
        recorded_by,
        recorded_by_tenant_id,
        created_at,
    )
    return row_to(CallbackAttempt, row)


async def list_callback_attempts(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], ticket_ids: Sequence[UUID]
) -> list[CallbackAttempt]:
    rows = await conn.fetch(
        """SELECT id, ticket_id, channel, attempted_at, reached, note, recorded_by, created_at
           FROM ticket_callback_attempts WHERE tenant_id = ANY($1::uuid[]) AND ticket_id = ANY($2::uuid[])
           ORDER BY attempted_at, id""",
        list(tenant_ids),
        list(ticket_ids),
    )
    return [row_to(CallbackAttempt, r) for r in rows]


async def callback_window(
    conn: asyncpg.Connection, tenant_id: UUID, ticket_id: UUID
) -> tuple[datetime, datetime | None]:
    """Since when callback attempts count (the ticket's creation, or its last reopen), and the
    ticket's callback time: the first attempt that reached the citizen since then (or None)."""
    row = await conn.fetchrow(
        f"""SELECT coalesce(t.reopened_at, t.created_at) AS since, {FIRST_REACHED_SQL} AS first_reached_at
            FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2""",
        tenant_id,
        ticket_id,
    )
    if row is None:
        raise NotFound(_l("ticket not found"))
    return row["since"], row["first_reached_at"]


# --- figures (read by the 115 figures) ------------------------------------------------------


async def callbacks_due(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], now: datetime, until: datetime, open_statuses: Sequence[str]
) -> dict[UUID, tuple[int, int]]:
    """Per tenant: open tickets due in [now, until) and those due before now (overdue)."""
    rows = await conn.fetch(
        """SELECT tenant_id, count(*) FILTER (WHERE due_at >= $2) AS due_soon,
                  count(*) FILTER (WHERE due_at < $2) AS overdue
           FROM tickets WHERE tenant_id = ANY($1::uuid[]) AND status = ANY($4::text[]) AND due_at < $3
           GROUP BY tenant_id""",
        list(tenant_ids),
        now,
        until,
        list(open_statuses),
    )
    return {r["tenant_id"]: (r["due_soon"], r["overdue"]) for r in rows}


async def callback_figures(
    conn: asyncpg.Connection,
    tenant_ids: Sequence[UUID],
    start: date,
    last: date,
    now: datetime,
    open_statuses: Sequence[str],
) -> dict[UUID, CallbackFigures]:
    """Per tenant, for its local days `start` … `last` (inclusive, in the tenant's time zone, as
    the call rollups count them): tickets forwarded then, and tickets due then by callback
    outcome. One statement, aggregated per tenant: index ranges on `ticket_events_forwarded` and
    `tickets_due`, then per due ticket `ticket_callback_attempts_ticket`. The reached attempts
    that count are those recorded since the last reopen: FIRST_REACHED_SQL, the same callback time
    the ticket's answered_at is set from, so an answered ticket's SLA state agrees with these."""
    rows = await conn.fetch(
        f"""SELECT p.tenant_id, f.tickets_forwarded, d.callbacks_on_time, d.callbacks_late
           FROM (SELECT tn.id AS tenant_id,
                        $2::date::timestamp AT TIME ZONE tn.time_zone AS lo,
                        ($3::date + 1)::timestamp AT TIME ZONE tn.time_zone AS hi
                 FROM tenants tn WHERE tn.id = ANY($1::uuid[])) p
           CROSS JOIN LATERAL (
               SELECT count(*) AS tickets_forwarded FROM ticket_events e
               WHERE e.tenant_id = p.tenant_id AND e.to_status = 'forwarded' AND e.kind = 'ticket.status_changed'
                 AND e.at >= p.lo AND e.at < p.hi) f
           CROSS JOIN LATERAL (
               SELECT count(*) FILTER (WHERE c.first_reached_at <= t.due_at) AS callbacks_on_time,
                      count(*) FILTER (WHERE c.first_reached_at > t.due_at
                                          OR (c.first_reached_at IS NULL AND t.status = ANY($5::text[])
                                              AND t.due_at <= $4)) AS callbacks_late
               FROM tickets t
               CROSS JOIN LATERAL (SELECT {FIRST_REACHED_SQL} AS first_reached_at) c
               WHERE t.tenant_id = p.tenant_id AND t.due_at >= p.lo AND t.due_at < p.hi) d""",
        list(tenant_ids),
        start,
        last,
        now,
        list(open_statuses),
    )
    return {r["tenant_id"]: row_to(CallbackFigures, r) for r in rows}


# --- the deadline sequence (the workflow restarts it; the worker's SQL: worker_repository) ---


async def deadline_seq(conn: asyncpg.Connection, tenant_id: UUID, ticket_id: UUID) -> int:
    return int(
        await conn.fetchval("SELECT deadline_seq FROM tickets WHERE tenant_id = $1 AND id = $2", tenant_id, ticket_id)
    )
