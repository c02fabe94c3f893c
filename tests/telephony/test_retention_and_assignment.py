"""Caller-number retention per tenant (settings, the background worker's purge) and the agent's
choice of town for a 115 call from an area of several towns (moves the call, rollups follow)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from backend.telephony.worker import CALLER_PURGE_LOCK, LOCK_CLASS, TelephonyWorker
from tests.support.world import World
from tests.telephony.helpers import gql

pytestmark = pytest.mark.clock  # caller numbers are erased days after now

Client = httpx.AsyncClient
ASSIGN_GQL = """mutation($call: UUID!, $tenant: UUID!) {
  assignCallTenant(callId: $call, tenantId: $tenant) { call { tenantId resolvedBy } errors { code field message } }
}"""
SETTINGS_GQL = """mutation($slug: String!, $days: Int!) {
  setTelephonySettings(tenantSlug: $slug, callerRetentionDays: $days) {
    telephonySettings { callerRetentionDays } errors { code field }
  }
}"""


async def post_call(client: Client, world: World, **fields: Any) -> dict[str, Any]:
    body = {"externalId": f"rt-{uuid.uuid4()}", "caller": "0171 2345678", **fields}
    response = await client.post("/v1/calls", json=body, headers=world.headers("kreis-soest", "telephony"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def rows(db: asyncpg.Pool, world: World, ids: list[str]) -> dict[str, dict[str, Any]]:
    async with tenant_transaction(db, list(world.tenant_ids.values()), readonly=True) as conn:
        found = await conn.fetch("SELECT * FROM calls WHERE id = ANY($1::uuid[])", [UUID(i) for i in ids])
    return {str(r["id"]): dict(r) for r in found}


async def test_retention_is_a_setting_of_each_tenant(client: Client, telephony: World) -> None:
    soest, geseke = telephony.slug("stadt-soest"), telephony.slug("stadt-geseke")
    soest_admin = telephony.headers("stadt-soest", "town-admin")
    default = await client.get(
        f"/v1/tenants/{geseke}/telephony-settings", headers=telephony.headers("stadt-geseke", "town-admin")
    )
    assert default.status_code == 200 and default.json()["callerRetentionDays"] == 90
    put = await client.put(
        f"/v1/tenants/{soest}/telephony-settings", json={"callerRetentionDays": 0}, headers=soest_admin
    )
    assert put.status_code == 422, put.text
    # Soest's town admin reaches only Soest; Geseke's settings look missing to it.
    other = await client.put(
        f"/v1/tenants/{geseke}/telephony-settings", json={"callerRetentionDays": 7}, headers=soest_admin
    )
    assert other.status_code == 404
    agent = await client.get(
        f"/v1/tenants/{soest}/telephony-settings", headers=telephony.headers("kreis-soest", "agent")
    )
    assert agent.status_code == 403
    set_by_gql = await gql(
        client, telephony.headers("kreis-soest", "platform-admin"), SETTINGS_GQL, slug=soest, days=45
    )
    assert set_by_gql["data"]["setTelephonySettings"] == {
        "telephonySettings": {"callerRetentionDays": 45},
        "errors": [],
    }
    read = await client.get(f"/v1/tenants/{soest}/telephony-settings", headers=soest_admin)
    assert read.json()["callerRetentionDays"] == 45
    again = await client.get(
        f"/v1/tenants/{geseke}/telephony-settings", headers=telephony.headers("stadt-geseke", "town-admin")
    )
    assert again.json()["callerRetentionDays"] == 90


async def test_the_worker_erases_caller_numbers_after_each_tenants_retention(
    client: Client, db: asyncpg.Pool, telephony: World
) -> None:
    soest = telephony.slug("stadt-soest")
    put = await client.put(
        f"/v1/tenants/{soest}/telephony-settings",
        json={"callerRetentionDays": 30},
        headers=telephony.headers("stadt-soest", "town-admin"),
    )
    assert put.status_code == 200, put.text
    now = datetime.now(UTC).replace(microsecond=0)
    ago = lambda days: (now - timedelta(days=days)).isoformat()  # noqa: E731
    soest_old = await post_call(client, telephony, dialled="02921 103-0", offeredAt=ago(40), endedAt=ago(40))
    soest_new = await post_call(client, telephony, dialled="02921 103-0", offeredAt=ago(10))
    geseke_old = await post_call(client, telephony, dialled="02942 500-0", offeredAt=ago(40))  # default: 90 days
    ids = [soest_old["id"], soest_new["id"], geseke_old["id"]]
    before = await rows(db, telephony, ids)
    worker = TelephonyWorker(telephony.state.pool)
    # Another instance is purging right now: this one skips its round.
    async with tenant_transaction(db, []) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, CALLER_PURGE_LOCK)
        assert await worker.purge_callers() is None
    assert await worker.purge_callers() >= 1  # type: ignore[operator]
    after = await rows(db, telephony, ids)
    erased = after[soest_old["id"]]
    assert erased["caller"] is None and erased["caller_erased_at"] is not None
    unchanged = {k: v for k, v in before[soest_old["id"]].items() if k not in ("caller", "caller_erased_at")}
    assert {k: v for k, v in erased.items() if k not in ("caller", "caller_erased_at")} == unchanged
    assert after[soest_new["id"]] == before[soest_new["id"]]
    assert after[geseke_old["id"]] == before[geseke_old["id"]]
    assert await worker.purge_callers() == 0 or after == await rows(db, telephony, ids)  # idempotent
    await client.put(
        f"/v1/tenants/{soest}/telephony-settings",
        json={"callerRetentionDays": 90},
        headers=telephony.headers("kreis-soest", "platform-admin"),
    )


async def _figures(db: asyncpg.Pool, world: World, day: date) -> dict[tuple[str, str], dict[str, Any]]:
    async with tenant_transaction(db, list(world.tenant_ids.values()), readonly=True) as conn:
        found = await conn.fetch(
            "SELECT * FROM call_rollups WHERE day = $1 AND purpose = '115' AND tenant_id = ANY($2::uuid[])",
            day,
            list(world.tenant_ids.values()),
        )
    return {(str(r["tenant_id"]), r["purpose"]): dict(r) for r in found}


async def test_an_agent_assigns_an_ambiguous_115_call_to_a_candidate_town(
    client: Client, db: asyncpg.Pool, telephony: World
) -> None:
    kreis, soest, geseke = (telephony.tenant_ids[t] for t in ("kreis-soest", "stadt-soest", "stadt-geseke"))
    # A day of its own (in the past: the call's day), so the rollups show exactly this call.
    day = date(2024, 1, 8) + timedelta(days=uuid.uuid4().int % 300)
    at = lambda clock: f"{day.isoformat()}T{clock}+01:00"  # noqa: E731
    call = await post_call(
        client,
        telephony,
        dialled="115",
        caller="02921 4711",  # Soest and Bad Sassendorf
        offeredAt=at("10:00:00"),
        answeredAt=at("10:00:20"),
        endedAt=at("10:04:20"),
    )
    assert (call["tenantId"], call["resolvedBy"]) == (str(kreis), "ambiguous_area_code")
    before = await _figures(db, telephony, day)
    assert before[str(kreis), "115"]["offered"] >= 1
    agent = telephony.headers("kreis-soest", "agent")

    # Only a candidate town; Geseke is none for 02921, and a Geseke agent does not see the call.
    wrong = await gql(client, agent, ASSIGN_GQL, call=call["id"], tenant=str(geseke))
    assert wrong["data"]["assignCallTenant"]["errors"][0]["code"] == "VALIDATION_FAILED"
    hidden = await gql(
        client, telephony.headers("stadt-geseke", "agent"), ASSIGN_GQL, call=call["id"], tenant=str(soest)
    )
    assert hidden["data"]["assignCallTenant"]["errors"][0]["code"] == "NOT_FOUND"
    town_admin = await client.put(
        f"/v1/calls/{call['id']}/tenant",
        json={"tenantId": str(soest)},
        headers=telephony.headers("stadt-soest", "town-admin"),
    )
    assert town_admin.status_code == 403

    moved = await gql(client, agent, ASSIGN_GQL, call=call["id"], tenant=str(soest))
    assert moved["data"]["assignCallTenant"] == {
        "call": {"tenantId": str(soest), "resolvedBy": "AMBIGUOUS_AREA_CODE"},
        "errors": [],
    }
    again = await client.put(f"/v1/calls/{call['id']}/tenant", json={"tenantId": str(soest)}, headers=agent)
    assert again.status_code == 409, again.text
    stored = (await rows(db, telephony, [call["id"]]))[call["id"]]
    assert (stored["tenant_id"], stored["tenant_assigned_from"]) == (soest, kreis)
    assert stored["tenant_assigned_by"] and stored["tenant_assigned_at"] is not None
    # The same record from the telephony system is still the same call (no conflict, no copy).
    repost = await post_call(
        client,
        telephony,
        externalId=call["externalId"],
        dialled="115",
        caller="02921 4711",
        offeredAt=at("10:00:00"),
        answeredAt=at("10:00:20"),
        endedAt=at("10:04:20"),
    )
    assert (repost["id"], repost["tenantId"]) == (call["id"], str(soest))

    # The rollups followed the call: off the operator's day, onto Soest's.
    after = await _figures(db, telephony, day)
    for key in ("offered", "answered", "talk_seconds", "wait_seconds"):
        moved_by = before[str(kreis), "115"][key] - after[str(kreis), "115"][key]
        assert moved_by == (1 if key in ("offered", "answered") else 240 if key == "talk_seconds" else 20)
        gained = after[str(soest), "115"][key] - before.get((str(soest), "115"), {}).get(key, 0)
        assert gained == moved_by
    async with tenant_transaction(db, list(telephony.tenant_ids.values()), readonly=True) as conn:
        charges = await conn.fetch(
            "SELECT tenant_id, talk_seconds FROM call_charges WHERE call_id = $1", UUID(call["id"])
        )
    assert [(r["tenant_id"], r["talk_seconds"]) for r in charges] == [(soest, 240)]
    # … and agree with rollups rebuilt from the raw calls.
    async with tenant_transaction(db, list(telephony.tenant_ids.values())) as conn:
        for tenant in (kreis, soest):
            await conn.execute("SELECT billing_rebuild($1, $2, $3)", tenant, day, day + timedelta(days=1))
    rebuilt = await _figures(db, telephony, day)
    for tenant in (kreis, soest):
        if after.get((str(tenant), "115"), {}).get("offered", 0) == 0:
            assert rebuilt.get((str(tenant), "115"), {}).get("offered", 0) == 0
            continue
        assert rebuilt[str(tenant), "115"] == after[str(tenant), "115"]


async def test_only_ambiguous_115_calls_are_assigned(client: Client, telephony: World) -> None:
    central = await post_call(client, telephony, dialled="02921 103-0", offeredAt="2026-03-02T10:00:00+01:00")
    agent = telephony.headers("kreis-soest", "agent")
    other = str(telephony.tenant_ids["stadt-geseke"])
    response = await client.put(f"/v1/calls/{central['id']}/tenant", json={"tenantId": other}, headers=agent)
    assert response.status_code == 422, response.text
    unique = await post_call(
        client, telephony, dialled="115", caller="02942 1234", offeredAt="2026-03-02T10:00:00+01:00"
    )
    assert unique["resolvedBy"] == "caller_area_code"
    response = await client.put(f"/v1/calls/{unique['id']}/tenant", json={"tenantId": other}, headers=agent)
    assert response.status_code == 422, response.text
