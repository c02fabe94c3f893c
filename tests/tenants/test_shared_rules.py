"""Rules that span tenants, held by the database as well as the code: one agreement per client
and operator at a time (also when two admins conclude it at once), and one organisation claim
per shared issuer (so no town can make another town's tokens ambiguous). And the GraphQL side of
closing days: what can be set can be removed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.world import AUDIENCE, World, make_tenant

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"


async def test_two_admins_concluding_the_same_agreement_at_once_get_one(client: Client, world: World) -> None:
    town = await make_tenant(world.state, f"welver-{world.suffix}")
    admin = world.headers(KREIS, "platform-admin")
    body = {"clientTenantId": str(town), "startsOn": "2027-01-01"}
    for _ in range(3):  # a race is not lost every time: try it a few times, never two agreements
        responses = await asyncio.gather(*(client.post("/v1/agreements", json=body, headers=admin) for _ in range(4)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) <= 1 and set(statuses) <= {201, 409}, [r.text for r in responses]
    listed = await client.get("/v1/agreements", headers=admin)
    assert [a["agreement"]["tenantId"] for a in listed.json()].count(str(town)) == 1


async def test_a_shared_issuer_keeps_one_organisation_claim(client: Client, world: World) -> None:
    """Geseke's admin cannot register Soest's shared issuer with another claim (`iss` would match
    every token and make Soest's tokens ambiguous): 409, and Soest still signs in."""
    issuer = world.oidc.issuer_url("rogue")
    soest_admin, geseke_admin = world.headers(SOEST, "town-admin"), world.headers(GESEKE, "town-admin")

    def binding(claim: str, value: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "audience": AUDIENCE,
            "roleMapping": {"agent": "agent"},
            "orgClaim": claim,
            "orgValue": value,
        }

    added = await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/identity-issuers", json=binding("org", "rogue"), headers=soest_admin
    )
    assert added.status_code == 201, added.text
    try:
        token = {"Authorization": f"Bearer {world.oidc.token('rogue', 'rogue-agent')}"}
        assert (await client.get("/v1/me", headers=token)).status_code == 200
        hijack = await client.post(
            f"/v1/tenants/{world.slug(GESEKE)}/identity-issuers", json=binding("iss", issuer), headers=geseke_admin
        )
        assert hijack.status_code == 409, hijack.text
        assert hijack.json()["field"] == "orgClaim"
        me = await client.get("/v1/me", headers=token)
        assert me.status_code == 200 and me.json()["tenant"]["slug"] == world.slug(SOEST)
        # The same claim with the town's own value is how sharing is meant to work.
        shared = await client.post(
            f"/v1/tenants/{world.slug(GESEKE)}/identity-issuers", json=binding("org", "geseke"), headers=geseke_admin
        )
        assert shared.status_code == 201, shared.text
        await client.delete(
            f"/v1/tenants/{world.slug(GESEKE)}/identity-issuers/{shared.json()['id']}", headers=geseke_admin
        )
    finally:
        await client.delete(
            f"/v1/tenants/{world.slug(SOEST)}/identity-issuers/{added.json()['id']}", headers=soest_admin
        )


async def test_a_closing_day_set_by_mistake_is_removed_over_graphql(client: Client, world: World) -> None:
    admin = world.headers(GESEKE, "town-admin")
    variables = {"s": world.slug(GESEKE), "d": "2031-06-02"}

    async def run(query: str) -> dict[str, Any]:
        response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=admin)
        body: dict[str, Any] = response.json()
        return body["data"]

    fields = "{ closingDays { day } errors { code } }"
    set_day = await run(
        f'mutation($s: String!, $d: Date!) {{ setClosingDay(tenantSlug: $s, day: $d, name: "x") {fields} }}'
    )
    assert "2031-06-02" in [d["day"] for d in set_day["setClosingDay"]["closingDays"]]
    removed = await run(f"mutation($s: String!, $d: Date!) {{ removeClosingDay(tenantSlug: $s, day: $d) {fields} }}")
    assert "2031-06-02" not in [d["day"] for d in removed["removeClosingDay"]["closingDays"]]
    again = await run(f"mutation($s: String!, $d: Date!) {{ removeClosingDay(tenantSlug: $s, day: $d) {fields} }}")
    assert again["removeClosingDay"] == {"closingDays": None, "errors": [{"code": "NOT_FOUND"}]}
