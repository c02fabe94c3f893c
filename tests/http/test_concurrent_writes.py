"""The concurrency sweep: bursts of identical requests that create or change data, fired at once
over one app (asyncio.gather, as a load balancer's retries and double clicks arrive). Nothing may
answer 500; what the rules make unique is made once (one 2xx, the rest a 409 or the same
answer replayed), and the database holds exactly one afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.world import World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
BURST = 6


@dataclass(frozen=True)
class Burst:
    """One request fired BURST times at once. `once`: at most one may create (2xx) and the others
    must be refused with a 409; otherwise every answer is an ordinary one (2xx or 4xx)."""

    name: str
    town: str
    role: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World, str], Any] | None = None
    once: bool = False
    created: set[int] = field(default_factory=lambda: {200, 201})


def unique() -> str:
    return uuid.uuid4().hex[:8]


BURSTS: tuple[Burst, ...] = (
    Burst(
        "tenant with one slug",
        KREIS,
        "platform-admin",
        "POST",
        lambda w: "/v1/tenants",
        lambda w, u: {"slug": f"burst-{u}", "name": "Burst", "kind": "town"},
        once=True,
    ),
    Burst(
        "department with one name",
        SOEST,
        "town-admin",
        "POST",
        lambda w: f"/v1/tenants/{w.slug(SOEST)}/departments",
        lambda w, u: {"name": f"Burst {u}"},
        once=True,
    ),
    Burst(
        "identity issuer with one URL",
        GESEKE,
        "town-admin",
        "POST",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/identity-issuers",
        lambda w, u: {"issuer": f"https://idp.invalid/burst-{u}", "audience": "burst"},
        once=True,
    ),
    Burst(
        "closing day set",
        GESEKE,
        "town-admin",
        "PUT",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/closing-days/2098-12-24?name=Burst",
    ),
    Burst(
        "closing day removed",
        GESEKE,
        "town-admin",
        "DELETE",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/closing-days/2098-12-24",
    ),
    Burst(
        "service number claimed",
        KREIS,
        "platform-admin",
        "POST",
        lambda w: "/v1/service-numbers",
        lambda w, u: {
            "tenantId": str(w.tenant_ids[SOEST]),
            "number": f"+49211{int(u, 16) % 10**7:07d}",
            "validFrom": "2016-01-01",
        },
        once=True,
    ),
    Burst(
        "web site registered",
        SOEST,
        "town-admin",
        "POST",
        lambda w: f"/v1/tenants/{w.slug(SOEST)}/web-sites",
        lambda w, u: {
            "baseUrl": f"https://burst-{u}.invalid/",
            "startUrls": [],
            "sitemapUrl": "https://www.invalid/sitemap.xml",
            "allowedHosts": ["www.invalid"],
        },
        once=True,
    ),
    Burst(
        "directory person with one user name",
        SOEST,
        "town-admin",
        "POST",
        lambda w: f"/v1/tenants/{w.slug(SOEST)}/directory/people",
        lambda w, u: {
            "familyName": f"Burst {u}",
            "userName": f"burst-{u}",
            "phone": f"+49292130{int(u, 16) % 10**4:04d}",
        },
        once=True,
    ),
    Burst(
        "ticket routes replaced",
        GESEKE,
        "town-admin",
        "PUT",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/ticket-routes",
        lambda w, u: {},
    ),
    Burst(
        "ticket settings changed",
        GESEKE,
        "town-admin",
        "PATCH",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/ticket-settings",
        lambda w, u: {"dueSoonMinutes": 120},
    ),
    Burst(
        "telephony settings set",
        GESEKE,
        "town-admin",
        "PUT",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/telephony-settings",
        lambda w, u: {"callerRetentionDays": 90},
    ),
    Burst(
        "group membership set",
        GESEKE,
        "town-admin",
        "PUT",
        lambda w: f"/v1/tenants/{w.slug(GESEKE)}/directory/group-membership",
        lambda w, u: {},
    ),
    Burst(
        "agent status set",
        KREIS,
        "agent",
        "PUT",
        lambda w: "/v1/agent-status",
        lambda w, u: {"agent": f"burst-{u}", "status": "away"},
    ),
)


@pytest.mark.parametrize("burst", BURSTS, ids=[b.name for b in BURSTS])
async def test_a_burst_of_identical_writes_never_fails_and_makes_one(
    client: Client, world: World, burst: Burst
) -> None:
    headers = world.headers(burst.town, burst.role)
    for _ in range(2):  # a race is not lost every time
        u = unique()
        path = burst.path(world)
        body = burst.body(world, u) if burst.body else None
        responses = await asyncio.gather(
            *(client.request(burst.method, path, json=body, headers=headers) for _ in range(BURST))
        )
        statuses = sorted(r.status_code for r in responses)
        assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
        if burst.once:
            assert sum(s in burst.created for s in statuses) == 1, statuses
            assert all(s in burst.created or s == 409 for s in statuses), [r.text for r in responses]
