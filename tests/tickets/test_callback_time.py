"""One callback time: a ticket is answered when its first callback reached the citizen, even
when staff record that call later with a back-dated `attemptedAt`. The SLA state (Python and
SQL) and the 115 figures judge the same moment; who recorded it and when stays on the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from tests.support.world import World
from tests.tickets.conftest import GESEKE, KREIS, Client, ticket_at

pytestmark = pytest.mark.clock  # callback attempts must lie between creation and now

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)  # due Tuesday 2026-03-03 10:00
TUESDAY_6 = "2026-03-03T06:00:00+01:00"
WEDNESDAY_9 = "2026-03-04T09:00:00+01:00"


async def _attempt(client: Client, world: World, ticket_id: UUID, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/tickets/{ticket_id}/callback-attempts",
        json={"channel": "phone", "reached": True, **fields},
        headers=world.headers(GESEKE, "department"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ticket(client: Client, world: World, ticket_id: UUID) -> dict[str, Any]:
    response = await client.get(f"/v1/tickets/{ticket_id}", headers=world.headers(GESEKE, "department"))
    assert response.status_code == 200, response.text
    ticket: dict[str, Any] = response.json()["ticket"]
    return ticket


async def _callbacks(client: Client, world: World) -> tuple[int, int]:
    """Geseke's callbacks on time and late for tickets due on Tuesday 2026-03-03."""
    response = await client.get(
        "/v1/figures",
        params={"from": "2026-03-03", "to": "2026-03-03", "tenant": world.slug(GESEKE)},
        headers=world.headers(GESEKE, "town-admin"),
    )
    assert response.status_code == 200, response.text
    row = next(r for r in response.json()["rows"] if r["scope"] == "all")
    return row["callbacksOnTime"], row["callbacksLate"]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_callback_recorded_later_answers_the_ticket_when_it_reached_the_citizen(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, GESEKE, MONDAY_10)
    assert ticket.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN)
    on_time_before, late_before = await _callbacks(client, world)
    recorded_from = datetime.now(UTC)
    attempt = await _attempt(client, world, ticket.id, attemptedAt=TUESDAY_6, markAnswered=True)
    assert _moment(attempt["attemptedAt"]) == _moment(TUESDAY_6)
    seen = await _ticket(client, world, ticket.id)
    assert seen["status"] == "answered"
    assert _moment(seen["answeredAt"]) == _moment(TUESDAY_6)  # when the citizen was reached
    assert seen["slaState"] == "on_time"
    filtered = await client.get(
        "/v1/tickets",
        params={"tenant": world.slug(GESEKE), "status": "answered", "slaState": "on_time", "first": 100},
        headers=world.headers(GESEKE, "department"),
    )
    assert str(ticket.id) in {t["id"] for t in filtered.json()["items"]}  # the SQL rule agrees
    # The 115 figures count the same ticket on time (it was late and open before).
    assert await _callbacks(client, world) == (on_time_before + 1, late_before - 1)
    # The audit trail: who recorded it and when, apart from when the call happened.
    me = (await client.get("/v1/me", headers=world.headers(GESEKE, "department"))).json()
    assert attempt["recordedBy"] == me["subject"] and _moment(attempt["createdAt"]) >= recorded_from
    events = (await client.get(f"/v1/tickets/{ticket.id}/events", headers=world.headers(KREIS, "supervisor"))).json()
    answered = next(e for e in events if e["toStatus"] == "answered")
    assert answered["actorSubject"] == me["subject"] and _moment(answered["at"]) >= recorded_from


async def test_answering_by_status_change_uses_the_first_reached_callback(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, GESEKE, MONDAY_10)
    staff = world.headers(GESEKE, "department")
    assert (
        await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "in_progress"}, headers=staff)
    ).is_success
    await _attempt(client, world, ticket.id, attemptedAt="2026-03-03T05:30:00+01:00", reached=False)
    await _attempt(client, world, ticket.id, attemptedAt=TUESDAY_6)
    await _attempt(client, world, ticket.id, attemptedAt=WEDNESDAY_9)
    answered = await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "answered"}, headers=staff)
    assert answered.status_code == 200, answered.text
    assert _moment(answered.json()["answeredAt"]) == _moment(TUESDAY_6)
    assert answered.json()["slaState"] == "on_time"


async def test_an_earlier_reach_recorded_after_answering_moves_the_callback_time(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, GESEKE, MONDAY_10)
    await _attempt(client, world, ticket.id, attemptedAt=WEDNESDAY_9, markAnswered=True)
    late = await _ticket(client, world, ticket.id)
    assert late["slaState"] == "overdue" and _moment(late["answeredAt"]) == _moment(WEDNESDAY_9)
    on_time_before, late_before = await _callbacks(client, world)
    await _attempt(client, world, ticket.id, attemptedAt=TUESDAY_6)  # found in the notes, recorded now
    seen = await _ticket(client, world, ticket.id)
    assert _moment(seen["answeredAt"]) == _moment(TUESDAY_6)
    assert seen["slaState"] == "on_time" and seen["version"] > late["version"]
    assert await _callbacks(client, world) == (on_time_before + 1, late_before - 1)


async def test_the_callback_time_lies_between_the_last_reopen_and_now(
    client: Client, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await ticket_at(world, departments, GESEKE, MONDAY_10)
    staff = world.headers(GESEKE, "department")
    url = f"/v1/tickets/{ticket.id}/callback-attempts"
    cases = [
        (datetime.now(UTC) + timedelta(hours=1)).isoformat(),  # in the future
        "2026-03-02T08:00:00+01:00",  # before the ticket was created
    ]
    for moment in cases:
        refused = await client.post(
            url, json={"channel": "phone", "reached": True, "attemptedAt": moment, "markAnswered": True}, headers=staff
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "attemptedAt"
    await _attempt(client, world, ticket.id, attemptedAt=TUESDAY_6, markAnswered=True)
    reopened = await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "in_progress"}, headers=staff)
    assert reopened.status_code == 200, reopened.text
    # After a reopen, a call from before it cannot answer the citizen's new request.
    stale = await client.post(
        url, json={"channel": "phone", "reached": True, "attemptedAt": TUESDAY_6, "markAnswered": True}, headers=staff
    )
    assert stale.status_code == 422, stale.text
    assert stale.json()["errors"][0]["field"] == "attemptedAt"
    assert (await _ticket(client, world, ticket.id))["status"] == "in_progress"
    # A few minutes of clock skew are accepted and cut off at now: never answered in the future.
    skewed = await _attempt(
        client,
        world,
        ticket.id,
        attemptedAt=(datetime.now(UTC) + timedelta(minutes=3)).isoformat(),
        markAnswered=True,
    )
    seen = await _ticket(client, world, ticket.id)
    assert _moment(seen["answeredAt"]) == _moment(skewed["attemptedAt"]) <= datetime.now(UTC)
