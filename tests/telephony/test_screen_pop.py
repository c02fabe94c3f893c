"""Screen pop: a call recorded through one app instance reaches an agent's GraphQL subscription
served by another (Redis pub/sub), with its tenant, the numbers written to be read aloud and
the routing reason; agents of another town do not see it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from auth.principal import Principal
from auth.roles import Role
from backend.api.context import GraphQLContext, still_grants
from backend.gql_schema import create_schema
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from backend.telephony import events
from tests.support.asgi import serve
from tests.support.world import AUDIENCE, World

SUBSCRIPTION = """subscription { callEvents {
  kind tenant { slug } dialledSpoken callerSpoken greeting reason call { externalId outcome }
} }"""


async def _subscribe(settings: Settings, state: AppState, world: World, town: str) -> AsyncIterator[Any]:
    context = GraphQLContext(app=state, connection_params={"Authorization": f"Bearer {world.token(town, 'agent')}"})
    stream = await create_schema(settings).subscribe(SUBSCRIPTION, context_value=context)
    assert not hasattr(stream, "errors"), stream
    return stream  # type: ignore[return-value]


async def _subscribers(state: AppState) -> int:
    counts = await state.redis.pubsub_numsub(events.channel(state))
    return int(counts[0][1]) if counts else 0


async def test_call_events_reach_a_subscription_on_another_instance(
    settings: Settings, client: httpx.AsyncClient, telephony: World
) -> None:
    other = create_app(settings)
    async with serve(other, "http://screen.local"):
        state: AppState = other.state.app_state
        before = await _subscribers(state)
        kreis = await _subscribe(settings, state, telephony, "kreis-soest")
        geseke = await _subscribe(settings, state, telephony, "stadt-geseke")
        kreis_next = asyncio.ensure_future(anext(kreis))
        geseke_next = asyncio.ensure_future(anext(geseke))
        for _ in range(100):
            if await _subscribers(state) >= before + 2:
                break
            await asyncio.sleep(0.02)
        system = telephony.headers("kreis-soest", "telephony")
        soest_call = {
            "externalId": f"pop-{uuid.uuid4()}",
            "dialled": "02921 103-0",
            "caller": "0171 2345678",
            "offeredAt": "2026-03-02T10:00:00+01:00",
        }
        assert (await client.post("/v1/calls", json=soest_call, headers=system)).status_code == 200
        geseke_call = {
            "externalId": f"pop-{uuid.uuid4()}",
            "dialled": "02942 500-0",
            "offeredAt": "2026-03-02T12:45:00+01:00",
        }
        assert (await client.post("/v1/calls", json=geseke_call, headers=system)).status_code == 200

        offered = (await asyncio.wait_for(kreis_next, 10)).data["callEvents"]
        assert offered == {
            "kind": "offered",
            "tenant": {"slug": telephony.slug("stadt-soest")},
            "dialledSpoken": "0 2 9 2 1 – 1 0 3 0",
            "callerSpoken": "0 1 7 1 – 2 3 4 5 6 7 8",
            "greeting": "Stadt Soest " + telephony.suffix.title(),
            "reason": "WITHIN_SERVICE_HOURS",
            "call": {"externalId": soest_call["externalId"], "outcome": None},
        }
        # Geseke's agent sees its own call first: the Soest call was never sent to it.
        mine = (await asyncio.wait_for(geseke_next, 10)).data["callEvents"]
        assert mine["call"]["externalId"] == geseke_call["externalId"]
        assert (mine["reason"], mine["callerSpoken"]) == ("OPERATOR_ABSENT", None)

        ended = {**soest_call, "endedAt": "2026-03-02T10:02:00+01:00"}
        assert (await client.post("/v1/calls", json=ended, headers=system)).status_code == 200
        events_seen = [(await asyncio.wait_for(anext(kreis), 10)).data["callEvents"] for _ in range(2)]
        assert [(e["kind"], e["call"]["externalId"]) for e in events_seen] == [
            ("offered", geseke_call["externalId"]),
            ("ended", soest_call["externalId"]),
        ]
        assert events_seen[1]["call"]["outcome"] == "ABANDONED"
        await kreis.aclose()
        await geseke.aclose()


async def test_the_screen_pop_stops_when_the_sign_in_is_withdrawn(
    settings: Settings, client: httpx.AsyncClient, telephony: World
) -> None:
    """A subscription outlives its token's sign-in: once the town stops trusting the issuer, the
    next call is not sent (it carries a caller number); the subscription ends UNAUTHENTICATED."""
    town_admin = telephony.headers("stadt-geseke", "town-admin")
    slug = telephony.slug("stadt-geseke")
    added = await client.post(
        f"/v1/tenants/{slug}/identity-issuers",
        json={
            "issuer": telephony.oidc.issuer_url("rogue"),
            "audience": AUDIENCE,
            "roleMapping": {"agent": "agent"},
            "orgClaim": "org",
            "orgValue": "rogue",
        },
        headers=town_admin,
    )
    assert added.status_code == 201, added.text
    removed = False
    try:
        token = telephony.oidc.token("rogue", "rogue-agent")
        state: AppState = telephony.state
        context = GraphQLContext(app=state, connection_params={"Authorization": f"Bearer {token}"})
        before = await _subscribers(state)
        stream: Any = await create_schema(settings).subscribe(SUBSCRIPTION, context_value=context)
        upcoming = asyncio.ensure_future(anext(stream))
        for _ in range(100):
            if await _subscribers(state) > before:
                break
            await asyncio.sleep(0.02)
        system = telephony.headers("kreis-soest", "telephony")

        async def geseke_call() -> str:
            body = {"externalId": f"pop-{uuid.uuid4()}", "dialled": "02942 500-0", "caller": "02942 123456",
                    "offeredAt": "2026-03-02T12:45:00+01:00"}  # fmt: skip
            assert (await client.post("/v1/calls", json=body, headers=system)).status_code == 200
            return str(body["externalId"])

        first = await geseke_call()
        seen = (await asyncio.wait_for(upcoming, 10)).data["callEvents"]
        assert seen["call"]["externalId"] == first and seen["callerSpoken"]
        gone = await client.delete(f"/v1/tenants/{slug}/identity-issuers/{added.json()['id']}", headers=town_admin)
        assert gone.status_code == 204
        removed = True
        await geseke_call()
        ended = await asyncio.wait_for(anext(stream), 10)
        assert ended.data is None or ended.data.get("callEvents") is None
        assert [e.extensions["code"] for e in ended.errors] == ["UNAUTHENTICATED"]
        await stream.aclose()
    finally:
        if not removed:
            await client.delete(f"/v1/tenants/{slug}/identity-issuers/{added.json()['id']}", headers=town_admin)


def test_a_subscription_survives_gaining_a_tenant_but_not_losing_one() -> None:
    """A new agreement (the operator's agents now act for one town more) must not end every
    agent's screen pop; an ended agreement, another role or another person does."""
    a, b, c = (uuid.uuid4() for _ in range(3))
    started = Principal(
        issuer="i", subject="s", tenant_id=a, tenant_slug="k", roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset({a, b}),
    )  # fmt: skip
    assert still_grants(started, dataclasses.replace(started, acting_tenant_ids=frozenset({a, b, c})))
    assert not still_grants(started, dataclasses.replace(started, acting_tenant_ids=frozenset({a})))
    assert not still_grants(started, dataclasses.replace(started, roles=frozenset({Role.EDITOR})))
    assert not still_grants(started, dataclasses.replace(started, subject="other"))
