"""SQL for the LeiKa catalogue: its services, the synonyms imported with them, and the merge of a
catalogue import. Split from `search_repository` (the search index and the search itself), which
counts the lexemes a merge changes.

Explicit columns, $n parameters, the tenant always given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from backend.db.rows import row_to
from backend.knowledge.schemas import LeikaService

SERVICE_COLUMNS = (
    """tenant_id, leika_key, name, typisierung, ozg_service, ozg_id, life_situation, legal_basis, active"""
)


def _service(row: asyncpg.Record) -> LeikaService:
    return row_to(LeikaService, row)


async def find_service(conn: asyncpg.Connection, owner_ids: Sequence[UUID], leika_key: str) -> LeikaService | None:
    row = await conn.fetchrow(
        f"""SELECT {SERVICE_COLUMNS} FROM leika_services
            WHERE tenant_id = ANY($1::uuid[]) AND leika_key = $2 ORDER BY active DESC LIMIT 1""",
        list(owner_ids),
        leika_key,
    )
    return _service(row) if row else None


async def service_names(conn: asyncpg.Connection, owner_ids: Sequence[UUID], keys: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (leika_key) leika_key, name FROM leika_services
           WHERE tenant_id = ANY($1::uuid[]) AND leika_key = ANY($2::text[]) ORDER BY leika_key, active DESC""",
        list(owner_ids),
        list(keys),
    )
    return {r["leika_key"]: r["name"] for r in rows}


async def service_names_for_owners(
    conn: asyncpg.Connection, owner_ids: Sequence[UUID], keys: Sequence[str]
) -> dict[tuple[UUID, str], str]:
    """`service_names` for several owners at once, each in its own catalogue and those of the
    operators serving it (`knowledge_shared_owner_ids`): {(owner, key): name}, one round trip."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (o.owner, s.leika_key) o.owner, s.leika_key, s.name
           FROM unnest($1::uuid[]) AS o (owner)
           JOIN leika_services s
             ON s.tenant_id = ANY(knowledge_shared_owner_ids(ARRAY[o.owner]) || o.owner)
           WHERE s.leika_key = ANY($2::text[])
           ORDER BY o.owner, s.leika_key, s.active DESC""",
        list(owner_ids),
        list(keys),
    )
    return {(r["owner"], r["leika_key"]): r["name"] for r in rows}


async def owners_and_imported_synonyms(
    conn: asyncpg.Connection, town_id: UUID, words: Sequence[str]
) -> tuple[list[UUID], list[tuple[str, str]]]:
    """The operators whose shared knowledge the town sees today (`knowledge_shared_owner_ids`, as
    `repository.shared_owner_ids`), and the (term, catalogue name) of the imported one-word search
    terms among `words` (decision 024; an article's terms are one row, `lowered` holding them
    through lower()) that the town and those operators may read, with the name of the term's
    service in the operators' catalogues (the active entry first): two round trips of the search
    (the operators, then the terms, which need them) in one (decision 035)."""
    row = await conn.fetchrow(
        """WITH owners AS (SELECT knowledge_shared_owner_ids(ARRAY[$1::uuid]) AS ids)
           SELECT o.ids AS owner_ids,
                  ARRAY(SELECT row(t.term, n.name)
                        FROM (SELECT DISTINCT w.term, s.leika_key FROM article_search_terms s
                              CROSS JOIN LATERAL unnest(s.terms, s.lowered) AS w (term, lowered)
                              WHERE s.tenant_id = ANY(array_prepend($1::uuid, o.ids))
                                AND s.lowered && $2::text[] AND s.leika_key IS NOT NULL
                                AND w.lowered = ANY($2::text[])) t
                        CROSS JOIN LATERAL (SELECT name FROM leika_services
                                            WHERE tenant_id = ANY(o.ids) AND leika_key = t.leika_key
                                            ORDER BY active DESC LIMIT 1) n
                        ORDER BY t.term, t.leika_key) AS terms
           FROM owners o""",
        town_id,
        list(words),
    )
    assert row is not None  # a SELECT from a one-row CTE
    return list(row["owner_ids"]), [(term, name) for term, name in row["terms"]]


@dataclass(frozen=True, slots=True)
class CatalogueRecord:
    leika_key: str
    name: str
    typisierung: str
    ozg_service: str
    ozg_id: str | None
    life_situation: str
    legal_basis: str
    parts: str  # compound parts of the name, for the index
    context: str  # OZG service and life situation, with compound parts
    body: str  # legal basis without addresses


