"""Service numbers over REST: formats, overlap refused by the database, moves by date, blocks,
and who may see or change them."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from tests.support.world import World
from tests.telephony.helpers import add_number, unique_block, unique_number

Client = httpx.AsyncClient


async def test_demo_numbers_are_stored_in_e164(client: Client, telephony: World) -> None:
    response = await client.get(
        "/v1/service-numbers",
        params={"tenant": telephony.slug("stadt-soest")},
        headers=telephony.headers("kreis-soest", "agent"),
    )
    assert response.status_code == 200, response.text
    numbers = {(n["number"], n["kind"]) for n in response.json()}
    assert {("+4929211030", "number"), ("+492921103", "block")} <= numbers


async def test_formats_are_normalised_and_non_numbers_refused(client: Client, telephony: World) -> None:
    digits = unique_number()[5:]
    created = await add_number(client, telephony, "stadt-soest", f"089 / {digits[:4]}-{digits[4:]}")
    assert created["number"] == f"+4989{digits}" and created["routingWindow"] == "service_hours"
    headers = telephony.headers("kreis-soest", "platform-admin")
    body = {"tenantId": str(telephony.tenant_ids["stadt-soest"]), "number": "call me maybe", "validFrom": "2020-01-01"}
    refused = await client.post("/v1/service-numbers", json=body, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "VALIDATION_FAILED"
    assert refused.json()["errors"] == [{"field": "number", "message": "number is not a telephone number"}]


async def test_overlap_with_another_tenant_is_refused_block_over_number(client: Client, telephony: World) -> None:
    headers = telephony.headers("kreis-soest", "platform-admin")
    # Geseke may not take the block 02921 3…, which covers Kreis Soest's 02921 30-0.
    body = {
        "tenantId": str(telephony.tenant_ids["stadt-geseke"]),
        "number": "02921 3",
        "kind": "block",
        "validFrom": "2030-01-01",
    }
    refused = await client.post("/v1/service-numbers", json=body, headers=headers)
    assert refused.status_code == 409, refused.text
    assert "another tenant" in refused.json()["detail"]
    assert refused.json()["code"] == "CONFLICT"  # an overlap: neither a version, a duplicate nor a state
    assert str(telephony.tenant_ids["kreis-soest"]) not in refused.text  # never names the owner
    # …nor a full number inside Stadt Soest's block 02921 103.
    body = {"tenantId": str(telephony.tenant_ids["stadt-geseke"]), "number": "02921 103-77", "validFrom": "2030-01-01"}
    assert (await client.post("/v1/service-numbers", json=body, headers=headers)).status_code == 409


async def test_the_database_itself_refuses_overlaps(db: asyncpg.Pool, telephony: World) -> None:
    """Not only the code: an INSERT straight into the table fails on the exclusion constraint,
    even though row-level security hides the other tenant's row from this transaction."""
    geseke = telephony.tenant_ids["stadt-geseke"]
    with pytest.raises(asyncpg.ExclusionViolationError):
        async with tenant_transaction(db, [geseke]) as conn:
            await conn.execute(
                """INSERT INTO service_numbers (tenant_id, id, number, kind, purpose, valid)
                   VALUES ($1, $2, '+492921', 'block', 'central', daterange('2030-01-01', NULL))""",
                geseke,
                uuid.uuid4(),
            )


async def test_same_tenant_may_nest_a_number_in_its_block_but_not_repeat_it(client: Client, telephony: World) -> None:
    prefix = unique_block()
    await add_number(client, telephony, "stadt-geseke", prefix, kind="block")
    await add_number(client, telephony, "stadt-geseke", prefix + "0")  # its central number
    again = await client.post(
        "/v1/service-numbers",
        headers=telephony.headers("kreis-soest", "platform-admin"),
        json={
            "tenantId": str(telephony.tenant_ids["stadt-geseke"]),
            "number": prefix,
            "kind": "block",
            "validFrom": "2020-01-01",
        },
    )
    assert again.status_code == 409
    assert "already has this number" in again.json()["detail"]
    # Before the first one's period, the same block is fine.
    earlier = await client.post(
        "/v1/service-numbers",
        headers=telephony.headers("kreis-soest", "platform-admin"),
        json={
            "tenantId": str(telephony.tenant_ids["stadt-geseke"]),
            "number": prefix,
            "kind": "block",
            "validFrom": "2010-01-01",
            "validTo": "2015-12-31",
        },
    )
    assert earlier.status_code == 201, earlier.text


