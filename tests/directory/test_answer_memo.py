"""The forwarding decision's answer remembered with the held presence (decision 040's third
amendment): made once per key, surname and area, and kept only for the span in which nothing it
says can change — up to the next start or end of a named person's telephone event, switch or
absence, their department's (or the named line's) opening or closing, or the local midnight.
These tests ask for moments on both sides of each such boundary (a microsecond apart) after the
answer was remembered, and compare every remembered answer with one made afresh."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec

from backend.directory import compiled, service
from backend.directory.schemas import ForwardingDecision
from backend.settings import Settings
from tests.directory.conftest import SOEST, created
from tests.directory.test_hot_path import TUESDAY_10, Own, agent, department, first_option, own_person, phone_event
from tests.support.servers import app_process
from tests.support.world import World

__all__ = ["department"]  # the module fixture, shared with the hot path's tests

Client = httpx.AsyncClient
US = timedelta(microseconds=1)
# Tuesday 2026-03-10 in Soest (CET, UTC+1); the department is open Mon–Fri 8–16.
TUESDAY = TUESDAY_10.replace(hour=0)


async def decide(world: World, own: Own, at: datetime) -> ForwardingDecision:
    return await service.forwarding_decision(world.state, agent(world), world.slug(SOEST), own.key, None, at)


async def held(world: World) -> tuple[compiled.Snapshot, compiled.Live]:
    return await compiled.town(world.state, agent(world), world.slug(SOEST), None)


async def afresh(world: World, own: Own, at: datetime) -> ForwardingDecision:
    """The same decision made without anything remembered: the held rows, an empty memo."""
    snapshot, live = await held(world)
    return service._decision(snapshot, compiled.Live(live.watermark, live.switch, live.phone), own.key, None, at, None)


def first(decision: ForwardingDecision) -> tuple[bool, str, str]:
    option = decision.options[0]
    return option.available, option.reason, option.speakable


async def weekly_absence(client: Client, world: World, own: Own, weekday: int, starts: str, ends: str) -> None:
    await created(
        await client.post(
            f"/v1/tenants/{world.slug(SOEST)}/directory/people/{own.person['id']}/absences/weekly",
            json={"weekday": weekday, "starts": starts, "ends": ends},
            headers=world.headers(SOEST, "town-admin"),
        )
    )


async def dated_absence(client: Client, world: World, own: Own, starts: datetime, ends: datetime) -> None:
    await created(
        await client.post(
            f"/v1/tenants/{world.slug(SOEST)}/directory/people/{own.person['id']}/absences/dated",
            json={"startsAt": starts.isoformat(), "endsAt": ends.isoformat()},
            headers=world.headers(SOEST, "town-admin"),
        )
    )


async def test_an_answer_is_remembered_within_its_span(client: Client, world: World, department: uuid.UUID) -> None:
    """Without this the tests below would pass with nothing remembered at all."""
    own = await own_person(client, "", world, department)
    one = await decide(world, own, TUESDAY_10)
    other = await decide(world, own, TUESDAY_10 + timedelta(minutes=5))
    assert other.options[0] is one.options[0]  # the same option, not made again
    assert (one.at, other.at) == (TUESDAY_10, TUESDAY_10 + timedelta(minutes=5))
    # The deadline is the moment's own: 24 working hours from each.
    assert other.options[-1].callback_due_at == one.options[-1].callback_due_at + timedelta(minutes=5)  # type: ignore[operator]
    assert other.options[-1].speakable.endswith("Rückruf bis Mittwoch, 11. März, 10 Uhr 5.")
    _, live = await held(world)
    remembered = live.answers[(own.key, None, None)]
    assert remembered.since == TUESDAY_10 and remembered.until == TUESDAY.replace(hour=16)  # the department closes


async def test_a_remembered_answer_ends_where_a_weekly_absence_starts_and_ends(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)
    await weekly_absence(client, world, own, 2, "12:00", "12:30")
    noon = TUESDAY.replace(hour=12)
    assert first(await decide(world, own, noon - timedelta(minutes=30)))[0] is True  # remembered until noon
    assert first(await decide(world, own, noon - US))[0] is True
    absent = first(await decide(world, own, noon))
    assert absent[:2] == (False, "absent until 12:30")
    assert absent[2].endswith(", ist bis 12 Uhr 30 abwesend."), absent
    assert first(await decide(world, own, noon + timedelta(minutes=30) - US))[1] == "absent until 12:30"
    assert first(await decide(world, own, noon + timedelta(minutes=30)))[0] is True


async def test_a_remembered_answer_ends_with_a_dated_absence_and_at_midnight(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)
    starts, ends = TUESDAY.replace(hour=11), TUESDAY.replace(hour=10) + timedelta(days=1)
    await dated_absence(client, world, own, starts, ends)
    assert first(await decide(world, own, TUESDAY_10))[0] is True
    assert first(await decide(world, own, starts - US))[0] is True
    assert first(await decide(world, own, starts))[1] == "absent until 2026-03-11 10:00"
    late = first(await decide(world, own, TUESDAY + timedelta(days=1) - US))
    assert late[:2] == (False, "absent until 2026-03-11 10:00")
    assert late[2].endswith(" ist bis Mittwoch, 11. März, 10 Uhr abwesend."), late
    # After midnight the same absence ends "today": said without the day.
    early = first(await decide(world, own, TUESDAY + timedelta(days=1)))
    assert early[:2] == (False, "absent until 10:00")
    assert early[2].endswith(" ist bis 10 Uhr abwesend."), early
    assert first(await decide(world, own, ends - US))[0] is False
    assert first(await decide(world, own, ends))[0] is True


async def test_a_remembered_answer_ends_when_the_departments_hours_end(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)
    closes = TUESDAY.replace(hour=16)
    before = await decide(world, own, closes - timedelta(hours=1))
    line = next(o for o in before.options if o.kind == "department")
    assert (before.options[0].available, line.available) == (True, True)
    before = await decide(world, own, closes - US)
    line = next(o for o in before.options if o.kind == "department")
    assert (before.options[0].available, line.available) == (True, True)
    after = await decide(world, own, closes)
    line = next(o for o in after.options if o.kind == "department")
    assert first(after)[:2] == (False, "outside the department's hours")
    assert (line.available, line.reason) == (False, "outside the department's hours")
    assert after.options[0].speakable.endswith(", ist außerhalb der Dienstzeit."), after.options[0]


async def test_a_remembered_answer_ends_when_a_telephone_event_runs_out_or_a_new_one_comes(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)
    await phone_event(client, "", world, own, "busy", TUESDAY_10, seconds=60)
    assert first(await decide(world, own, TUESDAY_10 + timedelta(seconds=1)))[1] == "busy on the telephone"
    assert first(await decide(world, own, TUESDAY_10 + timedelta(seconds=60) - US))[1] == "busy on the telephone"
    assert first(await decide(world, own, TUESDAY_10 + timedelta(seconds=60)))[:2] == (True, "available")
    # A new event for a moment already answered: the next decision at that moment says it.
    await phone_event(client, "", world, own, "ringing", TUESDAY_10 + timedelta(seconds=61))
    assert first(await decide(world, own, TUESDAY_10 + timedelta(seconds=62)))[1] == "the telephone is ringing"
    assert first(await decide(world, own, TUESDAY_10 + timedelta(seconds=61) - US))[:2] == (True, "available")


async def test_a_directory_change_on_another_instance_ends_the_remembered_answer(
    settings: Settings, world: World
) -> None:
    slug, admin = world.slug(SOEST), world.headers(SOEST, "town-admin")
    with app_process(settings) as first_app, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=10) as http:
            made = await created(
                await http.post(
                    f"{first_app.url}/v1/tenants/{slug}/departments",
                    json={"name": f"Memo {uuid.uuid4().hex[:6]}"},
                    headers=admin,
                )
            )

            async def hours(closes: str) -> None:
                line = await http.put(
                    f"{first_app.url}/v1/tenants/{slug}/directory/department-lines/{made['id']}",
                    json={
                        "phone": "02921 103-7000",
                        "hours": [{"weekday": d, "opens": "08:00", "closes": closes} for d in range(1, 6)],
                    },
                    headers=admin,
                )
                assert line.status_code == 200, line.text

            await hours("16:00")
            own = await own_person(http, first_app.url, world, uuid.UUID(made["id"]))
            for _ in range(2):  # the second instance compiles, then answers from what it remembered
                option = await first_option(http, second.url, world, own.key, TUESDAY_10)
                assert option["available"] is True, option
            await hours("09:30")
            option = await first_option(http, second.url, world, own.key, TUESDAY_10)
            assert (option["available"], option["reason"]) == (False, "outside the department's hours"), option


async def test_on_a_day_the_clocks_change_nothing_is_remembered(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)
    monday = datetime.fromisoformat("2026-03-30T10:00:00+02:00")  # the day after the change: remembered
    sunday = datetime.fromisoformat("2026-03-29T03:30:00+02:00")  # the clocks went forward at 02:00
    await decide(world, own, sunday)
    _, live = await held(world)
    assert (own.key, None, None) not in live.answers
    await decide(world, own, monday)
    _, live = await held(world)
    assert live.answers[(own.key, None, None)].since == monday


def _moments(day: datetime) -> list[datetime]:
    """Every quarter of an hour of three days and, around each full and half hour, a microsecond
    before and the moment itself: the boundaries of the person's week below."""
    moments: list[datetime] = []
    for quarter in range(3 * 96):
        at = day + timedelta(minutes=15 * quarter)
        moments += [at - US, at, at + timedelta(minutes=7, seconds=13)]
    return moments


