"""The callback deadline on the town's WorkingCalendar: weekends, Easter, Pentecost, Corpus Christi
(NW), a town's own closing day, daylight-saving changes, the service-hours rule, and deadlines that
keep their rule and calendar version when the calendar changes later."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from backend.tenants.calendar import WorkingCalendar
from backend.tenants.schemas import DEFAULT_SERVICE_HOURS, ServiceInterval
from backend.tickets.deadline import callback_deadline, sla_state
from backend.tickets.schemas import DeadlineRule, SlaState, TicketStatus
from tests.support.world import World
from tests.tickets.conftest import GESEKE, KREIS, SOEST, ticket_at, ticket_json

BERLIN = ZoneInfo("Europe/Berlin")
WORKING = DeadlineRule.WORKING_DAYS_24H
SERVICE = DeadlineRule.SERVICE_HOURS_24H


def calendar(state: str = "NW", closing: dict[date, str] | None = None) -> WorkingCalendar:
    return WorkingCalendar(
        federal_state=state,
        time_zone="Europe/Berlin",
        service_hours=DEFAULT_SERVICE_HOURS,
        closing_days=closing or {},
    )


def at(text: str) -> datetime:
    """Local Berlin wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def due(created: str, rule: DeadlineRule = WORKING, cal: WorkingCalendar | None = None) -> datetime:
    return callback_deadline(cal or calendar(), at(created), rule).due_at.astimezone(BERLIN)


@pytest.mark.parametrize(
    ("created", "expected", "why"),
    [
        ("2026-04-02T10:00", "2026-04-07T10:00", "paper example: Good Friday and Easter Monday"),
        ("2026-03-02T10:00", "2026-03-03T10:00", "an ordinary Monday"),
        ("2026-03-06T10:00", "2026-03-09T10:00", "Friday → Monday across the weekend"),
        ("2026-03-06T17:30", "2026-03-09T17:30", "late Friday keeps its clock time"),
        ("2026-03-07T11:00", "2026-03-10T08:00", "Saturday: clock starts Monday 8:00"),
        ("2026-03-08T23:59", "2026-03-10T08:00", "Sunday night: clock starts Monday 8:00"),
        ("2026-04-03T12:00", "2026-04-08T08:00", "created on Good Friday: starts Tuesday 8:00"),
        ("2026-04-06T09:00", "2026-04-08T08:00", "created on Easter Monday"),
        ("2026-05-22T10:00", "2026-05-26T10:00", "Friday before Pentecost → Tuesday after Whit Monday"),
        ("2026-05-25T09:00", "2026-05-27T08:00", "created on Whit Monday"),
        ("2026-05-13T10:00", "2026-05-15T10:00", "Ascension Day (Thursday) is skipped"),
        ("2026-06-03T10:00", "2026-06-05T10:00", "Corpus Christi (Thursday) is a holiday in NW"),
        ("2026-06-04T11:00", "2026-06-08T08:00", "created on Corpus Christi: starts Friday 8:00"),
        ("2026-12-23T10:00", "2026-12-24T10:00", "24 December is not a public holiday"),
        ("2026-10-30T10:00", "2026-11-02T10:00", "All Saints' Day falls on a Sunday in 2026"),
    ],
)
def test_24_hours_on_working_days(created: str, expected: str, why: str) -> None:
    assert due(created) == at(expected), why


def test_corpus_christi_depends_on_the_federal_state() -> None:
    # Lower Saxony does not keep Corpus Christi: there the clock runs through Thursday.
    assert due("2026-06-03T10:00", cal=calendar("NI")) == at("2026-06-04T10:00")
    assert due("2026-06-03T10:00", cal=calendar("NW")) == at("2026-06-05T10:00")


def test_a_towns_own_closing_day_stops_the_clock() -> None:
    closing = calendar(closing={date(2026, 12, 24): "Heiligabend", date(2026, 12, 31): "Silvester"})
    assert due("2026-12-23T10:00", cal=closing) == at("2026-12-28T10:00")  # 24 closed, 25/26 holidays, weekend
    assert due("2026-12-30T15:00", cal=closing) == at("2027-01-04T15:00")  # 31 closed, 1 Jan holiday, weekend
    assert due("2026-12-24T09:00", cal=closing) == at("2026-12-29T08:00")  # created on the closing day itself
    assert closing.version != calendar().version


def test_daylight_saving_changes_keep_the_local_clock_time() -> None:
    spring = callback_deadline(calendar(), at("2026-03-27T10:00"), WORKING)  # Friday CET
    assert spring.due_at.astimezone(BERLIN) == at("2026-03-30T10:00")  # Monday CEST
    assert spring.due_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert spring.due_at - spring.started_at == timedelta(hours=71)  # the lost hour is a weekend hour
    autumn = callback_deadline(calendar(), at("2026-10-23T10:00"), WORKING)  # Friday CEST
    assert autumn.due_at == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # Monday 10:00 CET
    assert autumn.due_at - autumn.started_at == timedelta(hours=73)
    # Created in the night of the change itself (a Sunday): starts Monday 8:00 summer time.
    night = callback_deadline(calendar(), datetime(2026, 3, 29, 0, 30, tzinfo=UTC), WORKING)
    assert night.started_at == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert night.due_at.astimezone(BERLIN) == at("2026-03-31T08:00")


