"""Demo web pages for `make run` (issue 14 §3): a few pages of Stadt Geseke's and Stadt Soest's
sites, shipped as files under `demo_pages/` and stored as the worker would store them (same
extraction, same rows), so a search for "Sperrmüll Geseke" finds them offline. The demo sites
are registered inactive: the worker never tries the real towns' servers from a demo."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
import structlog

from backend import clock
from backend.db.tenancy import all_tenants_transaction
from backend.webpages import repository
from backend.webpages.crawling import content_hash, extract

log = structlog.get_logger("webpages.demo")
PAGES = Path(__file__).with_name("demo_pages")
DEMO_SITES: dict[str, tuple[str, str, dict[str, str]]] = {
    # slug: (base URL, folder, page path → file)
    "stadt-geseke": (
        "https://www.geseke.de/",
        "geseke",
        {
            "buergerservice/buergerbuero": "buergerbuero.html",
            "leben/abfall/sperrmuell": "sperrmuell.html",
            "rathaus/steuern/hundesteuer": "hundesteuer.html",
        },
    ),
    "stadt-soest": ("https://www.soest.de/", "soest", {"buergerservice/sperrmuell": "sperrmuell.html"}),
}


async def load_demo_pages(pool: asyncpg.Pool, tenant_ids: Mapping[str, UUID]) -> int:
    """Store the demo pages (safe to run again: the same URL is the same page); how many."""
    stored = 0
    now = clock.now()
    async with all_tenants_transaction(pool) as conn:
        for slug, (base_url, folder, pages) in DEMO_SITES.items():
            tenant_id = tenant_ids.get(slug)
            if tenant_id is None:
                continue
            site = next((s for s in await repository.list_sites(conn, tenant_id) if s.base_url == base_url), None)
            if site is None:
                site = await repository.insert_site(
                    conn,
                    tenant_id,
                    uuid4(),
                    base_url,
                    None,
                    [base_url],
                    [urlsplit(base_url).netloc],
                    720,
                    now,
                    active=False,
                )
            known = await repository.known_pages(conn, tenant_id, site.id)
            for path, name in pages.items():
                url = base_url + path
                extracted = extract((PAGES / folder / name).read_bytes(), url)
                if extracted is None:
                    continue
                title, text = extracted
                content = repository.PageContent(url, title, text, content_hash(title, text), None, None)
                page = known.get(url)
                await repository.save_page(conn, tenant_id, site.id, page.id if page else uuid4(), content, now)
                stored += 1
    log.info("demo_web_pages_loaded", pages=stored)
    return stored
