"""Migrating from zero, down to zero and up again, with the same code `make migrate` runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from backend.db.roles import MIGRATIONS_DIR, bootstrap, run_migrations, with_database


@pytest.fixture
async def empty_database(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    name = f"bs_migrate_{uuid.uuid4().hex[:8]}"
    url = with_database(server_urls[0], name)
    yield url
    conn = await asyncpg.connect(with_database(server_urls[0], "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert applied == len(list(MIGRATIONS_DIR.glob("*.sql")))
    return {r["tablename"] for r in rows}


async def test_migrate_from_zero_down_and_up_again(empty_database: str) -> None:
    await bootstrap(empty_database)
    await bootstrap(empty_database)  # idempotent: roles and database already there
    run_migrations(empty_database)
    tables = await _tables(empty_database)
    assert {"tenants", "departments", "closing_days", "identity_issuers", "agreements"} <= tables
    for _ in MIGRATIONS_DIR.glob("*.sql"):
        run_migrations(empty_database, "rollback")
    conn = await asyncpg.connect(empty_database)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
    finally:
        await conn.close()
    assert left == 0, "down migrations left tables behind"
    run_migrations(empty_database)
    assert await _tables(empty_database) == tables
