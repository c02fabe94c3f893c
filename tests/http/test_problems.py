"""Framework errors (unknown route, wrong method, a path parameter that does not parse) are
problem+json with their own code, keep the headers the framework gave them, and are documented.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.world import World

PROBLEM = "/problems/"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["instance"] == response.request.url.path
    return body


async def test_a_method_the_route_lacks_is_405_with_allow(client: httpx.AsyncClient, world: World) -> None:
    headers = world.headers("stadt-soest", "town-admin")
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments/abc"  # only PUT, with a uuid
    body = _problem(await client.get(url, headers=headers), 405, "METHOD_NOT_ALLOWED")
    assert (body["title"], body["type"]) == ("Method not allowed", PROBLEM + "method-not-allowed")
    response = await client.get(url, headers=headers)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}  # RFC 9110 §15.5.6
    assert "PUT" in allowed and "GET" not in allowed

    closing_day = f"/v1/tenants/{world.slug('stadt-soest')}/closing-days/2027-05-01"
    response = await client.post(closing_day, headers=headers)
    _problem(response, 405, "METHOD_NOT_ALLOWED")
    assert {"PUT", "DELETE"} <= {method.strip() for method in response.headers["allow"].split(",")}


async def test_an_unknown_route_is_still_404(client: httpx.AsyncClient, world: World) -> None:
    headers = world.headers("stadt-soest", "town-admin")
    body = _problem(await client.get("/v1/no-such-thing", headers=headers), 404, "NOT_FOUND")
    assert body["title"] == "Not found" and "allow" not in body


async def test_an_impossible_date_in_the_path_is_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    headers = world.headers("stadt-soest", "town-admin")
    slug = world.slug("stadt-soest")
    for method in ("PUT", "DELETE"):
        response = await client.request(
            method, f"/v1/tenants/{slug}/closing-days/2026-02-30", params={"name": "Nie"}, headers=headers
        )
        body = _problem(response, 422, "VALIDATION_FAILED")
        assert [e["field"] for e in body["errors"]] == ["day"], body
        assert "2026-02-30" not in str(body["detail"])  # no input values echoed

    # As in a query parameter: the same date there was 422 already.
    platform = world.headers("kreis-soest", "platform-admin")
    _problem(
        await client.get("/v1/agreements", params={"on": "2026-02-30"}, headers=platform), 422, "VALIDATION_FAILED"
    )

    # A uuid that is none, where the route (PUT) exists for it.
    response = await client.put(f"/v1/tenants/{slug}/departments/abc", json={"name": "Amt"}, headers=headers)
    body = _problem(response, 422, "VALIDATION_FAILED")
    assert [e["field"] for e in body["errors"]] == ["department_id"], body

    # A valid date of a tenant that does not exist (or is out of reach) is still not found.
    missing = f"/v1/tenants/no-town-{world.suffix}/closing-days/2026-02-28"
    _problem(await client.put(missing, params={"name": "Nie"}, headers=headers), 404, "NOT_FOUND")


async def test_every_route_with_a_typed_path_parameter_documents_the_422(client: httpx.AsyncClient) -> None:
    document = (await client.get("/docs/openapi.json")).json()
    undocumented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            typed = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "path" and p["schema"].get("format") in {"uuid", "date", "date-time"}
            ]
            if typed and "422" not in operation["responses"]:
                undocumented.append((method.upper(), path))
    assert not undocumented
