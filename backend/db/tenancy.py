"""The one place that opens a request's transaction and tells PostgreSQL whose rows it may see.

Row-level security on every tenant-owned table reads `app.tenant_ids`; `set_config(..., true)`
makes it transaction-local, so a pooled connection never carries one request's tenants into
the next. Repositories still filter by tenant explicitly: RLS is the second line, not the first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from backend.db.pool import acquire

Connection = asyncpg.Connection  # type alias used by repositories
SET_TENANTS = "SELECT set_config('app.tenant_ids', $1, true)"


def tenant_array_literal(tenant_ids: Iterable[UUID]) -> str:
    return "{" + ",".join(sorted(str(t) for t in tenant_ids)) + "}"


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, tenant_ids: Iterable[UUID], *, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """Acquire a connection, begin, scope it to `tenant_ids`; commit on success, else roll back."""
    async with acquire(pool) as conn, conn.transaction(readonly=readonly):
        await conn.execute(SET_TENANTS, tenant_array_literal(tenant_ids))
        yield conn


@asynccontextmanager
async def all_tenants_transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """For background work that acts for every tenant (workers, the metrics figures): the one
    kind of transaction outside a request whose row-level security admits all tenants."""
    async with tenant_transaction(pool, []) as conn:
        tenant_ids = await conn.fetchval("SELECT auth_all_tenant_ids()")
        await conn.execute(SET_TENANTS, tenant_array_literal(tenant_ids))
        yield conn
