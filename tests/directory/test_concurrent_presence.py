"""Presence under simultaneous writes (the second concurrency sweep): a telephone system's events
for one person arriving at once and out of order, while the person sets their own switch. The
newest event is the presence, in the store and as the feed's last word for the person."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from backend.clock import BERLIN
from backend.directory import presence_feed
from backend.settings import Settings
from tests.directory.conftest import KREIS, SOEST, Directory
from tests.directory.test_concurrent_writes import _no_server_error
from tests.directory.test_presence_feed import listening, person, staff_token, subscribe, unique_number
from tests.support.world import World

Client = httpx.AsyncClient
ROUNDS = int(os.environ.get("SWEEP_ROUNDS", "3"))  # the stale last word came about once in 20-40 rounds
STATES = ("busy", "ringing", "idle", "logged_off", "busy", "ringing")


async def _collect(stream: Any, person_id: str, into: list[dict[str, Any]]) -> None:
    """Every change of the person the feed sends, in the order it sends them (until cancelled)."""
    async for result in stream:
        change = result.data["presenceChanged"]
        if change["personId"] == person_id:
            into.append(change)


async def test_telephone_events_out_of_order_and_the_own_switch_at_once_leave_the_newest(
    settings: Settings, client: Client, world: World, directory: Directory
) -> None:
    system = world.headers(KREIS, "telephony")
    url = f"/v1/tenants/{world.slug(SOEST)}/directory/presence-events"
    for _ in range(ROUNDS):
        subject, number = f"probe-{uuid.uuid4().hex[:8]}", unique_number()
        probe = await person(client, world, directory, subject=subject, phone=number)
        state = world.state
        before = (await state.redis.pubsub_numsub(presence_feed.channel(state)) or [("", 0)])[0][1]
        feed = await subscribe(settings, state, world.token(KREIS, "agent"), world.slug(SOEST))
        heard: list[dict[str, Any]] = []
        collecting = asyncio.ensure_future(_collect(feed, probe["id"], heard))
        await listening(state, int(before) + 1)
        now = datetime.now(BERLIN)
        events = [
            {
                "number": number,
                "state": state,
                "at": (now - timedelta(seconds=len(STATES) - i)).isoformat(),
                "expiresInSeconds": 600,
            }
            for i, state in enumerate(STATES)
        ]
        random.shuffle(events)
        mine = {"Authorization": f"Bearer {staff_token(world, SOEST, subject)}"}
        until = (now + timedelta(hours=1)).isoformat()
        responses = await asyncio.gather(
            *(client.post(url, json=e, headers=system) for e in events[:3]),
            client.put("/v1/directory/my-presence", json={"state": "in_meeting", "until": until}, headers=mine),
            *(client.post(url, json=e, headers=system) for e in events[3:]),
            client.put("/v1/directory/my-presence", json={"state": "away", "until": until}, headers=mine),
        )
        assert set(_no_server_error(list(responses))) == {200}, [r.text for r in responses]
        presence = await client.get(
            f"{directory.base(world)}/people/{probe['id']}/presence", headers=world.headers(SOEST, "town-admin")
        )
        assert (presence.json()["source"], presence.json()["state"]) == ("phone", STATES[-1]), presence.text
        await asyncio.sleep(1.0)  # the last after-commit publications reach the subscriber
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
        await feed.aclose()
        assert heard and heard[-1]["presence"]["state"] == STATES[-1], [c["presence"]["state"] for c in heard]
