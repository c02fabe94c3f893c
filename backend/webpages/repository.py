"""SQL for registered web sites and their fetched pages (decision 025)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from backend.db.rows import row_to
from backend.webpages.schemas import CrawlReport, WebPage, WebSite

SITE_COLUMNS = (
    "tenant_id, id, base_url, sitemap_url, start_urls, allowed_hosts, recrawl_hours, active, "
    "next_crawl_at, last_crawl_at, last_report, created_at"
)
PAGE_COLUMNS = "tenant_id, id, site_id, url, title, text, content_hash, fetched_at, changed_at, gone_at, article_id"


def _site(row: asyncpg.Record) -> WebSite:
    return row_to(WebSite, row)


async def insert_site(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    site_id: UUID,
    base_url: str,
    sitemap_url: str | None,
    start_urls: Sequence[str],
    allowed_hosts: Sequence[str],
    recrawl_hours: int,
    now: datetime,
    *,
    active: bool = True,
) -> WebSite:
    row = await conn.fetchrow(
        f"""INSERT INTO web_sites (tenant_id, id, base_url, sitemap_url, start_urls, allowed_hosts,
                                   recrawl_hours, next_crawl_at, active)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {SITE_COLUMNS}""",
        tenant_id,
        site_id,
        base_url,
        sitemap_url,
        list(start_urls),
        list(allowed_hosts),
        recrawl_hours,
        now,
        active,
    )
    assert row is not None
    return _site(row)


async def list_sites(conn: asyncpg.Connection, tenant_id: UUID) -> list[WebSite]:
    rows = await conn.fetch(f"SELECT {SITE_COLUMNS} FROM web_sites WHERE tenant_id = $1 ORDER BY base_url", tenant_id)
    return [_site(r) for r in rows]


async def find_site(conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID) -> WebSite | None:
    row = await conn.fetchrow(
        f"SELECT {SITE_COLUMNS} FROM web_sites WHERE tenant_id = $1 AND id = $2", tenant_id, site_id
    )
    return _site(row) if row else None


async def set_site_due(conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID, at: datetime) -> bool:
    """Due at `at`, unless a fetch is running (claimed, its lease not run out): then the wish is
    kept and the site is due when that fetch is stored (`finish_crawl`), never two at once."""
    status = await conn.execute(
        """UPDATE web_sites SET fetch_asked_at = $3,
                  next_crawl_at = CASE WHEN fetching_since IS NOT NULL AND next_crawl_at > $3
                                       THEN next_crawl_at ELSE $3::timestamptz END
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        site_id,
        at,
    )
    return status.endswith(" 1")


async def claim_due_site(conn: asyncpg.Connection, now: datetime, lease_until: datetime) -> WebSite | None:
    """The site most overdue for a fetch, its turn moved to `lease_until` at once: another
    instance skips it, and a crashed fetch is retried when the lease ends."""
    row = await conn.fetchrow(
        f"""UPDATE web_sites s SET next_crawl_at = $2, fetching_since = $1
            FROM (SELECT tenant_id, id FROM web_sites WHERE active AND next_crawl_at <= $1
                  ORDER BY next_crawl_at LIMIT 1 FOR UPDATE SKIP LOCKED) due
            WHERE s.tenant_id = due.tenant_id AND s.id = due.id
            RETURNING {", ".join("s." + c.strip() for c in SITE_COLUMNS.split(","))}""",
        now,
        lease_until,
    )
    return _site(row) if row else None


