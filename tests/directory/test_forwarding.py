"""The forwarding decision (qualifizierte Vermittlung): responsibility by service and by surname
range, substitutes, the department's line and hours, the message with its callback deadline,
and the German sentence the blind agents hear. Every moment is pinned with `at`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from auth.principal import Principal
from auth.roles import Role
from backend.directory import service
from backend.directory.schemas import PresenceSwitchInput, SwitchState
from backend.state import unit_of_work
from tests.directory.conftest import KREIS, PREFIX, SERVICE, SOEST, Directory
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
# Tuesday 2026-03-10, 11:00 in Soest (CET): the department is open.
TUESDAY_11 = "2026-03-10T11:00:00+01:00"


async def decide(client: Client, world: World, **params: str) -> dict[str, Any]:
    response = await client.get(
        "/v1/forwarding",
        params={"tenant": world.slug(SOEST), **params},
        headers=world.headers(KREIS, "agent"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def first_available(decision: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in decision["options"] if o["available"])


async def test_the_surname_range_picks_the_person(client: Client, world: World, directory: Directory) -> None:
    for surname, who in (("Albers", directory.mueller), ("Kuhn", directory.mueller), ("Ärger", directory.mueller)):
        decision = await decide(client, world, leikaKey=SERVICE, surname=surname, at=TUESDAY_11)
        option = decision["options"][0]
        assert (option["kind"], option["personId"], option["available"]) == ("person", who["id"], True), surname
        assert option["number"] == "+4929211034711"
    decision = await decide(client, world, leikaKey=SERVICE, surname="Zander", at=TUESDAY_11)
    assert decision["options"][0]["personId"] == directory.schmidt["id"]
    assert decision["options"][0]["speakable"] == "Herr Schmidt, Bauordnung, Durchwahl 1 2 3 4."


async def test_the_longest_key_wins_and_the_prefix_covers_the_rest(
    client: Client, world: World, directory: Directory
) -> None:
    other = PREFIX + "99000000"
    decision = await decide(client, world, leikaKey=other, surname="Albers", at=TUESDAY_11)
    assert decision["options"][0]["personId"] == directory.weber["id"]
    # Without a surname the agent hears both halves of the split, in order.
    decision = await decide(client, world, leikaKey=SERVICE, at=TUESDAY_11)
    persons = [o["personId"] for o in decision["options"] if o["kind"] == "person"]
    assert persons == [directory.mueller["id"], directory.schmidt["id"]]


async def set_switch(world: World, person: dict[str, Any], state: SwitchState, until: str, now: str) -> None:
    """The person themself sets the switch (a principal with their subject), at a pinned moment."""
    soest = world.tenant_ids[SOEST]
    me = Principal(
        issuer="test",
        subject=person["subject"],
        tenant_id=soest,
        tenant_slug=world.slug(SOEST),
        roles=frozenset({Role.DEPARTMENT}),
        acting_tenant_ids=frozenset({soest}),
    )
    async with unit_of_work(world.state, me) as uow:
        await service.set_my_presence(
            uow,
            PresenceSwitchInput(state=state, until=datetime.fromisoformat(until)),
            now=datetime.fromisoformat(now),
        )


async def give_subject(client: Client, world: World, directory: Directory, person: dict[str, Any], sub: str) -> None:
    body = {
        k: person[k]
        for k in ("salutation", "givenName", "familyName", "function", "departmentId", "phone", "languages")
    }
    response = await client.put(
        f"{directory.base(world)}/people/{person['id']}",
        json={**body, "substituteIds": person["substituteIds"], "subject": sub},
        headers=world.headers(SOEST, "town-admin"),
    )
    assert response.status_code == 200, response.text
    person.update(response.json())


async def test_away_person_gives_way_to_the_substitute_with_a_speakable_sentence(
    client: Client, world: World, directory: Directory
) -> None:
    await give_subject(client, world, directory, directory.mueller, f"mueller-{world.suffix}")
    # Thursday 2026-03-12: Frau Müller is in a meeting from 10:30 until 14:00.
    await set_switch(
        world, directory.mueller, SwitchState.IN_MEETING, "2026-03-12T14:00:00+01:00", "2026-03-12T10:30+01:00"
    )
    decision = await decide(client, world, leikaKey=SERVICE, surname="Albers", at="2026-03-12T11:00:00+01:00")
    kinds = [(o["kind"], o["available"]) for o in decision["options"]]
    assert kinds[:4] == [("person", False), ("substitute", True), ("department", True), ("message", True)]
    assert decision["options"][0]["reason"].startswith("in a meeting until 14:00")
    assert decision["options"][1]["number"] == "+4929211031234"
    assert decision["speakable"] == (
        "Frau Müller, Bauordnung, ist bis 14 Uhr in einer Besprechung. Vertretung: Herr Schmidt, Durchwahl 1 2 3 4."
    )
    # At 14:00 the switch has run out: Frau Müller again.
    decision = await decide(client, world, leikaKey=SERVICE, surname="Albers", at="2026-03-12T14:00:00+01:00")
    assert first_available(decision)["personId"] == directory.mueller["id"]


async def test_outside_hours_the_line_is_closed_and_a_message_is_due_by_the_callback_rule(
    client: Client, world: World, directory: Directory
) -> None:
    # Thursday before Easter, 17:00: after the department's 16:00. Good Friday and Easter Monday
    # are holidays in NW: a message taken now is due on Tuesday at 17:00.
    decision = await decide(client, world, leikaKey=SERVICE, surname="Zander", at="2026-04-02T17:00:00+02:00")
    by_kind = {o["kind"]: o for o in decision["options"]}
    assert by_kind["person"]["available"] is False
    assert by_kind["person"]["reason"].startswith("outside the department's hours")
    assert by_kind["department"] == {
        **by_kind["department"],
        "available": False,
        "reason": "outside the department's hours",
    }
    message = by_kind["message"]
    assert message["personId"] == directory.schmidt["id"]
    assert datetime.fromisoformat(message["callbackDueAt"]) == datetime(2026, 4, 7, 15, 0, tzinfo=UTC)
    assert message["speakable"] == "Rückrufbitte an Herr Schmidt, Rückruf bis Dienstag, 7. April, 17 Uhr."
    # Good Friday itself: a public holiday, said as such.
    decision = await decide(client, world, leikaKey=SERVICE, surname="Zander", at="2026-04-03T10:00:00+02:00")
    assert decision["options"][0]["reason"].startswith("public holiday: Karfreitag")


async def test_no_one_responsible_falls_back_to_a_message(client: Client, world: World, directory: Directory) -> None:
    decision = await decide(client, world, leikaKey="11111111111111", at=TUESDAY_11)
    assert [o["kind"] for o in decision["options"]] == ["message"]
    assert decision["options"][0]["reason"].startswith("no one responsible for this service")
    assert decision["speakable"].startswith("Für diese Leistung ist niemand zuständig eingetragen.")


async def test_graphql_forwarding_decision(client: Client, world: World, directory: Directory) -> None:
    body = await gql(
        client,
        world.headers(KREIS, "agent"),
        """query($t: String!, $k: String, $s: String, $at: DateTime) {
             forwardingDecision(tenant: $t, leikaKey: $k, surname: $s, at: $at) {
               speakable options { rank kind available personId number reason speakable } } }""",
        t=world.slug(SOEST),
        k=SERVICE,
        s="Zander",
        at=TUESDAY_11,
    )
    assert "errors" not in body, body
    options = body["data"]["forwardingDecision"]["options"]
    assert options[0]["personId"] == directory.schmidt["id"] and options[0]["available"] is True
    bad = await gql(
        client,
        world.headers(KREIS, "agent"),
        'query($t: String!) { forwardingDecision(tenant: $t, leikaKey: "12ab") { speakable } }',
        t=world.slug(SOEST),
    )
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED", bad


async def test_bad_forwarding_queries_are_refused_by_field(client: Client, world: World, directory: Directory) -> None:
    agent = world.headers(KREIS, "agent")
    for params, field in (
        ({"leikaKey": "12ab"}, "leikaKey"),
        ({"leikaKey": SERVICE, "surname": "1234"}, "surname"),
    ):
        response = await client.get("/v1/forwarding", params={"tenant": world.slug(SOEST), **params}, headers=agent)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    naive = await client.get(
        "/v1/forwarding", params={"tenant": world.slug(SOEST), "at": "2026-03-10T11:00:00"}, headers=agent
    )
    assert naive.status_code == 422, naive.text
    unknown = await client.get("/v1/forwarding", params={"tenant": "no-such-town"}, headers=agent)
    assert unknown.status_code == 404, unknown.text