SATURDAY_MORNINGS = (*DEFAULT_SERVICE_HOURS, ServiceInterval(weekday=6, opens="09:00", closes="13:00"))
WEEKENDS_TOO = (*SATURDAY_MORNINGS, ServiceInterval(weekday=7, opens="10:00", closes="12:00"))


@pytest.mark.parametrize(
    ("created", "started", "expected", "why"),
    [
        ("2026-04-11T08:00", "2026-04-13T08:00", "2026-04-14T08:00", "Saturday before its service hours"),
        ("2026-04-11T10:30", "2026-04-13T08:00", "2026-04-14T08:00", "Saturday within its service hours"),
        ("2026-04-12T11:00", "2026-04-13T08:00", "2026-04-14T08:00", "Sunday within its service hours"),
        ("2026-04-04T10:00", "2026-04-07T08:00", "2026-04-08T08:00", "Easter Saturday: Easter Monday is a holiday"),
        ("2026-04-10T17:00", "2026-04-10T17:00", "2026-04-13T17:00", "Friday: the weekend does not count"),
    ],
)
def test_weekend_service_hours_do_not_make_working_days(created: str, started: str, expected: str, why: str) -> None:
    cal = WorkingCalendar(federal_state="NW", time_zone="Europe/Berlin", service_hours=WEEKENDS_TOO)
    deadline = callback_deadline(cal, at(created), WORKING)
    assert deadline.started_at.astimezone(BERLIN) == at(started), why
    assert deadline.due_at.astimezone(BERLIN) == at(expected), why


def test_a_working_day_without_service_hours_starts_at_its_midnight() -> None:
    tuesday_to_saturday = tuple(ServiceInterval(weekday=d, opens="08:00", closes="18:00") for d in range(2, 7))
    cal = WorkingCalendar(federal_state="NW", time_zone="Europe/Berlin", service_hours=tuesday_to_saturday)
    deadline = callback_deadline(cal, at("2026-04-11T10:00"), WORKING)  # Saturday, open; Monday closed
    assert deadline.started_at.astimezone(BERLIN) == at("2026-04-13T00:00")
    assert deadline.due_at.astimezone(BERLIN) == at("2026-04-14T00:00")


@pytest.mark.parametrize("rule", [WORKING, SERVICE])
def test_a_tenant_without_service_hours_still_gets_a_working_day_deadline(rule: DeadlineRule) -> None:
    cal = WorkingCalendar(federal_state="NW", time_zone="Europe/Berlin", service_hours=())
    weekday = callback_deadline(cal, at("2026-03-02T10:00"), rule)
    assert weekday.rule is WORKING  # the rule the deadline was computed by, as stored on the ticket
    assert weekday.due_at.astimezone(BERLIN) == at("2026-03-03T10:00")
    weekend = callback_deadline(cal, at("2026-03-07T11:00"), rule)
    assert weekend.started_at.astimezone(BERLIN) == at("2026-03-09T00:00")
    assert weekend.due_at.astimezone(BERLIN) == at("2026-03-10T00:00")


@pytest.mark.parametrize(
    ("created", "expected", "why"),
    [
        ("2026-04-02T10:00", "2026-04-08T14:00", "Thu 8 h, Easter, Tue 10 h, Wed 6 h"),
        ("2026-03-07T11:00", "2026-03-11T12:00", "Saturday: Mon 10 h, Tue 10 h, Wed 4 h"),
        ("2026-03-03T19:00", "2026-03-06T12:00", "after hours: from Wednesday 8:00"),
        ("2026-03-27T16:00", "2026-04-01T10:00", "across the spring change: Fri 2 h, Mon, Tue, Wed 2 h"),
        ("2026-06-02T12:00", "2026-06-05T16:00", "Tue 6 h, Wed 10 h, Corpus Christi, Fri 8 h"),
    ],
)
def test_24_service_hours_rule(created: str, expected: str, why: str) -> None:
    assert due(created, SERVICE) == at(expected), why


def test_sla_state_rule() -> None:
    due_at = datetime(2026, 4, 7, 8, 0, tzinfo=UTC)
    soon = timedelta(hours=2)
    open_ = TicketStatus.IN_PROGRESS
    assert sla_state(open_, due_at, None, due_at - timedelta(hours=3), soon) is SlaState.ON_TIME
    assert sla_state(open_, due_at, None, due_at - timedelta(hours=2), soon) is SlaState.DUE_SOON
    assert sla_state(open_, due_at, None, due_at, soon) is SlaState.OVERDUE
    answered = TicketStatus.ANSWERED
    assert sla_state(answered, due_at, due_at - timedelta(minutes=1), due_at + timedelta(days=9), soon) is (
        SlaState.ON_TIME
    )
    assert sla_state(TicketStatus.CLOSED, due_at, due_at + timedelta(minutes=1), due_at, soon) is SlaState.OVERDUE


