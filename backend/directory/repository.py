"""SQL for the directory: people, responsibilities, substitutes, presence, department lines and
the people's absences (rows of the absence calendar that carry a person). Explicit columns, $n
parameters, every query filtered by tenant (RLS is the second line)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.db.rows import row_to
from backend.directory.schemas import DepartmentLine, Person, Responsibility
from backend.errors import NotFound
from backend.i18n import _l
from backend.telephony.schemas import DatedAbsence, WeeklyAbsence
from backend.tenants.schemas import ServiceInterval

PERSON_COLUMNS = """p.tenant_id, p.id, p.salutation, p.given_name, p.family_name, p.function, p.department_id,
    p.phone, p.email, p.room, p.languages, p.user_name, p.external_id, p.subject, p.active, p.version,
    coalesce((SELECT array_agg(s.substitute_id ORDER BY s.position) FROM directory_substitutes s
              WHERE s.tenant_id = p.tenant_id AND s.person_id = p.id), '{}') AS substitute_ids"""


def _person(row: asyncpg.Record) -> Person:
    return row_to(Person, row)


async def list_people(conn: asyncpg.Connection, tenant_id: UUID, *, active_only: bool = False) -> list[Person]:
    rows = await conn.fetch(
        f"""SELECT {PERSON_COLUMNS} FROM directory_people p
            WHERE p.tenant_id = $1 AND (p.active OR NOT $2) ORDER BY p.family_name, p.given_name, p.id""",
        tenant_id,
        active_only,
    )
    return [_person(r) for r in rows]


async def people_by_ids(conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Person]:
    rows = await conn.fetch(
        f"SELECT {PERSON_COLUMNS} FROM directory_people p WHERE p.tenant_id = $1 AND p.id = ANY($2::uuid[])",
        tenant_id,
        list(ids),
    )
    return {r["id"]: _person(r) for r in rows}


async def find_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> Person | None:
    return (await people_by_ids(conn, tenant_id, [person_id])).get(person_id)


async def lock_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> None:
    """Until the transaction ends: a change checked against the person's version is not lost to
    another checked against the same version at the same moment. Writers of the person's
    presence (switch, telephone event, absences) take it before writing too, so each reads every
    source after the one before committed and the change announced last is the presence in
    force (an own switch announced the telephone state a simultaneous event was replacing,
    second sweep)."""
    await conn.execute(
        "SELECT 1 FROM directory_people WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE", tenant_id, person_id
    )


async def lock_person_to_leave(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> None:
    """Until the transaction ends: nobody assigns the person a ticket (assignments read them FOR
    KEY SHARE), so the open tickets the deprovisioning returns after this are all there are."""
    await conn.execute(
        "SELECT 1 FROM directory_people WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenant_id, person_id
    )


async def get_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> Person:
    person = await find_person(conn, tenant_id, person_id)
    if person is None:
        raise NotFound(_l("person not found"))
    return person


async def find_person_by(conn: asyncpg.Connection, tenant_id: UUID, column: str, value: str) -> Person | None:
    where = {
        "user_name": "lower(p.user_name) = lower($2)",
        "subject": "p.subject = $2",
        "phone": "p.phone = $2",
        "external_id": "p.external_id = $2",
    }[column]
    row = await conn.fetchrow(
        f"SELECT {PERSON_COLUMNS} FROM directory_people p WHERE p.tenant_id = $1 AND {where}", tenant_id, value
    )
    return _person(row) if row else None


async def insert_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, fields: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO directory_people (tenant_id, id, salutation, given_name, family_name, function,
               department_id, phone, email, room, languages, user_name, external_id, subject, active)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        tenant_id,
        person_id,
        *(fields[name] for name in PERSON_FIELDS),
    )


PERSON_FIELDS = (
    "salutation",
    "given_name",
    "family_name",
    "function",
    "department_id",
    "phone",
    "email",
    "room",
    "languages",
    "user_name",
    "external_id",
    "subject",
    "active",
)


async def update_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, fields: dict[str, Any]) -> bool:
    status = await conn.execute(
        """UPDATE directory_people SET salutation = $3, given_name = $4, family_name = $5, function = $6,
               department_id = $7, phone = $8, email = $9, room = $10, languages = $11, user_name = $12,
               external_id = $13, subject = $14, active = $15, version = version + 1, updated_at = now()
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        person_id,
        *(fields[name] for name in PERSON_FIELDS),
    )
    return bool(status != "UPDATE 0")


