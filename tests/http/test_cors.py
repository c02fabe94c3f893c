"""CORS for browser front ends on other origins: only the origins in CORS_ALLOWED_ORIGINS get
the headers (preflight included); none are allowed by default; bad values stop the start."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from backend.main import create_app
from backend.settings import Settings, SettingsError, load_settings
from tests.support.asgi import serve
from tests.support.world import World

ALLOWED = "https://agent.kreis-soest.de"
REFUSED = "https://evil.example"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, cors_allowed_origins=(ALLOWED, "http://localhost:5173")))
    async with serve(app, "http://testserver.local") as client:
        yield client


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_an_allowed_origin_passes_preflight_and_reads_the_answer(
    cors_client: httpx.AsyncClient, world: World
) -> None:
    preflight = await cors_client.options("/graphql", headers=preflight_headers(ALLOWED))
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "idempotency-key" in allowed_headers
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    response = await cors_client.get("/v1/me", headers={"Origin": ALLOWED, **world.headers("stadt-soest", "agent")})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "ratelimit-remaining" in response.headers["access-control-expose-headers"].lower()


async def test_another_origin_gets_no_cors_headers(cors_client: httpx.AsyncClient, world: World) -> None:
    preflight = await cors_client.options("/v1/me", headers=preflight_headers(REFUSED))
    assert preflight.status_code >= 400 or "access-control-allow-origin" not in preflight.headers
    assert preflight.headers.get("access-control-allow-origin") != REFUSED
    response = await cors_client.get("/v1/me", headers={"Origin": REFUSED, **world.headers("stadt-soest", "agent")})
    assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(client: httpx.AsyncClient, world: World) -> None:
    preflight = await client.options("/v1/me", headers=preflight_headers(ALLOWED))
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.get("/v1/me", headers={"Origin": ALLOWED, **world.headers("stadt-soest", "agent")})
    assert "access-control-allow-origin" not in response.headers
    assert load_settings({"APP_ENV": "development"}).cors_allowed_origins == ()


def test_origins_are_read_and_checked() -> None:
    settings = load_settings({"CORS_ALLOWED_ORIGINS": "https://Agent.Kreis-Soest.de, http://localhost:5173/"})
    assert settings.cors_allowed_origins == ("https://agent.kreis-soest.de", "http://localhost:5173")
    for bad in ("agent.kreis-soest.de", "https://a.de/app", "ftp://a.de", "https://user@a.de"):
        with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
            load_settings({"CORS_ALLOWED_ORIGINS": bad})
    production = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://db/x",
        "REDIS_URL": "redis://r",
        "SECRETS_KEY": "A" * 43 + "=",
        "DEV_SIGNIN_ENABLED": "false",
        "CORS_ALLOWED_ORIGINS": "*",
    }
    with pytest.raises(SettingsError, match="'\\*' is not allowed"):
        load_settings(production)
