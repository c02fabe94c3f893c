"""`articleChanged` over a real WebSocket (graphql-transport-ws) to a real app process: agents
with an article open hear of published changes after commit, through Redis; a town's local
version reaches only that town; nobody subscribes to what they may not read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from backend.knowledge.events import article_channel, local_channel
from backend.settings import Settings
from tests.knowledge.conftest import (
    GESEKE,
    KREIS,
    LOCAL_VERSION,
    SOEST,
    UPDATE,
    article_input,
    gql,
    payload,
    publish,
    published_article,
    transition,
    unique,
)
from tests.support.servers import app_process
from tests.support.world import World

QUERY = """subscription($id: UUID!, $tenant: String, $drafts: Boolean!) {
  articleChanged(id: $id, tenant: $tenant, includeDrafts: $drafts) { articleId tenantId version status local } }"""


@asynccontextmanager
async def subscribed(url: str, token: str, variables: dict[str, Any]) -> AsyncIterator[ClientConnection]:
    async with connect(url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"drafts": False, **variables}},
                }
            )
        )
        yield ws


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def wait_for_subscribers(redis: Redis, channel: str, count: int) -> None:
    for _ in range(200):
        [(_, subscribers)] = await redis.pubsub_numsub(channel)
        if subscribers >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no subscription on {channel}")


async def test_agents_hear_of_published_changes_and_towns_of_their_own_local_version(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    redis = world.state.redis
    shared = await published_article(client, world, KREIS, unique("Live geteilt"), shared=True)
    with app_process(settings) as app:
        async with (
            subscribed(app.url, world.token(SOEST, "agent"), {"id": shared["id"]}) as soest,
            subscribed(app.url, world.token(GESEKE, "agent"), {"id": shared["id"]}) as geseke,
            subscribed(app.url, world.token(KREIS, "editor"), {"id": shared["id"], "drafts": True}) as editor,
        ):
            await wait_for_subscribers(redis, article_channel(shared["id"]), 3)
            await wait_for_subscribers(redis, local_channel(shared["id"], world.tenant_ids[SOEST]), 1)
            # A draft: only the editor who asked for drafts hears of it.
            edit = await gql(
                client,
                world.headers(KREIS, "editor"),
                UPDATE,
                id=shared["id"],
                expected=3,
                input=article_input("Live geteilt, überarbeitet"),
            )
            assert payload(edit, "updateArticle")["errors"] == []
            change = (await next_message(editor))["payload"]["data"]["articleChanged"]
            assert change == {
                "articleId": shared["id"],
                "tenantId": str(world.tenant_ids[KREIS]),
                "version": 4,
                "status": "DRAFT",
                "local": False,
            }
            # Soest publishes its local version: only Soest's agent hears of it.
            local = payload(
                await gql(
                    client,
                    world.headers(SOEST, "editor"),
                    LOCAL_VERSION,
                    id=shared["id"],
                    input={"overrides": {"fees": "2 €"}},
                ),
                "createLocalVersion",
            )["article"]
            await publish(client, world, SOEST, local["id"])
            change = (await next_message(soest))["payload"]["data"]["articleChanged"]
            assert change["articleId"] == shared["id"] and change["local"] and change["status"] == "PUBLISHED"
            # The operator publishes the shared text: every agent hears of it.
            await publish(client, world, KREIS, shared["id"])
            for ws in (soest, geseke):
                change = (await next_message(ws))["payload"]["data"]["articleChanged"]
                assert change["articleId"] == shared["id"] and not change["local"]
                assert (change["version"], change["status"]) == (6, "PUBLISHED")
            # Geseke's first message was the shared publication, not Soest's local version.
            await transition(client, world, KREIS, shared["id"], "archive", expected=6)
            change = (await next_message(geseke))["payload"]["data"]["articleChanged"]
            assert change["status"] == "ARCHIVED"


async def test_nobody_subscribes_to_an_article_they_may_not_read(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    soest_only = await published_article(client, world, SOEST, unique("Live nur Soest"))
    with app_process(settings) as app:
        async with subscribed(app.url, world.token(GESEKE, "agent"), {"id": soest_only["id"]}) as geseke:
            message = await next_message(geseke)
            assert message["type"] == "next" and message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        async with subscribed(app.url, world.token(SOEST, "agent"), {"id": soest_only["id"], "drafts": True}) as agent:
            message = await next_message(agent)
            assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_towns_never_hear_of_the_operators_drafts(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    redis = world.state.redis
    shared = await published_article(client, world, KREIS, unique("Live Entwurf des Kreises"), shared=True)
    soest_slug = world.slug(SOEST)
    with app_process(settings) as app:
        # A town's editor may read drafts, but not the operator's: asking for them is refused
        # as `editorArticle` would answer (not found), before anything is heard.
        variables = {"id": shared["id"], "drafts": True}
        async with subscribed(app.url, world.token(SOEST, "editor"), variables) as refused:
            message = await next_message(refused)
            assert message["type"] == "next", message
            assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND", message
        async with (
            subscribed(app.url, world.token(SOEST, "editor"), {"id": shared["id"]}) as town_editor,
            # The operator's editor with the article open for Soest: its own drafts, not Soest's.
            subscribed(
                app.url, world.token(KREIS, "editor"), {"id": shared["id"], "tenant": soest_slug, "drafts": True}
            ) as operator_editor,
        ):
            await wait_for_subscribers(redis, article_channel(shared["id"]), 2)
            await wait_for_subscribers(redis, local_channel(shared["id"], world.tenant_ids[SOEST]), 2)
            # Soest drafts a local version: a draft of Soest's, heard by neither.
            local = payload(
                await gql(
                    client,
                    world.headers(SOEST, "editor"),
                    LOCAL_VERSION,
                    id=shared["id"],
                    input={"overrides": {"fees": "3 €"}},
                ),
                "createLocalVersion",
            )
            assert local["errors"] == [], local
            # The operator drafts the shared text: only its own editor hears of it.
            edit = await gql(
                client,
                world.headers(KREIS, "editor"),
                UPDATE,
                id=shared["id"],
                expected=3,
                input=article_input("Live Entwurf des Kreises, überarbeitet"),
            )
            assert payload(edit, "updateArticle")["errors"] == []
            change = (await next_message(operator_editor))["payload"]["data"]["articleChanged"]
            assert (change["tenantId"], change["version"], change["status"], change["local"]) == (
                str(world.tenant_ids[KREIS]),
                4,
                "DRAFT",
                False,
            )
            # Published, every subscriber hears of it; the town's editor first of all of this.
            await publish(client, world, KREIS, shared["id"])
            change = (await next_message(town_editor))["payload"]["data"]["articleChanged"]
            assert (change["tenantId"], change["version"], change["status"]) == (
                str(world.tenant_ids[KREIS]),
                6,
                "PUBLISHED",
            )
