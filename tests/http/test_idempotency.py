"""Retries with the same Idempotency-Key get the first answer; nothing is created twice."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from backend.redisclient import GuardedRedis
from tests.support.world import AUDIENCE, World


async def test_retry_replays_the_first_response(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    body = {"name": f"Ordnungsamt retry {world.suffix}"}
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert names.count(body["name"]) == 1


async def test_a_retry_is_replayed_even_while_redis_is_paused(client: httpx.AsyncClient, world: World) -> None:
    """A pause can follow one slow answer (a busy machine) while Redis is fine: the claim of a
    key is still tried, so the retry is replayed rather than run twice (decision 009)."""
    redis = world.state.redis
    assert isinstance(redis, GuardedRedis)
    headers = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    body = {"name": f"Ordnungsamt paused {world.suffix}"}
    try:
        redis.pause()
        first = await client.post(url, json=body, headers=headers)
        redis.pause()
        second = await client.post(url, json=body, headers=headers)
    finally:
        redis._paused_until = 0.0  # the rest of the session's tests expect Redis in use
    assert first.status_code == 201, first.text
    assert second.status_code == 201 and second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert names.count(body["name"]) == 1


async def test_same_key_other_body_is_refused_and_changes_nothing(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    first = await client.post(url, json={"name": f"Amt A {world.suffix}"}, headers=headers)
    other = await client.post(url, json={"name": f"Amt B {world.suffix}"}, headers=headers)
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert f"Amt B {world.suffix}" not in names


async def test_keys_are_scoped_to_the_caller(client: httpx.AsyncClient, world: World) -> None:
    key = str(uuid.uuid4())
    soest = await client.post(
        f"/v1/tenants/{world.slug('stadt-soest')}/departments",
        json={"name": f"Kasse {world.suffix}"},
        headers={**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": key},
    )
    geseke = await client.post(
        f"/v1/tenants/{world.slug('stadt-geseke')}/departments",
        json={"name": f"Kasse {world.suffix}"},
        headers={**world.headers("stadt-geseke", "town-admin"), "Idempotency-Key": key},
    )
    assert soest.status_code == 201
    assert geseke.status_code == 201
    assert "idempotent-replayed" not in geseke.headers
    assert geseke.json()["tenantId"] != soest.json()["tenantId"]


# --------------------------------------------------------------------------- scope: the verified caller


def _signed_headers(world: World, town: str, subject: str, role: str) -> dict[str, str]:
    """A token of `town`'s issuer for `subject`, signed with the issuer's real key; every call
    gives new bytes (as a refreshed token has), for the same or another subject."""
    now = int(time.time())
    claims = {
        "iss": world.oidc.issuer_url(town),
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "roles": [role],
    }
    return {"Authorization": f"Bearer {world.oidc.sign(town, claims)}"}


async def test_a_retry_with_a_refreshed_token_gets_the_first_answer(client: httpx.AsyncClient, world: World) -> None:
    # Machine clients fetch a new access token before it expires, also between a timed-out
    # request and its retry: the key belongs to the client, not to the token's bytes.
    partner_t1 = world.headers("stadt-soest", "partner")
    partner_t2 = world.headers("stadt-soest", "partner")
    assert partner_t1 != partner_t2
    admin = world.headers("stadt-soest", "town-admin")
    # A department of its own, whose ticket list holds this test's tickets only: the town's first
    # page of tickets (due first) holds others' when more than a page of them came before.
    department = await client.post(
        f"/v1/tenants/{world.slug('stadt-soest')}/departments",
        json={"name": f"Idempotenz {uuid.uuid4().hex[:8]}"},
        headers=admin,
    )
    assert department.status_code == 201, department.text
    subject = f"Idempotent {uuid.uuid4().hex[:8]}"
    body = {
        "tenantSlug": world.slug("stadt-soest"),
        "departmentId": department.json()["id"],
        "subject": subject,
        "concern": "Straßenlaterne defekt",
        "citizen": {"consent": True, "preferredChannel": "phone", "callbackNumber": "02921 123456"},
    }
    key = str(uuid.uuid4())
    first = await client.post("/v1/tickets", json=body, headers={**partner_t1, "Idempotency-Key": key})
    retry = await client.post("/v1/tickets", json=body, headers={**partner_t2, "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json() == first.json()
    listed = await client.get(
        "/v1/tickets",
        params={"first": 100, "departmentId": department.json()["id"]},
        headers=world.headers("stadt-soest", "partner"),
    )
    assert listed.status_code == 200, listed.text
    assert [t["subject"] for t in listed.json()["items"]].count(subject) == 1


async def test_same_subject_new_token_replays_other_subject_has_its_own_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    key = str(uuid.uuid4())
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    body = {"name": f"Standesamt {uuid.uuid4().hex[:6]}"}
    first = await client.post(
        url, json=body, headers={**_signed_headers(world, "stadt-soest", alice, "town-admin"), "Idempotency-Key": key}
    )
    again = await client.post(
        url, json=body, headers={**_signed_headers(world, "stadt-soest", alice, "town-admin"), "Idempotency-Key": key}
    )
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    # Another person of the same town with the same key: a request of its own, neither the
    # stored answer nor "this key was used for a different request".
    other_body = {"name": f"Standesamt {uuid.uuid4().hex[:6]}"}
    other = await client.post(
        url,
        json=other_body,
        headers={**_signed_headers(world, "stadt-soest", bob, "town-admin"), "Idempotency-Key": key},
    )
    assert other.status_code == 201, other.text
    assert "idempotent-replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    names = [d["name"] for d in (await client.get(url, headers=world.headers("stadt-soest", "town-admin"))).json()]
    assert names.count(body["name"]) == 1 and names.count(other_body["name"]) == 1


async def test_a_request_without_a_valid_token_reads_and_writes_no_record(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    key = str(uuid.uuid4())
    body = {"name": f"Bauamt {uuid.uuid4().hex[:6]}"}
    admin = {**world.headers("stadt-soest", "town-admin"), "Idempotency-Key": key}
    assert (await client.post(url, json=body, headers=admin)).status_code == 201
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        refused = await client.post(url, json=body, headers={**headers, "Idempotency-Key": key})
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "idempotent-replayed" not in refused.headers
    assert len(await _records(world, key)) == 1  # the signed-in caller's, nothing else


# --------------------------------------------------------------------------- body size


async def _records(world: World, key: str) -> list[bytes]:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return [name async for name in world.state.redis.scan_iter(match=f"idem:*{digest}", count=1000)]


class _Body:
    """A request body of `chunks` × 1 MB that counts how much of it the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        piece = b"x" * 1_000_000
        for _ in range(self.chunks):
            self.pulled += 1
            yield piece


