"""Liveness and readiness: /readyz says 503 when PostgreSQL is unreachable; Redis is reported
(tests/test_readiness.py: a busy pool, a hung Redis, PostgreSQL gone)."""

from __future__ import annotations

import dataclasses

import httpx

from backend.main import create_app
from backend.settings import Settings
from tests.support.asgi import serve


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "postgres": "ok", "redis": "ok"}


async def test_readyz_stays_ready_without_redis(settings: Settings) -> None:
    # Without Redis requests are answered from PostgreSQL (decision 009); a 503 here would take
    # every replica out of the Service at once.
    app = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    async with serve(app, "http://testserver.local") as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "postgres": "ok", "redis": "unavailable"}
    assert alive.status_code == 200


async def test_responses_carry_a_request_id(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "pbx-call-4711"})
    assert given.headers["x-request-id"] == "pbx-call-4711"
    generated = await client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert generated.headers["x-request-id"] != "<script>" and len(generated.headers["x-request-id"]) == 32


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "NOT_FOUND"
