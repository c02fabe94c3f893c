"""SQL for service numbers, absences, 115 area codes and calls. Explicit columns, $n
parameters, tenants always given (row-level security is the second line)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from backend.db.rows import row_to
from backend.telephony.schemas import (
    AreaCode,
    Call,
    DatedAbsence,
    ServiceNumber,
    TelephonySettings,
    WeeklyAbsence,
)

NUMBER_COLUMNS = """tenant_id, id, number, kind, purpose, department_id, greeting, routing_window,
    lower(valid) AS valid_from, upper(valid) - 1 AS valid_to, version, answer_on_closing_days"""
CALL_COLUMNS = """tenant_id, id, source_system, external_id, service_number_id, dialled, purpose,
    resolved_by, caller, queue, offered_at, answered_at, ended_at, agent, wait_seconds, talk_seconds,
    outcome, outcome_department_id, ticket_id, outcome_note, outcome_person_id, transfer_taken"""


# --- routing lookups (SECURITY DEFINER: the tenant of a call is not known yet) ---------------


async def routing_numbers(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID] | None, dialled: str | None
) -> list[asyncpg.Record]:
    """Service numbers of `tenant_ids` (None: all tenants, for the shared routing table)
    whose span covers `dialled` (None: all)."""
    return list(
        await conn.fetch(
            """SELECT tenant_id, id, number, kind, purpose, department_id, greeting, routing_window,
                  valid_from, valid_until, answer_on_closing_days
           FROM routing_numbers($1::uuid[], $2::text)""",
            list(tenant_ids) if tenant_ids is not None else None,
            dialled,
        )
    )


async def routing_tenants(conn: asyncpg.Connection, tenant_ids: Sequence[UUID] | None) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT id, slug, name, is_operator, federal_state, time_zone, service_hours, closing_days,
                  departments, absence_weekly, absence_dated, agreements
           FROM routing_tenants($1::uuid[])""",
            list(tenant_ids) if tenant_ids is not None else None,
        )
    )


async def routing_area_codes(conn: asyncpg.Connection, tenant_ids: Sequence[UUID] | None) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT tenant_id, area_code, ags, municipality, client_tenant_id FROM routing_area_codes($1::uuid[])",
            list(tenant_ids) if tenant_ids is not None else None,
        )
    )


# --- service numbers -------------------------------------------------------------------------


def _number(row: asyncpg.Record) -> ServiceNumber:
    return row_to(ServiceNumber, row)


async def list_service_numbers(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], on: date | None
) -> list[ServiceNumber]:
    rows = await conn.fetch(
        f"""SELECT {NUMBER_COLUMNS} FROM service_numbers
            WHERE tenant_id = ANY($1::uuid[]) AND ($2::date IS NULL OR valid @> $2::date)
            ORDER BY number, lower(valid)""",
        list(tenant_ids),
        on,
    )
    return [_number(r) for r in rows]


async def find_service_number(
    conn: asyncpg.Connection, number_id: UUID, tenant_ids: Sequence[UUID], *, for_update: bool = False
) -> ServiceNumber | None:
    row = await conn.fetchrow(
        f"""SELECT {NUMBER_COLUMNS} FROM service_numbers WHERE id = $1 AND tenant_id = ANY($2::uuid[])
            {"FOR UPDATE" if for_update else ""}""",
        number_id,
        list(tenant_ids),
    )
    return _number(row) if row else None


