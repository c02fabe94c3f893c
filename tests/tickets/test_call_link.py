"""A ticket created from a call: the call records it in the same transaction (outcome "forwarded
as ticket", the ticket's id), so the agent needs no second step, the department can go back to
the call, and the first-contact figures count it. One ticket per call, of the call's town."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx

from tests.support.world import World
from tests.telephony.helpers import add_number, unique_number
from tests.tickets.conftest import GESEKE, KREIS, SOEST, ticket_json

Client = httpx.AsyncClient


async def answered_call(client: Client, world: World, town: str) -> dict[str, Any]:
    number = unique_number()
    await add_number(client, world, town, number)
    body = {
        "externalId": f"link-{uuid.uuid4()}",
        "dialled": number,
        "caller": "0171 2345678",
        "offeredAt": "2026-03-02T10:00:00+01:00",
        "answeredAt": "2026-03-02T10:00:20+01:00",
    }
    response = await client.post("/v1/calls", json=body, headers=world.headers(KREIS, "telephony"))
    assert response.status_code == 200, response.text
    call: dict[str, Any] = response.json()
    return call


async def test_a_ticket_from_a_call_is_recorded_on_the_call(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    agent = world.headers(KREIS, "agent")
    call = await answered_call(client, world, SOEST)
    created = await client.post(
        "/v1/tickets", json=ticket_json(world, SOEST, departments[SOEST], callId=call["id"]), headers=agent
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    seen = (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()
    assert (seen["outcome"], seen["ticketId"]) == ("forwarded_as_ticket", ticket["id"])

    # One ticket per call: a second one is refused and creates nothing.
    again = await client.post(
        "/v1/tickets", json=ticket_json(world, SOEST, departments[SOEST], callId=call["id"]), headers=agent
    )
    assert again.status_code == 409 and again.json()["field"] == "callId", again.text
    # The outcome stays what the ticket made it.
    settled = await client.put(
        f"/v1/calls/{call['id']}/outcome", json={"outcome": "settled_first_contact"}, headers=agent
    )
    assert settled.status_code == 409, settled.text
    assert (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()["ticketId"] == ticket["id"]


async def test_a_ticket_cites_only_a_call_of_its_town_that_the_agent_sees(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    soest_call = await answered_call(client, world, SOEST)
    other_town = await client.post(
        "/v1/tickets",
        json=ticket_json(world, GESEKE, departments[GESEKE], callId=soest_call["id"]),
        headers=world.headers(KREIS, "agent"),
    )
    assert other_town.status_code == 422 and other_town.json()["errors"][0]["field"] == "callId", other_town.text
    made_up = await client.post(
        "/v1/tickets",
        json=ticket_json(world, SOEST, departments[SOEST], callId=str(uuid.uuid4())),
        headers=world.headers(KREIS, "agent"),
    )
    assert made_up.status_code == 404 and made_up.json()["field"] == "callId", made_up.text
    # Geseke's own staff do not see Soest's call: to them it does not exist.
    geseke_staff = await client.post(
        "/v1/tickets",
        json=ticket_json(world, GESEKE, departments[GESEKE], callId=soest_call["id"]),
        headers=world.headers(GESEKE, "agent"),
    )
    assert geseke_staff.status_code == 404, geseke_staff.text
    untouched = (await client.get(f"/v1/calls/{soest_call['id']}", headers=world.headers(KREIS, "agent"))).json()
    assert (untouched["outcome"], untouched["ticketId"]) == (None, None)
