"""SQL for the knowledge index queue (`knowledge_index_queue`, decision 024's third amendment):
articles whose search rows, lexicon counts and sentence vectors the background worker makes after
the writer committed, and what the worker reads of them. Explicit columns, $n parameters; the
worker runs under all-tenant row-level security, and every key carries its tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from backend.db import together
from backend.db.rows import row_to
from backend.knowledge.repository import ARTICLE_COLUMNS
from backend.knowledge.schemas import Article


async def enqueue(conn: asyncpg.Connection, documents: Sequence[tuple[UUID, UUID]], *, words: bool) -> None:
    """Queue (tenant, document) pairs, of any tenants, in one statement: with `words` for their
    search rows, lexicon counts and vector, without for the vector alone."""
    await together.execute(conn, [enqueue_statement(documents, words=words)])


def enqueue_statement(documents: Sequence[tuple[UUID, UUID]], *, words: bool) -> together.Statement | None:
    """`enqueue`'s statement, to send with others (`together`)."""
    if not documents:
        return None
    return (
        """INSERT INTO knowledge_index_queue (tenant_id, doc_id, words)
           SELECT t, d, $3 FROM unnest($1::uuid[], $2::uuid[]) AS q (t, d)""",
        [[t for t, _ in documents], [d for _, d in documents], words],
    )


@dataclass(frozen=True, slots=True)
class Queued:
    tenant_id: UUID
    id: int
    doc_id: UUID


async def claim_queued(conn: asyncpg.Connection, limit: int, *, words: bool) -> list[Queued]:
    """The oldest queued rows that still need their words (or, without `words`, only a vector)
    and that no other worker holds, locked until this transaction ends."""
    rows = await conn.fetch(
        """SELECT tenant_id, id, doc_id FROM knowledge_index_queue
           WHERE words = $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
        words,
    )
    return [Queued(r["tenant_id"], r["id"], r["doc_id"]) for r in rows]


def _keys(claimed: Sequence[Queued]) -> tuple[list[UUID], list[int]]:
    return [c.tenant_id for c in claimed], [c.id for c in claimed]


async def words_made(conn: asyncpg.Connection, claimed: Sequence[Queued]) -> None:
    """The claimed rows' words are written: they wait for their vector now."""
    if claimed:
        await conn.execute(
            """UPDATE knowledge_index_queue q SET words = false
               FROM unnest($1::uuid[], $2::bigint[]) AS c (tenant_id, id)
               WHERE q.tenant_id = c.tenant_id AND q.id = c.id""",
            *_keys(claimed),
        )


async def forget_queued(conn: asyncpg.Connection, claimed: Sequence[Queued]) -> None:
    """Delete exactly the claimed rows: one queued meanwhile for a newer text stays."""
    if claimed:
        await conn.execute(
            """DELETE FROM knowledge_index_queue q
               USING unnest($1::uuid[], $2::bigint[]) AS c (tenant_id, id)
               WHERE q.tenant_id = c.tenant_id AND q.id = c.id""",
            *_keys(claimed),
        )


async def queued_count(conn: asyncpg.Connection, *, words: bool | None = None) -> int:
    """How many rows wait (of the tenants this transaction sees): all, or those that still need
    their words (`words=True`) or only a vector (`words=False`)."""
    return int(
        await conn.fetchval("SELECT count(*) FROM knowledge_index_queue WHERE $1::boolean IS NULL OR words = $1", words)
    )


async def try_words_lock(conn: asyncpg.Connection) -> bool:
    """Whether this transaction may write queued articles' words: one worker at a time, so that
    two instances never wait on each other's lexicon rows (the vectors need no such lock)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended('knowledge-index-words', 0))"))


_ARTICLES = f"""SELECT {", ".join("a." + c.strip() for c in ARTICLE_COLUMNS.split(","))}
    FROM articles a
    JOIN unnest($1::uuid[], $2::uuid[]) AS k (tenant_id, id) ON a.tenant_id = k.tenant_id AND a.id = k.id
    ORDER BY a.tenant_id, a.id"""


async def find_articles(conn: asyncpg.Connection, keys: Sequence[tuple[UUID, UUID]]) -> list[Article]:
    """The articles of (tenant, id) keys, of any tenants, unlocked."""
    rows = await conn.fetch(_ARTICLES, [t for t, _ in keys], [i for _, i in keys])
    return [row_to(Article, r) for r in rows]


async def lock_articles(conn: asyncpg.Connection, keys: Sequence[tuple[UUID, UUID]]) -> list[Article]:
    """`find_articles`, each locked as a writer locks it (`move_article` updates the row) until
    this transaction ends: a publish or an archive of one of them waits for the worker and reads
    its search rows after. Those another transaction holds are left out (SKIP LOCKED: the worker
    never waits on an article)."""
    rows = await conn.fetch(
        _ARTICLES + " FOR NO KEY UPDATE OF a SKIP LOCKED", [t for t, _ in keys], [i for _, i in keys]
    )
    return [row_to(Article, r) for r in rows]


async def indexed_versions(conn: asyncpg.Connection, articles: Sequence[Article]) -> dict[tuple[UUID, UUID, str], int]:
    """{(tenant, article, view): version} of the search rows the articles have."""
    rows = await conn.fetch(
        """SELECT k.tenant_id, k.doc_id, k.view, k.version FROM knowledge_search k
           JOIN unnest($1::uuid[], $2::uuid[]) AS a (tenant_id, id) ON k.tenant_id = a.tenant_id AND k.doc_id = a.id""",
        [a.tenant_id for a in articles],
        [a.id for a in articles],
    )
    return {(r["tenant_id"], r["doc_id"], r["view"]): r["version"] for r in rows}
