"""SQL of the XZuFi import: received objects, section provenance, imported search terms and the
operator's transfer settings. Explicit columns, $n parameters, every query filtered by tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.db import together


@dataclass(frozen=True, slots=True)
class StoredObject:
    kind: str
    xzufi_id: str
    version: str
    content_hash: str
    target_tenant_id: UUID
    article_id: UUID | None
    department_id: UUID | None
    leika_key: str | None
    data: dict[str, Any]
    status: str


def _stored(row: asyncpg.Record) -> StoredObject:
    return StoredObject(
        kind=row["kind"],
        xzufi_id=row["xzufi_id"],
        version=row["version"],
        content_hash=row["content_hash"],
        target_tenant_id=row["target_tenant_id"],
        article_id=row["article_id"],
        department_id=row["department_id"],
        leika_key=row["leika_key"],
        data=row["data"],
        status=row["status"],
    )


OBJECT_COLUMNS = """kind, xzufi_id, version, content_hash, target_tenant_id, article_id, department_id, leika_key,
    data, status"""


async def objects_by_ids(
    conn: asyncpg.Connection, tenant_id: UUID, kind: str, xzufi_ids: Sequence[str]
) -> dict[str, StoredObject]:
    if not xzufi_ids:  # a message without offices (most of a feed's) asks nothing
        return {}
    rows = await conn.fetch(
        f"""SELECT {OBJECT_COLUMNS} FROM xzufi_objects
            WHERE tenant_id = $1 AND kind = $2 AND xzufi_id = ANY($3::text[])""",
        tenant_id,
        kind,
        list(xzufi_ids),
    )
    return {r["xzufi_id"]: _stored(r) for r in rows}


# Active offices naming one of the services (`ids`: the parameter holding their ids).
_OFFICES_NAMING = "kind = 'organisationseinheit' AND status = 'active' AND data->'leistungen' ?| {ids}::text[]"


async def offices_responsible_for(
    conn: asyncpg.Connection, tenant_id: UUID, leistung_ids: Sequence[str]
) -> list[StoredObject]:
    """Active offices that name one of the services in their responsibilities."""
    rows = await conn.fetch(
        f"""SELECT {OBJECT_COLUMNS} FROM xzufi_objects
            WHERE tenant_id = $1 AND {_OFFICES_NAMING.format(ids="$2")}
            ORDER BY xzufi_id""",
        tenant_id,
        list(leistung_ids),
    )
    return [_stored(r) for r in rows]


async def services_and_offices(
    conn: asyncpg.Connection, tenant_id: UUID, leistung_ids: Sequence[str], named: Sequence[str]
) -> tuple[dict[str, StoredObject], list[StoredObject]]:
    """`objects_by_ids` of the services and `offices_responsible_for` the `named` ones, in one
    round trip (every message asks both; decision 024, branch importspeed6)."""
    if not named:
        return await objects_by_ids(conn, tenant_id, "leistung", leistung_ids), []
    rows = await conn.fetch(
        f"""SELECT {OBJECT_COLUMNS} FROM xzufi_objects
            WHERE tenant_id = $1 AND kind = 'leistung' AND xzufi_id = ANY($2::text[])
            UNION ALL
            SELECT {OBJECT_COLUMNS} FROM xzufi_objects
            WHERE tenant_id = $1 AND {_OFFICES_NAMING.format(ids="$3")}
            ORDER BY kind, xzufi_id""",
        tenant_id,
        list(leistung_ids),
        list(named),
    )
    services = {r["xzufi_id"]: _stored(r) for r in rows if r["kind"] == "leistung"}
    return services, [_stored(r) for r in rows if r["kind"] == "organisationseinheit"]


async def office_with_responsibility(
    conn: asyncpg.Connection, tenant_id: UUID, responsibility_id: str
) -> StoredObject | None:
    """The active office that lists a responsibility by its own id (a `loesche` names only that)."""
    row = await conn.fetchrow(
        f"""SELECT {OBJECT_COLUMNS} FROM xzufi_objects
            WHERE tenant_id = $1 AND kind = 'organisationseinheit' AND status = 'active'
              AND data->'responsibilities' @> jsonb_build_array(jsonb_build_object('id', $2::text))
            ORDER BY xzufi_id LIMIT 1""",
        tenant_id,
        responsibility_id,
    )
    return _stored(row) if row is not None else None


async def save_objects(
    conn: asyncpg.Connection, tenant_id: UUID, values: Sequence[StoredObject], now: datetime
) -> None:
    """Many objects in one statement (the bulk import; the rows as arrays, `data` as JSON text)."""
    await together.execute(conn, [objects_save(tenant_id, values, now)])


_INSERT_OBJECTS = """INSERT INTO xzufi_objects (tenant_id, kind, xzufi_id, version, content_hash, target_tenant_id,
        article_id, department_id, leika_key, data, status, created_at, updated_at)
    SELECT $1, kind, xzufi_id, version, content_hash, target, article, department, leika_key, data::jsonb,
           status, $2, $2
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::uuid[], $9::uuid[],
                $10::text[], $11::text[], $12::text[])
        AS o (kind, xzufi_id, version, content_hash, target, article, department, leika_key, data, status)"""
_UPSERT_OBJECTS = (
    _INSERT_OBJECTS
    + """
    ON CONFLICT (tenant_id, kind, xzufi_id) DO UPDATE SET
        version = EXCLUDED.version, content_hash = EXCLUDED.content_hash,
        target_tenant_id = EXCLUDED.target_tenant_id, article_id = EXCLUDED.article_id,
        department_id = EXCLUDED.department_id, leika_key = EXCLUDED.leika_key,
        data = EXCLUDED.data, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at"""
)


def objects_save(
    tenant_id: UUID, values: Sequence[StoredObject], now: datetime, *, new: bool = False
) -> together.Statement | None:
    """`save_objects`' statement, to send with others (`together`). With `new`, objects never
    received (the bulk path's, read under the import lock): a plain insert, without the
    conflict check's speculative insertion per row; one received meanwhile fails the lot."""
    if not values:
        return None
    return (
        _INSERT_OBJECTS if new else _UPSERT_OBJECTS,
        [
            tenant_id,
            now,
            [v.kind for v in values],
            [v.xzufi_id for v in values],
            [v.version for v in values],
            [v.content_hash for v in values],
            [v.target_tenant_id for v in values],
            [v.article_id for v in values],
            [v.department_id for v in values],
            [v.leika_key for v in values],
            [msgspec.json.encode(v.data).decode() for v in values],
            [v.status for v in values],
        ],
    )


async def save_object(conn: asyncpg.Connection, tenant_id: UUID, value: StoredObject, now: datetime) -> None:
    await save_objects(conn, tenant_id, [value], now)


async def begin_bulk(conn: asyncpg.Connection, *, release: bool = False) -> None:
    """Plan this connection's statements afresh, foreign-key checks included, and open a savepoint
    for a bulk write (`undo_bulk` goes back to it), in one round trip. A connection keeps the plan
    of each foreign-key check from its first use: made while `articles` was small (a new
    installation's first import), it scans the whole table, and checking the five rows a new
    service references it with became quadratic — measured, 40 million rows read to import 4,000
    services, the import's PostgreSQL time 4× (decision 024's fifth amendment). `release` ends
    the savepoint an earlier message of the same transaction left open (a zip's), in the same
    round trip, so a zip's savepoints do not nest."""
    await conn.execute(("RELEASE SAVEPOINT xzufi_bulk; " if release else "") + "DISCARD PLANS; SAVEPOINT xzufi_bulk")


async def undo_bulk(conn: asyncpg.Connection) -> None:
    await conn.execute("ROLLBACK TO SAVEPOINT xzufi_bulk; RELEASE SAVEPOINT xzufi_bulk")


async def lock_imports(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """One import of an operator's objects at a time, until this transaction ends: a second
    import of the same message waits, then finds everything known (no duplicate articles)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('xzufi-import:' || $1::uuid::text, 0))", tenant_id
    )


# ---------------------------------------------------------------------------------- provenance


@dataclass(frozen=True, slots=True)
class SourceRow:
    tenant_id: UUID
    article_id: UUID
    section: str
    origin: str
    reference: str | None
    reference_version: str | None
    imported_hash: str | None
    written_hash: str | None
    changed_at: datetime
    changed_by: str
    source_changed_at: datetime | None


SOURCE_COLUMNS = """tenant_id, article_id, section, origin, reference, reference_version, imported_hash, written_hash,
    changed_at, changed_by, source_changed_at"""


async def section_sources(
    conn: asyncpg.Connection, pairs: Sequence[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], dict[str, SourceRow]]:
    """The provenance of the given (tenant, article) pairs, by section: a section's own row, or
    else what the article's row (`article_sources`, written when the import created it) says of
    it — one row per section either way, in one round trip."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        f"""WITH wanted (tenant_id, article_id) AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
            SELECT {SOURCE_COLUMNS}, 0 AS rank FROM article_section_sources
            WHERE (tenant_id, article_id) IN (SELECT * FROM wanted)
            UNION ALL
            SELECT a.tenant_id, a.article_id, h.key, a.origin, a.reference, a.reference_version, h.value, h.value,
                   a.changed_at, a.changed_by, NULL::timestamptz, 1
            FROM article_sources a CROSS JOIN LATERAL jsonb_each_text(a.written_hashes) AS h
            WHERE (a.tenant_id, a.article_id) IN (SELECT * FROM wanted)
            ORDER BY rank""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    result: dict[tuple[UUID, UUID], dict[str, SourceRow]] = {pair: {} for pair in pairs}
    for r in rows:  # a section's own row first: it takes precedence over the article's
        result[(r["tenant_id"], r["article_id"])].setdefault(r["section"], SourceRow(*tuple(r)[:-1]))
    return result


async def save_sources(conn: asyncpg.Connection, rows: Sequence[SourceRow]) -> None:
    if not rows:
        return
    await conn.executemany(
        """INSERT INTO article_section_sources (tenant_id, article_id, section, origin, reference, reference_version,
               imported_hash, written_hash, changed_at, changed_by, source_changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (tenant_id, article_id, section) DO UPDATE SET
               origin = EXCLUDED.origin, reference = EXCLUDED.reference,
               reference_version = EXCLUDED.reference_version, imported_hash = EXCLUDED.imported_hash,
               written_hash = EXCLUDED.written_hash, changed_at = EXCLUDED.changed_at,
               changed_by = EXCLUDED.changed_by, source_changed_at = EXCLUDED.source_changed_at""",
        [
            (
                r.tenant_id,
                r.article_id,
                r.section,
                r.origin,
                r.reference,
                r.reference_version,
                r.imported_hash,
                r.written_hash,
                r.changed_at,
                r.changed_by,
                r.source_changed_at,
            )
            for r in rows
        ],
    )


@dataclass(frozen=True, slots=True)
class ArticleSource:
    """Where a new article came from as a whole: every section from the same object and version,
    at the same time, by the same author; what was written is what was sent (`hashes`)."""

    tenant_id: UUID
    article_id: UUID
    origin: str
    reference: str | None
    reference_version: str | None
    hashes: dict[str, str]  # section → hash of what the import wrote
    changed_at: datetime
    changed_by: str


async def add_article_sources(conn: asyncpg.Connection, rows: Sequence[ArticleSource]) -> None:
    """Provenance of new articles, one row each (the rows as arrays, the hashes as JSON text).
    One row per section, eleven a service, each with its foreign-key check and index entry, was
    the bulk import's dearest statement (decision 024's fifth amendment)."""
    await together.execute(conn, [article_sources_insert(rows)])


def article_sources_insert(rows: Sequence[ArticleSource]) -> together.Statement | None:
    """`add_article_sources`' statement, to send with others (`together`)."""
    if not rows:
        return None
    return (
        """INSERT INTO article_sources (tenant_id, article_id, origin, reference, reference_version, written_hashes,
               changed_at, changed_by)
           SELECT t, a, o, r, v, h::jsonb, c, b
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                       $8::text[]) AS s (t, a, o, r, v, h, c, b)""",
        [
            [r.tenant_id for r in rows],
            [r.article_id for r in rows],
            [r.origin for r in rows],
            [r.reference for r in rows],
            [r.reference_version for r in rows],
            [msgspec.json.encode(r.hashes).decode() for r in rows],
            [r.changed_at for r in rows],
            [r.changed_by for r in rows],
        ],
    )


async def confirm_sources(
    conn: asyncpg.Connection, tenant_id: UUID, article_id: UUID, sections: Sequence[str] | None
) -> int:
    status = await conn.execute(
        """UPDATE article_section_sources SET source_changed_at = NULL
           WHERE tenant_id = $1 AND article_id = $2 AND source_changed_at IS NOT NULL
             AND ($3::text[] IS NULL OR section = ANY($3::text[]))""",
        tenant_id,
        article_id,
        list(sections) if sections is not None else None,
    )
    return int(status.split()[-1])


# ---------------------------------------------------------------------------------- search terms


# An article's imported terms are one row: `terms` as sent, `lowered` through PostgreSQL's lower()
# (what the search compares with the question's words; decision 024, branch importspeed7).
_INSERT_TERMS = """INSERT INTO article_search_terms (tenant_id, article_id, terms, lowered, leika_key, source, shared)
    SELECT t, a, ($3::text[])[f:l], lower((($3::text[])[f:l])::text)::text[], k, 'xzufi', s
    FROM unnest($1::uuid[], $2::uuid[], $4::int[], $5::int[], $6::text[], $7::boolean[]) AS r (t, a, f, l, k, s)"""


async def replace_search_terms(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    article_id: UUID,
    leika_key: str | None,
    terms: Sequence[str],
    shared: bool,
) -> None:
    statement = search_terms_insert([(tenant_id, article_id, terms, leika_key, shared)])
    if statement is None:
        await conn.execute(
            "DELETE FROM article_search_terms WHERE tenant_id = $1 AND article_id = $2", tenant_id, article_id
        )
        return
    await conn.execute(
        statement[0]
        + """
        ON CONFLICT (tenant_id, article_id) DO UPDATE SET terms = EXCLUDED.terms, lowered = EXCLUDED.lowered,
            leika_key = EXCLUDED.leika_key, shared = EXCLUDED.shared""",
        *statement[1],
    )


def search_terms_insert(
    rows: Sequence[tuple[UUID, UUID, Sequence[str], str | None, bool]],
) -> together.Statement | None:
    """The imported search terms of articles without any yet, one row an article: (tenant,
    article, terms, LeiKa key, shared); an article without terms gets no row. The terms travel as
    one array, each article's as a slice of it (`f`..`l`), so an article is one row however many
    terms it has."""
    flat: list[str] = []
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for tenant_id, article_id, terms, leika_key, shared in rows:
        once = list(dict.fromkeys(terms))  # each term once, in the source's order
        if not once:
            continue
        for column, value in zip(
            columns, (tenant_id, article_id, len(flat) + 1, len(flat) + len(once), leika_key, shared), strict=True
        ):
            column.append(value)
        flat.extend(once)
    if not flat:
        return None
    return _INSERT_TERMS, [columns[0], columns[1], flat, *columns[2:]]


# ---------------------------------------------------------------------------------- transfer

TRANSFER_COLUMNS = """tenant_id, url, token_url, client_id, client_secret, scope, interval_minutes, enabled, cursor_url,
    next_index, next_run_at, last_run_at, last_outcome, last_report, version"""


async def find_transfer(conn: asyncpg.Connection, tenant_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {TRANSFER_COLUMNS} FROM xzufi_transfers WHERE tenant_id = $1{suffix}", tenant_id
    )
    return row


async def save_transfer(
    conn: asyncpg.Connection, tenant_id: UUID, fields: dict[str, Any], now: datetime, restart: bool
) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""INSERT INTO xzufi_transfers (tenant_id, url, token_url, client_id, client_secret, scope, interval_minutes,
               enabled, next_run_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT (tenant_id) DO UPDATE SET
               url = EXCLUDED.url, token_url = EXCLUDED.token_url, client_id = EXCLUDED.client_id,
               client_secret = EXCLUDED.client_secret, scope = EXCLUDED.scope,
               interval_minutes = EXCLUDED.interval_minutes, enabled = EXCLUDED.enabled,
               next_run_at = EXCLUDED.next_run_at,
               cursor_url = CASE WHEN $10 OR xzufi_transfers.url <> EXCLUDED.url
                                 THEN NULL ELSE xzufi_transfers.cursor_url END,
               next_index = CASE WHEN $10 OR xzufi_transfers.url <> EXCLUDED.url
                                 THEN NULL ELSE xzufi_transfers.next_index END,
               version = xzufi_transfers.version + 1, updated_at = EXCLUDED.updated_at,
               run_id = NULL, run_seen_at = NULL
           RETURNING {TRANSFER_COLUMNS}""",
        tenant_id,
        fields["url"],
        fields["token_url"],
        fields["client_id"],
        fields["client_secret"],
        fields["scope"],
        fields["interval_minutes"],
        fields["enabled"],
        now,
        restart,
    )
    assert row is not None
    return row


async def claim_due_transfers(conn: asyncpg.Connection, now: datetime, held: timedelta) -> list[tuple[UUID, str]]:
    """Due transfers no run holds, claimed by moving their next run on: another instance skips them."""
    rows = await conn.fetch(
        """UPDATE xzufi_transfers x SET next_run_at = $1::timestamptz + make_interval(mins => x.interval_minutes)
           FROM tenants t
           WHERE t.id = x.tenant_id AND x.tenant_id IN (
               SELECT tenant_id FROM xzufi_transfers WHERE enabled AND next_run_at <= $1::timestamptz
                 AND (run_id IS NULL OR run_seen_at < $1::timestamptz - $2::interval)
               FOR UPDATE SKIP LOCKED)
           RETURNING x.tenant_id, t.slug""",
        now,
        held,
    )
    return [(r["tenant_id"], r["slug"]) for r in rows]


async def begin_run(
    conn: asyncpg.Connection, tenant_id: UUID, run_id: UUID, now: datetime, held: timedelta
) -> asyncpg.Record | None:
    """Take the transfer for one run; None when another run holds it (seen within `held`)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE xzufi_transfers SET run_id = $2, run_seen_at = $3
            WHERE tenant_id = $1 AND (run_id IS NULL OR run_seen_at < $3::timestamptz - $4::interval)
            RETURNING {TRANSFER_COLUMNS}""",
        tenant_id,
        run_id,
        now,
        held,
    )
    return row


async def save_cursor(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    run_id: UUID,
    cursor_url: str | None,
    next_index: int | None,
    now: datetime,
) -> bool:
    """The cursor after a page of run `run_id`; False (nothing saved) when the run no longer
    holds the transfer: its settings were saved meanwhile, or its hold ran out and another took it."""
    status = await conn.execute(
        """UPDATE xzufi_transfers SET cursor_url = $3, next_index = $4, run_seen_at = $5
           WHERE tenant_id = $1 AND run_id = $2""",
        tenant_id,
        run_id,
        cursor_url,
        next_index,
        now,  # the application's clock, as begin_run and the claim compare with (not the server's)
    )
    return bool(status.endswith(" 1"))


async def finish_run(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    run_id: UUID,
    now: datetime,
    outcome: str,
    report: dict[str, Any] | None,
) -> None:
    """Record the run's end and let the transfer go (only while the run still holds it)."""
    await conn.execute(
        """UPDATE xzufi_transfers SET last_run_at = $3::timestamptz, last_outcome = $4, last_report = $5,
               next_run_at = $3::timestamptz + make_interval(mins => interval_minutes),
               run_id = NULL, run_seen_at = NULL
           WHERE tenant_id = $1 AND run_id = $2""",
        tenant_id,
        run_id,
        now,
        outcome[:2000],
        report,
    )
