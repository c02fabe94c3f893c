"""The baseline app of `make bench`: bare litestar, no auth, no middleware, no dependency injection.

`/ping` is the same handler as ours. `/bare/tenants/{slug}` sends the same statements as
`GET /v1/tenants/{slug}` does for one tenant read: a read-only transaction on a pool of the
application role (`bs_app`, so row-level security applies), `set_config('app.tenant_ids', …)`,
then `backend.tenants.repository.find_tenant_by_slug` (same SQL, same row → Struct
conversion), encoded with msgspec. Which tenants to scope to is what our app derives from the
bearer token; the bench passes them in (BENCH_ACTING_TENANT_IDS, BENCH_READ_TENANT_IDS).

Run as `uvicorn tests.bench.baseline:create_app --factory` with the same environment as ours:
the pool is built from the same settings (role, size, connection init).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import msgspec
from litestar import Litestar, MediaType, Response, get

from backend.db.pool import create_pool
from backend.db.tenancy import SET_TENANTS, tenant_array_literal
from backend.settings import load_settings
from backend.tenants.repository import find_tenant_by_slug


def _uuids(name: str) -> list[UUID]:
    return [UUID(part) for part in os.environ.get(name, "").split(",") if part.strip()]


@get("/ping", sync_to_thread=False)
def ping() -> str:
    return "pong"


def create_app() -> Litestar:
    settings = load_settings()
    acting = tenant_array_literal(_uuids("BENCH_ACTING_TENANT_IDS"))
    readable = _uuids("BENCH_READ_TENANT_IDS")
    encode = msgspec.json.Encoder().encode

    @get("/bare/tenants/{slug:str}")
    async def bare_tenant(slug: str) -> Response[bytes]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(SET_TENANTS, acting)
            tenant = await find_tenant_by_slug(conn, slug, readable)
        if tenant is None:
            return Response(b'{"status":404}', status_code=404, media_type=MediaType.JSON)
        return Response(encode(tenant), media_type=MediaType.JSON)

    pool = None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nonlocal pool
        pool = await create_pool(settings.application_database_url, settings.db_pool_min, settings.db_pool_max)
        try:
            yield
        finally:
            await pool.close()

    return Litestar(route_handlers=[ping, bare_tenant], lifespan=[lifespan], openapi_config=None, debug=False)
