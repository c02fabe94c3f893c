"""Retries with the same Idempotency-Key get the first answer; nothing is created twice."""

from __future__ import annotations

import uuid

import httpx

from tests.support.world import World


async def test_retry_replays_the_first_response(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    body = {"name": f"Ordnungsamt retry {world.suffix}"}
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert names.count(body["name"]) == 1


async def test_same_key_other_body_is_refused_and_changes_nothing(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    first = await client.post(url, json={"name": f"Amt A {world.suffix}"}, headers=headers)
    other = await client.post(url, json={"name": f"Amt B {world.suffix}"}, headers=headers)
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert f"Amt B {world.suffix}" not in names


async def test_keys_are_scoped_to_the_caller(client: httpx.AsyncClient, world: World) -> None:
    key = str(uuid.uuid4())
    soest = await client.post(
        f"/v1/tenants/{world.slug('stadt-soest')}/departments",
        json={"name": f"Kasse {world.suffix}"},
        headers={**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": key},
    )
    geseke = await client.post(
        f"/v1/tenants/{world.slug('stadt-geseke')}/departments",
        json={"name": f"Kasse {world.suffix}"},
        headers={**world.headers("stadt-geseke", "town-admin"), "Idempotency-Key": key},
    )
    assert soest.status_code == 201
    assert geseke.status_code == 201
    assert "idempotent-replayed" not in geseke.headers
    assert geseke.json()["tenantId"] != soest.json()["tenantId"]