async def lock_number_writes(conn: asyncpg.Connection) -> None:
    """Writes of service numbers take turns (transaction-scoped). Two exclusion constraints
    check a new or changed number against the others; two writes of one number at once each
    found the other's row in progress and waited for it: a deadlock, answered "try again"
    (six identical claims at once, against a PostgreSQL over TCP). Numbers are claimed by an
    administrator now and then; taking turns costs nothing there."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('service-number-writes', 0))")


async def insert_service_number(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    number_id: UUID,
    number: str,
    kind: str,
    purpose: str,
    department_id: UUID | None,
    greeting: str | None,
    routing_window: str,
    valid_from: date,
    valid_to: date | None,
    answer_on_closing_days: bool = False,
) -> ServiceNumber:
    row = await conn.fetchrow(
        f"""INSERT INTO service_numbers (tenant_id, id, number, kind, purpose, department_id, greeting,
                                         routing_window, valid, answer_on_closing_days)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, daterange($9::date, $10::date + 1, '[)'), $11)
            RETURNING {NUMBER_COLUMNS}""",
        tenant_id,
        number_id,
        number,
        kind,
        purpose,
        department_id,
        greeting,
        routing_window,
        valid_from,
        valid_to,
        answer_on_closing_days,
    )
    assert row is not None
    return _number(row)


async def update_service_number(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    number_id: UUID,
    routing_window: str,
    greeting: str | None,
    valid_to: date | None,
    expected_version: int | None,
    answer_on_closing_days: bool | None = None,
) -> ServiceNumber | None:
    row = await conn.fetchrow(
        f"""UPDATE service_numbers
               SET routing_window = $3, greeting = $4, valid = daterange(lower(valid), $5::date + 1, '[)'),
                   answer_on_closing_days = coalesce($7, answer_on_closing_days),
                   version = version + 1, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND ($6::int IS NULL OR version = $6)
            RETURNING {NUMBER_COLUMNS}""",
        tenant_id,
        number_id,
        routing_window,
        greeting,
        valid_to,
        expected_version,
        answer_on_closing_days,
    )
    return _number(row) if row else None


async def department_exists(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM departments WHERE tenant_id = $1 AND id = $2)", tenant_id, department_id
        )
    )


# --- absences of the town's operator (rows without a person; the directory keeps the others) ---


def _weekly(row: asyncpg.Record) -> WeeklyAbsence:
    return WeeklyAbsence(
        tenant_id=row["tenant_id"],
        id=row["id"],
        weekday=row["weekday"],
        starts=row["starts"].strftime("%H:%M"),
        ends=row["ends"].strftime("%H:%M"),
        note=row["note"],
    )


def _dated(row: asyncpg.Record) -> DatedAbsence:
    return DatedAbsence(
        tenant_id=row["tenant_id"], id=row["id"], starts_at=row["starts_at"], ends_at=row["ends_at"], note=row["note"]
    )


async def list_weekly_absences(conn: asyncpg.Connection, tenant_id: UUID) -> list[WeeklyAbsence]:
    rows = await conn.fetch(
        """SELECT tenant_id, id, weekday, starts, ends, note FROM absence_weekly
           WHERE tenant_id = $1 AND person_id IS NULL ORDER BY weekday, starts""",
        tenant_id,
    )
    return [_weekly(r) for r in rows]


async def list_dated_absences(conn: asyncpg.Connection, tenant_id: UUID) -> list[DatedAbsence]:
    rows = await conn.fetch(
        """SELECT tenant_id, id, lower(during) AS starts_at, upper(during) AS ends_at, note FROM absence_dated
           WHERE tenant_id = $1 AND person_id IS NULL ORDER BY lower(during)""",
        tenant_id,
    )
    return [_dated(r) for r in rows]


async def insert_weekly_absence(
    conn: asyncpg.Connection, tenant_id: UUID, absence_id: UUID, weekday: int, starts: time, ends: time, note: str
) -> WeeklyAbsence:
    row = await conn.fetchrow(
        """INSERT INTO absence_weekly (tenant_id, id, weekday, starts, ends, note) VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING tenant_id, id, weekday, starts, ends, note""",
        tenant_id,
        absence_id,
        weekday,
        starts,
        ends,
        note,
    )
    assert row is not None
    return _weekly(row)


async def insert_dated_absence(
    conn: asyncpg.Connection, tenant_id: UUID, absence_id: UUID, starts_at: datetime, ends_at: datetime, note: str
) -> DatedAbsence:
    row = await conn.fetchrow(
        """INSERT INTO absence_dated (tenant_id, id, during, note) VALUES ($1, $2, tstzrange($3, $4, '[)'), $5)
           RETURNING tenant_id, id, lower(during) AS starts_at, upper(during) AS ends_at, note""",
        tenant_id,
        absence_id,
        starts_at,
        ends_at,
        note,
    )
    assert row is not None
    return _dated(row)


async def delete_absence(conn: asyncpg.Connection, tenant_id: UUID, absence_id: UUID) -> bool:
    weekly = await conn.execute(
        "DELETE FROM absence_weekly WHERE tenant_id = $1 AND id = $2 AND person_id IS NULL", tenant_id, absence_id
    )
    dated = await conn.execute(
        "DELETE FROM absence_dated WHERE tenant_id = $1 AND id = $2 AND person_id IS NULL", tenant_id, absence_id
    )
    return weekly != "DELETE 0" or dated != "DELETE 0"


# --- 115 area codes ----------------------------------------------------------------------------


def _area(row: asyncpg.Record) -> AreaCode:
    return AreaCode(
        operator_tenant_id=row["tenant_id"],
        area_code=row["area_code"],
        ags=row["ags"],
        municipality=row["municipality"],
        client_tenant_id=row["client_tenant_id"],
    )


async def list_area_codes(conn: asyncpg.Connection, operator_id: UUID) -> list[AreaCode]:
    rows = await conn.fetch(
        """SELECT tenant_id, area_code, ags, municipality, client_tenant_id FROM area_codes
           WHERE tenant_id = $1 ORDER BY area_code, municipality""",
        operator_id,
    )
    return [_area(r) for r in rows]


async def upsert_area_code(
    conn: asyncpg.Connection,
    operator_id: UUID,
    area_code: str,
    ags: str,
    municipality: str,
    client_tenant_id: UUID | None,
) -> AreaCode:
    row = await conn.fetchrow(
        """INSERT INTO area_codes (tenant_id, area_code, ags, municipality, client_tenant_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, area_code, ags)
           DO UPDATE SET municipality = EXCLUDED.municipality, client_tenant_id = EXCLUDED.client_tenant_id
           RETURNING tenant_id, area_code, ags, municipality, client_tenant_id""",
        operator_id,
        area_code,
        ags,
        municipality,
        client_tenant_id,
    )
    assert row is not None
    return _area(row)


async def delete_area_code(conn: asyncpg.Connection, operator_id: UUID, area_code: str, ags: str) -> bool:
    status = await conn.execute(
        "DELETE FROM area_codes WHERE tenant_id = $1 AND area_code = $2 AND ags = $3", operator_id, area_code, ags
    )
    return bool(status != "DELETE 0")


# --- calls --------------------------------------------------------------------------------------


def _call(row: asyncpg.Record) -> Call:
    return row_to(Call, row)


class StoredCall(NamedTuple):
    call: Call
    caller_erased_at: datetime | None  # None: the caller number is still stored
    wait_derived: bool  # the wait was computed from the times (or is not known), not reported
    outcome_recorded: bool  # an agent recorded the outcome (else it is None or the computed 'abandoned')


async def find_call_by_source(
    conn: asyncpg.Connection,
    source_tenant_id: UUID,
    source_system: str,
    external_id: str,
    tenant_ids: Sequence[UUID],
    *,
    for_update: bool = False,
) -> StoredCall | None:
    row = await conn.fetchrow(
        f"""SELECT {CALL_COLUMNS}, caller_erased_at, wait_derived, outcome_at IS NOT NULL AS outcome_recorded
            FROM calls
            WHERE source_tenant_id = $1 AND source_system = $2 AND external_id = $3
              AND tenant_id = ANY($4::uuid[])
            {"FOR UPDATE" if for_update else ""}""",
        source_tenant_id,
        source_system,
        external_id,
        list(tenant_ids),
    )
    if row is None:
        return None
    return StoredCall(_call(row), row["caller_erased_at"], row["wait_derived"], row["outcome_recorded"])


async def insert_call(conn: asyncpg.Connection, source_tenant_id: UUID, values: dict[str, Any]) -> Call | None:
    """Insert unless (source tenant, source system, external id) exists; None then."""
    columns = sorted(values)
    placeholders = ", ".join(f"${i + 2}" for i in range(len(columns)))
    row = await conn.fetchrow(
        f"""INSERT INTO calls (source_tenant_id, {", ".join(columns)}) VALUES ($1, {placeholders})
            ON CONFLICT (source_tenant_id, source_system, external_id) DO NOTHING
            RETURNING {CALL_COLUMNS}""",
        source_tenant_id,
        *(values[c] for c in columns),
    )
    return _call(row) if row else None


async def update_call(conn: asyncpg.Connection, tenant_id: UUID, call_id: UUID, changes: dict[str, Any]) -> Call:
    columns = sorted(changes)
    assignments = ", ".join(f"{column} = ${i + 3}" for i, column in enumerate(columns))
    row = await conn.fetchrow(
        f"""UPDATE calls SET {assignments}, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING {CALL_COLUMNS}""",
        tenant_id,
        call_id,
        *(changes[c] for c in columns),
    )
    assert row is not None
    return _call(row)


async def find_call(
    conn: asyncpg.Connection, call_id: UUID, tenant_ids: Sequence[UUID], *, for_update: bool = False
) -> Call | None:
    row = await conn.fetchrow(
        f"""SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 AND tenant_id = ANY($2::uuid[])
            {"FOR UPDATE" if for_update else ""}""",
        call_id,
        list(tenant_ids),
    )
    return _call(row) if row else None


async def list_calls(
    conn: asyncpg.Connection,
    tenant_ids: Sequence[UUID],
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Call]:
    rows = await conn.fetch(
        f"""SELECT {CALL_COLUMNS} FROM calls
            WHERE tenant_id = ANY($1::uuid[])
              AND ($2::timestamptz IS NULL OR offered_at >= $2)
              AND ($3::timestamptz IS NULL OR offered_at < $3)
              AND ($4::timestamptz IS NULL OR (offered_at, id) > ($4, $5::uuid))
            ORDER BY offered_at, id LIMIT $6""",
        list(tenant_ids),
        since,
        until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_call(r) for r in rows]


async def set_call_outcome(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    call_id: UUID,
    outcome: str,
    department_id: UUID | None,
    note: str | None,
    recorded_by: str,
    person_id: UUID | None = None,
    transfer_taken: bool | None = None,
) -> Call | None:
    row = await conn.fetchrow(
        f"""UPDATE calls SET outcome = $3, outcome_department_id = $4, outcome_note = $5, outcome_by = $6,
                   outcome_person_id = $7, transfer_taken = $8, outcome_at = now(), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING {CALL_COLUMNS}""",
        tenant_id,
        call_id,
        outcome,
        department_id,
        note,
        recorded_by,
        person_id,
        transfer_taken,
    )
    return _call(row) if row else None


async def find_transfer_person(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID
) -> tuple[bool, UUID | None] | None:
    """A directory person a call was transferred to: (active, their department), None when the
    town has no such person. Read here, not through the directory service: the directory
    imports telephony (absences), so the reverse import would be a cycle (as tickets do,
    decision 027)."""
    row = await conn.fetchrow(
        "SELECT active, department_id FROM directory_people WHERE tenant_id = $1 AND id = $2", tenant_id, person_id
    )
    return (bool(row["active"]), row["department_id"]) if row else None


async def link_ticket(
    conn: asyncpg.Connection, tenant_id: UUID, call_id: UUID, ticket_id: UUID, recorded_by: str
) -> Call | None:
    """The call was forwarded as this ticket: its outcome says so and points at the ticket."""
    row = await conn.fetchrow(
        f"""UPDATE calls SET ticket_id = $3, outcome = 'forwarded_as_ticket', outcome_department_id = NULL,
                   outcome_by = $4, outcome_at = now(), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING {CALL_COLUMNS}""",
        tenant_id,
        call_id,
        ticket_id,
        recorded_by,
    )
    return _call(row) if row else None


async def erase_caller_numbers(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], now: datetime, default_days: int
) -> int:
    """Erase the caller numbers of `tenant_ids`' calls offered longer ago than each tenant's
    retention (`default_days` for a tenant without settings). Nothing else of a call changes."""
    status = await conn.execute(
        """WITH retention AS (
               SELECT t.id AS tenant_id,
                      $2::timestamptz - make_interval(days => coalesce(s.caller_retention_days, $3)) AS before
               FROM unnest($1::uuid[]) AS t (id)
               LEFT JOIN telephony_settings s ON s.tenant_id = t.id
           )
           UPDATE calls c SET caller = NULL, caller_erased_at = now()
           FROM retention r
           WHERE c.tenant_id = r.tenant_id AND c.caller IS NOT NULL AND c.offered_at < r.before""",
        list(tenant_ids),
        now,
        default_days,
    )
    return int(status.split()[-1])


async def assign_call_tenant(
    conn: asyncpg.Connection, from_tenant_id: UUID, call_id: UUID, to_tenant_id: UUID, assigned_by: str
) -> Call | None:
    """Move a call (not moved before) to another tenant, recording from whom, by whom and when.
    An UPDATE of the key: the billing triggers take the old row off and put the new one on."""
    row = await conn.fetchrow(
        f"""UPDATE calls SET tenant_id = $3, tenant_assigned_from = $1, tenant_assigned_by = $4,
                   tenant_assigned_at = now(), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND tenant_assigned_from IS NULL
            RETURNING {CALL_COLUMNS}""",
        from_tenant_id,
        call_id,
        to_tenant_id,
        assigned_by,
    )
    return _call(row) if row else None


# --- per-tenant settings -------------------------------------------------------------------------


async def find_telephony_settings(conn: asyncpg.Connection, tenant_id: UUID) -> TelephonySettings | None:
    row = await conn.fetchrow(
        "SELECT tenant_id, caller_retention_days FROM telephony_settings WHERE tenant_id = $1", tenant_id
    )
    return row_to(TelephonySettings, row) if row else None


async def upsert_telephony_settings(
    conn: asyncpg.Connection, tenant_id: UUID, caller_retention_days: int, updated_by: str
) -> TelephonySettings:
    row = await conn.fetchrow(
        """INSERT INTO telephony_settings (tenant_id, caller_retention_days, updated_by) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id) DO UPDATE SET caller_retention_days = EXCLUDED.caller_retention_days,
               updated_by = EXCLUDED.updated_by, updated_at = now()
           RETURNING tenant_id, caller_retention_days""",
        tenant_id,
        caller_retention_days,
        updated_by,
    )
    assert row is not None
    return row_to(TelephonySettings, row)


# --- bulk import through COPY ----------------------------------------------------------------------

STAGING_COLUMNS = (  # what the import COPYs; the staging table draws each row's call id itself
    "line",
    "tenant_id",
    "source_system",
    "external_id",
    "service_number_id",
    "dialled",
    "purpose",
    "resolved_by",
    "caller",
    "queue",
    "offered_at",
    "answered_at",
    "ended_at",
    "agent",
    "wait_seconds",
    "talk_seconds",
    "outcome",
    "wait_derived",
)
# What the telephony system reported: equal on re-import, else the row conflicts. The wait only
# when both sides reported one (`wait_derived` false); talk seconds and outcome are computed.
_REPORTED = ("dialled", "queue", "offered_at", "answered_at", "ended_at", "agent")


async def create_import_staging(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """CREATE TEMP TABLE call_import_staging (
               line integer NOT NULL, tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
               source_system text NOT NULL,
               external_id text NOT NULL, service_number_id uuid NOT NULL, dialled text NOT NULL,
               purpose text NOT NULL, resolved_by text NOT NULL, caller text, queue text,
               offered_at timestamptz NOT NULL, answered_at timestamptz, ended_at timestamptz, agent text,
               wait_seconds integer, talk_seconds integer, outcome text, wait_derived boolean NOT NULL
           ) ON COMMIT DROP"""
    )


async def clear_import_staging(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE call_import_staging")


async def copy_into_staging(conn: asyncpg.Connection, records: Iterable[tuple[Any, ...]]) -> int:
    """How many rows went in."""
    status = await conn.copy_records_to_table("call_import_staging", records=records, columns=STAGING_COLUMNS)
    return int(status.split()[-1])


async def insert_from_staging(conn: asyncpg.Connection, source_tenant_id: UUID) -> int:
    """Idempotent: a row whose (source, external id) exists is skipped; the first line wins."""
    columns = ", ".join(["id", *(c for c in STAGING_COLUMNS if c != "line")])
    # Room to sort a day's file by line in memory (the default spills 10^5 rows to disk).
    await conn.execute("SET LOCAL work_mem = '64MB'")
    status = await conn.execute(
        f"""INSERT INTO calls (source_tenant_id, {columns})
            SELECT $1, {columns} FROM call_import_staging ORDER BY line
            ON CONFLICT (source_tenant_id, source_system, external_id) DO NOTHING""",
        source_tenant_id,
    )
    return int(status.split()[-1])


async def reconcile_staging(conn: asyncpg.Connection, source_tenant_id: UUID) -> list[asyncpg.Record]:
    """Lines whose call exists with other reported facts (or another tenant, unless an agent
    moved it there from this one): not imported. A reported wait on a line that matches a call
    whose wait was computed replaces it (the first such line; a later one with another wait
    conflicts), as a single post would. One statement: one join of the chunk with `calls`."""
    differs = " OR ".join(f"c.{c} IS DISTINCT FROM s.{c}" for c in _REPORTED)
    return list(
        await conn.fetch(
            f"""WITH matched AS (
                SELECT s.line, s.external_id, c.tenant_id, c.id,
                       (c.wait_derived OR c.wait_seconds IS NULL) AS stored_derived,
                       NOT s.wait_derived AS reports_wait, s.wait_seconds,
                       ((c.tenant_id <> s.tenant_id AND c.tenant_assigned_from IS DISTINCT FROM s.tenant_id)
                        OR {differs}
                        OR (c.caller_erased_at IS NULL AND c.caller IS DISTINCT FROM s.caller)
                        OR (NOT c.wait_derived AND NOT s.wait_derived AND c.wait_seconds <> s.wait_seconds))
                       AS conflicting
                FROM call_import_staging s
                JOIN calls c ON c.source_tenant_id = $1 AND c.source_system = s.source_system
                            AND c.external_id = s.external_id
                WHERE c.id <> s.id
            ), replacing AS (
                SELECT DISTINCT ON (tenant_id, id) tenant_id, id, wait_seconds
                FROM matched WHERE stored_derived AND reports_wait AND NOT conflicting
                ORDER BY tenant_id, id, line
            ), replaced AS (
                UPDATE calls c SET wait_seconds = r.wait_seconds, wait_derived = false, updated_at = now()
                FROM replacing r WHERE c.tenant_id = r.tenant_id AND c.id = r.id
            )
            SELECT m.line, m.external_id FROM matched m
            LEFT JOIN replacing r ON r.tenant_id = m.tenant_id AND r.id = m.id
            WHERE m.conflicting OR (m.reports_wait AND r.wait_seconds <> m.wait_seconds)
            ORDER BY m.line""",
            source_tenant_id,
        )
    )
