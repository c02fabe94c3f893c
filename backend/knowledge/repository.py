"""SQL for articles, their versions and the synonyms (the search index and the LeiKa catalogue
are in `search_repository`).

Explicit columns, $n parameters, the tenant always given. "Visible" reads take the context
town and the operators serving it: a row is visible when it belongs to the town, or is shared
and belongs to one of those operators (the same rule the `shared_read` policies enforce).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.db import together
from backend.db.rows import row_to
from backend.errors import NotFound
from backend.i18n import _l
from backend.knowledge.schemas import Article, ArticleStatus, ArticleVersion, NewVersion, Synonym

ARTICLE_COLUMNS = """tenant_id, id, kind, base_tenant_id, base_article_id, external_id, status, latest_version,
    published_version, created_at, created_by, updated_at"""
VERSION_COLUMNS = """tenant_id, article_id, version, status, title, summary, leika_key, sections, overrides,
    search_terms, review_due, valid_from, valid_until, change_note, author, author_tenant_id, created_at"""
_VERSION_WRITTEN = [name.strip() for name in VERSION_COLUMNS.split(",") if name.strip() != "created_at"]
_INSERT_VERSION = f"""INSERT INTO article_versions ({", ".join(_VERSION_WRITTEN)})
    VALUES ({", ".join(f"${n}" for n in range(1, len(_VERSION_WRITTEN) + 1))})
    RETURNING {VERSION_COLUMNS}"""
# A row of a visible table: the town's own, or shared by an operator serving it ($1 town, $2 operators).
VISIBLE = "(tenant_id = $1 OR (shared AND tenant_id = ANY($2::uuid[])))"


# ---------------------------------------------------------------------------------- context


async def shared_owner_ids(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[UUID]:
    """Operators that serve any of `tenant_ids` today (their shared knowledge is visible)."""
    return list(await conn.fetchval("SELECT knowledge_shared_owner_ids($1::uuid[])", list(tenant_ids)))


# ---------------------------------------------------------------------------------- articles


def _article(row: asyncpg.Record) -> Article:
    return row_to(Article, row)


def _version(row: Mapping[str, Any] | asyncpg.Record) -> ArticleVersion:
    values = dict(row)
    values["sections"] = values["sections"] or {}
    values["search_terms"] = list(values["search_terms"] or [])
    return row_to(ArticleVersion, values)


async def find_article(
    conn: asyncpg.Connection, article_id: UUID, town_id: UUID, owner_ids: Sequence[UUID]
) -> Article | None:
    row = await conn.fetchrow(
        f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $3 AND {VISIBLE}", town_id, list(owner_ids), article_id
    )
    return _article(row) if row else None


async def find_own_article(conn: asyncpg.Connection, tenant_ids: Sequence[UUID], article_id: UUID) -> Article | None:
    row = await conn.fetchrow(
        f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = ANY($1::uuid[]) AND id = $2",
        list(tenant_ids),
        article_id,
    )
    return _article(row) if row else None


async def find_article_anywhere(
    conn: asyncpg.Connection, article_id: UUID, tenant_ids: Sequence[UUID], owner_ids: Sequence[UUID]
) -> Article | None:
    """An article of any reachable tenant, or a shared one of an operator serving them."""
    row = await conn.fetchrow(
        f"""SELECT {ARTICLE_COLUMNS} FROM articles
            WHERE id = $1 AND (tenant_id = ANY($2::uuid[]) OR (shared AND tenant_id = ANY($3::uuid[])))
            LIMIT 1""",
        article_id,
        list(tenant_ids),
        list(owner_ids),
    )
    return _article(row) if row else None


async def find_article_by_external_id(conn: asyncpg.Connection, tenant_id: UUID, external_id: str) -> Article | None:
    row = await conn.fetchrow(
        f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND external_id = $2", tenant_id, external_id
    )
    return _article(row) if row else None


async def find_local_version(
    conn: asyncpg.Connection, town_id: UUID, base_tenant_id: UUID, base_article_id: UUID
) -> Article | None:
    row = await conn.fetchrow(
        f"""SELECT {ARTICLE_COLUMNS} FROM articles
            WHERE tenant_id = $1 AND kind = 'local_version' AND base_tenant_id = $2 AND base_article_id = $3""",
        town_id,
        base_tenant_id,
        base_article_id,
    )
    return _article(row) if row else None


async def list_articles(
    conn: asyncpg.Connection,
    tenant_ids: Sequence[UUID],
    status: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[tuple[Article, ArticleVersion]]:
    rows = await conn.fetch(
        f"""SELECT {", ".join("a." + c.strip() for c in ARTICLE_COLUMNS.split(","))},
                   {", ".join("v." + c.strip() + " AS v_" + c.strip() for c in VERSION_COLUMNS.split(","))}
            FROM articles a
            JOIN article_versions v
              ON v.tenant_id = a.tenant_id AND v.article_id = a.id AND v.version = a.latest_version
            WHERE a.tenant_id = ANY($1::uuid[]) AND ($2::text IS NULL OR a.status = $2)
              AND ($3::timestamptz IS NULL OR (a.updated_at, a.id) < ($3, $4::uuid))
            ORDER BY a.updated_at DESC, a.id DESC LIMIT $5""",
        list(tenant_ids),
        status,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    result = []
    for row in rows:
        values = dict(row)
        article = row_to(Article, {k: values[k] for k in values if not k.startswith("v_")})
        version = _version({k[2:]: values[k] for k in values if k.startswith("v_")})
        result.append((article, version))
    return result


async def insert_article(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    article_id: UUID,
    kind: str,
    base_tenant_id: UUID | None,
    base_article_id: UUID | None,
    external_id: str | None,
    created_by: str,
) -> Article:
    row = await conn.fetchrow(
        f"""INSERT INTO articles (tenant_id, id, kind, base_tenant_id, base_article_id, external_id, status,
                                  latest_version, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, 'draft', 1, $7)
            RETURNING {ARTICLE_COLUMNS}""",
        tenant_id,
        article_id,
        kind,
        base_tenant_id,
        base_article_id,
        external_id,
        created_by,
    )
    assert row is not None
    return _article(row)


async def lock_article(conn: asyncpg.Connection, tenant_id: UUID, article_id: UUID) -> None:
    """Until the transaction ends, as a writer holds it (`move_article` updates the row): a
    change read and merged now is not overtaken by another before it is written."""
    await conn.execute(
        "SELECT 1 FROM articles WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE", tenant_id, article_id
    )


async def move_article(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    article_id: UUID,
    expected_latest: int,
    status: ArticleStatus,
    published_version: int | None,
) -> Article | None:
    """Point the article at its new latest version; None when someone else moved it first."""
    row = await conn.fetchrow(
        f"""UPDATE articles SET status = $4, latest_version = latest_version + 1, published_version = $5,
                                updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND latest_version = $3
            RETURNING {ARTICLE_COLUMNS}""",
        tenant_id,
        article_id,
        expected_latest,
        status.value,
        published_version,
    )
    return _article(row) if row else None


def _column_value(value: object) -> object:
    """A Struct field as asyncpg takes it: nested Structs as JSON objects, enums by value."""
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if isinstance(value, Enum):
        return value.value
    return value


async def insert_version(conn: asyncpg.Connection, version: NewVersion) -> ArticleVersion:
    """The columns are `VERSION_COLUMNS` but `created_at` (the database's clock), each filled
    from the field of the same name: a new column needs its name here, not a new parameter."""
    row = await conn.fetchrow(_INSERT_VERSION, *(_column_value(getattr(version, name)) for name in _VERSION_WRITTEN))
    assert row is not None
    return _version(row)


async def insert_articles(conn: asyncpg.Connection, articles: Sequence[Article]) -> None:
    """Many new articles in one statement (the XZuFi bulk import; the rows as arrays): each as
    given, already at its status and versions; a taken external id fails the lot
    (UniqueViolationError)."""
    await together.execute(conn, [articles_insert(articles)])


def articles_insert(articles: Sequence[Article]) -> together.Statement | None:
    """`insert_articles`' statement, to send with others (`together`)."""
    if not articles:
        return None
    return (
        """INSERT INTO articles (tenant_id, id, kind, base_tenant_id, base_article_id, external_id, status,
                                 latest_version, published_version, created_by)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
                                $8::integer[], $9::integer[], $10::text[])""",
        [
            [a.tenant_id for a in articles],
            [a.id for a in articles],
            [a.kind.value for a in articles],
            [a.base_tenant_id for a in articles],
            [a.base_article_id for a in articles],
            [a.external_id for a in articles],
            [a.status.value for a in articles],
            [a.latest_version for a in articles],
            [a.published_version for a in articles],
            [a.created_by for a in articles],
        ],
    )


# The SQL type of each written column, to pass many versions as arrays (`insert_versions`).
_VERSION_TYPES = {
    "tenant_id": "uuid",
    "article_id": "uuid",
    "version": "integer",
    "review_due": "date",
    "valid_from": "date",
    "valid_until": "date",
    "author_tenant_id": "uuid",
}
_VERSION_JSON = ("sections", "overrides", "search_terms")  # as JSON text: an array of arrays is not a column


def _version_selected(column: str) -> str:
    if column == "search_terms":  # the JSON array back to text[], in its order
        return (
            "ARRAY(SELECT t FROM jsonb_array_elements_text(search_terms::jsonb) WITH ORDINALITY AS e (t, n) ORDER BY n)"
        )
    return f"{column}::jsonb" if column in _VERSION_JSON else column


_VERSION_ARRAYS = ", ".join(
    f"${n}::{'text' if c in _VERSION_JSON else _VERSION_TYPES.get(c, 'text')}[]"
    for n, c in enumerate(_VERSION_WRITTEN, 1)
)
_INSERT_VERSIONS = f"""INSERT INTO article_versions ({", ".join(_VERSION_WRITTEN)})
    SELECT {", ".join(_version_selected(c) for c in _VERSION_WRITTEN)}
    FROM unnest({_VERSION_ARRAYS}) AS v ({", ".join(_VERSION_WRITTEN)})"""


async def insert_versions(conn: asyncpg.Connection, versions: Sequence[NewVersion]) -> None:
    """Many versions in one statement, the columns as `insert_version` writes them, the rows as
    arrays: `executemany` bound, planned and ran the insert once per version."""
    await together.execute(conn, [versions_insert(versions)])


def versions_insert(versions: Sequence[NewVersion]) -> together.Statement | None:
    """`insert_versions`' statement, to send with others (`together`)."""
    if not versions:
        return None
    columns: list[list[object]] = []
    for name in _VERSION_WRITTEN:
        if name in _VERSION_JSON:  # a Struct encoded as it is: the same JSON as its builtins, one pass
            encoded = (getattr(v, name) for v in versions)
            columns.append([None if x is None else msgspec.json.encode(x).decode() for x in encoded])
        else:
            columns.append([_column_value(getattr(v, name)) for v in versions])
    return _INSERT_VERSIONS, columns


async def get_version(conn: asyncpg.Connection, tenant_id: UUID, article_id: UUID, version: int) -> ArticleVersion:
    row = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM article_versions WHERE tenant_id = $1 AND article_id = $2 AND version = $3",
        tenant_id,
        article_id,
        version,
    )
    if row is None:
        raise NotFound(_l("article version not found"))
    return _version(row)


