"""The town a request is for, reached through the tenant door, and the operators whose shared
knowledge it sees.

Every read happens for one town (the tenant the call is for; by default the principal's own). A
town sees its own articles and the shared articles of the operators serving it, with its local
versions merged in. A tenant out of reach looks like a missing one (404), as everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from auth.errors import Forbidden
from auth.permissions import Operation, may
from backend.knowledge import catalogue_repository, repository
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tenants.schemas import Tenant


@dataclass(frozen=True, slots=True)
class Context:
    """The town a request is for, and the operators whose shared knowledge it sees."""

    town: Tenant
    owner_ids: list[UUID]

    @property
    def town_id(self) -> UUID:
        return self.town.id


async def town_context(uow: UnitOfWork, operation: Operation, tenant_slug: str | None) -> Context:
    """The door for knowledge: the town named by `tenant_slug` (default: the principal's own
    tenant, which the principal must reach as well) if the principal may do `operation` there."""
    town = await _town(uow, operation, tenant_slug)
    return Context(town, await repository.shared_owner_ids(uow.conn, [town.id]))


async def question_context(
    uow: UnitOfWork, operation: Operation, tenant_slug: str | None, words: Sequence[str]
) -> tuple[Context, list[tuple[str, str]]]:
    """`town_context` for a search, with the imported search terms among the question's `words`
    (term, the name of its service) read in the operators' statement: one round trip fewer."""
    town = await _town(uow, operation, tenant_slug)
    owner_ids, imported = await catalogue_repository.owners_and_imported_synonyms(uow.conn, town.id, words)
    return Context(town, owner_ids), imported


async def _town(uow: UnitOfWork, operation: Operation, tenant_slug: str | None) -> Tenant:
    if tenant_slug is None:
        return await reach.reach_id(uow, uow.principal.tenant_id, operation)
    return await reach.reach(uow, tenant_slug, operation)


def reachable_for_any(uow: UnitOfWork, *operations: Operation) -> frozenset[UUID]:
    """The tenants any of `operations` may touch (403 when none of them is granted at all): the
    workflow checks the one operation a step needs once it knows the step."""
    granted = [operation for operation in operations if may(uow.principal, operation)]
    if not granted:
        raise Forbidden()
    return frozenset().union(*(reach.reachable(uow, operation) for operation in granted))
