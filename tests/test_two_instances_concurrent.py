"""Two app processes on one PostgreSQL and Redis, each sent half of a burst of identical writes
at once (a load balancer spreading a client's retries): locks and constraints live in the
database, so the answers are those of one instance: one made, the rest 409, never a 500."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from backend.settings import Settings
from tests.support.servers import app_process
from tests.support.world import World, make_tenant

KREIS, SOEST = "kreis-soest", "stadt-soest"
BURST = 6


async def test_a_burst_split_over_two_instances_makes_one(settings: Settings, world: World) -> None:
    town = await make_tenant(world.state, f"burst-{world.suffix}-{uuid.uuid4().hex[:4]}")
    admin, soest_admin = world.headers(KREIS, "platform-admin"), world.headers(SOEST, "town-admin")
    number = f"+49211{uuid.uuid4().int % 10**7:07d}"
    bursts: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/v1/agreements", {"clientTenantId": str(town), "startsOn": "2027-01-01"}, admin),
        (
            f"/v1/tenants/{world.slug(SOEST)}/departments",
            {"name": f"Burst {uuid.uuid4().hex[:6]}"},
            soest_admin,
        ),
        ("/v1/service-numbers", {"tenantId": str(town), "number": number, "validFrom": "2027-01-01"}, admin),
    ]
    with app_process(settings) as first, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=30) as http:
            for path, body, headers in bursts:
                urls = [first.url, second.url] * (BURST // 2)
                responses = await asyncio.gather(
                    *(http.post(f"{url}{path}", json=body, headers=headers) for url in urls)
                )
                statuses = sorted(r.status_code for r in responses)
                assert statuses == [201] + [409] * (BURST - 1), (path, [r.text for r in responses])
