"""No "Did you mean …?" in production: with introspection off, suggestions spelled out the
schema to anyone, without a token (issue 12). Built from APP_ENV=production settings."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from backend.main import create_app
from backend.settings import Settings, load_settings
from tests.support.asgi import serve

# Each one misspells something the schema has: a field, an argument, a type, an input field and
# an enum value (as a literal and as a variable, which is coerced at execution, not validation).
PROBES: list[tuple[str, dict[str, Any]]] = [
    ("mutation { createTenan(input: {}) { tenant { id } } }", {}),
    ("{ me { subjec } }", {}),
    ("{ tickets(statu: NEW) { edges { cursor } } }", {}),
    ("query($s: TicketStatu) { tickets(status: $s) { edges { cursor } } }", {"s": "NEW"}),
    ("{ tickets(status: NEWW) { edges { cursor } } }", {}),
    ("query($s: TicketStatus) { tickets(status: $s) { edges { cursor } } }", {"s": "NEWW"}),
    ('mutation { createTenant(input: {slugg: "x"}) { tenant { id } } }', {}),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    production = load_settings(
        {
            "APP_ENV": "production",
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "SECRETS_KEY": base64.b64encode(bytes(32)).decode(),
            "METRICS_TOKEN": "t" * 32,
            "BACKGROUND_WORKER": "false",
            "DATA_DIR": str(settings.data_dir),
            "LOG_LEVEL": "WARNING",
        }
    )
    assert not production.graphql_introspection
    async with serve(create_app(production), "http://testserver.local") as client:
        yield client


def _messages(response: httpx.Response) -> list[str]:
    assert response.status_code in (200, 400), response.text
    errors = response.json().get("errors") or []
    assert errors, response.text
    return [error["message"] for error in errors]


@pytest.mark.parametrize(("query", "variables"), PROBES)
async def test_production_suggests_nothing(
    production: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> None:
    messages = _messages(await production.post("/graphql", json={"query": query, "variables": variables}))
    assert not any("Did you mean" in message for message in messages), messages


@pytest.mark.parametrize(("query", "variables"), PROBES)
async def test_development_still_suggests(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> None:
    messages = _messages(await client.post("/graphql", json={"query": query, "variables": variables}))
    assert any("Did you mean" in message for message in messages), messages
