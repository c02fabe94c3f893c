"""Searching the web pages a town sees (decision 025): its own and those of the operators
serving it, ranked in SQL, for callers that have passed the door already (the knowledge
search, `service.search_pages`)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from backend import clock
from backend.knowledge.context import Context
from backend.webpages import repository
from backend.webpages.schemas import WebPageHit

PAGE_HITS = 5  # pages shown next to the articles of a search's first page
_WORD = re.compile(r"\w{2,}")


def _snippet(raw: str | None) -> tuple[str, str]:
    text = raw or ""
    marked = html.escape(text, quote=False).replace("\x02", "<mark>").replace("\x03", "</mark>")
    return marked, text.replace("\x02", "").replace("\x03", "")


async def matching_pages(
    conn: asyncpg.Connection,
    ctx: Context,
    query: str,
    limit: int = PAGE_HITS,
    words: Sequence[str] | None = None,
) -> list[WebPageHit]:
    """The pages a town sees (its own and its operators') that match the question: for callers
    that have passed the door for `ctx` already (the knowledge search, which passes the `words`
    of the question that name a service; else every word of it)."""
    # The town's own name says nothing on its own call ("Sperrmüll Geseke" on a Geseke call).
    town_words = {w.casefold() for w in _WORD.findall(ctx.town.name)}
    said = _WORD.findall(query) if words is None else [w for text in words for w in _WORD.findall(text)]
    words = [w for w in said if w.casefold() not in town_words][:20]
    if not words:
        return []
    rows = await repository.search_pages(conn, [ctx.town_id, *ctx.owner_ids], words, limit)
    now = clock.now()
    hits = []
    for row in rows:
        snippet, snippet_text = _snippet(row["snippet"])
        hits.append(
            WebPageHit(
                id=row["id"],
                tenant_id=row["tenant_id"],
                url=row["url"],
                title=row["title"],
                snippet=snippet,
                snippet_text=snippet_text,
                fetched_at=row["fetched_at"],
                age_days=max((now - row["fetched_at"]) // timedelta(days=1), 0),
                score=round(float(row["score"]), 4),
            )
        )
    return hits
