"""The centre live: one call event fanned out to 20 subscribers, as a ratio against a baseline
measured in the same run.

    uv run python -m tests.bench.live            # 200 events
    uv run python -m tests.bench.live --quick    # 30 events

Set-up as in `tests.bench` (stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded,
a fresh database with the demo data, dropped at the end. Two uvicorn servers of the real app
(A and B). Twenty supervisors of Kreis Soest subscribe to `centreUpdates` on B over WebSockets
(graphql-transport-ws). Each sample: the telephone system posts a call event to A
(`POST /v1/calls`, offered then ended, alternating); the figure is the time from just before the
post to the moment the last of the 20 subscribers has the new view (the post's own round trip
included): post → commit → Redis → B's hub → one computation of the view (5 statements) → 20
WebSocket frames.

Baseline, same run, same machine: the bare transport — this process publishes a message of the
same size on a Redis channel that 20 connections of this process subscribe to, timed from just
before the publish to the last receipt (no HTTP, no database, no GraphQL). The ratio says what
our path costs on top of Redis pub/sub itself. The load generator is this process (asyncio,
websockets + httpx), the same for both sides of the ratio.
Results as JSON in bench-results/live.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as redis_asyncio
from websockets.asyncio.client import ClientConnection, connect

from backend import devidp
from backend.settings import PROJECT_ROOT
from tests.bench import stack

OUTPUT = PROJECT_ROOT / "bench-results" / "live.json"
SUBSCRIBERS = 20
QUERY = """subscription { centreUpdates {
  at waiting longestWaitSeconds agentsTalking serviceLevel towns { tenantName waiting } } }"""


async def _subscriber(url: str, token: str) -> ClientConnection:
    ws = await connect(url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
    first = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert first["type"] == "next", first
    return ws


async def _until(ws: ClientConnection, waiting: int) -> float:
    """When this subscriber has a view with `waiting` calls waiting (views in between are skipped)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert message["type"] == "next", message
        if message["payload"]["data"]["centreUpdates"]["waiting"] == waiting:
            return time.perf_counter()


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


async def ours(a: stack.Server, b: stack.Server, settings: Any, events: int) -> dict[str, Any]:
    supervisor = devidp.mint_token(settings, "kreis-soest", "supervisor")
    telephony = devidp.mint_token(settings, "kreis-soest", "telephony")
    subscribers = [await _subscriber(b.base_url, supervisor) for _ in range(SUBSCRIBERS)]
    samples: list[float] = []
    firsts: list[float] = []
    posts: list[float] = []
    async with httpx.AsyncClient(base_url=a.base_url, trust_env=False, timeout=30) as client:
        headers = {"Authorization": f"Bearer {telephony}"}
        waiting = (await client.get("/v1/centre", headers={"Authorization": f"Bearer {supervisor}"})).json()["waiting"]
        for index in range(events):
            call = {
                "externalId": f"bench-{uuid.uuid4()}",
                "dialled": "02921 103-0",
                "offeredAt": datetime.now(UTC).isoformat(),
            }
            for step, expected in ((call, waiting + 1), ({**call, "endedAt": datetime.now(UTC).isoformat()}, waiting)):
                arrivals = [asyncio.ensure_future(_until(ws, expected)) for ws in subscribers]
                start = time.perf_counter()
                posted = await client.post("/v1/calls", json=step, headers=headers)
                answered = time.perf_counter()
                assert posted.status_code == 200, posted.text
                times = await asyncio.gather(*arrivals)
                if index or step is not call:  # the first sample warms the path up
                    samples.append(max(times) - start)
                    firsts.append(min(times) - start)
                    posts.append(answered - start)
    for ws in subscribers:
        await ws.close()
    # Where the time goes: the post's own answer, the first subscriber served, the last one.
    return {**_summary(samples), "post": _summary(posts), "first_delivery": _summary(firsts)}


async def baseline(redis_url: str, events: int, size: int) -> dict[str, Any]:
    channel = f"bench-live-{uuid.uuid4().hex}"
    publisher = redis_asyncio.from_url(redis_url)
    clients = [redis_asyncio.from_url(redis_url) for _ in range(SUBSCRIBERS)]
    pubsubs = [c.pubsub(ignore_subscribe_messages=True) for c in clients]
    for pubsub in pubsubs:
        await pubsub.subscribe(channel)
    payload = b"x" * size

    async def receive(pubsub: Any) -> float:
        while True:
            message = await pubsub.get_message(timeout=30)
            if message is not None and message["type"] == "message":
                return time.perf_counter()

    samples = []
    for index in range(events * 2):
        arrivals = [asyncio.ensure_future(receive(p)) for p in pubsubs]
        await asyncio.sleep(0)
        start = time.perf_counter()
        await publisher.publish(channel, payload)
        last = max(await asyncio.gather(*arrivals))
        if index:
            samples.append(last - start)
    for pubsub in pubsubs:
        await pubsub.aclose()
    for client in (*clients, publisher):
        await client.aclose()
    return _summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events = 30 if args.quick else 200
    results: dict[str, Any] = {"subscribers": SUBSCRIBERS, "events": events, "cpus": os.cpu_count()}
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None) as database_url,
    ):
        env, settings = stack.demo_environment(database_url, redis_url)

        a = stack.start_server("live-a", "backend.main:create_app", stack.free_port(), env)
        b = stack.start_server("live-b", "backend.main:create_app", stack.free_port(), env)
        try:
            stack.wait_ready(a)
            stack.wait_ready(b)
            print(f"ours: {events * 2} events through A to {SUBSCRIBERS} subscribers on B …", file=sys.stderr)
            results["ours"] = asyncio.run(ours(a, b, settings, events))
        finally:
            stack.stop_server(a)
            stack.stop_server(b)
        print("baseline: bare Redis pub/sub fan-out …", file=sys.stderr)
        results["baseline"] = asyncio.run(baseline(redis_url, events, 600))
    results["ratio_p99"] = results["ours"]["p99_ms"] / results["baseline"]["p99_ms"]
    results["ratio_p50"] = results["ours"]["p50_ms"] / results["baseline"]["p50_ms"]
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    o, base = results["ours"], results["baseline"]
    print(
        f"one event → {SUBSCRIBERS} subscribers on the other instance (load generator: this process): "
        f"p50 {o['p50_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms (n={o['n']}; the post's answer p50 "
        f"{o['post']['p50_ms']:.1f} ms, the first delivery p50 {o['first_delivery']['p50_ms']:.1f} ms); "
        f"bare Redis fan-out p50 "
        f"{base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms → p99 {results['ratio_p99']:.1f}x, "
        f"p50 {results['ratio_p50']:.1f}x"
    )


if __name__ == "__main__":
    main()
