"""What a forwarding decision remembers with the held town (decision 040's amendment): the people
chosen per key, surname and area, and each person's words in the sentences. Remembered per
compiled snapshot, so a change of the town (on any instance) still changes the next answer, and
presence, which is not remembered, still changes it at once."""

from __future__ import annotations

import dataclasses
import string
import uuid
from datetime import timedelta

import httpx

from backend.directory import compiled, service
from backend.settings import Settings
from tests.directory.conftest import KREIS, SOEST, created
from tests.directory.test_hot_path import TUESDAY_10, agent, department, own_person, phone_event
from tests.support.servers import app_process
from tests.support.world import World

__all__ = ["department"]  # the module fixture, shared with the hot path's tests

Client = httpx.AsyncClient


async def _decision(http: Client, url: str, world: World, key: str, surname: str | None = None) -> dict[str, object]:
    params = {"tenant": world.slug(SOEST), "leikaKey": key, "at": TUESDAY_10.isoformat()}
    if surname is not None:
        params["surname"] = surname
    response = await http.get(f"{url}/v1/forwarding", params=params, headers=world.headers(KREIS, "agent"))
    assert response.status_code == 200, response.text
    decision: dict[str, object] = response.json()
    return decision


async def test_a_renamed_person_and_a_presence_change_on_one_instance_are_in_the_other_ones_sentences(
    settings: Settings, world: World, department: uuid.UUID
) -> None:
    admin = world.headers(SOEST, "town-admin")
    with app_process(settings) as first, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=10) as http:
            own = await own_person(http, first.url, world, department)
            for _ in range(2):  # the second compiles, then answers with what it remembered
                before = await _decision(http, second.url, world, own.key)
            assert str(before["speakable"]).startswith(own.person["familyName"]), before
            digits = f"{uuid.uuid4().int % 10**5:05d}"
            renamed = await http.put(
                f"{first.url}/v1/tenants/{world.slug(SOEST)}/directory/people/{own.person['id']}",
                json={
                    "familyName": f"Neu{digits}",
                    "salutation": "Frau",
                    "departmentId": str(department),
                    "phone": f"+4929219{digits}",
                },
                headers=admin,
            )
            assert renamed.status_code == 200, renamed.text
            after = await _decision(http, second.url, world, own.key)
            option = after["options"][0]  # type: ignore[index]
            assert option["personName"] == f"Neu{digits}", option
            assert option["number"] == f"+4929219{digits}", option
            assert option["speakable"].startswith(f"Frau Neu{digits}, "), option
            assert option["speakable"].endswith(" ".join(digits) + "."), option
            # Presence is not remembered: the telephone's word is in the next sentence.
            renumbered = dataclasses.replace(own, number=f"+4929219{digits}")
            await phone_event(http, first.url, world, renumbered, "busy", TUESDAY_10 - timedelta(minutes=1))
            busy = await _decision(http, second.url, world, own.key)
            option = busy["options"][0]  # type: ignore[index]
            assert option["available"] is False, option
            assert option["speakable"].startswith(f"Frau Neu{digits}, "), option
            assert option["speakable"].endswith(", telefoniert gerade."), option


def _surname(n: int) -> str:
    letters = string.ascii_uppercase
    return letters[n % 26] + letters[(n // 26) % 26].lower() + letters[(n // 676) % 26].lower() + "mann"


async def test_the_choices_stay_bounded_and_right_for_any_number_of_surnames(
    client: Client, world: World, department: uuid.UUID
) -> None:
    """A surname is any text a caller gives: the memo of choices starts over when full, and
    every answer is the one without it (A–K to one person, L–Z to the other)."""
    admin = world.headers(SOEST, "town-admin")
    low = await own_person(client, "", world, department)
    high = await own_person(client, "", world, department)
    key = f"97{uuid.uuid4().int % 10**12:012d}"
    for person, (start, end) in ((low, ("A", "K")), (high, ("L", "Z"))):
        await created(
            await client.post(
                f"/v1/tenants/{world.slug(SOEST)}/directory/responsibilities",
                json={"personId": person.person["id"], "leikaKey": key, "surnameFrom": start, "surnameTo": end},
                headers=admin,
            )
        )
    principal = agent(world)
    asked = service._CHOICES_REMEMBERED + 100
    for n in range(asked):
        surname = _surname(n)
        decision = await service.forwarding_decision(
            world.state, principal, world.slug(SOEST), key, surname, TUESDAY_10
        )
        expected = low if surname[0] <= "K" else high
        assert decision.options[0].person_id == uuid.UUID(expected.person["id"]), (surname, decision.options[0])
    snapshot, _ = await compiled.town(world.state, principal, world.slug(SOEST), None)
    assert 0 < len(snapshot.choices) <= service._CHOICES_REMEMBERED
