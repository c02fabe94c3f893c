"""The `ticketChanges` subscription over a real WebSocket (graphql-transport-ws) to a real app
process: changes arrive after commit, through Redis, and only for the subscriber's towns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from backend.settings import Settings
from backend.tickets.pubsub import channel
from tests.support.metrics import scrape, value
from tests.support.servers import app_process
from tests.support.world import World
from tests.tickets.conftest import GESEKE, KREIS, SOEST, create_ticket

QUERY = "subscription($s: String) { ticketChanges(tenantSlug: $s) { ticketId tenantId kind status changeSeq } }"


@asynccontextmanager
async def subscribed(url: str, token: str, variables: dict[str, Any] | None = None) -> AsyncIterator[ClientConnection]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": variables or {}}})
        )
        yield ws


async def next_change(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "next", message
    change: dict[str, Any] = message["payload"]["data"]["ticketChanges"]
    return change


async def wait_for_subscribers(redis: Redis, tenant_id: UUID, count: int) -> None:
    for _ in range(200):
        [(_, subscribers)] = await redis.pubsub_numsub(channel(tenant_id))
        if subscribers >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the subscription never reached Redis")


async def connected(url: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        return value(await scrape(http), "bs_websocket_connections", route="/graphql")


async def test_subscribers_get_only_their_towns_changes(
    client: httpx.AsyncClient, settings: Settings, world: World, departments: dict[str, UUID]
) -> None:
    redis = world.state.redis
    with app_process(settings) as app:
        async with (
            subscribed(app.url, world.token(GESEKE, "department")) as geseke,
            subscribed(app.url, world.token(KREIS, "agent"), {"s": world.slug(SOEST)}) as agent_soest,
            subscribed(app.url, world.token(KREIS, "agent")) as agent_all,
        ):
            await wait_for_subscribers(redis, world.tenant_ids[GESEKE], 2)
            await wait_for_subscribers(redis, world.tenant_ids[SOEST], 2)
            assert await connected(app.url) == 3  # what the engineer on call sees on /metrics
            soest = await create_ticket(client, world, departments, SOEST, forward=False)
            geseke_ticket = await create_ticket(client, world, departments, GESEKE, forward=False)
            # Geseke's staff: the Soest change published first never arrives; Geseke's does.
            change = await next_change(geseke)
            assert change["ticketId"] == geseke_ticket["id"] and change["tenantId"] == str(world.tenant_ids[GESEKE])
            assert change["kind"] == "CREATED" and change["status"] == "NEW"
            # The agent subscribed to Soest only.
            change = await next_change(agent_soest)
            assert change["ticketId"] == soest["id"]
            # The agent subscribed to all client towns sees both, in order.
            assert [(await next_change(agent_all))["ticketId"] for _ in range(2)] == [soest["id"], geseke_ticket["id"]]
            moved = await client.post(
                f"/v1/tickets/{geseke_ticket['id']}/status",
                json={"status": "forwarded"},
                headers=world.headers(GESEKE, "department"),
            )
            assert moved.status_code == 200
            change = await next_change(geseke)
            assert (change["kind"], change["status"]) == ("STATUS_CHANGED", "FORWARDED")
            assert change["changeSeq"] == moved.json()["changeSeq"]
        for _ in range(100):  # closed by the clients: gone from the gauge too
            if await connected(app.url) == 0:
                break
            await asyncio.sleep(0.05)
        assert await connected(app.url) == 0
        # A town outside the subscriber's reach is refused like a missing one.
        async with subscribed(app.url, world.token(GESEKE, "department"), {"s": world.slug(SOEST)}) as refused:
            message = json.loads(await asyncio.wait_for(refused.recv(), 10))
            assert message["payload"]["data"] is None
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["NOT_FOUND"]
