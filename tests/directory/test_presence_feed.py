"""Presence changes reach agents' clients by subscription on any instance (decision 037): a
change made through one app instance (the person's own switch, their absence calendar, a
telephone event) is pushed to a `presenceChanged` subscription served by another; an expired
telephone event is announced by the worker once, whichever instances run a round; only those
who may read the town's directory get the changes."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from backend import generations
from backend.api.context import GraphQLContext
from backend.directory import presence_feed
from backend.directory.worker import DirectoryWorker
from backend.gql_schema import create_schema
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory, created
from tests.support.asgi import serve
from tests.support.world import AUDIENCE, World

Client = httpx.AsyncClient

SUBSCRIPTION = """subscription($tenant: String) { presenceChanged(tenant: $tenant) {
  tenantId personId personName speakable cause
  presence { reachable source state reason until at }
} }"""


def unique_number() -> str:
    """A Düsseldorf number nobody else of the shared world owns."""
    return f"+49211{uuid.uuid4().int % 10**7:07d}"


def staff_token(world: World, town: str, subject: str, **claims: Any) -> str:
    """A token of the town's real test issuer (its own key, its JWKS) for a person of our own."""
    now = int(time.time())
    body = {"iss": world.oidc.issuer_url(town), "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600}
    return world.oidc.sign(town, {"roles": ["department"], **body, **claims})


async def subscribe(settings: Settings, state: AppState, token: str, tenant: str | None) -> AsyncIterator[Any]:
    context = GraphQLContext(app=state, connection_params={"Authorization": f"Bearer {token}"})
    stream = await create_schema(settings).subscribe(
        SUBSCRIPTION, context_value=context, variable_values={"tenant": tenant}
    )
    assert not hasattr(stream, "errors"), stream
    return stream  # type: ignore[return-value]


async def listening(state: AppState, count: int) -> None:
    """Until `count` subscribers more listen on the presence channel (subscribing is lazy)."""
    for _ in range(200):
        numbers = await state.redis.pubsub_numsub(presence_feed.channel(state))
        if numbers and int(numbers[0][1]) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the subscription never listened")


async def next_of(stream: Any, person_id: str) -> dict[str, Any]:
    """The next change of one person (other tests' changes of the shared town pass by)."""
    while True:
        result = await asyncio.wait_for(anext(stream), 10)
        assert result.errors is None, result.errors
        change: dict[str, Any] = result.data["presenceChanged"]
        if change["personId"] == person_id:
            return change


async def person(client: Client, world: World, directory: Directory, **fields: Any) -> dict[str, Any]:
    body = {"departmentId": str(directory.department_id), "salutation": "Herr", "familyName": "Probe", **fields}
    return await created(
        await client.post(f"{directory.base(world)}/people", json=body, headers=world.headers(SOEST, "town-admin"))
    )


async def test_each_source_reaches_a_subscription_on_another_instance(
    settings: Settings, client: Client, world: World, directory: Directory
) -> None:
    subject = f"probe-{uuid.uuid4().hex[:8]}"
    number = unique_number()
    probe = await person(client, world, directory, subject=subject, phone=number)
    other = create_app(settings)
    async with serve(other, "http://presence.local"):
        state: AppState = other.state.app_state
        before = (await state.redis.pubsub_numsub(presence_feed.channel(state)) or [("", 0)])[0][1]
        agent = await subscribe(settings, state, world.token(KREIS, "agent"), world.slug(SOEST))
        geseke = await subscribe(settings, state, world.token(GESEKE, "agent"), None)
        own = await subscribe(settings, state, world.token(SOEST, "department"), None)  # the town's own people
        agent_next = asyncio.ensure_future(next_of(agent, probe["id"]))
        geseke_next = asyncio.ensure_future(next_of(geseke, probe["id"]))
        own_next = asyncio.ensure_future(next_of(own, probe["id"]))
        await listening(state, int(before) + 3)

        # The absence calendar (through the first instance): a dated absence from now on.
        now = datetime.now().astimezone()
        starts, ends = now - timedelta(minutes=5), now + timedelta(days=2)
        absence = {"startsAt": starts.isoformat(), "endsAt": ends.isoformat()}
        added = await client.post(
            f"{directory.base(world)}/people/{probe['id']}/absences/dated",
            json=absence,
            headers=world.headers(SOEST, "town-admin"),
        )
        assert added.status_code == 201, added.text
        change = await agent_next
        assert (change["cause"], change["tenantId"], change["personName"]) == (
            "ABSENCE",
            str(world.tenant_ids[SOEST]),
            "Probe",
        )
        assert (change["presence"]["reachable"], change["presence"]["source"]) == (False, "DATED_ABSENCE")
        assert change["speakable"].startswith("Herr Probe ist bis ") and change["speakable"].endswith(" abwesend.")

        # Their own switch: "in a meeting" for an hour.
        mine = {"Authorization": f"Bearer {staff_token(world, SOEST, subject)}"}
        until = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
        switched = await client.put(
            "/v1/directory/my-presence", json={"state": "in_meeting", "until": until.isoformat()}, headers=mine
        )
        assert switched.status_code == 200, switched.text
        change = await next_of(agent, probe["id"])
        assert (change["cause"], change["presence"]["source"], change["presence"]["state"]) == (
            "SWITCH",
            "SWITCH",
            "in_meeting",
        )
        assert datetime.fromisoformat(change["presence"]["until"]) == until
        assert change["speakable"].endswith(" in einer Besprechung.")

        # The telephone system: busy beats the switch.
        system = world.headers(KREIS, "telephony")
        event = {"number": number, "state": "busy"}
        url = f"/v1/tenants/{world.slug(SOEST)}/directory/presence-events"
        posted = await client.post(url, json=event, headers=system)
        assert posted.status_code == 200, posted.text
        change = await next_of(agent, probe["id"])
        assert (change["cause"], change["presence"]["source"]) == ("PHONE", "PHONE")
        assert change["presence"]["state"] == "busy"
        assert change["speakable"] == "Herr Probe telefoniert gerade."

        assert (await own_next)["cause"] == "ABSENCE"
        # Another town's agent never heard of any of it.
        await asyncio.sleep(0.3)
        assert not geseke_next.done()
        geseke_next.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await geseke_next
        await agent.aclose()
        await geseke.aclose()
        await own.aclose()


async def test_a_late_telephone_event_that_changes_nothing_is_not_announced(
    settings: Settings, client: Client, world: World, directory: Directory
) -> None:
    number = unique_number()
    probe = await person(client, world, directory, phone=number)
    state = world.state
    before = (await state.redis.pubsub_numsub(presence_feed.channel(state)) or [("", 0)])[0][1]
    agent = await subscribe(settings, state, world.token(KREIS, "agent"), world.slug(SOEST))
    upcoming = asyncio.ensure_future(next_of(agent, probe["id"]))
    await listening(state, int(before) + 1)
    system = world.headers(KREIS, "telephony")
    url = f"/v1/tenants/{world.slug(SOEST)}/directory/presence-events"
    newer = {"number": number, "state": "idle", "at": "2031-05-13T09:20:00+02:00"}
    assert (await client.post(url, json=newer, headers=system)).status_code == 200
    assert (await upcoming)["presence"]["state"] == "idle"
    late = {"number": number, "state": "busy", "at": "2031-05-13T09:19:00+02:00"}
    counter = await generations.read_one(state, "presence")
    assert (await client.post(url, json=late, headers=system)).status_code == 200
    # Nothing stored, nothing bumped: its sender does not wait out the instances' leases.
    assert await generations.read_one(state, "presence") == counter
    later = {"number": number, "state": "ringing", "at": "2031-05-13T09:21:00+02:00"}
    assert (await client.post(url, json=later, headers=system)).status_code == 200
    # The late "busy" was never stored, so the next change is the ringing one.
    assert (await next_of(agent, probe["id"]))["presence"]["state"] == "ringing"
    await agent.aclose()


async def test_an_expired_telephone_event_is_announced_once_by_any_instance(
    settings: Settings, client: Client, world: World, directory: Directory
) -> None:
    number = unique_number()
    probe = await person(client, world, directory, phone=number)
    other = create_app(settings)
    async with serve(other, "http://expiry.local"):
        second: AppState = other.state.app_state
        first = world.state
        before = (await second.redis.pubsub_numsub(presence_feed.channel(second)) or [("", 0)])[0][1]
        agent = await subscribe(settings, second, world.token(KREIS, "agent"), world.slug(SOEST))
        upcoming = asyncio.ensure_future(next_of(agent, probe["id"]))
        await listening(second, int(before) + 1)
        # A moment of its own (a Tuesday in 2031), so no other test's events expire in this round.
        at = datetime.fromisoformat(f"2031-05-13T0{uuid.uuid4().int % 9}:17:00+02:00")
        system = world.headers(KREIS, "telephony")
        url = f"/v1/tenants/{world.slug(SOEST)}/directory/presence-events"
        event = {"number": number, "state": "busy", "at": at.isoformat(), "expiresInSeconds": 60}
        assert (await client.post(url, json=event, headers=system)).status_code == 200
        assert (await upcoming)["cause"] == "PHONE"

        # Not yet run out: nothing to announce for this person.
        assert await presence_feed.announce_expiries(first, at + timedelta(seconds=59)) >= 0
        # Both instances run a round at once: one of them announces it.
        rounds = await asyncio.gather(
            presence_feed.announce_expiries(first, at + timedelta(seconds=61)),
            presence_feed.announce_expiries(second, at + timedelta(seconds=61)),
        )
        assert sum(rounds) >= 1
        change = await next_of(agent, probe["id"])
        assert change["cause"] == "EXPIRED"
        assert change["presence"]["source"] != "PHONE"
        assert datetime.fromisoformat(change["presence"]["at"]) == at + timedelta(seconds=61)
        # … and only once: the next change of this person is the next event, not a second expiry.
        assert await presence_feed.announce_expiries(first, at + timedelta(seconds=90)) >= 0
        idle = {"number": number, "state": "idle", "at": (at + timedelta(seconds=120)).isoformat()}
        assert (await client.post(url, json=idle, headers=system)).status_code == 200
        change = await next_of(agent, probe["id"])
        assert (change["cause"], change["presence"]["state"]) == ("PHONE", "idle")
        await agent.aclose()


@pytest.mark.parametrize(
    ("town", "kind", "tenant", "code"),
    [
        (SOEST, "partner", SOEST, "FORBIDDEN"),  # a partner system has no grant
        (KREIS, "telephony", SOEST, "FORBIDDEN"),  # nor the telephone system: it posts, never reads
        (GESEKE, "agent", SOEST, "NOT_FOUND"),  # another town's people: as if it did not exist
    ],
)
async def test_who_may_not_read_the_directory_gets_no_presence(
    settings: Settings, world: World, town: str, kind: str, tenant: str, code: str
) -> None:
    context = GraphQLContext(app=world.state, connection_params={"Authorization": f"Bearer {world.token(town, kind)}"})
    stream: Any = await create_schema(settings).subscribe(
        SUBSCRIPTION, context_value=context, variable_values={"tenant": world.slug(tenant)}
    )
    result = await asyncio.wait_for(anext(stream), 10)
    assert result.data is None
    assert result.errors and result.errors[0].extensions["code"] == code


async def test_the_worker_announces_an_expiry_by_itself(
    settings: Settings, client: Client, world: World, directory: Directory
) -> None:
    """The worker's loop (off in tests, so run here on its own): a telephone event of one second
    is announced as expired within a few rounds, with nobody asking."""
    number = unique_number()
    probe = await person(client, world, directory, phone=number)
    state = world.state
    before = (await state.redis.pubsub_numsub(presence_feed.channel(state)) or [("", 0)])[0][1]
    agent = await subscribe(settings, state, world.token(KREIS, "supervisor"), None)
    upcoming = asyncio.ensure_future(next_of(agent, probe["id"]))
    await listening(state, int(before) + 1)
    stop = asyncio.Event()
    worker = asyncio.create_task(DirectoryWorker(state, every_seconds=0.2).run(stop))
    try:
        event = {"number": number, "state": "ringing", "expiresInSeconds": 1}
        url = f"/v1/tenants/{world.slug(SOEST)}/directory/presence-events"
        assert (await client.post(url, json=event, headers=world.headers(KREIS, "telephony"))).status_code == 200
        assert (await upcoming)["presence"]["state"] == "ringing"
        expired = await next_of(agent, probe["id"])
        assert (expired["cause"], expired["presence"]["source"] != "PHONE") == ("EXPIRED", True)
    finally:
        stop.set()
        await worker
        await agent.aclose()