async def test_ticket_keeps_rule_and_calendar_version_when_the_calendar_changes(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    created = at("2027-12-22T10:00")  # a Wednesday; 24 December 2027 is a Friday
    before = await ticket_at(world, departments, SOEST, created)
    assert before.due_at == at("2027-12-23T10:00")
    assert before.deadline_rule is WORKING and before.calendar_version
    admin = world.headers(SOEST, "town-admin")
    slug = world.slug(SOEST)
    closing = await client.put(
        f"/v1/tenants/{slug}/closing-days/2027-12-23", params={"name": "Betriebsausflug"}, headers=admin
    )
    assert closing.status_code == 200, closing.text
    try:
        after = await ticket_at(world, departments, SOEST, created)
    finally:
        await client.delete(f"/v1/tenants/{slug}/closing-days/2027-12-23", headers=admin)
    assert after.due_at == at("2027-12-24T10:00")  # the closing day is skipped for the new ticket
    assert after.calendar_version != before.calendar_version
    response = await client.get(f"/v1/tickets/{before.id}", headers=world.headers(SOEST, "department"))
    unchanged = response.json()["ticket"]
    assert datetime.fromisoformat(unchanged["dueAt"]) == before.due_at  # the old deadline did not move
    assert unchanged["calendarVersion"] == before.calendar_version


async def test_service_hours_rule_is_a_tenant_setting(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    url = f"/v1/tenants/{world.slug(GESEKE)}/ticket-settings"
    defaults = await client.get(url, headers=admin)
    assert defaults.json()["deadlineRule"] == "working_days_24h" and defaults.json()["retentionDays"] == 90
    changed = await client.patch(url, json={"deadlineRule": "service_hours_24h"}, headers=admin)
    assert changed.status_code == 200, changed.text
    try:
        ticket = await ticket_at(world, departments, GESEKE, at("2026-04-02T10:00"))
        assert ticket.deadline_rule is SERVICE
        assert ticket.due_at == at("2026-04-08T14:00")
        other = await ticket_at(world, departments, SOEST, at("2026-04-02T10:00"))
        assert other.deadline_rule is WORKING and other.due_at == at("2026-04-07T10:00")
        stale = await client.patch(
            url, json={"retentionDays": 30, "version": defaults.json()["version"]}, headers=admin
        )
        assert stale.status_code == 409
        agent = await client.patch(
            url, json={"deadlineRule": "working_days_24h"}, headers=world.headers(GESEKE, "agent")
        )
        assert agent.status_code == 403
        foreign = await client.patch(
            url, json={"deadlineRule": "working_days_24h"}, headers=world.headers(SOEST, "town-admin")
        )
        assert foreign.status_code == 404
    finally:
        await client.patch(url, json={"deadlineRule": "working_days_24h"}, headers=admin)


async def test_a_town_without_service_hours_still_gets_its_tickets(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID], admin_url: str
) -> None:
    slug, tenant_id = world.slug(GESEKE), world.tenant_ids[GESEKE]
    admin = world.headers(GESEKE, "town-admin")
    settings = f"/v1/tenants/{slug}/ticket-settings"
    owner = await asyncpg.connect(admin_url)
    kept = await owner.fetchval("SELECT service_hours::text FROM tenants WHERE id = $1", tenant_id)
    try:
        refused = await client.patch(
            f"/v1/tenants/{slug}", json={"serviceHours": []}, headers=world.headers(KREIS, "platform-admin")
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "serviceHours"
        # A tenant stored without service hours before that rule:
        await owner.execute("UPDATE tenants SET service_hours = '[]' WHERE id = $1", tenant_id)
        for rule in ("working_days_24h", "service_hours_24h"):
            changed = await client.patch(settings, json={"deadlineRule": rule}, headers=admin)
            assert changed.status_code == 200, changed.text
            created = await client.post(
                "/v1/tickets",
                json=ticket_json(world, GESEKE, departments[GESEKE]),
                headers=world.headers(KREIS, "agent"),
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "forwarded" and created.json()["deadlineRule"] == "working_days_24h"
            weekend = await ticket_at(world, departments, GESEKE, at("2026-03-07T11:00"))  # a Saturday
            assert weekend.due_at == at("2026-03-10T00:00")  # from Monday's start: no service hours
    finally:
        await owner.execute("UPDATE tenants SET service_hours = $2::jsonb WHERE id = $1", tenant_id, kept)
        await owner.close()
        await client.patch(settings, json={"deadlineRule": "working_days_24h"}, headers=admin)
