"""The API is stateless: two app processes on one PostgreSQL and Redis behave as one service."""

from __future__ import annotations

import json

import httpx

from backend.settings import Settings
from tests.support.servers import app_process
from tests.support.world import AUDIENCE, World


async def test_two_processes_share_state_only_through_postgres_and_redis(settings: Settings, world: World) -> None:
    with app_process(settings) as first, app_process(settings) as second:
        admin = world.headers("stadt-soest", "town-admin")
        slug = world.slug("stadt-soest")
        async with httpx.AsyncClient(timeout=10) as http:
            name = f"Standesamt {world.suffix}"
            created = await http.post(f"{first.url}/v1/tenants/{slug}/departments", json={"name": name}, headers=admin)
            assert created.status_code == 201, created.text
            seen = await http.get(f"{second.url}/v1/tenants/{slug}/departments", headers=admin)
            assert name in {d["name"] for d in seen.json()}

            # A sign-in change on one instance is in force on the other right after commit.
            issuer = world.oidc.issuer_url("rogue")
            rogue_token = world.oidc.token("rogue", "rogue-agent")
            before = await http.get(f"{second.url}/v1/me", headers={"Authorization": f"Bearer {rogue_token}"})
            assert before.status_code == 401
            added = await http.post(
                f"{first.url}/v1/tenants/{slug}/identity-issuers",
                json={
                    "issuer": issuer,
                    "audience": AUDIENCE,
                    "roleMapping": {"agent": "agent"},
                    "orgClaim": "org",
                    "orgValue": "rogue",
                },
                headers=admin,
            )
            assert added.status_code == 201, added.text
            after = await http.get(f"{second.url}/v1/me", headers={"Authorization": f"Bearer {rogue_token}"})
            assert after.status_code == 200, after.text
            assert after.json()["tenant"]["slug"] == slug
            removed = await http.delete(
                f"{second.url}/v1/tenants/{slug}/identity-issuers/{added.json()['id']}", headers=admin
            )
            assert removed.status_code == 204
            gone = await http.get(f"{first.url}/v1/me", headers={"Authorization": f"Bearer {rogue_token}"})
            assert gone.status_code == 401

    # Logs are JSON with request id, tenant and principal, and never contain a token.
    for process in (first, second):
        lines = [json.loads(line) for line in process.log().splitlines() if line.startswith("{")]
        requests = [line for line in lines if line.get("event") == "request" and line.get("status", 500) < 400]
        assert requests and all("request_id" in line for line in requests)
        assert any(line.get("tenant") == slug and line.get("principal") for line in requests)
        assert "eyJ" not in process.log(), "a token reached the logs"
