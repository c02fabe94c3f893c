"""SLA state (on time, due soon, overdue): computed in SQL the same way as in Python, and
queryable and filterable over REST and GraphQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine

from backend.state import unit_of_work
from backend.tenants.calendar import WorkingCalendar
from backend.tenants.schemas import DEFAULT_SERVICE_HOURS
from backend.tickets import service
from backend.tickets.deadline import callback_deadline, sla_state
from backend.tickets.schemas import DeadlineRule, SlaState, TicketStatus
from tests.support.world import World
from tests.tickets.conftest import GESEKE, KREIS, SOEST, graphql, operator_agent, ticket_at

pytestmark = pytest.mark.clock  # SLA states and deadlines are measured against now

NW = WorkingCalendar(federal_state="NW", time_zone="Europe/Berlin", service_hours=DEFAULT_SERVICE_HOURS)


def created_for_due_in(now: datetime, low: timedelta, high: timedelta) -> datetime:
    """A creation moment whose working-day deadline lies between now+low and now+high."""
    for minutes in range(0, 14 * 24 * 60, 10):
        created = now - timedelta(minutes=minutes)
        due = callback_deadline(NW, created, DeadlineRule.WORKING_DAYS_24H).due_at
        if now + low < due < now + high:
            return created
    raise AssertionError("no such moment within two weeks")


async def test_sla_state_in_sql_agrees_with_the_rule(world: World, departments: dict[str, UUID]) -> None:
    created = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)  # due 2026-04-07 08:00 UTC
    ticket = await ticket_at(world, departments, GESEKE, created)
    moments = [ticket.due_at + timedelta(minutes=m) for m in (-24 * 60, -121, -120, -1, 0, 1, 600)]
    async with unit_of_work(world.state, operator_agent(world), readonly=True) as uow:
        for now in moments:
            seen = await service.get_ticket(uow, ticket.id, now=now)
            expected = sla_state(TicketStatus.FORWARDED, ticket.due_at, None, now, timedelta(minutes=120))
            assert seen.sla_state is expected, now
            page = await service.list_tickets(
                uow, tenant_slug=world.slug(GESEKE), sla_state=expected, first=100, now=now
            )
            others = [s for s in SlaState if s is not expected]
            assert ticket.id in {t.id for t in page.items}
            for other in others:
                filtered = await service.list_tickets(
                    uow, tenant_slug=world.slug(GESEKE), sla_state=other, first=100, now=now
                )
                assert ticket.id not in {t.id for t in filtered.items}


async def test_filter_by_sla_state_over_rest_and_graphql(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    # "Due soon" (a deadline 20–100 minutes ahead) exists only on a working day: the server's clock
    # is set to a Wednesday morning, whatever day the suite runs on.
    with time_machine.travel(datetime(2026, 3, 4, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")), tick=True):
        await _filter_by_sla_state(client, world, departments)


async def _filter_by_sla_state(client: httpx.AsyncClient, world: World, departments: dict[str, UUID]) -> None:
    now = datetime.now(UTC)
    overdue = await ticket_at(world, departments, SOEST, now - timedelta(days=10))
    due_soon = await ticket_at(
        world, departments, SOEST, created_for_due_in(now, timedelta(minutes=20), timedelta(minutes=100))
    )
    on_time = await ticket_at(world, departments, SOEST, now)
    wanted = {SlaState.OVERDUE: overdue.id, SlaState.DUE_SOON: due_soon.id, SlaState.ON_TIME: on_time.id}
    headers = world.headers(SOEST, "department")
    for state, ticket_id in wanted.items():
        seen: set[str] = set()
        after = None
        while True:
            params = {"tenant": world.slug(SOEST), "slaState": state.value, "first": 100}
            if after:
                params["after"] = after
            response = await client.get("/v1/tickets", params=params, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert all(t["slaState"] == state.value for t in page["items"])
            seen |= {t["id"] for t in page["items"]}
            after = page["nextCursor"]
            if not after:
                break
        assert str(ticket_id) in seen
        assert not ({str(t) for t in wanted.values()} - {str(ticket_id)}) & seen
    result = await graphql(
        client,
        world.headers(KREIS, "supervisor"),
        """query($s: String!) { tickets(tenantSlug: $s, slaState: OVERDUE, status: FORWARDED, first: 100) {
               nodes { id slaState dueAt } pageInfo { hasNextPage } } }""",
        s=world.slug(SOEST),
    )
    nodes = result["data"]["tickets"]["nodes"]
    assert str(overdue.id) in {n["id"] for n in nodes} and all(n["slaState"] == "OVERDUE" for n in nodes)
    assert str(on_time.id) not in {n["id"] for n in nodes}
    # The most urgent first.
    assert [n["dueAt"] for n in nodes] == sorted(n["dueAt"] for n in nodes)


async def test_answered_tickets_keep_whether_the_callback_was_in_time(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    late = await ticket_at(world, departments, GESEKE, datetime.now(UTC) - timedelta(days=10))
    staff = world.headers(GESEKE, "department")
    await client.post(f"/v1/tickets/{late.id}/status", json={"status": "in_progress"}, headers=staff)
    answered = await client.post(
        f"/v1/tickets/{late.id}/callback-attempts",
        json={"channel": "phone", "reached": True, "markAnswered": True},
        headers=staff,
    )
    assert answered.status_code == 201, answered.text
    ticket = (await client.get(f"/v1/tickets/{late.id}", headers=staff)).json()["ticket"]
    assert ticket["status"] == "answered" and ticket["slaState"] == "overdue"


async def test_cursors_out_of_range_or_not_handed_out_are_refused_as_such(
    client: httpx.AsyncClient, world: World
) -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    cursors = [
        f"0001-01-01T00:00:00+01:00|{nil}",  # before year 1 in UTC: PostgreSQL cannot take it
        f"9999-12-31T23:30:00-01:00|{nil}",  # after year 9999 in UTC
        f"2026-03-02T10:00:00|{nil}",  # without an offset: never handed out
        "2026-03-02T10:00:00+00:00|not-a-uuid",
        "nonsense",
    ]
    staff = world.headers(SOEST, "department")
    audit = f"/v1/tenants/{world.slug(SOEST)}/ticket-audit"
    for cursor in cursors:
        for url, headers in (("/v1/tickets", staff), (audit, world.headers(SOEST, "town-admin"))):
            response = await client.get(url, params={"after": cursor}, headers=headers)
            assert response.status_code == 422, (url, cursor, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "VALIDATION_FAILED"
            assert response.json()["errors"][0]["field"] == "after"
        result = await graphql(
            client, staff, "query($a: String) { tickets(first: 5, after: $a) { nodes { id } } }", a=cursor
        )
        assert result["data"] is None, result
        assert [e["extensions"]["code"] for e in result["errors"]] == ["VALIDATION_FAILED"]
    # A cursor this API handed out still works, whatever its offset.
    fine = await client.get("/v1/tickets", params={"after": f"0001-01-01T00:00:00+00:00|{nil}"}, headers=staff)
    assert fine.status_code == 200, fine.text
