"""Where each section of an imported article came from, and an editor's confirmation that a
changed source under their override has been seen (decision 024)."""

from __future__ import annotations

from uuid import UUID

from auth.permissions import Operation
from backend.errors import NotFound
from backend.i18n import _l
from backend.knowledge import service
from backend.knowledge import xzufi_repository as store
from backend.knowledge.xzufi_schemas import SectionOrigin, SectionSource
from backend.state import UnitOfWork
from backend.tenants import reach


async def section_sources(uow: UnitOfWork, article_id: UUID, tenant_slug: str | None = None) -> list[SectionSource]:
    """Where each section of an article came from, and for a shared article the town's local
    version's overrides too, with "source changed since your override" where it applies."""
    view = await service.article_for_agent(uow, article_id, tenant_slug)
    keys = [(view.tenant_id, view.id)]
    if view.local_version_id is not None:
        keys.append((view.context_tenant_id, view.local_version_id))
    found = await store.section_sources(uow.conn, keys)
    result = []
    for key in keys:
        for row in sorted(found[key].values(), key=lambda r: r.section):
            result.append(_section_source(row))
    return result


async def confirm_source_changes(uow: UnitOfWork, article_id: UUID, sections: list[str]) -> list[SectionSource]:
    """An editor has seen the changed source under their override: the mark goes away."""
    state = await service.article_state(uow, article_id)  # the editor's own article (the door inside)
    if state.tenant_id not in reach.reachable(uow, Operation.ARTICLE_WRITE):
        raise NotFound(_l("article not found"))
    await store.confirm_sources(uow.conn, state.tenant_id, state.id, sections or None)
    key = (state.tenant_id, state.id)
    rows = (await store.section_sources(uow.conn, [key]))[key]
    return [_section_source(r) for r in sorted(rows.values(), key=lambda r: r.section)]


def _section_source(row: store.SourceRow) -> SectionSource:
    return SectionSource(
        article_id=str(row.article_id),
        section=row.section,
        origin=SectionOrigin(row.origin),
        reference=row.reference,
        reference_version=row.reference_version,
        changed_at=row.changed_at,
        changed_by=row.changed_by,
        source_changed=row.source_changed_at is not None,
        source_changed_at=row.source_changed_at,
    )
