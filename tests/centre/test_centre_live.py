"""The centre now, pushed (issue 17 §5): a supervisor's subscription served by one app instance
receives a call offered through another (Redis pub/sub), and an agent's status set there; twenty
subscribers of the same tenants share one computation per change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from backend import clock
from backend.api.context import GraphQLContext
from backend.centre import events as centre_events
from backend.centre import live, service
from backend.gql_schema import create_schema
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from tests.support.asgi import serve
from tests.support.world import World

SUBSCRIPTION = """subscription($tenant: String) { centreUpdates(tenant: $tenant) {
  waiting agentsAvailable towns { tenantName waiting firstContactRate }
} }"""


async def subscribe(settings: Settings, state: AppState, world: World, tenant: str | None = None) -> AsyncIterator[Any]:
    token = world.token("kreis-soest", "supervisor")
    context = GraphQLContext(app=state, connection_params={"Authorization": f"Bearer {token}"})
    stream = await create_schema(settings).subscribe(
        SUBSCRIPTION, context_value=context, variable_values={"tenant": tenant}
    )
    assert not hasattr(stream, "errors"), stream
    return stream  # type: ignore[return-value]


async def listeners(state: AppState) -> int:
    counts = await state.redis.pubsub_numsub(centre_events.channel(state))
    return int(counts[0][1]) if counts else 0


async def test_a_call_posted_on_one_instance_reaches_a_supervisor_on_the_other(
    settings: Settings, client: httpx.AsyncClient, telephony: World
) -> None:
    other = create_app(settings)
    async with serve(other, "http://wallboard.local"):
        state: AppState = other.state.app_state
        soest = telephony.slug("stadt-soest")
        stream = await subscribe(settings, state, telephony, soest)
        first = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        assert await listeners(state) >= 1  # the hub listens before the first view is sent
        call = {
            "externalId": f"live-{uuid.uuid4()}",
            "dialled": "02921 103-0",
            "caller": "0171 2345678",
            "offeredAt": clock.now().isoformat(),
        }
        posted = await client.post("/v1/calls", json=call, headers=telephony.headers("kreis-soest", "telephony"))
        assert posted.status_code == 200, posted.text
        pushed = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        assert pushed["waiting"] == first["waiting"] + 1
        assert pushed["towns"][0]["waiting"] == first["towns"][0]["waiting"] + 1
        # The call is answered and ends: the town has one waiting call fewer again.
        ended = {**call, "endedAt": clock.now().isoformat()}
        assert (
            await client.post("/v1/calls", json=ended, headers=telephony.headers("kreis-soest", "telephony"))
        ).status_code == 200
        back = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        assert back["waiting"] == first["waiting"]
        await stream.aclose()  # type: ignore[attr-defined]


async def test_an_agent_status_set_on_one_instance_reaches_the_wallboard_on_the_other(
    settings: Settings, client: httpx.AsyncClient, telephony: World
) -> None:
    other = create_app(settings)
    async with serve(other, "http://wallboard.local"):
        state: AppState = other.state.app_state
        stream = await subscribe(settings, state, telephony)
        first = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        agent = f"pbx-{uuid.uuid4().hex[:8]}"
        put = await client.put(
            "/v1/agent-status",
            json={"agent": agent, "status": "available"},
            headers=telephony.headers("kreis-soest", "agent"),
        )
        assert put.status_code == 200, put.text
        pushed = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        assert pushed["agentsAvailable"] == first["agentsAvailable"] + 1
        await stream.aclose()  # type: ignore[attr-defined]


async def test_twenty_watchers_of_the_same_tenants_share_one_computation(
    settings: Settings, client: httpx.AsyncClient, telephony: World, monkeypatch: Any
) -> None:
    state = telephony.state
    computed = 0
    original = service.snapshot

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal computed
        computed += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(service, "snapshot", counting)
    streams = [await subscribe(settings, state, telephony) for _ in range(20)]
    firsts = await asyncio.gather(*(asyncio.wait_for(anext(s), 10) for s in streams))
    assert len(firsts) == 20 and computed == 20  # each subscriber's first view is its own
    computed = 0
    call = {"externalId": f"live-{uuid.uuid4()}", "dialled": "02921 103-0", "offeredAt": clock.now().isoformat()}
    assert (
        await client.post("/v1/calls", json=call, headers=telephony.headers("kreis-soest", "telephony"))
    ).status_code == 200
    pushed = await asyncio.gather(*(asyncio.wait_for(anext(s), 10) for s in streams))
    assert {p.data["centreUpdates"]["waiting"] for p in pushed} == {firsts[0].data["centreUpdates"]["waiting"] + 1}
    assert computed == 1
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    assert live._hub(state).watchers == set()


async def test_an_outcome_recorded_on_one_instance_moves_todays_first_contact_rate_on_the_other(
    settings: Settings, client: httpx.AsyncClient, telephony: World
) -> None:
    other = create_app(settings)
    async with serve(other, "http://wallboard.local"):
        state: AppState = other.state.app_state
        stream = await subscribe(settings, state, telephony, telephony.slug("stadt-soest"))
        await asyncio.wait_for(anext(stream), 10)
        now = clock.now().isoformat()
        call = {"externalId": f"live-{uuid.uuid4()}", "dialled": "02921 103-0", "offeredAt": now, "answeredAt": now}
        posted = await client.post("/v1/calls", json=call, headers=telephony.headers("kreis-soest", "telephony"))
        assert posted.status_code == 200, posted.text
        await asyncio.wait_for(anext(stream), 10)
        outcome = await client.put(
            f"/v1/calls/{posted.json()['id']}/outcome",
            json={"outcome": "settled_first_contact"},
            headers=telephony.headers("kreis-soest", "agent"),
        )
        assert outcome.status_code == 200, outcome.text
        # Pushed at once (the periodic refresh is 30 s away): the rate of today now has a value.
        pushed = (await asyncio.wait_for(anext(stream), 10)).data["centreUpdates"]
        assert pushed["towns"][0]["firstContactRate"] is not None
        await stream.aclose()  # type: ignore[attr-defined]
