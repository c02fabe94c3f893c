"""SQL for the meaning retriever's vectors (`knowledge_vectors`, decision 026): which published
documents need a vector made (new, changed text, other encoder), storing them, and reading the
vectors a town sees. Explicit columns, $n parameters, the tenant always given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from backend.knowledge.repository import VISIBLE

# The text a document's vector is made from: a catalogue entry's name; an article's title and the
# start of its summary. Kept here once, so the staleness check and the encoder see the same text.
DOCUMENT_TEXT = """CASE WHEN k.source = 'service' OR btrim(k.summary) = '' THEN btrim(k.title)
                        ELSE btrim(k.title) || '. ' || left(btrim(k.summary), 300) END"""


@dataclass(frozen=True, slots=True)
class Pending:
    doc_id: UUID
    shared: bool
    leika_key: str | None
    text: str
    text_md5: str


async def pending(
    conn: asyncpg.Connection, tenant_id: UUID, encoder: str, doc_ids: Sequence[UUID] | None = None
) -> list[Pending]:
    """Published documents of the tenant whose vector is missing, or made by another encoder or
    from another text (all of the tenant's, or only `doc_ids`)."""
    rows = await conn.fetch(
        f"""SELECT k.doc_id, k.shared, k.leika_key, t.text, md5(t.text) AS text_md5
            FROM knowledge_search k
            CROSS JOIN LATERAL (SELECT {DOCUMENT_TEXT} AS text) t
            LEFT JOIN knowledge_vectors v ON v.tenant_id = k.tenant_id AND v.doc_id = k.doc_id
            WHERE k.tenant_id = $1 AND k.view = 'published'
              AND ($3::uuid[] IS NULL OR k.doc_id = ANY($3::uuid[]))
              AND (v.doc_id IS NULL OR v.encoder <> $2 OR v.text_md5 <> md5(t.text)
                   OR v.shared <> k.shared OR v.leika_key IS DISTINCT FROM k.leika_key)
            ORDER BY k.doc_id""",
        tenant_id,
        encoder,
        None if doc_ids is None else list(doc_ids),
    )
    return [Pending(r["doc_id"], r["shared"], r["leika_key"], r["text"], r["text_md5"]) for r in rows]


async def store(
    conn: asyncpg.Connection, tenant_id: UUID, encoder: str, documents: Sequence[Pending], vectors: Sequence[bytes]
) -> None:
    """Insert or replace the vectors of `documents` (one statement for the lot, through COPY)."""
    if not documents:
        return
    await conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS vector_import (
               doc_id uuid PRIMARY KEY, shared boolean, leika_key text, text_md5 text, vector bytea) ON COMMIT DROP"""
    )
    await conn.execute("TRUNCATE vector_import")
    await conn.copy_records_to_table(
        "vector_import",
        records=[(d.doc_id, d.shared, d.leika_key, d.text_md5, v) for d, v in zip(documents, vectors, strict=True)],
        columns=["doc_id", "shared", "leika_key", "text_md5", "vector"],
    )
    await conn.execute(
        """INSERT INTO knowledge_vectors AS v (tenant_id, doc_id, shared, leika_key, encoder, text_md5, vector)
           SELECT $1, i.doc_id, i.shared, i.leika_key, $2, i.text_md5, i.vector FROM vector_import i
           ON CONFLICT (tenant_id, doc_id) DO UPDATE
               SET shared = EXCLUDED.shared, leika_key = EXCLUDED.leika_key, encoder = EXCLUDED.encoder,
                   text_md5 = EXCLUDED.text_md5, vector = EXCLUDED.vector""",
        tenant_id,
        encoder,
    )


async def visible_vectors(
    conn: asyncpg.Connection, town_id: UUID, owner_ids: Sequence[UUID], encoder: str
) -> list[asyncpg.Record]:
    """Every vector of the encoder a town sees: its own documents and its operators' shared ones."""
    return list(
        await conn.fetch(
            f"""SELECT doc_id, leika_key, vector FROM knowledge_vectors
                WHERE {VISIBLE} AND encoder = $3 ORDER BY tenant_id, doc_id""",
            town_id,
            list(owner_ids),
            encoder,
        )
    )
