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
import time_machine
from redis.asyncio import Redis

from auth.principal import Principal
from backend.errors import RateLimited
from backend.main import create_app
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from tests.support.asgi import lifespan, serve
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


async def test_a_mutation_over_the_limit_is_refused_once_at_the_top_as_a_query_is(
    limited: httpx.AsyncClient, world: World
) -> None:
    """Not a payload error per mutation field (which looked like a rule of setClosingDay, and
    said neither once nor when to try again): the refusal of the request, as queries get it."""
    await _not_near_a_window_end()
    busy = _token(world, f"busy-{uuid.uuid4().hex[:8]}", roles=["town-admin"])
    for _ in range(PERSON_LIMIT):
        assert (await limited.get("/v1/me", headers=busy)).status_code == 200
    query = """query($s: String!) {
      a: billingProfile(tenantSlug: $s) { __typename }
      b: billingProfile(tenantSlug: $s) { __typename }
    }"""
    mutation = """mutation($s: String!) {
      a: setClosingDay(tenantSlug: $s, day: "2031-03-17", name: "Eins") { errors { code message field } }
      b: setClosingDay(tenantSlug: $s, day: "2031-03-18", name: "Zwei") { errors { code message field } }
    }"""
    variables = {"s": world.slug("stadt-soest")}
    answers = {
        kind: await limited.post("/graphql", json={"query": document, "variables": variables}, headers=busy)
        for kind, document in (("query", query), ("mutation", mutation))
    }
    for kind, answer in answers.items():
        body = answer.json()
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["RATE_LIMITED"], (kind, body)
        assert not any(field and field.get("errors") for field in (body["data"] or {}).values()), (kind, body)
        retry_after = body["errors"][0]["extensions"]["retryAfter"]
        assert retry_after == int(answer.headers["ratelimit-reset"]) and 1 <= retry_after <= 60, kind
        assert (answer.status_code, answer.headers["ratelimit-limit"], answer.headers["ratelimit-remaining"]) == (
            answers["query"].status_code,
            str(PERSON_LIMIT),
            "0",
        ), kind
        assert ("retry-after" in answer.headers) == ("retry-after" in answers["query"].headers), kind

    admin = _token(world, f"admin-{uuid.uuid4().hex[:8]}", roles=["town-admin"])
    days = await limited.get(f"/v1/tenants/{variables['s']}/closing-days", headers=admin)
    assert days.status_code == 200, days.text
    assert not {"2031-03-17", "2031-03-18"} & {d["day"] for d in days.json()}, "nothing was changed"


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


UNAUTHENTICATED_LIMIT = 5


async def test_requests_without_a_valid_token_are_limited_per_client_address(settings: Settings, world: World) -> None:
    """700 requests with bad tokens all got 401 before. Now each client address has
    `RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE` of them, then 429; a valid token from the same
    address still works. X-Forwarded-For names the client only when our proxy sent it."""
    await _not_near_a_window_end()
    small = dataclasses.replace(
        settings, rate_limit_unauthenticated_per_minute=UNAUTHENTICATED_LIMIT, trusted_proxies=("10.9.0.0/16",)
    )
    app = create_app(small)

    def from_peer(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://unauthenticated.local")

    async with lifespan(app), from_peer("203.0.113.7") as prober, from_peer("10.9.0.2") as proxy:
        bad = {"Authorization": "Bearer not.a.token"}
        answers = [(await prober.get("/v1/me", headers=bad)).status_code for _ in range(UNAUTHENTICATED_LIMIT)]
        answers.append((await prober.get("/v1/me")).status_code)  # no token at all counts the same
        assert answers == [401] * UNAUTHENTICATED_LIMIT + [429]
        refused = await prober.get("/v1/me", headers=bad)
        assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        graphql = (await prober.post("/graphql", json={"query": "{ me { subject } }"}, headers=bad)).json()
        assert graphql["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # A forged X-Forwarded-For from an untrusted peer changes nothing.
        spoofed = await prober.get("/v1/me", headers={**bad, "X-Forwarded-For": "198.51.100.99"})
        assert spoofed.status_code == 429
        # Signed-in people behind the same address are not refused for it.
        assert (await prober.get("/v1/me", headers=world.headers("stadt-soest", "agent"))).status_code == 200

        # Behind our proxy each client is counted by the address the proxy saw (right-most
        # untrusted entry: what the client put further left is not believed).
        for client_address in ("198.51.100.1", "198.51.100.2"):
            forwarded = {**bad, "X-Forwarded-For": f"1.2.3.4, {client_address}, 10.9.0.7"}
            codes = [
                (await proxy.get("/v1/me", headers=forwarded)).status_code for _ in range(UNAUTHENTICATED_LIMIT + 1)
            ]
            assert codes == [401] * UNAUTHENTICATED_LIMIT + [429]


async def test_the_forwarding_lane_counts_once_and_refuses_as_the_handler_does(
    limited: httpx.AsyncClient, world: World
) -> None:
    """`GET /v1/forwarding` with a plain query string is answered by its own lane (decision 040,
    seventh round): each request counted once, and the 429 the same as the handler's (`x=1`
    sends the same question through the handler), RateLimit headers included."""
    await _not_near_a_window_end()
    busy = _token(world, f"busy-{uuid.uuid4().hex[:8]}", roles=["agent"])
    query = f"/v1/forwarding?tenant=nowhere-{uuid.uuid4().hex[:6]}&leikaKey=99108012000000"
    for left in range(PERSON_LIMIT - 1, -1, -1):
        answered = await limited.get(query, headers=busy)
        assert answered.status_code == 404, answered.text  # signed in; no such town
        assert answered.headers["ratelimit-remaining"] == str(left)
    with time_machine.travel(time.time(), tick=False):
        fast = await limited.get(query, headers=busy)
        slow = await limited.get(query + "&x=1", headers=busy)
    assert fast.status_code == 429 and fast.json()["code"] == "RATE_LIMITED"
    seen = [[(k, v) for k, v in r.headers.multi_items() if k != "x-request-id"] for r in (fast, slow)]
    assert seen[0] == seen[1] and fast.content == slow.content
    assert "x-request-id" in fast.headers and "ratelimit-limit" in fast.headers
