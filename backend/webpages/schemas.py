"""A registered web site, its fetched pages, and what a page search answers (decision 025)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from backend.structs import Input, Schema

WebUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]
HostName = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]


class WebSiteInput(Input, frozen=True):
    """A town's site to fetch: from its sitemap and/or start URLs (links on those are followed
    within the allowed hosts); the base URL's host is always allowed."""

    base_url: WebUrl
    sitemap_url: WebUrl | None = None
    start_urls: Annotated[list[WebUrl], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    allowed_hosts: Annotated[list[HostName], msgspec.Meta(max_length=19)] = msgspec.field(default_factory=list)
    recrawl_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 24


class CrawlReport(Schema, frozen=True):
    """What the last fetch of a site found: counts, and each refused or failed URL with why."""

    at: datetime
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    skipped: int = 0
    problems: list[str] = msgspec.field(default_factory=list)


class WebSite(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    base_url: str
    sitemap_url: str | None
    start_urls: list[str]
    allowed_hosts: list[str]
    recrawl_hours: int
    active: bool
    next_crawl_at: datetime
    last_crawl_at: datetime | None
    last_report: CrawlReport | None
    created_at: datetime


class WebPage(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    site_id: UUID
    url: str
    title: str
    text: str
    content_hash: str
    fetched_at: datetime
    changed_at: datetime
    gone_at: datetime | None
    article_id: UUID | None


class WebPageHit(Schema, frozen=True):
    """A web page found by a search: marked as a page (not an article), with its URL and age."""

    id: UUID
    tenant_id: UUID
    url: str
    title: str
    snippet: str  # HTML-escaped text with <mark> around the matched words
    snippet_text: str  # the same without markup (screen readers, braille)
    fetched_at: datetime
    age_days: int  # days since the page was last fetched: old pages may be out of date
    score: float