async def finish_crawl(
    conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID, report: CrawlReport, next_at: datetime
) -> None:
    """The round's report; the next turn at `next_at`, or at once when a fetch was asked for
    while this one ran."""
    await conn.execute(
        """UPDATE web_sites SET last_crawl_at = $3, last_report = $4, fetching_since = NULL,
                  next_crawl_at = CASE WHEN fetch_asked_at >= fetching_since
                                       THEN $3::timestamptz ELSE $5::timestamptz END
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id,
        site_id,
        report.at,
        msgspec.to_builtins(report),
        next_at,
    )


@dataclass(frozen=True, slots=True)
class KnownPage:
    """What a refetch needs of a stored page: its validators and whether its text changed."""

    id: UUID
    content_hash: str
    etag: str | None
    last_modified: str | None
    gone: bool


async def known_pages(conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID) -> dict[str, KnownPage]:
    rows = await conn.fetch(
        """SELECT url, id, content_hash, etag, last_modified, gone_at IS NOT NULL AS gone
           FROM web_pages WHERE tenant_id = $1 AND site_id = $2""",
        tenant_id,
        site_id,
    )
    return {r["url"]: KnownPage(r["id"], r["content_hash"], r["etag"], r["last_modified"], r["gone"]) for r in rows}


@dataclass(frozen=True, slots=True)
class PageContent:
    url: str
    title: str
    text: str
    content_hash: str
    etag: str | None
    last_modified: str | None


async def save_page(
    conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID, page_id: UUID, content: PageContent, now: datetime
) -> None:
    """A fetched page: new, or its text replaced; `changed_at` moves only when the text did."""
    await conn.execute(
        """INSERT INTO web_pages (tenant_id, id, site_id, url, title, text, content_hash, etag,
                                  last_modified, fetched_at, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
           ON CONFLICT (tenant_id, site_id, url) DO UPDATE SET
               title = EXCLUDED.title, text = EXCLUDED.text, etag = EXCLUDED.etag,
               last_modified = EXCLUDED.last_modified, fetched_at = EXCLUDED.fetched_at, gone_at = NULL,
               changed_at = CASE WHEN web_pages.content_hash = EXCLUDED.content_hash
                                 THEN web_pages.changed_at ELSE EXCLUDED.changed_at END,
               content_hash = EXCLUDED.content_hash""",
        tenant_id,
        page_id,
        site_id,
        content.url,
        content.title[:500],
        content.text,
        content.content_hash,
        content.etag,
        content.last_modified,
        now,
    )


async def touch_pages(conn: asyncpg.Connection, tenant_id: UUID, page_ids: Sequence[UUID], now: datetime) -> None:
    """Pages the site answered 304 (or with the same text) for: still current as of now."""
    await conn.execute(
        "UPDATE web_pages SET fetched_at = $3, gone_at = NULL WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
        tenant_id,
        list(page_ids),
        now,
    )


async def mark_gone(conn: asyncpg.Connection, tenant_id: UUID, page_ids: Sequence[UUID], now: datetime) -> None:
    await conn.execute(
        """UPDATE web_pages SET gone_at = $3
           WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND gone_at IS NULL""",
        tenant_id,
        list(page_ids),
        now,
    )


async def find_page(
    conn: asyncpg.Connection, owner_ids: Sequence[UUID], page_id: UUID, *, for_update: bool = False
) -> WebPage | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {PAGE_COLUMNS} FROM web_pages WHERE tenant_id = ANY($1::uuid[]) AND id = $2{lock}",
        list(owner_ids),
        page_id,
    )
    return row_to(WebPage, row) if row else None


async def list_pages(conn: asyncpg.Connection, tenant_id: UUID, site_id: UUID) -> list[WebPage]:
    rows = await conn.fetch(
        f"SELECT {PAGE_COLUMNS} FROM web_pages WHERE tenant_id = $1 AND site_id = $2 ORDER BY url",
        tenant_id,
        site_id,
    )
    return [row_to(WebPage, r) for r in rows]


async def set_article(conn: asyncpg.Connection, tenant_id: UUID, page_id: UUID, article_id: UUID) -> None:
    await conn.execute(
        "UPDATE web_pages SET article_id = $3 WHERE tenant_id = $1 AND id = $2", tenant_id, page_id, article_id
    )


async def search_pages(
    conn: asyncpg.Connection, owner_ids: Sequence[UUID], words: Sequence[str], limit: int
) -> list[asyncpg.Record]:
    """Pages of `owner_ids` (a town and the operators serving it) matching any of `words`,
    best first; vanished pages never. Ranked by ts_rank_cd over title (A) and text (B)."""
    return await conn.fetch(
        """WITH q AS (
               SELECT to_tsquery('kb_german', string_agg(quote_literal(w), ' | ')) AS query
               FROM unnest($2::text[]) AS w
           )
           SELECT p.id, p.tenant_id, p.url, p.title, p.fetched_at,
                  ts_rank_cd(p.search, q.query, 1) AS score,
                  ts_headline('kb_german', p.text, q.query,
                              'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxWords=30, MinWords=10')
                      AS snippet
           FROM web_pages p, q
           WHERE p.tenant_id = ANY($1::uuid[]) AND p.gone_at IS NULL AND p.search @@ q.query
           ORDER BY score DESC, p.id
           LIMIT $3""",
        list(owner_ids),
        list(words),
        limit,
    )
