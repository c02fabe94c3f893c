"""The demo's XZuFi messages (`data/xzufi/`, written for the demo; decision 024): services of
Kreis Soest, Stadt Geseke's bulky-waste collection and Stadt Soest's dog tax, with the towns'
offices, opening hours and responsibilities. Loaded after the demo articles; idempotent."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

import structlog

from auth.principal import Principal
from auth.roles import Role
from backend.knowledge import xzufi_import
from backend.knowledge.index_worker import IndexWorker
from backend.state import AppState, unit_of_work

MESSAGES = Path(__file__).resolve().parent / "data" / "xzufi"
OPERATOR = "kreis-soest"
log = structlog.get_logger("knowledge.demo")


async def load_xzufi_demo(app: AppState, tenant_ids: Mapping[str, UUID]) -> None:
    admin = Principal(
        issuer="system",
        subject="demo-loader",
        tenant_id=tenant_ids[OPERATOR],
        tenant_slug=OPERATOR,
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(tenant_ids.values()),
    )
    for path in sorted(MESSAGES.glob("*.xml")):
        async with unit_of_work(app, admin) as uow:
            report = await xzufi_import.import_upload(uow, path.read_bytes(), path.name)
        log.info(
            "xzufi_demo_loaded",
            message=path.name,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            offices=report.offices_created + report.offices_updated,
            responsibilities=report.responsibilities,
            errors=[e.message for e in report.errors],
        )
    # The import queued the new articles' search index (words and vectors) for the background
    # worker; the demo makes it now, so a seeded database is complete without a server running its
    # workers, and "Sperrmüll Geseke" is found as soon as the demo is loaded.
    drained = await IndexWorker(app).drain()
    log.info("xzufi_demo_indexed", words=drained.words, vectors=drained.vectors)
