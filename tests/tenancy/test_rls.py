"""Row-level security is the second line of tenancy: checked in the catalogue and by behaviour."""

from __future__ import annotations

import asyncpg

from backend.db.roles import APP_ROLE, OWNER_ROLE
from backend.db.tenancy import tenant_transaction
from tests.support.world import World

# Global tables without tenant data (checked to stay that way).
GLOBAL_TABLES = {"schema_migrations"}


async def tenancy_problems(conn: asyncpg.Connection) -> list[str]:
    tables = await conn.fetch(
        """SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity,
                      pg_get_userbyid(c.relowner) AS owner,
                      EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                              AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant_id,
                      (SELECT a.attname FROM pg_index i
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                        WHERE i.indrelid = c.oid AND i.indisprimary) AS first_key_column,
                      (SELECT array_agg(p.polname || ':' || pg_get_expr(p.polqual, p.polrelid))
                         FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"""
    )
    assert tables, "no tables found: migrations did not run"
    problems = []
    for t in tables:
        name = t["relname"]
        if name in GLOBAL_TABLES or name.endswith("_staging"):
            continue
        if t["owner"] != OWNER_ROLE:
            problems.append(f"{name}: owned by {t['owner']}, expected {OWNER_ROLE}")
        if not (t["relrowsecurity"] and t["relforcerowsecurity"]):
            problems.append(f"{name}: row-level security not enabled and forced")
        policies = " ".join(t["policies"] or [])
        if "app_tenant_ids" not in policies:
            problems.append(f"{name}: no policy on app_tenant_ids()")
        if name == "tenants":
            continue  # the root: its policy is on id
        if not t["has_tenant_id"]:
            problems.append(f"{name}: no tenant_id column (add it, or list the table in GLOBAL_TABLES with a reason)")
        elif t["first_key_column"] != "tenant_id":
            problems.append(f"{name}: primary key does not start with tenant_id")
    return problems


async def test_every_tenant_owned_table_leads_its_key_with_tenant_id_and_forces_rls(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        problems = await tenancy_problems(conn)
    finally:
        await conn.close()
    assert not problems, "\n".join(problems)


async def test_the_catalogue_check_catches_a_careless_table(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{OWNER_ROLE}"')
            await conn.execute("CREATE TABLE careless (id uuid, tenant_id uuid, PRIMARY KEY (id, tenant_id))")
            problems = await tenancy_problems(conn)
            raise asyncpg.exceptions.PostgresError("roll back the careless table")
    except asyncpg.exceptions.PostgresError:
        pass
    finally:
        await conn.close()
    careless = [p for p in problems if p.startswith("careless:")]
    assert any("not enabled and forced" in p for p in careless)
    assert any("primary key does not start with tenant_id" in p for p in careless)
    assert any("no policy" in p for p in careless)


async def test_application_role_cannot_bypass_rls(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = $1", APP_ROLE
        )
        owns = await conn.fetchval(
            """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = $1""",
            APP_ROLE,
        )
        member_of_owner = await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", APP_ROLE, OWNER_ROLE)
    finally:
        await conn.close()
    assert role is not None
    assert not role["rolsuper"] and not role["rolbypassrls"] and not role["rolcreaterole"]
    assert owns == 0
    assert not member_of_owner


async def test_rls_alone_hides_foreign_rows(db: asyncpg.Pool, world: World) -> None:
    """The application's own tenant filters turned off: plain SELECTs without any WHERE."""
    geseke = world.tenant_ids["stadt-geseke"]
    soest = world.tenant_ids["stadt-soest"]
    async with tenant_transaction(db, [geseke], readonly=True) as conn:
        tenants = {r["id"] for r in await conn.fetch("SELECT id FROM tenants")}
        departments = {r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM departments")}
        issuers = {r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM identity_issuers")}
        agreements = {r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM agreements")}
    assert tenants == {geseke}
    assert departments == {geseke}
    assert issuers == {geseke}
    assert agreements == {geseke}
    assert soest not in tenants | departments | issuers | agreements


async def test_without_tenant_setting_nothing_is_visible(db: asyncpg.Pool, world: World) -> None:
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 0
        assert await conn.fetchval("SELECT count(*) FROM departments") == 0


async def test_rls_refuses_writes_into_a_foreign_tenant(db: asyncpg.Pool, world: World) -> None:
    geseke = world.tenant_ids["stadt-geseke"]
    soest = world.tenant_ids["stadt-soest"]
    async with tenant_transaction(db, [geseke]) as conn:
        try:
            await conn.execute(
                "INSERT INTO departments (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'Eingeschleust')", soest
            )
        except asyncpg.InsufficientPrivilegeError:
            pass
        else:
            raise AssertionError("RLS let a Geseke transaction insert a Soest department")
    async with tenant_transaction(db, [geseke]) as conn:
        updated = await conn.execute("UPDATE departments SET name = name || '!' WHERE tenant_id = $1", soest)
    assert updated == "UPDATE 0"


async def test_tenant_setting_is_transaction_local(db: asyncpg.Pool, world: World) -> None:
    """A pooled connection never carries one request's tenants into the next."""
    async with db.acquire() as conn:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('app.tenant_ids', $1, true)", "{" + str(world.tenant_ids["stadt-soest"]) + "}"
            )
            assert await conn.fetchval("SELECT count(*) FROM tenants") == 1
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 0
