"""Requests per principal and minute are limited across instances (backend/ratelimit.py).

A runaway telephony system or partner script gets 429 problem+json with `Retry-After` (over
GraphQL: `extensions.code = RATE_LIMITED`) and leaves everyone else's requests alone. Every
response to a signed-in request says what is left (`RateLimit-Limit/-Remaining/-Reset`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from auth.principal import Principal
from backend.errors import RateLimited
from backend.main import create_app
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from tests.support.asgi import serve
from tests.support.world import AUDIENCE, World

PERSON_LIMIT, MACHINE_LIMIT = 5, 8


@pytest.fixture(scope="module")
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    small = dataclasses.replace(
        settings, rate_limit_per_minute=PERSON_LIMIT, rate_limit_machine_per_minute=MACHINE_LIMIT
    )
    async with serve(create_app(small), "http://limited.local") as client:
        yield client


async def _not_near_a_window_end(window_seconds: int = 60) -> None:
    # Windows are fixed on the minute: a test straddling the change would start over midway.
    left = window_seconds - time.time() % window_seconds
    if left < 10:
        await asyncio.sleep(left + 0.1)


def _token(world: World, subject: str, **claims: object) -> dict[str, str]:
    now = int(time.time())
    body = {"iss": world.oidc.issuer_url("stadt-soest"), "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {world.oidc.sign('stadt-soest', {**body, **claims})}"}


async def test_a_person_over_the_limit_gets_429_and_others_carry_on(limited: httpx.AsyncClient, world: World) -> None:
    await _not_near_a_window_end()
    busy = _token(world, f"busy-{uuid.uuid4().hex[:8]}", roles=["agent"])
    other = _token(world, f"calm-{uuid.uuid4().hex[:8]}", roles=["agent"])
    for _ in range(PERSON_LIMIT):
        assert (await limited.get("/v1/me", headers=busy)).status_code == 200
    refused = await limited.get("/v1/me", headers=busy)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["code"] == "RATE_LIMITED" and body["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and body["retryAfter"] == int(refused.headers["retry-after"])
    assert (await limited.get("/v1/me", headers=other)).status_code == 200

    graphql = (await limited.post("/graphql", json={"query": "{ me { subject } }"}, headers=busy)).json()
    assert graphql["data"] is None and graphql["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_responses_say_what_is_left_of_the_limit(limited: httpx.AsyncClient, world: World) -> None:
    await _not_near_a_window_end()
    client_id = f"partner-{uuid.uuid4().hex[:8]}"
    system = _token(world, client_id, client_id=client_id, scope="routing:read")
    params = {"dialled": "+4929211030"}
    seen = []
    for _ in range(MACHINE_LIMIT + 1):
        response = await limited.get("/v1/routing", params=params, headers=system)
        seen.append((response.status_code, int(response.headers["ratelimit-remaining"])))
        assert int(response.headers["ratelimit-limit"]) == MACHINE_LIMIT
        assert 1 <= int(response.headers["ratelimit-reset"]) <= 60
    assert seen == [(200, MACHINE_LIMIT - n) for n in range(1, MACHINE_LIMIT + 1)] + [(429, 0)]
    assert response.headers["retry-after"] == response.headers["ratelimit-reset"]  # the 429 says it twice

    person = _token(world, f"agent-{uuid.uuid4().hex[:8]}", roles=["agent"])
    graphql = await limited.post("/graphql", json={"query": "{ me { subject } }"}, headers=person)
    assert graphql.headers["ratelimit-remaining"] == str(PERSON_LIMIT - 1)  # GraphQL counts the same
    anonymous = await limited.get("/healthz")
    assert "ratelimit-limit" not in anonymous.headers  # nothing counted, nothing to say
    rejected = await limited.get("/v1/me", headers={"Authorization": "Bearer abc"})
    assert rejected.status_code == 401 and "ratelimit-limit" not in rejected.headers


async def test_machine_clients_have_their_own_higher_limit(limited: httpx.AsyncClient, world: World) -> None:
    await _not_near_a_window_end()
    client_id = f"pbx-{uuid.uuid4().hex[:8]}"
    system = _token(world, client_id, client_id=client_id, scope="routing:read")
    params = {"dialled": "+4929211030"}
    statuses = [(await limited.get("/v1/routing", params=params, headers=system)).status_code for _ in range(10)]
    assert statuses == [200] * MACHINE_LIMIT + [429, 429]


def _person(subject: str) -> Principal:
    return Principal(issuer="https://idp.example", subject=subject, tenant_id=uuid.uuid4(), tenant_slug="t")


async def test_instances_share_the_count_through_redis(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url or "")
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    one, two = (RateLimiter(redis, namespace, 5, 5, window_seconds=3600) for _ in range(2))
    person = _person("shared")
    try:
        await _not_near_a_window_end(3600)
        for _ in range(3):
            one.take(person)
        await one.flush()
        two.take(person)
        two.take(person)
        await two.flush()  # learns the shared total: 5
        with pytest.raises(RateLimited) as refused:
            two.take(person)
        assert 1 <= refused.value.retry_after <= 3600
        one.take(person)  # the first instance learns on its next flush: one request over …
        await one.flush()
        with pytest.raises(RateLimited):  # … and then no more
            one.take(person)
        one.take(_person("someone-else"))
    finally:
        for limiter in (one, two):
            await limiter.aclose()
        await redis.aclose()


async def test_without_redis_each_instance_still_limits_what_it_sees() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RateLimiter(redis, "unreachable", 3, 3, window_seconds=3600)
    person = _person("alone")
    try:
        await _not_near_a_window_end(3600)
        for _ in range(3):
            limiter.take(person)
        await limiter.flush()  # logs and keeps counting, does not raise
        with pytest.raises(RateLimited):
            limiter.take(person)
    finally:
        await limiter.aclose()
        await redis.aclose()
