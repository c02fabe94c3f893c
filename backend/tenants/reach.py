"""The one door to a tenant: may this principal do this operation on this tenant?

Every public service function that acts on a tenant starts here. REST and GraphQL pass the
tenant's slug through untouched; the service asks the door, which checks the permission matrix
(`auth.permissions`) and answers with the tenant or with "not found" — a tenant the principal may
not reach looks exactly like one that does not exist, so tenants cannot probe each other.
Cross-domain calls inside the backend that already hold a tenant id use `reach_id`.
"""

from __future__ import annotations

import re
from uuid import UUID

from auth.errors import Forbidden
from auth.permissions import Operation, require
from backend.errors import NotFound
from backend.i18n import N_, _l
from backend.state import UnitOfWork
from backend.tenants import repository
from backend.tenants.schemas import SLUG_PATTERN, Tenant

_SLUG = re.compile(SLUG_PATTERN)


async def reach(uow: UnitOfWork, slug: str, operation: Operation) -> Tenant:
    """The tenant named by `slug`, if the principal may do `operation` on it (403 without any grant)."""
    reachable = require(uow.principal, operation)
    if not _SLUG.match(slug):  # cannot exist; and text such as NUL never reaches SQL
        raise NotFound(_l("tenant not found"))
    tenant = await repository.find_tenant_by_slug(uow.conn, slug, list(reachable))
    if tenant is None:
        raise NotFound(_l("tenant not found"))
    return tenant


async def reach_seen(uow: UnitOfWork, slug: str, operation: Operation) -> Tenant:
    """For routes under a tenant the principal may see: a tenant it cannot see is missing
    whatever the operation (as a GET of the tenant answers); one it sees but may not do
    `operation` on is forbidden (403 without any grant) or, outside the grant's reach, missing."""
    seen = await reach(uow, slug, Operation.TENANT_READ)
    if seen.id not in reachable(uow, operation):
        raise NotFound(_l("tenant not found"))
    return seen


async def reach_optional(uow: UnitOfWork, slug: str | None, operation: Operation) -> Tenant | None:
    """An optional tenant filter: None stays None (the caller then spans `reachable`)."""
    return None if slug is None else await reach(uow, slug, operation)


async def reach_id(uow: UnitOfWork, tenant_id: UUID, operation: Operation) -> Tenant:
    """The id variant, for calls inside the backend that already hold a tenant id."""
    if tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))
    return await repository.get_tenant(uow.conn, tenant_id)


def reachable(uow: UnitOfWork, operation: Operation) -> frozenset[UUID]:
    """Every tenant the operation may touch, for lists that span tenants (403 without any grant)."""
    return require(uow.principal, operation)


async def reach_home(uow: UnitOfWork, operation: Operation, *, operator: bool = False) -> Tenant:
    """The principal's own tenant; with `operator`, only an operator's staff get through."""
    require(uow.principal, operation)
    home = await repository.get_tenant(uow.conn, uow.principal.tenant_id)
    if operator and not home.is_operator:
        raise Forbidden(N_("only the operator's staff may do this"))
    return home
