"""Tickets and calls under simultaneous writes: one ticket per call however many agents press
"create" at once, one call per telephone-system id, a ticket worked by several people at once
never a 500, and an Idempotency-Key replayed at once acts once."""

from __future__ import annotations

import asyncio
import json
import uuid
from uuid import UUID

import httpx

from tests.support.world import World
from tests.telephony.helpers import add_number, unique_number
from tests.tickets.conftest import KREIS, SOEST, ticket_json
from tests.tickets.test_call_link import answered_call

Client = httpx.AsyncClient
BURST = 6


def _statuses(responses: list[httpx.Response]) -> list[int]:
    statuses = sorted(r.status_code for r in responses)
    assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
    return statuses


async def test_one_call_makes_one_ticket_however_many_ask_at_once(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    agent = world.headers(KREIS, "agent")
    for _ in range(2):
        call = await answered_call(client, world, SOEST)
        body = ticket_json(world, SOEST, departments[SOEST], callId=call["id"])
        responses = await asyncio.gather(*(client.post("/v1/tickets", json=body, headers=agent) for _ in range(BURST)))
        assert _statuses(list(responses)) == [201] + [409] * (BURST - 1)
        made = next(r.json() for r in responses if r.status_code == 201)
        seen = (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()
        assert seen["ticketId"] == made["id"]


async def test_a_call_recorded_at_once_by_retries_is_one_call(client: Client, world: World) -> None:
    number = unique_number()
    await add_number(client, world, SOEST, number)
    telephony = world.headers(KREIS, "telephony")
    body = {
        "externalId": f"burst-{uuid.uuid4()}",
        "dialled": number,
        "offeredAt": "2026-03-02T10:00:00+01:00",
        "answeredAt": "2026-03-02T10:00:20+01:00",
    }
    responses = await asyncio.gather(*(client.post("/v1/calls", json=body, headers=telephony) for _ in range(BURST)))
    assert set(_statuses(list(responses))) == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    events = [
        {"externalId": body["externalId"], "type": kind, "at": at, "dialled": number}
        for kind, at in (("answered", "2026-03-02T10:00:20+01:00"), ("ended", "2026-03-02T10:03:00+01:00"))
    ]
    responses = await asyncio.gather(
        *(client.post("/v1/calls/events", json=events[i % 2], headers=telephony) for i in range(BURST))
    )
    _statuses(list(responses))


async def test_a_new_calls_events_arriving_at_once_make_one_call(client: Client, world: World) -> None:
    """The telephone system's offered, answered and ended events of a call nobody has seen yet,
    each sent twice (its retry), all at once."""
    number = unique_number()
    await add_number(client, world, SOEST, number)
    telephony = world.headers(KREIS, "telephony")
    external = f"burst-{uuid.uuid4()}"
    events = [
        {"externalId": external, "type": kind, "at": at, "dialled": number}
        for kind, at in (
            ("offered", "2026-03-02T10:00:00+01:00"),
            ("answered", "2026-03-02T10:00:20+01:00"),
            ("ended", "2026-03-02T10:03:00+01:00"),
        )
    ]
    responses = await asyncio.gather(
        *(client.post("/v1/calls/events", json=event, headers=telephony) for event in events * 2)
    )
    _statuses(list(responses))
    assert len({r.json()["id"] for r in responses if r.status_code == 200}) == 1


async def test_an_outcome_and_a_ticket_for_one_call_at_once(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    """One agent records "settled", another forwards the call as a ticket, at the same moment:
    one of them wins, the other is refused; the call never ends up with both."""
    agent = world.headers(KREIS, "agent")
    for _ in range(3):
        call = await answered_call(client, world, SOEST)
        body = ticket_json(world, SOEST, departments[SOEST], callId=call["id"])
        settled = {"outcome": "settled_first_contact"}
        responses = await asyncio.gather(
            client.post("/v1/tickets", json=body, headers=agent),
            client.put(f"/v1/calls/{call['id']}/outcome", json=settled, headers=agent),
            client.post("/v1/tickets", json=body, headers=agent),
            client.put(f"/v1/calls/{call['id']}/outcome", json=settled, headers=agent),
        )
        _statuses(list(responses))
        seen = (await client.get(f"/v1/calls/{call['id']}", headers=agent)).json()
        made = [r.json()["id"] for r in responses if r.status_code == 201]
        assert len(made) <= 1
        if made:
            assert (seen["outcome"], seen["ticketId"]) == ("forwarded_as_ticket", made[0])
        else:
            assert (seen["outcome"], seen["ticketId"]) == ("settled_first_contact", None)


async def test_one_ticket_worked_by_several_people_at_once(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    agent, staff = world.headers(KREIS, "agent"), world.headers(SOEST, "department")
    created = await client.post("/v1/tickets", json=ticket_json(world, SOEST, departments[SOEST]), headers=agent)
    assert created.status_code == 201, created.text
    ticket = created.json()["id"]
    responses = await asyncio.gather(
        client.post(f"/v1/tickets/{ticket}/status", json={"status": "in_progress"}, headers=staff),
        client.post(f"/v1/tickets/{ticket}/status", json={"status": "in_progress"}, headers=staff),
        client.post(f"/v1/tickets/{ticket}/comments", json={"body": "eins"}, headers=staff),
        client.post(f"/v1/tickets/{ticket}/comments", json={"body": "zwei"}, headers=staff),
        client.post(
            f"/v1/tickets/{ticket}/callback-attempts", json={"channel": "phone", "reached": False}, headers=staff
        ),
        client.post(
            f"/v1/tickets/{ticket}/callback-attempts", json={"channel": "phone", "reached": True}, headers=staff
        ),
        client.put(f"/v1/tickets/{ticket}/department", json={"departmentId": str(departments[SOEST])}, headers=staff),
        client.post(f"/v1/tickets/{ticket}/status", json={"status": "closed"}, headers=staff),
    )
    _statuses(list(responses))
    events = await client.get(f"/v1/tickets/{ticket}/events", headers=staff)
    assert events.status_code == 200


async def test_one_idempotency_key_sent_six_times_at_once_makes_one_ticket(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    headers = {**world.headers(KREIS, "agent"), "Idempotency-Key": str(uuid.uuid4())}
    body = ticket_json(world, SOEST, departments[SOEST], subject=f"Burst {uuid.uuid4().hex[:6]}")
    responses = await asyncio.gather(*(client.post("/v1/tickets", json=body, headers=headers) for _ in range(BURST)))
    statuses = _statuses(list(responses))
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1


async def test_one_call_import_sent_four_times_at_once_records_each_call_once(client: Client, world: World) -> None:
    number = unique_number()
    await add_number(client, world, SOEST, number)
    batch = f"burst-{uuid.uuid4().hex[:8]}"
    lines = [
        {
            "externalId": f"{batch}-{n}",
            "dialled": number,
            "offeredAt": f"2026-03-02T10:{n:02d}:00+01:00",
            "answeredAt": f"2026-03-02T10:{n:02d}:20+01:00",
            "endedAt": f"2026-03-02T10:{n:02d}:50+01:00",
        }
        for n in range(20)
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    headers = {**world.headers(KREIS, "telephony"), "Content-Type": "application/json"}
    responses = await asyncio.gather(
        *(client.post("/v1/calls/import", content=text.encode(), headers=headers) for _ in range(4))
    )
    assert set(_statuses(list(responses))) == {200}
    reports = [r.json() for r in responses]
    assert sum(r["inserted"] for r in reports) == 20, reports
    assert all(r["inserted"] + r["duplicates"] == 20 and r["errorCount"] == 0 for r in reports), reports
