"""Cached signing keys belong to one deployment. One Redis may serve several (test sessions, a
second checkout's `make run`, the benchmarks), and their development issuers share a URL while
each signs with its own key: a key set cached by one must never verify for another."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.errors import BadSignatureError
from redis.asyncio import Redis

from auth.oidc import JWKSCache
from backend import devidp
from backend.settings import Settings

SLUG = "kreis-soest"


async def test_two_deployments_on_one_redis_keep_their_own_keys(settings: Settings, tmp_path: Path) -> None:
    first = dataclasses.replace(settings, data_dir=tmp_path / "first")
    second = dataclasses.replace(settings, data_dir=tmp_path / "second")
    issuer = devidp.issuer_url(first, SLUG)
    assert issuer == devidp.issuer_url(second, SLUG)  # same URL, different keys
    redis = Redis.from_url(settings.redis_url or "")
    run = uuid.uuid4().hex
    try:
        async with httpx.AsyncClient() as http:
            caches = {
                name: JWKSCache(redis, devidp.DevJWKSSource(deployment, http), 3600, 60, namespace=f"{name}-{run}")
                for name, deployment in (("first", first), ("second", second))
            }
            tokens = {
                name: devidp.mint_token(d, SLUG, "telephony") for name, d in (("first", first), ("second", second))
            }
            for name in ("first", "second"):  # the first caches its keys; the second must not get them
                kid = devidp.signing_key(first if name == "first" else second, SLUG).kid
                keys = await caches[name].key_set(issuer, kid)
                assert jwt.decode(tokens[name], keys).claims["sub"]
            other = await caches["second"].key_set(issuer, None)
            try:
                jwt.decode(tokens["first"], other)
            except BadSignatureError:
                pass
            else:
                raise AssertionError("the second deployment verified the first one's token")
    finally:
        await redis.aclose()