async def test_every_remembered_answer_is_the_one_made_afresh(
    client: Client, world: World, department: uuid.UUID
) -> None:
    """Across three days (with a weekly absence, a dated absence over midnight, a telephone event
    and the department's hours) and across the autumn's change of the clocks, in order and back."""
    own = await own_person(client, "", world, department)
    for weekday in (2, 3, 7):
        await weekly_absence(client, world, own, weekday, "12:15", "13:00")
    await weekly_absence(client, world, own, 7, "02:15", "02:45")  # twice on 25 October: 02:00–03:00 comes twice
    away, back = TUESDAY.replace(hour=15, minute=30), TUESDAY.replace(hour=9) + timedelta(days=1)
    await dated_absence(client, world, own, away, back)
    await phone_event(client, "", world, own, "busy", TUESDAY.replace(hour=9), seconds=1800)
    october = datetime.fromisoformat("2026-10-24T00:00:00+02:00")  # Saturday; Sunday 03:00 back to 02:00
    seen: set[tuple[Any, ...]] = set()
    for day in (TUESDAY - timedelta(days=1), october):
        moments = _moments(day)
        for at in [*moments, *reversed(moments[::37])]:
            remembered = await decide(world, own, at)
            made = await afresh(world, own, at)
            assert msgspec.json.encode(remembered) == msgspec.json.encode(made), at
            seen.add(first(made)[:2])
    # The walk met every source of the person's presence.
    reasons = {reason.split(" until")[0] for _, reason in seen}
    assert {"available", "busy on the telephone", "absent", "outside the department's hours"} <= reasons, seen


async def test_the_remembered_answers_stay_bounded_and_keep_the_recent_ones(
    client: Client, world: World, department: uuid.UUID
) -> None:
    """A surname is any text a caller gives: a flood of them pushes out the oldest answers only."""
    own = await own_person(client, "", world, department)
    principal, slug = agent(world), world.slug(SOEST)
    names = [f"Flut{chr(65 + n % 26)}{chr(97 + n // 26 % 26)}{chr(97 + n // 676 % 26)}" for n in range(1100)]
    for name in names:
        decision = await service.forwarding_decision(world.state, principal, slug, own.key, name, TUESDAY_10)
        assert decision.surname == name and decision.options[0].person_id == uuid.UUID(own.person["id"])
    _, live = await held(world)
    assert len(live.answers) == compiled.ANSWERS_REMEMBERED
    assert (own.key, names[-1], None) in live.answers and (own.key, names[0], None) not in live.answers
