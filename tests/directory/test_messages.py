"""A message taken from the forwarding decision becomes the ticket, already assigned (decision
038): to the option's person (or the department's queue), due when the option announced — from
the decision's moment, by the tickets' deadline rule (working days, NW holidays). Retries answer
the same ticket; bad input is refused and creates nothing; partner and telephone systems may not.

Moments are pinned with time-machine: Thursday 2 April 2026 before Easter (Good Friday and Easter
Monday are holidays in NW)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import time_machine

from backend.clock import BERLIN
from backend.db.tenancy import tenant_transaction
from tests.directory.conftest import KREIS, PREFIX, SERVICE, SOEST, Directory, a_call
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
# The decision at 10:00 on the Thursday before Easter; the agent takes the message at 10:30.
DECIDED = datetime(2026, 4, 2, 10, 0, tzinfo=BERLIN)
TAKEN = DECIDED + timedelta(minutes=30)
TAKE_GQL = """mutation($input: TakeMessageInput!) {
  takeMessage(input: $input) { ticket { id departmentId assigneePersonId assignee dueAt status callId }
                               errors { code field } }
}"""


def message(world: World, **fields: Any) -> dict[str, Any]:
    return {
        "tenant": world.slug(SOEST),
        "at": DECIDED.isoformat(),
        "leikaKey": SERVICE,
        "surname": "Albers",
        "subject": "Rückruf zum Bauantrag",
        "concern": "Frau Albers fragt, ob ihr Bauantrag vollständig ist.",
        "citizen": {"consent": True, "callbackNumber": "02921 987654"},
        **fields,
    }


async def test_the_message_becomes_the_ticket_of_the_person_due_as_announced(
    client: Client,
    numbers: World,
    directory: Directory,
) -> None:
    world = numbers
    with time_machine.travel(TAKEN, tick=True):
        agent = world.headers(KREIS, "agent")  # signed at the travelled moment
        decision = await client.get(
            "/v1/forwarding",
            params={"tenant": world.slug(SOEST), "leikaKey": SERVICE, "surname": "Albers", "at": DECIDED.isoformat()},
            headers=agent,
        )
        option = next(o for o in decision.json()["options"] if o["kind"] == "message")
        assert option["personId"] == directory.mueller["id"]
        call = await a_call(client, world, day="2026-04-02", hour="09:50")
        body = message(world, callId=call["id"])
        first = await client.post("/v1/forwarding/messages", json=body, headers=agent)
        assert first.status_code == 201, first.text
        ticket = first.json()
        # Assigned to Frau Müller in her department, forwarded, and due when announced: from
        # 10:00 Thursday over Good Friday, the weekend and Easter Monday to Tuesday 10:00 —
        # not 10:30, when the message was taken.
        assert (ticket["assigneePersonId"], ticket["departmentId"]) == (
            directory.mueller["id"],
            str(directory.department_id),
        )
        assert ticket["assignee"] == "Anna Müller" and ticket["status"] == "forwarded"
        assert datetime.fromisoformat(ticket["dueAt"]) == datetime.fromisoformat(option["callbackDueAt"])
        assert datetime.fromisoformat(ticket["dueAt"]) == datetime(2026, 4, 7, 10, 0, tzinfo=BERLIN)
        events = await client.get(f"/v1/tickets/{ticket['id']}/events", headers=agent)
        assert [e["kind"] for e in events.json()][:3] == [
            "ticket.created",
            "ticket.assigned",
            "ticket.status_changed",
        ], events.text
        # The agent's client retries (timeout): the same ticket, not a second one.
        again = await client.post("/v1/forwarding/messages", json=body, headers=agent)
        assert again.status_code == 201 and again.json()["id"] == ticket["id"], again.text
        stored = (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()
        assert (stored["outcome"], stored["ticketId"]) == ("forwarded_as_ticket", ticket["id"])
        # Another message from the same call is not a retry.
        other = await client.post("/v1/forwarding/messages", json={**body, "subject": "Etwas anderes"}, headers=agent)
        assert other.status_code == 409, other.text

        # The desktop: Herr Weber for the rest of the key prefix, over GraphQL.
        taken = await gql(client, agent, TAKE_GQL, input=message(world, leikaKey=PREFIX + "55000000", surname=None))
        payload = taken["data"]["takeMessage"]
        assert payload["errors"] == [] and payload["ticket"]["assigneePersonId"] == directory.weber["id"], taken
        assert datetime.fromisoformat(payload["ticket"]["dueAt"]) == datetime(2026, 4, 7, 10, 0, tzinfo=BERLIN)


async def test_bad_messages_are_refused_and_create_nothing(
    client: Client,
    numbers: World,
    directory: Directory,
) -> None:
    world = numbers
    with time_machine.travel(TAKEN, tick=True):
        agent = world.headers(KREIS, "agent")  # signed at the travelled moment
        token = f"refused-{uuid.uuid4().hex[:8]}"
        cases: list[tuple[dict[str, Any], tuple[int, ...], str | None]] = [
            (message(world, at=(DECIDED - timedelta(hours=3)).isoformat()), (422,), "at"),  # a promise of the past
            (message(world, at=(TAKEN + timedelta(hours=1)).isoformat()), (422,), "at"),  # of the future
            (message(world, at="2026-04-02T10:00:00"), (400, 422), "at"),  # no offset
            (message(world, leikaKey="99-108"), (400, 422), None),
            (message(world, subject=""), (400, 422), None),
            (message(world, tenant="stadt-nirgendwo"), (404,), None),
            (message(world, callId=str(uuid.uuid4())), (404,), None),
            (message(world, citizen={"consent": False, "callbackNumber": "02921 987654"}), (422,), None),
        ]
        for body, statuses, field in cases:
            body = {**body, "subject": token + body["subject"][:0]} if body["subject"] else body
            response = await client.post("/v1/forwarding/messages", json=body, headers=agent)
            assert response.status_code in statuses, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            if field is not None:
                assert field in response.text, response.text
        for town, role, status in ((SOEST, "partner", 403), (KREIS, "telephony", 403), ("stadt-geseke", "agent", 404)):
            response = await client.post(
                "/v1/forwarding/messages", json=message(world, subject=token), headers=world.headers(town, role)
            )
            assert response.status_code == status, (town, role, response.text)
        late = message(world, subject=token, at=(DECIDED - timedelta(hours=3)).isoformat())
        typed = await gql(client, agent, TAKE_GQL, input=late)
        assert typed["data"]["takeMessage"] == {
            "ticket": None,
            "errors": [{"code": "VALIDATION_FAILED", "field": "at"}],
        }
    async with tenant_transaction(world.state.pool, [world.tenant_ids[SOEST]]) as conn:
        created = await conn.fetchval(
            "SELECT count(*) FROM tickets WHERE tenant_id = $1 AND subject = $2", world.tenant_ids[SOEST], token
        )
    assert created == 0