def _limit(world: World) -> int:
    limit = world.app.request_max_body_size
    assert isinstance(limit, int)
    return limit


async def test_an_announced_oversized_body_is_refused_before_anything_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    # 413, not 401: the length alone settles it (nothing to read, no token to verify), and it is
    # what the same request without an Idempotency-Key gets (litestar reads the body before the
    # principal is resolved). The client learns only the documented limit.
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    limit = _limit(world)
    chunks = limit // 1_000_000 + 5
    for auth in ({}, {"Authorization": "Bearer not-a-token"}, world.headers("stadt-soest", "town-admin")):
        key = str(uuid.uuid4())
        body = _Body(chunks)
        headers = {**auth, "Idempotency-Key": key, "Content-Length": str(chunks * 1_000_000)}
        response = await client.post(url, content=body, headers=headers)
        assert response.status_code == 413, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 413
        assert body.pulled <= 1  # httpx may hand over its first chunk; nobody reads on
        assert await _records(world, key) == []
    without_key = await client.post(url, content=b"x" * (limit + 1), headers={"Content-Type": "application/json"})
    assert without_key.status_code == 413


async def test_a_streamed_oversized_body_is_read_no_further_than_the_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    limit = _limit(world)
    chunks = 3 * (limit // 1_000_000)
    for auth in ({}, {"Authorization": "Bearer not-a-token"}, world.headers("stadt-soest", "town-admin")):
        key = str(uuid.uuid4())
        body = _Body(chunks)  # no Content-Length: chunked, counted while it comes
        response = await client.post(url, content=body, headers={**auth, "Idempotency-Key": key})
        assert response.status_code == 413, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert body.pulled <= limit // 1_000_000 + 2
        assert await _records(world, key) == []


async def test_signing_in_early_counts_a_request_once(client: httpx.AsyncClient, world: World) -> None:
    # The idempotency layer signs the caller in before the handler; the handler (REST) and the
    # GraphQL context reuse that sign-in instead of verifying and counting the request again.
    rest_subject, graphql_subject = f"once-{uuid.uuid4().hex[:8]}", f"once-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        f"/v1/tenants/{world.slug('stadt-soest')}/departments",
        json={"name": f"Kämmerei {uuid.uuid4().hex[:6]}"},
        headers={**_signed_headers(world, "stadt-soest", rest_subject, "town-admin"), "Idempotency-Key": "k"},
    )
    assert created.status_code == 201, created.text
    answered = await client.post(
        "/graphql",
        json={"query": "{ me { subject } }"},
        headers={**_signed_headers(world, "stadt-soest", graphql_subject, "town-admin"), "Idempotency-Key": "k"},
    )
    assert answered.status_code == 200 and answered.json()["data"]["me"]["subject"] == graphql_subject
    for response in (created, answered):
        assert int(response.headers["ratelimit-remaining"]) == int(response.headers["ratelimit-limit"]) - 1