async def lock_catalogue(conn: asyncpg.Connection, owner: UUID) -> None:
    """Until the transaction ends, the one who imports this operator's catalogue. Two imports at
    once (a client's retry) update the same entries in different orders and can deadlock; taken in
    turn, the second merges onto the first's result."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('leika-catalogue:' || $1::uuid::text, 0))", owner)


async def merge_catalogue(
    conn: asyncpg.Connection, tenant_id: UUID, records: Sequence[CatalogueRecord]
) -> tuple[int, int, int, int, int]:
    """Insert new entries, update changed ones, deactivate those no longer in the catalogue;
    keep the search rows in step. Returns (inserted, updated, unchanged, deactivated, search rows
    written): an entry's search row can change while the entry does not (its action's search
    terms, `leika.action_words`)."""
    await conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS leika_import (
               leika_key text PRIMARY KEY, name text, typisierung text, ozg_service text, ozg_id text,
               life_situation text, legal_basis text, parts text, context text, body text) ON COMMIT DROP"""
    )
    await conn.execute("TRUNCATE leika_import")
    await conn.copy_records_to_table(
        "leika_import",
        records=[
            (
                r.leika_key,
                r.name,
                r.typisierung,
                r.ozg_service,
                r.ozg_id,
                r.life_situation,
                r.legal_basis,
                r.parts,
                r.context,
                r.body,
            )
            for r in records
        ],
        columns=[
            "leika_key",
            "name",
            "typisierung",
            "ozg_service",
            "ozg_id",
            "life_situation",
            "legal_basis",
            "parts",
            "context",
            "body",
        ],
    )
    counts = await conn.fetchrow(
        """WITH merged AS (
               INSERT INTO leika_services AS s (tenant_id, leika_key, id, name, typisierung, ozg_service, ozg_id,
                                                life_situation, legal_basis)
               SELECT $1, i.leika_key, gen_random_uuid(), i.name, i.typisierung, i.ozg_service, i.ozg_id,
                      i.life_situation, i.legal_basis
               FROM leika_import i
               ON CONFLICT (tenant_id, leika_key) DO UPDATE
                   SET name = EXCLUDED.name, typisierung = EXCLUDED.typisierung, ozg_service = EXCLUDED.ozg_service,
                       ozg_id = EXCLUDED.ozg_id, life_situation = EXCLUDED.life_situation,
                       legal_basis = EXCLUDED.legal_basis, active = true, updated_at = now()
                   WHERE (s.name, s.typisierung, s.ozg_service, s.ozg_id, s.life_situation, s.legal_basis, s.active)
                         IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.typisierung, EXCLUDED.ozg_service,
                                           EXCLUDED.ozg_id, EXCLUDED.life_situation, EXCLUDED.legal_basis, true)
               RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated
           FROM merged""",
        tenant_id,
    )
    deactivated = await conn.fetch(
        """UPDATE leika_services SET active = false, updated_at = now()
           WHERE tenant_id = $1 AND active AND leika_key NOT IN (SELECT leika_key FROM leika_import)
           RETURNING id""",
        tenant_id,
    )
    await conn.execute(
        "DELETE FROM knowledge_search WHERE tenant_id = $1 AND view = 'published' AND doc_id = ANY($2::uuid[])",
        tenant_id,
        [r["id"] for r in deactivated],
    )
    # The search rows of every entry in the file (cheap: one statement; unchanged rows stay equal).
    written = await conn.execute(
        """INSERT INTO knowledge_search AS k (tenant_id, view, doc_id, source, shared, article_kind, leika_key, status,
                                              version, title, summary, body, title_words, tsv_a, tsv_b, tsv_c,
                                              tsv_d, tsv, updated_at)
           SELECT s.tenant_id, 'published', s.id, 'service', true, NULL, s.leika_key, 'published', NULL, s.name,
                  s.ozg_service, i.body, greatest(1, length(to_tsvector('kb_german', s.name))),
                  t.a, t.b, t.c, t.d,
                  setweight(t.a, 'A') || setweight(t.b, 'B') || setweight(t.c, 'C') || setweight(t.d, 'D'), now()
           FROM leika_services s JOIN leika_import i ON i.leika_key = s.leika_key
           CROSS JOIN LATERAL (SELECT to_tsvector('kb_german', s.name) AS a,
                                      to_tsvector('kb_german', i.parts) AS b,
                                      to_tsvector('kb_german', i.context) AS c,
                                      to_tsvector('kb_german', i.body) AS d) t
           WHERE s.tenant_id = $1
           ON CONFLICT (tenant_id, view, doc_id) DO UPDATE
               SET leika_key = EXCLUDED.leika_key, title = EXCLUDED.title, summary = EXCLUDED.summary,
                   body = EXCLUDED.body, title_words = EXCLUDED.title_words, tsv_a = EXCLUDED.tsv_a,
                   tsv_b = EXCLUDED.tsv_b, tsv_c = EXCLUDED.tsv_c, tsv_d = EXCLUDED.tsv_d, tsv = EXCLUDED.tsv,
                   updated_at = now()
               WHERE k.tsv IS DISTINCT FROM EXCLUDED.tsv OR k.title IS DISTINCT FROM EXCLUDED.title
                     OR k.summary IS DISTINCT FROM EXCLUDED.summary""",
        tenant_id,
    )
    assert counts is not None
    inserted, updated = int(counts["inserted"]), int(counts["updated"])
    return inserted, updated, len(records) - inserted - updated, len(deactivated), int(written.split()[-1])