async def set_active(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, active: bool) -> bool:
    status = await conn.execute(
        """UPDATE directory_people SET active = $3, version = version + 1, updated_at = now()
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        person_id,
        active,
    )
    return bool(status != "UPDATE 0")


async def delete_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> bool:
    status = await conn.execute("DELETE FROM directory_people WHERE tenant_id = $1 AND id = $2", tenant_id, person_id)
    return bool(status != "DELETE 0")


async def release_person(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID) -> None:
    """Out of every responsibility and substitution (deprovisioning), presence forgotten."""
    await conn.execute(
        "DELETE FROM directory_responsibilities WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id
    )
    await conn.execute(
        "DELETE FROM directory_substitutes WHERE tenant_id = $1 AND (substitute_id = $2 OR person_id = $2)",
        tenant_id,
        person_id,
    )
    for table in ("directory_presence_switch", "directory_presence_phone"):
        await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id)


async def replace_substitutes(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, substitute_ids: Sequence[UUID]
) -> None:
    await conn.execute(
        "DELETE FROM directory_substitutes WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id
    )
    await conn.executemany(
        "INSERT INTO directory_substitutes (tenant_id, person_id, position, substitute_id) VALUES ($1, $2, $3, $4)",
        [(tenant_id, person_id, position, sid) for position, sid in enumerate(substitute_ids, start=1)],
    )


async def existing_people(conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID]) -> set[UUID]:
    """The ids that name people, held until the transaction ends: a removal running at the same
    time waits for it (and then cascades), or, committed first, leaves the id out here. Without
    the lock a person removed between this check and the insert naming them was a foreign-key
    violation, a 500 (tests/directory/test_concurrent_writes.py)."""
    rows = await conn.fetch(
        """SELECT id FROM directory_people WHERE tenant_id = $1 AND id = ANY($2::uuid[])
           ORDER BY id FOR KEY SHARE""",
        tenant_id,
        list(ids),
    )
    return {r["id"] for r in rows}


async def department_exists(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM departments WHERE tenant_id = $1 AND id = $2)", tenant_id, department_id
        )
    )


async def departments_by_name(conn: asyncpg.Connection, tenant_id: UUID) -> dict[str, UUID]:
    rows = await conn.fetch("SELECT id, name FROM departments WHERE tenant_id = $1", tenant_id)
    return {r["name"].casefold(): r["id"] for r in rows}


# --- responsibilities ---------------------------------------------------------------------------

RESPONSIBILITY_COLUMNS = "tenant_id, id, person_id, leika_key, topic, surname_from, surname_to, area"


async def list_responsibilities(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID | None = None
) -> list[Responsibility]:
    rows = await conn.fetch(
        f"""SELECT {RESPONSIBILITY_COLUMNS} FROM directory_responsibilities
            WHERE tenant_id = $1 AND ($2::uuid IS NULL OR person_id = $2)
            ORDER BY leika_key NULLS LAST, topic, surname_from NULLS FIRST, id""",
        tenant_id,
        person_id,
    )
    return [row_to(Responsibility, r) for r in rows]


async def responsibilities_for_key(conn: asyncpg.Connection, tenant_id: UUID, leika_key: str) -> list[Responsibility]:
    """Entries whose key is the given key or a prefix of it (the longest prefix wins later)."""
    rows = await conn.fetch(
        f"""SELECT {RESPONSIBILITY_COLUMNS} FROM directory_responsibilities
            WHERE tenant_id = $1 AND leika_key IS NOT NULL AND starts_with($2, leika_key)""",
        tenant_id,
        leika_key,
    )
    return [row_to(Responsibility, r) for r in rows]


async def insert_responsibility(
    conn: asyncpg.Connection, tenant_id: UUID, responsibility_id: UUID, fields: dict[str, Any]
) -> Responsibility:
    row = await conn.fetchrow(
        f"""INSERT INTO directory_responsibilities
                (tenant_id, id, person_id, leika_key, topic, surname_from, surname_to, area)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {RESPONSIBILITY_COLUMNS}""",
        tenant_id,
        responsibility_id,
        fields["person_id"],
        fields["leika_key"],
        fields["topic"],
        fields["surname_from"],
        fields["surname_to"],
        fields["area"],
    )
    return row_to(Responsibility, row)


async def delete_responsibility(conn: asyncpg.Connection, tenant_id: UUID, responsibility_id: UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM directory_responsibilities WHERE tenant_id = $1 AND id = $2", tenant_id, responsibility_id
    )
    return bool(status != "DELETE 0")


# --- department lines ---------------------------------------------------------------------------


def _line(row: asyncpg.Record) -> DepartmentLine:
    hours = row["hours"]
    return DepartmentLine(
        tenant_id=row["tenant_id"],
        department_id=row["id"],
        name=row["name"],
        phone=row["phone"],
        hours=msgspec.convert(hours, list[ServiceInterval]) if hours is not None else None,
    )


async def department_lines(conn: asyncpg.Connection, tenant_id: UUID) -> dict[UUID, DepartmentLine]:
    rows = await conn.fetch(
        "SELECT tenant_id, id, name, phone, hours FROM departments WHERE tenant_id = $1 AND active ORDER BY name",
        tenant_id,
    )
    return {r["id"]: _line(r) for r in rows}


async def update_department_line(
    conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID, phone: str | None, hours: list[Any] | None
) -> DepartmentLine:
    row = await conn.fetchrow(
        """UPDATE departments SET phone = $3, hours = $4 WHERE tenant_id = $1 AND id = $2
           RETURNING tenant_id, id, name, phone, hours""",
        tenant_id,
        department_id,
        phone,
        hours,
    )
    if row is None:
        raise NotFound(_l("department not found"))
    return _line(row)


# --- presence -----------------------------------------------------------------------------------


async def upsert_switch(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, state: str, until: datetime, set_at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO directory_presence_switch (tenant_id, person_id, state, until, set_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, person_id)
           DO UPDATE SET state = $3, until = $4, set_at = $5, expiry_announced = false""",
        tenant_id,
        person_id,
        state,
        until,
        set_at,
    )


