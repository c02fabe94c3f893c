"""`/metrics` only where operations choose (decision 015): exactly one path, a bearer secret,
or a port of its own; production does not start with per-town figures open to everyone."""

from __future__ import annotations

import base64
import dataclasses
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from backend.main import create_app
from backend.settings import Settings, SettingsError, load_settings
from tests.support.asgi import serve

BASE_URL = "http://testserver.local"
TOKEN = "m" * 40
PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://db/x",
    "REDIS_URL": "redis://r",
    "SECRETS_KEY": base64.b64encode(bytes(32)).decode(),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture(loop_scope="session")
async def with_token(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(dataclasses.replace(settings, metrics_token=TOKEN)), BASE_URL) as client:
        yield client


async def test_metrics_answer_on_exactly_one_path(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200
    for other in ("/metrics/", "/metrics%2f", "/metrics%2F", "/%6detrics", "/metrics/%2e"):
        response = await client.get(other)
        assert response.status_code == 404, other
        assert "bs_http_requests" not in response.text


async def test_a_metrics_token_is_required_when_set(with_token: httpx.AsyncClient) -> None:
    refused = await with_token.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "bs_tickets_overdue" not in refused.text
    for wrong in ("Bearer " + "x" * 40, TOKEN, "Basic " + TOKEN, "Bearer " + TOKEN[:-1]):
        assert (await with_token.get("/metrics", headers={"Authorization": wrong})).status_code == 401, wrong
    granted = await with_token.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert granted.status_code == 200 and "bs_build_info" in granted.text
    # The secret does not open other spellings of the path.
    slash = await with_token.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert slash.status_code == 404


async def test_a_metrics_port_of_their_own(settings: Settings) -> None:
    port = _free_port()
    app = create_app(dataclasses.replace(settings, metrics_port=port, metrics_host="127.0.0.1"))
    async with serve(app, BASE_URL) as api, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as ops:
        assert app.state.metrics_port == port
        # The API's port has no /metrics at all …
        for path in ("/metrics", "/metrics/", "/metrics%2f"):
            assert (await api.get(path)).status_code == 404, path
        # … the metrics port has exactly it.
        scraped = await ops.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "bs_build_info" in scraped.text
        for path in ("/metrics/", "/metrics%2f", "/", "/healthz", "/graphql"):
            assert (await ops.get(path)).status_code == 404, path
        assert (await ops.post("/metrics")).status_code == 405
    with pytest.raises(httpx.ConnectError):  # closed with the app
        async with httpx.AsyncClient() as late:
            await late.get(f"http://127.0.0.1:{port}/metrics")


async def test_the_metrics_port_takes_the_token_too(settings: Settings) -> None:
    port = _free_port()
    app = create_app(dataclasses.replace(settings, metrics_port=port, metrics_host="127.0.0.1", metrics_token=TOKEN))
    async with serve(app, BASE_URL), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as ops:
        refused = await ops.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert (await ops.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200


async def test_a_metrics_port_in_use_stops_the_start(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(dataclasses.replace(settings, metrics_port=port, metrics_host="127.0.0.1"))
        with pytest.raises(RuntimeError, match="METRICS_PORT"):
            async with serve(app, BASE_URL):
                pass


def test_production_does_not_start_with_metrics_open() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(PRODUCTION)
    assert "METRICS_PORT or METRICS_TOKEN" in str(refused.value)
    assert load_settings({**PRODUCTION, "METRICS_PORT": "9464"}).metrics_port == 9464
    assert load_settings({**PRODUCTION, "METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    load_settings(PRODUCTION, serving=False)  # the migration Job serves nothing


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN: at least 32 characters"),
        ({"METRICS_PORT": "8000"}, "is the API's PORT"),
        ({"METRICS_PORT": "0"}, "METRICS_PORT=0: must be between 1 and 65535"),
        ({"METRICS_PORT": "ninety"}, "METRICS_PORT='ninety': expected a whole number"),
    ],
)
def test_bad_metrics_settings_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    assert problem in str(refused.value)
    assert "short" not in str(refused.value)  # a secret is named, never echoed
