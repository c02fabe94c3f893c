"""SQL for the Open311 facade: the town's services, its api keys (hashes only), and what a
request brought beside its ticket. Explicit columns, $n parameters, every query filtered by
tenant (RLS is the second line); the two lookups before a tenant is known are definer functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from backend.db.rows import row_to
from backend.open311.schemas import ApiKey, Open311Service, RequestRecord, ServiceAttribute

SERVICE_COLUMNS = """tenant_id, service_code, service_name, description, keywords, service_group AS "group",
    department_id, attributes, updated_at"""
KEY_COLUMNS = "tenant_id, id, key_prefix, description, created_by, created_at, revoked_at"
REQUEST_COLUMNS = """tenant_id, ticket_id, number, service_code, token, address_string, address_id, lat, long,
    media_url, requested_at"""


def _service(row: asyncpg.Record) -> Open311Service:
    values = dict(row)
    values["attributes"] = msgspec.convert(values["attributes"], list[ServiceAttribute])
    return row_to(Open311Service, values)


async def jurisdiction(conn: asyncpg.Connection, slug: str | None) -> list[tuple[UUID, str]]:
    """Towns offering Open311 named `slug` (None: every such town), before a tenant is known."""
    rows = await conn.fetch("SELECT tenant_id, tenant_slug FROM open311_jurisdiction($1) LIMIT 2", slug)
    return [(r["tenant_id"], r["tenant_slug"]) for r in rows]


async def key_by_hash(conn: asyncpg.Connection, key_hash: bytes) -> tuple[UUID, UUID, str] | None:
    """(key id, tenant id, tenant slug) of an unrevoked key, before a tenant is known."""
    row = await conn.fetchrow("SELECT key_id, tenant_id, tenant_slug FROM open311_api_key($1)", key_hash)
    return (row["key_id"], row["tenant_id"], row["tenant_slug"]) if row else None


async def list_services(conn: asyncpg.Connection, tenant_id: UUID) -> list[Open311Service]:
    rows = await conn.fetch(
        f"SELECT {SERVICE_COLUMNS} FROM open311_services WHERE tenant_id = $1 ORDER BY service_group, service_name",
        tenant_id,
    )
    return [_service(r) for r in rows]


async def find_service(conn: asyncpg.Connection, tenant_id: UUID, service_code: str) -> Open311Service | None:
    row = await conn.fetchrow(
        f"SELECT {SERVICE_COLUMNS} FROM open311_services WHERE tenant_id = $1 AND service_code = $2",
        tenant_id,
        service_code,
    )
    return _service(row) if row else None


async def save_service(conn: asyncpg.Connection, service: Open311Service) -> Open311Service:
    row = await conn.fetchrow(
        f"""INSERT INTO open311_services (tenant_id, service_code, service_name, description, keywords,
                service_group, department_id, attributes, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (tenant_id, service_code) DO UPDATE SET service_name = excluded.service_name,
                description = excluded.description, keywords = excluded.keywords,
                service_group = excluded.service_group, department_id = excluded.department_id,
                attributes = excluded.attributes, updated_at = excluded.updated_at
            RETURNING {SERVICE_COLUMNS}""",
        service.tenant_id,
        service.service_code,
        service.service_name,
        service.description,
        service.keywords,
        service.group,
        service.department_id,
        msgspec.to_builtins(service.attributes),
        service.updated_at,
    )
    assert row is not None  # an upsert returns its row
    return _service(row)


async def delete_service(conn: asyncpg.Connection, tenant_id: UUID, service_code: str) -> bool:
    status: str = await conn.execute(
        "DELETE FROM open311_services WHERE tenant_id = $1 AND service_code = $2", tenant_id, service_code
    )
    return status != "DELETE 0"


async def list_keys(conn: asyncpg.Connection, tenant_id: UUID) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {KEY_COLUMNS} FROM open311_api_keys WHERE tenant_id = $1 ORDER BY created_at, id", tenant_id
    )
    return [row_to(ApiKey, r) for r in rows]


async def insert_key(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    key_id: UUID,
    key_hash: bytes,
    key_prefix: str,
    description: str,
    created_by: str,
    at: datetime,
) -> ApiKey:
    row = await conn.fetchrow(
        f"""INSERT INTO open311_api_keys (tenant_id, id, key_hash, key_prefix, description, created_by, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}""",
        tenant_id,
        key_id,
        key_hash,
        key_prefix,
        description,
        created_by,
        at,
    )
    return row_to(ApiKey, row)


async def revoke_key(conn: asyncpg.Connection, tenant_id: UUID, key_id: UUID, at: datetime) -> ApiKey | None:
    """Revoke (once: a revoked key keeps its first revocation time); None when missing."""
    row = await conn.fetchrow(
        f"""UPDATE open311_api_keys SET revoked_at = coalesce(revoked_at, $3)
            WHERE tenant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}""",
        tenant_id,
        key_id,
        at,
    )
    return row_to(ApiKey, row) if row else None


async def touch_key(conn: asyncpg.Connection, tenant_id: UUID, key_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE open311_api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2", tenant_id, key_id, at
    )


async def insert_request(conn: asyncpg.Connection, record: RequestRecord, api_key_id: UUID | None) -> None:
    await conn.execute(
        f"""INSERT INTO open311_requests ({REQUEST_COLUMNS}, api_key_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        record.tenant_id,
        record.ticket_id,
        record.number,
        record.service_code,
        record.token,
        record.address_string,
        record.address_id,
        record.lat,
        record.long,
        record.media_url,
        record.requested_at,
        api_key_id,
    )


async def requests_by_numbers(conn: asyncpg.Connection, tenant_id: UUID, numbers: Sequence[int]) -> list[RequestRecord]:
    rows = await conn.fetch(
        f"""SELECT {REQUEST_COLUMNS} FROM open311_requests WHERE tenant_id = $1 AND number = ANY($2::bigint[])
            ORDER BY requested_at DESC, number DESC""",
        tenant_id,
        list(numbers),
    )
    return [row_to(RequestRecord, r) for r in rows]


async def requests_between(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    start: datetime,
    end: datetime,
    service_codes: Sequence[str],
    limit: int,
) -> list[RequestRecord]:
    """The newest first; `service_codes` empty: every service."""
    rows = await conn.fetch(
        f"""SELECT {REQUEST_COLUMNS} FROM open311_requests
            WHERE tenant_id = $1 AND requested_at >= $2 AND requested_at <= $3
              AND (cardinality($4::text[]) = 0 OR service_code = ANY($4::text[]))
            ORDER BY requested_at DESC, number DESC LIMIT $5""",
        tenant_id,
        start,
        end,
        list(service_codes),
        limit,
    )
    return [row_to(RequestRecord, r) for r in rows]


async def request_by_token(conn: asyncpg.Connection, tenant_id: UUID, token: UUID) -> RequestRecord | None:
    row = await conn.fetchrow(
        f"SELECT {REQUEST_COLUMNS} FROM open311_requests WHERE tenant_id = $1 AND token = $2", tenant_id, token
    )
    return row_to(RequestRecord, row) if row else None