async def get_versions(conn: asyncpg.Connection, keys: Sequence[tuple[UUID, UUID, int]]) -> list[ArticleVersion]:
    """The versions of (tenant, article, version) keys, of any tenants, in one round trip."""
    rows = await conn.fetch(
        f"""SELECT {", ".join("v." + c.strip() for c in VERSION_COLUMNS.split(","))}
            FROM article_versions v
            JOIN unnest($1::uuid[], $2::uuid[], $3::integer[]) AS k (tenant_id, article_id, version)
              ON v.tenant_id = k.tenant_id AND v.article_id = k.article_id AND v.version = k.version""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )
    return [_version(r) for r in rows]


async def list_versions(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], article_ids: Sequence[UUID]
) -> list[ArticleVersion]:
    """Versions of several articles, each article's newest first."""
    rows = await conn.fetch(
        f"""SELECT {VERSION_COLUMNS} FROM article_versions
            WHERE tenant_id = ANY($1::uuid[]) AND article_id = ANY($2::uuid[])
            ORDER BY article_id, version DESC""",
        list(tenant_ids),
        list(article_ids),
    )
    return [_version(r) for r in rows]


async def local_version_bases(conn: asyncpg.Connection, town_id: UUID, base_article_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these shared articles the town has a published local version of."""
    rows = await conn.fetch(
        """SELECT base_article_id FROM articles
           WHERE tenant_id = $1 AND kind = 'local_version' AND published_version IS NOT NULL
             AND base_article_id = ANY($2::uuid[])""",
        town_id,
        list(base_article_ids),
    )
    return {r["base_article_id"] for r in rows}


async def local_versions_of(conn: asyncpg.Connection, base_tenant_id: UUID, base_article_id: UUID) -> list[UUID]:
    """Towns (visible to this transaction) with a local version of a shared article."""
    rows = await conn.fetch(
        """SELECT tenant_id FROM articles
           WHERE kind = 'local_version' AND base_tenant_id = $1 AND base_article_id = $2""",
        base_tenant_id,
        base_article_id,
    )
    return [r["tenant_id"] for r in rows]


# ---------------------------------------------------------------------------------- synonyms


def _synonym(row: asyncpg.Record) -> Synonym:
    return row_to(Synonym, {**dict(row), "synonyms": list(row["synonyms"])})


SYNONYM_COLUMNS = "tenant_id, id, term, synonyms, created_by, created_at"


async def list_synonyms(conn: asyncpg.Connection, town_id: UUID, owner_ids: Sequence[UUID]) -> list[Synonym]:
    rows = await conn.fetch(
        f"SELECT {SYNONYM_COLUMNS} FROM search_synonyms WHERE {VISIBLE} ORDER BY term, tenant_id",
        town_id,
        list(owner_ids),
    )
    return [_synonym(r) for r in rows]


async def upsert_synonym(
    conn: asyncpg.Connection, tenant_id: UUID, synonym_id: UUID, term: str, synonyms: Sequence[str], created_by: str
) -> Synonym:
    row = await conn.fetchrow(
        f"""INSERT INTO search_synonyms (tenant_id, id, term, synonyms, created_by) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, term) DO UPDATE SET synonyms = EXCLUDED.synonyms
            RETURNING {SYNONYM_COLUMNS}""",
        tenant_id,
        synonym_id,
        term,
        list(synonyms),
        created_by,
    )
    assert row is not None
    return _synonym(row)


async def delete_synonym(conn: asyncpg.Connection, tenant_id: UUID, synonym_id: UUID) -> bool:
    status = await conn.execute("DELETE FROM search_synonyms WHERE tenant_id = $1 AND id = $2", tenant_id, synonym_id)
    return bool(status != "DELETE 0")