async def upsert_phone_state(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, state: str, at: datetime, expires_at: datetime
) -> bool:
    """False when an event at least as new was stored (then nothing changed)."""
    # An event older than the stored one changes nothing (the telephone system may deliver late).
    status: str = await conn.execute(
        """INSERT INTO directory_presence_phone (tenant_id, person_id, state, at, expires_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, person_id)
           DO UPDATE SET state = $3, at = $4, expires_at = $5, expiry_announced = false
           WHERE directory_presence_phone.at <= $4""",
        tenant_id,
        person_id,
        state,
        at,
        expires_at,
    )
    return status.endswith(" 1")


async def presence_sources(
    conn: asyncpg.Connection, tenant_id: UUID, person_ids: Sequence[UUID], at: datetime
) -> dict[str, list[asyncpg.Record]]:
    """Every presence source of the people that is in force at `at` (one round trip each)."""
    ids = list(person_ids)
    return {
        "switch": await conn.fetch(
            """SELECT person_id, state, until FROM directory_presence_switch
               WHERE tenant_id = $1 AND person_id = ANY($2::uuid[]) AND set_at <= $3 AND $3 < until""",
            tenant_id,
            ids,
            at,
        ),
        "phone": await conn.fetch(
            """SELECT person_id, state, expires_at FROM directory_presence_phone
               WHERE tenant_id = $1 AND person_id = ANY($2::uuid[]) AND at <= $3 AND $3 < expires_at""",
            tenant_id,
            ids,
            at,
        ),
        "dated": await conn.fetch(
            """SELECT person_id, upper(during) AS ends_at, note FROM absence_dated
               WHERE tenant_id = $1 AND person_id = ANY($2::uuid[]) AND during @> $3::timestamptz""",
            tenant_id,
            ids,
            at,
        ),
        "weekly": await conn.fetch(
            """SELECT person_id, weekday, starts, ends, note FROM absence_weekly
               WHERE tenant_id = $1 AND person_id = ANY($2::uuid[])""",
            tenant_id,
            ids,
        ),
    }


# --- the people's absences (the absence calendar's rows that carry a person) -------------------


async def list_person_absences(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID
) -> tuple[list[WeeklyAbsence], list[DatedAbsence]]:
    weekly = await conn.fetch(
        """SELECT tenant_id, id, weekday, starts, ends, note FROM absence_weekly
           WHERE tenant_id = $1 AND person_id = $2 ORDER BY weekday, starts""",
        tenant_id,
        person_id,
    )
    dated = await conn.fetch(
        """SELECT tenant_id, id, lower(during) AS starts_at, upper(during) AS ends_at, note FROM absence_dated
           WHERE tenant_id = $1 AND person_id = $2 ORDER BY lower(during)""",
        tenant_id,
        person_id,
    )
    return (
        [
            WeeklyAbsence(
                tenant_id=r["tenant_id"],
                id=r["id"],
                weekday=r["weekday"],
                starts=r["starts"].strftime("%H:%M"),
                ends=r["ends"].strftime("%H:%M"),
                note=r["note"],
            )
            for r in weekly
        ],
        [row_to(DatedAbsence, r) for r in dated],
    )


