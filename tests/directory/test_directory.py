"""The directory itself: bad input refused naming the field, presence and its precedence (the
telephone system over the person's switch over the absence calendar over the working calendar),
daylight-saving time and holidays in absences, and who may see the town's staff at all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory, created
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient


async def test_bad_people_are_refused_naming_the_field(client: Client, world: World, directory: Directory) -> None:
    admin = world.headers(SOEST, "town-admin")
    people = f"{directory.base(world)}/people"
    for body, field in (
        ({"familyName": "Meier", "phone": "not a number"}, "phone"),
        ({"familyName": "Meier", "departmentId": "00000000-0000-4000-8000-000000000000"}, "departmentId"),
        ({"familyName": "Meier", "substituteIds": ["00000000-0000-4000-8000-000000000000"]}, "substituteIds"),
        ({"familyName": "Meier", "email": "nobody"}, "email"),
        ({"familyName": ""}, "familyName"),
        ({"familyName": "Meier", "languages": ["Deutsch"]}, "languages"),
    ):
        response = await client.post(people, json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text, (field, response.text)
    duplicate = await client.post(people, json={"familyName": "Meier", "phone": "02921 1034711"}, headers=admin)
    assert duplicate.status_code == 409, duplicate.text
    reversed_range = await client.post(
        f"{directory.base(world)}/responsibilities",
        json={"personId": directory.weber["id"], "topic": "Bauschein", "surnameFrom": "M", "surnameTo": "B"},
        headers=admin,
    )
    assert reversed_range.status_code == 422 and reversed_range.json()["errors"][0]["field"] == "surnameTo"
    graphql = await gql(
        client,
        admin,
        """mutation($t: String!) { createDirectoryPerson(tenant: $t, input: {familyName: "Meier", phone: "abc"}) {
             person { id } errors { code field } } }""",
        t=world.slug(SOEST),
    )
    assert graphql["data"]["createDirectoryPerson"] == {
        "person": None,
        "errors": [{"code": "VALIDATION_FAILED", "field": "phone"}],
    }


async def test_crud_over_rest_and_graphql(client: Client, world: World, directory: Directory) -> None:
    admin = world.headers(SOEST, "town-admin")
    people = f"{directory.base(world)}/people"
    person = await created(
        await client.post(
            people, json={"familyName": "Yilmaz", "salutation": "Frau", "phone": "+49 (0)2921 103-5555"}, headers=admin
        )
    )
    assert person["phone"] == "+4929211035555"
    listed = await gql(
        client,
        world.headers(KREIS, "agent"),
        "query($t: String!) { directoryPeople(tenant: $t) { id familyName phone substituteIds } }",
        t=world.slug(SOEST),
    )
    assert person["id"] in [p["id"] for p in listed["data"]["directoryPeople"]]
    removed = await gql(
        client,
        admin,
        """mutation($t: String!, $id: UUID!) {
             removeDirectoryPerson(tenant: $t, id: $id) { removedId errors { code } } }""",
        t=world.slug(SOEST),
        id=person["id"],
    )
    assert removed["data"]["removeDirectoryPerson"] == {"removedId": person["id"], "errors": []}
    assert (await client.get(f"{people}/{person['id']}", headers=admin)).status_code == 404


async def presence(
    client: Client, world: World, directory: Directory, person: dict[str, Any], at: str
) -> dict[str, Any]:
    response = await client.get(
        f"{directory.base(world)}/people/{person['id']}/presence",
        params={"at": at},
        headers=world.headers(KREIS, "agent"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.clock
async def test_presence_precedence_and_daylight_saving(client: Client, world: World, directory: Directory) -> None:
    admin = world.headers(SOEST, "town-admin")
    weber = directory.weber
    absences = f"{directory.base(world)}/people/{weber['id']}/absences"
    # Lunch every Monday 12:30–13:30 local time, and leave on Wednesday 2026-04-01.
    weekly = await client.post(
        f"{absences}/weekly", json={"weekday": 1, "starts": "12:30", "ends": "13:30", "note": "Mittag"}, headers=admin
    )
    assert weekly.status_code == 201, weekly.text
    dated = await client.post(
        f"{absences}/dated",
        json={"startsAt": "2026-04-01T00:00:00+02:00", "endsAt": "2026-04-02T00:00:00+02:00", "note": "Urlaub"},
        headers=admin,
    )
    assert dated.status_code == 201, dated.text
    # 12:45 local on the Mondays before and after the change to summer time (29 March).
    assert (await presence(client, world, directory, weber, "2026-03-23T11:45:00Z"))["source"] == "weekly_absence"
    summer = await presence(client, world, directory, weber, "2026-03-30T10:45:00Z")
    assert (summer["source"], summer["reason"]) == ("weekly_absence", "absent until 13:30")
    assert (await presence(client, world, directory, weber, "2026-03-30T11:45:00Z"))["reachable"] is True
    # Easter Monday 2026-04-06 at 10:00: a public holiday, the lunch hour does not matter.
    easter = await presence(client, world, directory, weber, "2026-04-06T10:00:00+02:00")
    assert (easter["reachable"], easter["source"], easter["reason"]) == (
        False,
        "calendar",
        "public holiday: Ostermontag",
    )
    leave = await presence(client, world, directory, weber, "2026-04-01T10:00:00+02:00")
    assert (leave["reachable"], leave["source"]) == (False, "dated_absence")
    # The telephone system says his phone is idle on that day: the most specific source wins …
    event = await client.post(
        f"{directory.base(world)}/presence-events",
        json={"number": "02921 103-2222", "state": "idle", "at": "2026-04-01T09:59:00+02:00", "expiresInSeconds": 120},
        headers=world.headers(KREIS, "telephony"),
    )
    assert event.status_code == 200, event.text
    now = await presence(client, world, directory, weber, "2026-04-01T10:00:00+02:00")
    assert (now["reachable"], now["source"], now["state"]) == (True, "phone", "idle")
    # … until it expires.
    later = await presence(client, world, directory, weber, "2026-04-01T10:01:00+02:00")
    assert later["source"] == "dated_absence"
    # An unknown extension is a 404, not a new person.
    unknown = await client.post(
        f"{directory.base(world)}/presence-events",
        json={"number": "02921 103-9999", "state": "busy"},
        headers=world.headers(KREIS, "telephony"),
    )
    assert unknown.status_code == 404, unknown.text


async def test_a_person_sets_their_own_switch(client: Client, world: World, directory: Directory) -> None:
    admin = world.headers(SOEST, "town-admin")
    me = await created(
        await client.post(
            f"{directory.base(world)}/people",
            json={"familyName": "Selbst", "subject": f"{SOEST}-department", "phone": "02921 103-6666"},
            headers=admin,
        )
    )
    mine = world.headers(SOEST, "department")
    past = await client.put(
        "/v1/directory/my-presence", json={"state": "away", "until": "2020-01-01T00:00:00Z"}, headers=mine
    )
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "until", past.text
    switched = await client.put("/v1/directory/my-presence", json={"state": "in_meeting"}, headers=mine)
    assert switched.status_code == 200, switched.text
    assert (switched.json()["source"], switched.json()["state"]) == ("switch", "in_meeting")
    seen = await client.get(
        f"{directory.base(world)}/people/{me['id']}/presence", headers=world.headers(KREIS, "agent")
    )
    assert seen.json()["reachable"] is False
    # Someone not in the directory has no switch to set.
    other = await client.put(
        "/v1/directory/my-presence", json={"state": "away"}, headers=world.headers(GESEKE, "department")
    )
    assert other.status_code == 404, other.text


async def test_staff_data_stays_with_the_town_and_the_operators_agents(
    client: Client, world: World, directory: Directory
) -> None:
    soest_people = f"{directory.base(world)}/people"
    allowed = [(KREIS, "agent"), (KREIS, "supervisor"), (SOEST, "department"), (SOEST, "town-admin"), (SOEST, "agent")]
    for town, role in allowed:
        response = await client.get(soest_people, headers=world.headers(town, role))
        assert response.status_code == 200, (town, role, response.text)
    # Geseke never sees Soest's staff: Soest looks like a town that does not exist.
    for role in ("agent", "department", "town-admin", "supervisor"):
        response = await client.get(soest_people, headers=world.headers(GESEKE, role))
        assert response.status_code == 404, (role, response.text)
        forwarding = await client.get(
            "/v1/forwarding", params={"tenant": world.slug(SOEST)}, headers=world.headers(GESEKE, role)
        )
        assert forwarding.status_code in (403, 404), (role, forwarding.text)
    # The operator's editors and finance and a partner system: no grant at all.
    for town, kind in ((SOEST, "partner"), (KREIS, "partner"), (KREIS, "editor"), (KREIS, "finance")):
        response = await client.get(soest_people, headers=world.headers(town, kind))
        assert response.status_code in (403, 404), (town, kind, response.text)
    partner = await client.get(soest_people, headers=world.headers(SOEST, "partner"))
    assert partner.status_code == 403 and partner.json()["code"] == "FORBIDDEN"
    partner_decision = await client.get(
        "/v1/forwarding", params={"tenant": world.slug(SOEST)}, headers=world.headers(SOEST, "partner")
    )
    assert partner_decision.status_code == 403
    # GraphQL agrees.
    body = await gql(
        client,
        world.headers(GESEKE, "department"),
        "query($t: String!) { directoryPeople(tenant: $t) { id } }",
        t=world.slug(SOEST),
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