async def test_moving_a_number_keeps_old_calls_with_the_old_owner(client: Client, telephony: World) -> None:
    number = await add_number(client, telephony, "stadt-soest", unique_number())
    admin = telephony.headers("kreis-soest", "platform-admin")
    moved = await client.post(
        f"/v1/service-numbers/{number['id']}/move",
        headers=admin,
        json={
            "toTenantId": str(telephony.tenant_ids["stadt-geseke"]),
            "on": "2026-01-01",
            "routingWindow": "operator_absent",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["previous"]["validTo"] == "2025-12-31"
    assert moved.json()["current"]["validFrom"] == "2026-01-01"
    assert moved.json()["current"]["tenantId"] == str(telephony.tenant_ids["stadt-geseke"])
    system = telephony.headers("kreis-soest", "telephony")
    for at, town in (("2025-12-31T23:59:59+01:00", "stadt-soest"), ("2026-01-01T00:00:00+01:00", "stadt-geseke")):
        decision = await client.get("/v1/routing", params={"dialled": number["number"], "at": at}, headers=system)
        assert decision.status_code == 200, decision.text
        assert decision.json()["tenant"]["id"] == str(telephony.tenant_ids[town]), at
    # An old call posted today still belongs to the old owner: resolved at the call's start.
    call = await client.post(
        "/v1/calls",
        headers=system,
        json={
            "externalId": f"moved-{uuid.uuid4()}",
            "dialled": number["number"],
            "offeredAt": "2025-06-02T10:00:00+02:00",
        },
    )
    assert call.status_code == 200, call.text
    assert call.json()["tenantId"] == str(telephony.tenant_ids["stadt-soest"])
    # Moving on a day outside the validity is refused.
    again = await client.post(
        f"/v1/service-numbers/{number['id']}/move",
        headers=admin,
        json={"toTenantId": str(telephony.tenant_ids["kreis-soest"]), "on": "2027-01-01"},
    )
    assert again.status_code == 422


async def test_ending_a_number_and_changing_its_window(client: Client, telephony: World) -> None:
    number = await add_number(client, telephony, "stadt-soest", unique_number())
    admin = telephony.headers("kreis-soest", "platform-admin")
    change = {"routingWindow": "always", "validTo": "2030-06-30", "version": number["version"]}
    changed = await client.patch(f"/v1/service-numbers/{number['id']}", headers=admin, json=change)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["routingWindow"], changed.json()["validTo"]) == ("always", "2030-06-30")
    stale = await client.patch(
        f"/v1/service-numbers/{number['id']}", headers=admin, json={"greeting": "x", "version": number["version"]}
    )
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"


async def test_who_may_see_and_change_numbers(client: Client, telephony: World) -> None:
    soest_number = await add_number(client, telephony, "stadt-soest", unique_number())
    geseke_admin = telephony.headers("stadt-geseke", "town-admin")
    own = await client.get("/v1/service-numbers", headers=geseke_admin)
    assert own.status_code == 200
    assert {n["tenantId"] for n in own.json()} == {str(telephony.tenant_ids["stadt-geseke"])}
    assert (await client.get(f"/v1/service-numbers/{soest_number['id']}", headers=geseke_admin)).status_code == 404
    other = await client.get(
        "/v1/service-numbers", params={"tenant": telephony.slug("stadt-soest")}, headers=geseke_admin
    )
    assert other.status_code == 404
    body = {"tenantId": str(telephony.tenant_ids["stadt-soest"]), "number": unique_number(), "validFrom": "2020-01-01"}
    assert (
        await client.post("/v1/service-numbers", json=body, headers=telephony.headers("kreis-soest", "agent"))
    ).status_code == 403
    assert (await client.post("/v1/service-numbers", json=body)).status_code == 401