async def insert_person_weekly_absence(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    person_id: UUID,
    absence_id: UUID,
    weekday: int,
    starts: time,
    ends: time,
    note: str,
) -> None:
    await conn.execute(
        """INSERT INTO absence_weekly (tenant_id, id, person_id, weekday, starts, ends, note)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        tenant_id,
        absence_id,
        person_id,
        weekday,
        starts,
        ends,
        note,
    )


async def insert_person_dated_absence(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    person_id: UUID,
    absence_id: UUID,
    starts_at: datetime,
    ends_at: datetime,
    note: str,
) -> None:
    await conn.execute(
        """INSERT INTO absence_dated (tenant_id, id, person_id, during, note)
           VALUES ($1, $2, $3, tstzrange($4, $5, '[)'), $6)""",
        tenant_id,
        absence_id,
        person_id,
        starts_at,
        ends_at,
        note,
    )


async def delete_person_absence(conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, absence_id: UUID) -> bool:
    weekly = await conn.execute(
        "DELETE FROM absence_weekly WHERE tenant_id = $1 AND person_id = $2 AND id = $3",
        tenant_id,
        person_id,
        absence_id,
    )
    dated = await conn.execute(
        "DELETE FROM absence_dated WHERE tenant_id = $1 AND person_id = $2 AND id = $3",
        tenant_id,
        person_id,
        absence_id,
    )
    return weekly != "DELETE 0" or dated != "DELETE 0"


async def replace_responsibilities(
    conn: asyncpg.Connection, tenant_id: UUID, person_id: UUID, entries: Sequence[dict[str, Any]]
) -> None:
    """A person's responsibilities as a file lists them (the import)."""
    await conn.execute(
        "DELETE FROM directory_responsibilities WHERE tenant_id = $1 AND person_id = $2", tenant_id, person_id
    )
    await conn.executemany(
        """INSERT INTO directory_responsibilities
               (tenant_id, id, person_id, leika_key, topic, surname_from, surname_to, area)
           VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, $6, $7)""",
        [
            (tenant_id, person_id, e["leika_key"], e["topic"], e["surname_from"], e["surname_to"], e["area"])
            for e in entries
        ],
    )


# --- departments as SCIM groups (decision 027) ----------------------------------------------------


async def move_people(conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID], department_id: UUID) -> None:
    await conn.execute(
        """UPDATE directory_people SET department_id = $3, version = version + 1, updated_at = now()
           WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND department_id IS DISTINCT FROM $3""",
        tenant_id,
        list(ids),
        department_id,
    )


async def leave_department(conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID], department_id: UUID) -> None:
    await conn.execute(
        """UPDATE directory_people SET department_id = NULL, version = version + 1, updated_at = now()
           WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND department_id = $3""",
        tenant_id,
        list(ids),
        department_id,
    )


async def insert_department(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID, name: str) -> None:
    await conn.execute(
        "INSERT INTO departments (tenant_id, id, name) VALUES ($1, $2, $3)", tenant_id, department_id, name
    )


async def rename_department(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID, name: str) -> None:
    await conn.execute(
        "UPDATE departments SET name = $3 WHERE tenant_id = $1 AND id = $2 AND name <> $3",
        tenant_id,
        department_id,
        name,
    )


async def close_department(conn: asyncpg.Connection, tenant_id: UUID, department_id: UUID) -> None:
    await conn.execute(
        "UPDATE departments SET active = false WHERE tenant_id = $1 AND id = $2", tenant_id, department_id
    )


async def all_person_absences(conn: asyncpg.Connection, tenant_id: UUID) -> list[asyncpg.Record]:
    """Every person's absences of the town, weekly and dated, for the compiled snapshot."""
    return await conn.fetch(
        """SELECT 'weekly' AS kind, person_id, weekday, starts, ends, NULL::timestamptz AS starts_at,
                  NULL::timestamptz AS ends_at, note
           FROM absence_weekly WHERE tenant_id = $1 AND person_id IS NOT NULL
           UNION ALL
           SELECT 'dated', person_id, NULL, NULL, NULL, lower(during), upper(during), note
           FROM absence_dated WHERE tenant_id = $1 AND person_id IS NOT NULL""",
        tenant_id,
    )


async def presence_written_since(conn: asyncpg.Connection, tenant_id: UUID, watermark: int) -> list[asyncpg.Record]:
    """The town's switch and telephone rows written by transactions from `watermark` on (0: all),
    and, as the row with source 'watermark', the oldest transaction still running when this
    statement read them: rows committed after it are written by that one or a later one, so the
    next read from that watermark misses none (decision 039). One statement, so both come from
    the same snapshot."""
    return await conn.fetch(
        """SELECT 'watermark' AS source, NULL::uuid AS person_id,
                  pg_snapshot_xmin(pg_current_snapshot())::text AS state,
                  NULL::timestamptz AS since, NULL::timestamptz AS until
           UNION ALL
           SELECT 'switch', person_id, state, set_at, until FROM directory_presence_switch
           WHERE tenant_id = $1 AND written_xid >= $2::text::xid8
           UNION ALL
           SELECT 'phone', person_id, state, at, expires_at FROM directory_presence_phone
           WHERE tenant_id = $1 AND written_xid >= $2::text::xid8""",
        tenant_id,
        str(watermark),
    )
