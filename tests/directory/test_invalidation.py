"""The forwarding decision reads the town's directory compiled in process: once per generation
on each instance, and a change committed on one instance is in force on the other at once."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from backend.directory import compiled
from backend.settings import Settings
from tests.directory.conftest import KREIS, SOEST, Directory, created
from tests.support.servers import app_process
from tests.support.world import World

Client = httpx.AsyncClient
TUESDAY_11 = "2026-03-10T11:00:00+01:00"


def _key() -> str:
    return f"99{uuid.uuid4().int % 10**12:012d}"


async def _first_person(http: Client, url: str, world: World, leika_key: str) -> Any:
    response = await http.get(
        f"{url}/v1/forwarding",
        params={"tenant": world.slug(SOEST), "leikaKey": leika_key, "at": TUESDAY_11},
        headers=world.headers(KREIS, "agent"),
    )
    assert response.status_code == 200, response.text
    return response.json()["options"][0]["personId"]


async def test_compiled_once_per_generation(client: Client, world: World, directory: Directory) -> None:
    key = _key()
    await created(
        await client.post(
            f"{directory.base(world)}/responsibilities",
            json={"personId": directory.weber["id"], "leikaKey": key},
            headers=world.headers(SOEST, "town-admin"),
        )
    )
    assert await _first_person(client, "", world, key) == directory.weber["id"]
    before = compiled.compilations
    for _ in range(3):
        assert await _first_person(client, "", world, key) == directory.weber["id"]
    assert compiled.compilations == before, "a decision without a change compiled the directory again"


async def test_a_change_on_one_instance_is_in_force_on_the_other(
    settings: Settings, world: World, directory: Directory
) -> None:
    admin = world.headers(SOEST, "town-admin")
    key = _key()
    with app_process(settings) as first, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=10) as http:
            people = f"{first.url}{directory.base(world)}/people"
            one, other = [
                await created(await http.post(people, json={"familyName": name, **line}, headers=admin))
                for name, line in (("Eins", {}), ("Zwei", {"departmentId": str(directory.department_id)}))
            ]
            duty = await http.post(
                f"{first.url}{directory.base(world)}/responsibilities",
                json={"personId": one["id"], "leikaKey": key},
                headers=admin,
            )
            assert duty.status_code == 201, duty.text
            for _ in range(2):  # the second instance compiles, then answers from its copy
                assert await _first_person(http, second.url, world, key) == one["id"]
            removed = await http.delete(
                f"{first.url}{directory.base(world)}/responsibilities/{duty.json()['id']}", headers=admin
            )
            assert removed.status_code == 204
            moved = await http.post(
                f"{first.url}{directory.base(world)}/responsibilities",
                json={"personId": other["id"], "leikaKey": key},
                headers=admin,
            )
            assert moved.status_code == 201, moved.text
            assert await _first_person(http, second.url, world, key) == other["id"]
            # The same through the identity provider: the person leaves (SCIM), on the second.
            scim = {**world.headers(SOEST, "provisioning"), "Content-Type": "application/scim+json"}
            gone = await http.patch(
                f"{second.url}/scim/v2/{world.slug(SOEST)}/Users/{other['id']}",
                json={"Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
                headers=scim,
            )
            assert gone.status_code == 200, gone.text
            decision = await http.get(
                f"{first.url}/v1/forwarding",
                params={"tenant": world.slug(SOEST), "leikaKey": key, "at": TUESDAY_11},
                headers=world.headers(KREIS, "agent"),
            )
            assert decision.json()["options"][0]["kind"] != "person", decision.text
