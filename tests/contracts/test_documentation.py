"""The published contracts say what a client's developer needs (issue 18 §3, decision 021):
redocly's recommended rules pass, operation ids are readable and come from one table, the probes
need no token, the outgoing webhooks are described, problem types open a page we serve, and
custom GraphQL scalars name their specification."""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx

from backend.http.documentation import METRICS_PATH, OPERATION_IDS, PUBLIC_PATHS
from backend.settings import PROJECT_ROOT
from backend.tickets.changes import webhook_data
from backend.tickets.schemas import EventKind
from graphql import build_schema
from tests.support.npmtools import run_node
from tests.support.world import World

OPENAPI_FILE = PROJECT_ROOT / "openapi" / "openapi.json"
DOCUMENT: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
METHODS = ("get", "put", "post", "patch", "delete")


def test_redocly_lint_finds_no_error() -> None:
    done = run_node(
        "node_modules/@redocly/cli/bin/cli.js", "lint", str(OPENAPI_FILE), "--format=json", "--extends=recommended"
    )
    report = json.loads(done.stdout)
    assert report["totals"]["errors"] == 0, report["problems"]
    # the one warning left: probes answer no 4xx (they need no token and take no input)
    left = {(p["ruleId"], p["location"][0]["pointer"]) for p in report["problems"]}
    probes = {("operation-4xx-response", f"#/paths/~1{path.strip('/')}/get/responses") for path in PUBLIC_PATHS}
    assert left <= probes, left - probes


def test_every_operation_id_comes_from_the_table() -> None:
    documented = {
        (method.upper(), path): operation["operationId"]
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }
    missing = documented.keys() - OPERATION_IDS.keys()
    assert not missing, f"add these routes to OPERATION_IDS in backend/http/documentation.py: {sorted(missing)}"
    assert documented == {key: value for key, value in OPERATION_IDS.items() if key in documented}
    assert len(set(OPERATION_IDS.values())) == len(OPERATION_IDS)


def test_the_probes_need_no_token_and_everything_else_does() -> None:
    for path, item in DOCUMENT["paths"].items():
        for _method, operation in item.items():
            if path in PUBLIC_PATHS:
                assert operation["security"] == [], path
            elif path.startswith("/open311/"):  # GeoReport: open GETs, or a bearer; api_key is a parameter (030)
                assert operation["security"] == [{}, {"bearer": []}], path
            elif path == METRICS_PATH:
                assert operation["security"] == [{}, {"metricsToken": []}]
                assert DOCUMENT["components"]["securitySchemes"]["metricsToken"]["scheme"] == "bearer"
            else:
                assert operation["security"] == [{"bearer": []}], path


def test_the_document_has_a_licence_and_described_tags() -> None:
    assert DOCUMENT["info"]["license"]["identifier"]
    tags = {tag["name"]: tag.get("description") for tag in DOCUMENT["tags"]}
    assert all(tags.values()), tags
    used = {tag for item in DOCUMENT["paths"].values() for op in item.values() for tag in op.get("tags", [])}
    assert used <= tags.keys()


def test_the_ticket_webhooks_are_described_as_we_send_them() -> None:
    operation = DOCUMENT["webhooks"]["ticketChanged"]["post"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]["type"]["enum"]) == {kind.value for kind in EventKind}
    data = body["properties"]["data"]
    # the members webhook_data sends are the ones described as always there
    sent = inspect.getsource(webhook_data)
    assert all(f'"{member}":' in sent for member in data["required"]), data["required"]


def test_problem_schema_allows_the_members_examples_carry() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]["properties"]
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for content in (response.get("content") or {}).values():
                    for example in (content.get("examples") or {}).values():
                        if isinstance(example.get("value"), dict) and "code" in example["value"]:
                            assert example["value"].keys() <= problem.keys(), example["value"]
                            assert example["value"]["type"].startswith("/problems/")


async def test_a_problem_type_opens_a_page_about_its_code(client: httpx.AsyncClient, world: World) -> None:
    answer = await client.get("/v1/tenants/no-such-town", headers=world.headers("stadt-soest", "agent"))
    assert answer.status_code == 404
    problem_type = answer.json()["type"]
    assert problem_type == "/problems/not-found"
    page = await client.get(str(answer.request.url.join(problem_type)))  # resolved against the request
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "NOT_FOUND" in page.text and '<html lang="en">' in page.text
    described = await client.get(problem_type, headers={"Accept": "application/json"})
    assert described.json()["code"] == "NOT_FOUND" and 404 in described.json()["statuses"]
    listed = await client.get("/problems", headers={"Accept": "application/json"})
    assert {item["code"] for item in listed.json()} >= {"NOT_FOUND", "RATE_LIMITED", "VALIDATION_FAILED"}
    unknown = await client.get("/problems/made-up")
    assert unknown.status_code == 404 and unknown.json()["type"] == "/problems/not-found"


def test_custom_graphql_scalars_name_their_specification() -> None:
    schema = build_schema((PROJECT_ROOT / "graphql" / "schema.graphql").read_text())
    custom = [t for name, t in schema.type_map.items() if t.__class__.__name__ == "GraphQLScalarType"]
    custom = [t for t in custom if t.name not in {"String", "Int", "Float", "Boolean", "ID"}]
    assert {t.name for t in custom} >= {"Date", "DateTime", "Decimal", "UUID", "JSON"}
    assert all(t.specified_by_url for t in custom), [t.name for t in custom if not t.specified_by_url]
