"""Messages taken from the forwarding decision under simultaneous requests (the second sweep):
the agent's retries of one message arrive at once and all answer the one ticket, and a person
deprovisioned at the moment messages are taken for them never keeps a ticket nobody will see."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx

from backend.clock import BERLIN
from backend.db.tenancy import tenant_transaction
from tests.directory.conftest import KREIS, SOEST, Directory, a_call
from tests.directory.test_concurrent_writes import _no_server_error
from tests.directory.test_messages import message
from tests.directory.test_scim import PATCH, _base, _headers
from tests.http.test_concurrent_writes import _no_deadlock
from tests.support.world import World

Client = httpx.AsyncClient
BURST = 6
DAY = "2148-01-05"  # calls of this module only


async def _responsible_person(client: Client, world: World, directory: Directory) -> tuple[dict[str, Any], str]:
    """A fresh person alone responsible for a fresh service, so the decision's message option
    names them and removing them touches no other test's directory."""
    admin, base = world.headers(SOEST, "town-admin"), directory.base(world)
    person = await client.post(
        f"{base}/people",
        json={"familyName": f"Burst {uuid.uuid4().hex[:6]}", "departmentId": str(directory.department_id)},
        headers=admin,
    )
    assert person.status_code == 201, person.text
    key = f"97{uuid.uuid4().int % 10**12:012d}"
    added = await client.post(
        f"{base}/responsibilities", json={"personId": person.json()["id"], "leikaKey": key}, headers=admin
    )
    assert added.status_code == 201, added.text
    return person.json(), key


def _now() -> str:
    return datetime.now(BERLIN).isoformat()


async def test_one_message_sent_six_times_at_once_answers_one_ticket(
    client: Client, numbers: World, directory: Directory
) -> None:
    """A retry is answered with the first attempt's ticket (decision 038); retries that arrive
    together were a 409 DUPLICATE for all but the first."""
    world, agent = numbers, numbers.headers(KREIS, "agent")
    person, key = await _responsible_person(client, world, directory)
    for _ in range(2):
        call = await a_call(client, world, day=DAY)
        body = message(world, at=_now(), leikaKey=key, surname=None, callId=call["id"])
        responses = await asyncio.gather(
            *(client.post("/v1/forwarding/messages", json=body, headers=agent) for _ in range(BURST))
        )
        assert set(_no_server_error(list(responses))) == {201}, [r.text for r in responses]
        tickets = {r.json()["id"] for r in responses}
        assert len(tickets) == 1
        assert {r.json()["assigneePersonId"] for r in responses} == {person["id"]}
        seen = (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()
        assert seen["ticketId"] in tickets


async def _assigned(world: World, subject: str) -> list[tuple[str | None, uuid.UUID | None]]:
    async with tenant_transaction(world.state.pool, [world.tenant_ids[SOEST]]) as conn:
        rows = await conn.fetch(
            "SELECT assignee, assignee_person_id FROM tickets WHERE tenant_id = $1 AND subject = $2",
            world.tenant_ids[SOEST],
            subject,
        )
    return [(r["assignee"], r["assignee_person_id"]) for r in rows]


async def test_messages_for_a_person_deprovisioned_at_that_moment_go_to_the_queue(
    client: Client, numbers: World, directory: Directory
) -> None:
    """Messages for one person while the identity provider deactivates or deletes them and an
    agent assigns them a ticket again: each is either taken before (and returned to the
    department's queue by the deprovisioning) or refused after (422), never a 500, never a
    deadlock's "try again", and never a ticket left with someone who is gone."""
    world, agent = numbers, numbers.headers(KREIS, "agent")
    for leave in ("delete", "deactivate", "delete", "deactivate"):
        person, key = await _responsible_person(client, world, directory)
        subject = f"Burst {uuid.uuid4().hex[:8]}"
        body = message(world, at=_now(), leikaKey=key, surname=None, subject=subject)
        earlier = await client.post("/v1/forwarding/messages", json=body, headers=agent)
        assert earlier.status_code == 201, earlier.text
        assign = f"/v1/tickets/{earlier.json()['id']}/assignment"
        user = f"{_base(world)}/Users/{person['id']}"
        deactivate = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
        gone = (
            client.delete(user, headers=_headers(world))
            if leave == "delete"
            else client.patch(user, json=deactivate, headers=_headers(world))
        )
        posts = [client.post("/v1/forwarding/messages", json=body, headers=agent) for _ in range(BURST - 1)]
        again = client.put(assign, json={"personId": person["id"]}, headers=agent)
        responses = await asyncio.gather(*posts[:2], gone, again, *posts[2:])
        _no_server_error(list(responses))
        _no_deadlock(list(responses))
        assert responses[2].status_code in (200, 204), responses[2].text
        assert responses[3].status_code in (200, 422), responses[3].text
        messages = responses[:2] + responses[4:]
        assert {r.status_code for r in messages} <= {201, 422}, [r.text for r in messages]
        made = await _assigned(world, subject)
        assert len(made) == 1 + sum(r.status_code == 201 for r in messages)
        assert all(row == (None, None) for row in made), (leave, made)
