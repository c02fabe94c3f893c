"""Tenants over REST: who sees what, who may change what, and what bad input gets."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.world import World

Client = httpx.AsyncClient


async def test_me_names_the_home_tenant_and_acting_tenants(client: Client, world: World) -> None:
    response = await client.get("/v1/me", headers=world.headers("kreis-soest", "agent"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant"]["slug"] == world.slug("kreis-soest")
    assert body["roles"] == ["agent"]
    # The operator's agent acts for both clients with an active agreement.
    assert set(body["actingTenantIds"]) == {str(t) for t in world.tenant_ids.values()}


async def test_town_agent_acts_only_for_its_town(client: Client, world: World) -> None:
    response = await client.get("/v1/me", headers=world.headers("stadt-geseke", "agent"))
    assert response.json()["actingTenantIds"] == [str(world.tenant_ids["stadt-geseke"])]


async def test_geseke_cannot_read_soest_and_gets_404_not_403(client: Client, world: World) -> None:
    headers = world.headers("stadt-geseke", "town-admin")
    response = await client.get(f"/v1/tenants/{world.slug('stadt-soest')}", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    missing = await client.get("/v1/tenants/does-not-exist", headers=headers)
    assert missing.status_code == 404
    assert response.json()["detail"] == missing.json()["detail"]
    departments = await client.get(f"/v1/tenants/{world.slug('stadt-soest')}/departments", headers=headers)
    assert departments.status_code == 404


async def test_list_is_scoped_and_paginated(client: Client, world: World) -> None:
    headers = world.headers("kreis-soest", "supervisor")
    first = await client.get("/v1/tenants", params={"first": 2}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    rest = await client.get("/v1/tenants", params={"first": 2, "after": page["nextCursor"]}, headers=headers)
    slugs = [t["slug"] for t in page["items"] + rest.json()["items"]]
    assert slugs == sorted(world.slug(t) for t in ("kreis-soest", "stadt-geseke", "stadt-soest"))
    too_big = await client.get("/v1/tenants", params={"first": 101}, headers=headers)
    assert too_big.status_code == 422


async def test_create_tenant_needs_platform_admin(client: Client, world: World) -> None:
    body: dict[str, Any] = {
        "slug": f"stadt-lippstadt-{world.suffix}",
        "name": "Stadt Lippstadt",
        "kind": "town",
        "ags": "05974028",
    }
    forbidden = await client.post("/v1/tenants", json=body, headers=world.headers("kreis-soest", "agent"))
    assert forbidden.status_code == 403
    created = await client.post("/v1/tenants", json=body, headers=world.headers("kreis-soest", "platform-admin"))
    assert created.status_code == 201, created.text
    assert created.json()["serviceHours"][0] == {"weekday": 1, "opens": "08:00", "closes": "18:00"}
    again = await client.post("/v1/tenants", json=body, headers=world.headers("kreis-soest", "platform-admin"))
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE"


async def test_bad_input_is_rejected_with_a_problem_and_changes_nothing(client: Client, world: World) -> None:
    headers = world.headers("kreis-soest", "platform-admin")
    cases = [
        {"slug": "Bad Slug", "name": "x", "kind": "town"},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "village"},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "ags": "123"},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "leitwegId": "04011000-12345-04"},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "timeZone": "Mars/Olympus"},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "federalState": "XX"},
        {
            "slug": f"ok-{world.suffix}",
            "name": "x",
            "kind": "town",
            "serviceHours": [{"weekday": 1, "opens": "18:00", "closes": "08:00"}],
        },
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "serviceHours": []},
        {"slug": f"ok-{world.suffix}", "name": "x", "kind": "town", "unknownField": 1},
    ]
    for body in cases:
        response = await client.post("/v1/tenants", json=body, headers=headers)
        assert response.status_code in (400, 422), (body, response.text)
        problem = response.json()
        assert problem["code"] == "VALIDATION_FAILED" and problem["status"] == response.status_code
    assert (await client.get(f"/v1/tenants/ok-{world.suffix}", headers=headers)).status_code == 404


async def test_town_admin_edits_only_own_identity_settings(client: Client, world: World) -> None:
    soest_admin = world.headers("stadt-soest", "town-admin")
    own = await client.get(f"/v1/tenants/{world.slug('stadt-soest')}/identity-issuers", headers=soest_admin)
    assert own.status_code == 200 and len(own.json()) == 1
    other = await client.post(
        f"/v1/tenants/{world.slug('stadt-geseke')}/identity-issuers",
        json={"issuer": "https://idp.example/geseke", "audience": "x"},
        headers=soest_admin,
    )
    assert other.status_code == 404
    agent = await client.get(
        f"/v1/tenants/{world.slug('stadt-soest')}/identity-issuers", headers=world.headers("stadt-soest", "agent")
    )
    assert agent.status_code == 403


async def test_departments_add_and_conflict(client: Client, world: World) -> None:
    headers = world.headers("stadt-geseke", "town-admin")
    url = f"/v1/tenants/{world.slug('stadt-geseke')}/departments"
    created = await client.post(url, json={"name": f"Ordnungsamt {world.suffix}"}, headers=headers)
    assert created.status_code == 201, created.text
    duplicate = await client.post(url, json={"name": f"Ordnungsamt {world.suffix}"}, headers=headers)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "DUPLICATE"
    names = [d["name"] for d in (await client.get(url, headers=headers)).json()]
    assert names.count(f"Ordnungsamt {world.suffix}") == 1


async def test_agreements_show_term_end_and_notice_deadline(client: Client, world: World) -> None:
    response = await client.get(
        "/v1/agreements", params={"on": "2019-03-01"}, headers=world.headers("kreis-soest", "platform-admin")
    )
    assert response.status_code == 200
    geseke = next(v for v in response.json() if v["agreement"]["tenantId"] == str(world.tenant_ids["stadt-geseke"]))
    assert geseke["currentTermEnd"] == "2019-12-31"  # paper: 2018-01-01 + two years
    assert geseke["noticeDeadline"] == "2019-06-30"
    assert geseke["active"] is True
