"""SECURITY DEFINER functions the application role may call run past row-level security, so
each one must answer only for the session's tenants inside a tenant-scoped transaction (issue
12: with the setting on Geseke, routing_tenants('{<Soest>}') returned Soest's departments).
The catalogue is walked: a new such function fails here until it is listed with its reason
and, where it takes tenants, probed below (decision 015)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
import pytest

from backend.db.roles import APP_ROLE
from backend.db.tenancy import tenant_transaction
from tests.support.world import World

# Every SECURITY DEFINER function bs_app may execute, with why it exists and how it is held.
# "scoped": probed below; "reviewed": takes no tenant and returns no tenant id (checked).
DEFINER_FUNCTIONS: dict[str, tuple[str, str]] = {
    "auth_issuer_bindings(text)": ("scoped", "sign-in: the tenants trusting an issuer, before any tenant is known"),
    "auth_client_tenant_ids(uuid,date)": ("scoped", "sign-in: the clients an operator acts for today"),
    "auth_settled_client_tenant_ids(uuid,date)": ("scoped", "sign-in: the clients finance settles with"),
    "auth_all_tenant_ids()": ("scoped", "sign-in of platform admins; background work for every tenant"),
    "routing_numbers(uuid[],text)": ("scoped", "routing: which tenant a dialled number belongs to"),
    "routing_tenants(uuid[])": ("scoped", "routing: hours, closing days, departments of a call's tenant"),
    "routing_area_codes(uuid[])": ("scoped", "routing: 115 calls by the caller's area code"),
    "knowledge_shared_owner_ids(uuid[])": ("scoped", "knowledge: operators whose shared articles a town reads"),
    "billing_rebuild(uuid,date,date)": ("scoped", "billing: re-rate after a tariff change (writes rollups)"),
    "open311_jurisdiction(text)": ("scoped", "open311: the town a GeoReport call names"),
    "open311_api_key(bytea)": ("scoped", "open311: the town of an api key (by hash)"),
    "identity_issuer_sharing(text)": (
        "reviewed",
        "issuer registration: whether others trust an issuer and by which claim; no tenant, no value",
    ),
}

DEFINERS = """
    SELECT p.oid::regprocedure::text AS signature, pg_get_function_result(p.oid) AS result
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prosecdef AND has_function_privilege($1, p.oid, 'EXECUTE')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY 1"""


async def test_every_definer_function_is_listed_with_its_reason(db: asyncpg.Pool) -> None:
    found = {r["signature"]: r["result"] for r in await db.fetch(DEFINERS, APP_ROLE)}
    unlisted = sorted(set(found) - set(DEFINER_FUNCTIONS))
    assert not unlisted, (
        f"SECURITY DEFINER functions callable by {APP_ROLE} but not reviewed: {unlisted}. Make them answer "
        "only for app_tenant_ids() in a scoped transaction (app_definer_tenants) and list them here, "
        "or revoke EXECUTE from the application role."
    )
    assert not sorted(set(DEFINER_FUNCTIONS) - set(found)), "listed but gone: drop them from the list"
    for signature, (kind, _) in DEFINER_FUNCTIONS.items():
        if kind == "reviewed":
            assert "uuid" not in found[signature], f"{signature} returns tenant ids: {found[signature]}"


async def test_trigger_functions_are_not_callable(db: asyncpg.Pool) -> None:
    for name in ("billing_calls_inserted", "billing_calls_updated", "billing_calls_deleted"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(f"SELECT {name}()")


Rows = list[asyncpg.Record]
Probe = tuple[str, Callable[["Ids"], list[Any]]]


class Ids:
    def __init__(self, world: World, soest_issuer: str) -> None:
        self.kreis = world.tenant_ids["kreis-soest"]
        self.soest = world.tenant_ids["stadt-soest"]
        self.geseke = world.tenant_ids["stadt-geseke"]
        self.soest_issuer = soest_issuer
        self.soest_slug = world.slug("stadt-soest")
        self.soest_key_hash = b""


# Each asks, from a session scoped to Geseke, for Soest's (or every tenant's) data.
PROBES: dict[str, list[Probe]] = {
    "auth_issuer_bindings(text)": [("SELECT tenant_id FROM auth_issuer_bindings($1)", lambda i: [i.soest_issuer])],
    "auth_client_tenant_ids(uuid,date)": [
        ("SELECT unnest(auth_client_tenant_ids($1, $2))", lambda i: [i.kreis, TODAY])
    ],
    "auth_settled_client_tenant_ids(uuid,date)": [
        ("SELECT unnest(auth_settled_client_tenant_ids($1, $2))", lambda i: [i.kreis, TODAY])
    ],
    "auth_all_tenant_ids()": [("SELECT unnest(auth_all_tenant_ids())", lambda i: [])],
    "routing_numbers(uuid[],text)": [
        ("SELECT tenant_id FROM routing_numbers($1, NULL)", lambda i: [[i.soest, i.kreis]]),
        ("SELECT tenant_id FROM routing_numbers(NULL, NULL)", lambda i: []),
    ],
    "routing_tenants(uuid[])": [
        ("SELECT id FROM routing_tenants($1)", lambda i: [[i.soest, i.kreis]]),
        ("SELECT id FROM routing_tenants(NULL)", lambda i: []),
    ],
    "routing_area_codes(uuid[])": [
        ("SELECT tenant_id FROM routing_area_codes($1)", lambda i: [[i.soest, i.kreis]]),
        ("SELECT tenant_id FROM routing_area_codes(NULL)", lambda i: []),
    ],
    "knowledge_shared_owner_ids(uuid[])": [("SELECT unnest(knowledge_shared_owner_ids($1))", lambda i: [[i.soest]])],
    "billing_rebuild(uuid,date,date)": [("SELECT billing_rebuild($1, $2, NULL)", lambda i: [i.soest, TODAY])],
    "open311_jurisdiction(text)": [
        ("SELECT tenant_id FROM open311_jurisdiction($1)", lambda i: [i.soest_slug]),
        ("SELECT tenant_id FROM open311_jurisdiction(NULL)", lambda i: []),
    ],
    "open311_api_key(bytea)": [("SELECT tenant_id FROM open311_api_key($1)", lambda i: [i.soest_key_hash])],
}
TODAY = date(2026, 12, 6)  # any day: every agreement of the world runs from 2016/2018 on


async def _ids(db: asyncpg.Pool, world: World) -> Ids:
    soest = world.tenant_ids["stadt-soest"]
    async with tenant_transaction(db, [soest]) as conn:
        issuer = await conn.fetchval("SELECT issuer FROM identity_issuers WHERE tenant_id = $1 LIMIT 1", soest)
        # Soest offers Open311 with a key, so the probes have something to leak.
        await conn.execute(
            """INSERT INTO open311_services (tenant_id, service_code, service_name, updated_at)
               VALUES ($1, '99000000000001', 'Probe', now()) ON CONFLICT DO NOTHING""",
            soest,
        )
        key_hash = hashlib.sha256(f"probe-{soest}".encode()).digest()
        await conn.execute(
            """INSERT INTO open311_api_keys (tenant_id, id, key_hash, key_prefix, description, created_by, created_at)
               VALUES ($1, gen_random_uuid(), $2, 'probe', 'Probe', 'test', now()) ON CONFLICT DO NOTHING""",
            soest,
            key_hash,
        )
    ids = Ids(world, issuer)
    ids.soest_key_hash = key_hash
    return ids


async def test_every_scoped_function_has_a_probe() -> None:
    scoped = {s for s, (kind, _) in DEFINER_FUNCTIONS.items() if kind == "scoped"}
    assert scoped == set(PROBES)


@pytest.mark.parametrize(
    ("signature", "sql", "args"),
    [(signature, sql, args) for signature, probes in PROBES.items() for sql, args in probes],
)
async def test_a_session_scoped_to_one_tenant_gets_nothing_of_another(
    db: asyncpg.Pool, world: World, signature: str, sql: str, args: Callable[[Ids], list[Any]]
) -> None:
    ids = await _ids(db, world)
    # Geseke's session: no row names another tenant; asking for all of them is an error.
    try:
        async with tenant_transaction(db, [ids.geseke]) as conn:
            rows: Rows = await conn.fetch(sql, *args(ids))
    except asyncpg.InsufficientPrivilegeError:
        rows = []
    leaked = {row[0] for row in rows} - {ids.geseke, None, 0}
    assert not leaked, f"{signature} answered a Geseke session with {leaked}"


async def test_unscoped_sign_in_and_routing_still_see_every_tenant(db: asyncpg.Pool, world: World) -> None:
    """The probes above mean something: without a tenant scope (sign-in, routing compilation on
    a connection of their own) the same calls find Soest and Kreis Soest."""
    ids = await _ids(db, world)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT tenant_id FROM auth_issuer_bindings($1)", ids.soest_issuer) == ids.soest
        assert ids.soest in await conn.fetchval("SELECT auth_client_tenant_ids($1, $2)", ids.kreis, TODAY)
        assert {ids.soest, ids.geseke, ids.kreis} <= set(await conn.fetchval("SELECT auth_all_tenant_ids()"))
        tenants = {r["id"] for r in await conn.fetch("SELECT id FROM routing_tenants($1)", [ids.soest, ids.kreis])}
        assert tenants == {ids.soest, ids.kreis}
        assert await conn.fetchval("SELECT knowledge_shared_owner_ids($1)", [ids.soest]) == [ids.kreis]
        assert await conn.fetchval("SELECT tenant_id FROM open311_jurisdiction($1)", ids.soest_slug) == ids.soest
        assert await conn.fetchval("SELECT tenant_id FROM open311_api_key($1)", ids.soest_key_hash) == ids.soest
    # A session's own tenants are answered as before.
    async with tenant_transaction(db, [ids.soest, ids.kreis]) as conn:
        tenants = {r["id"] for r in await conn.fetch("SELECT id FROM routing_tenants($1)", [ids.soest, ids.kreis])}
        assert tenants == {ids.soest, ids.kreis}
        assert await conn.fetchval("SELECT knowledge_shared_owner_ids($1)", [ids.soest]) == [ids.kreis]
