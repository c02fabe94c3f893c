"""`POST /graphql` through the pipeline (decision 033) answers what strawberry's own view answers.

The app as it runs (the pipeline: plain steps, no strawberry view or extension runner) and the
same app with `GRAPHQL_SHORT_PATHS=false` (strawberry's view, its extension runner with our
extensions, graphql-core's field-by-field execution) get the same raw requests: status, content
type and body must be equal byte for byte. The requests cover what the pipeline answers itself
(operations picked by name or not, mutations, parse and validation errors, missing and bad tokens,
control characters, introspection, another language) and what it leaves to strawberry's view
(bodies that are not one JSON operation, no query, a subscription over POST, an operation name
that picks nothing); each case says which, and the test checks that it went that way.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from backend.api.pipeline import Pipeline
from backend.main import create_app
from backend.settings import Settings
from tests.support.asgi import serve
from tests.support.world import World

KREIS, SOEST = "kreis-soest", "stadt-soest"
JSON = "application/json"


def _body(query: object, variables: object = None, **more: object) -> bytes:
    return json.dumps({"query": query, "variables": variables, **more}).encode()


TWO_OPERATIONS = "query Me { me { subject } } query Town($t: String!) { tenant(tenant: $t) { slug name } }"
CREATE_TENANT = "mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { slug } } }"

# (name, who signs in ("agent", "none", "forged"), content type, body, the pipeline answers it)
CASES: list[tuple[str, str, str, bytes, bool]] = [
    ("a query", "agent", JSON, _body("query($t: String!) { tenant(tenant: $t) { slug name } }", {"t": SOEST}), True),
    ("an operation picked by name", "agent", JSON, _body(TWO_OPERATIONS, {"t": SOEST}, operationName="Town"), True),
    ("extensions sent along", "agent", JSON, _body("{ me { subject } }", extensions={"persistedQuery": 1}), True),
    (
        "a mutation the role may not run",
        "agent",
        JSON,
        _body(CREATE_TENANT, {"input": {"slug": "nope-pipeline", "name": "x", "kind": "TOWN"}}),
        True,
    ),
    ("a syntax error", "agent", JSON, _body("{ me { "), True),
    ("an unknown field", "agent", JSON, _body("{ me { colour } }"), True),
    (
        "a variable of the wrong type",
        "agent",
        JSON,
        _body("query($t: String!) { tenant(tenant: $t) { slug } }", {"t": 5}),
        True,
    ),
    (
        "a control character in a variable",
        "agent",
        JSON,
        _body("query($t: String!) { tenant(tenant: $t) { slug } }", {"t": "stadt\u0000soest"}),
        True,
    ),
    ("a control character in a literal", "agent", JSON, _body('{ tenant(tenant: "a\\u0007b") { slug } }'), True),
    ("no token", "none", JSON, _body("{ me { subject } }"), True),
    ("a forged token", "forged", JSON, _body("{ me { subject } }"), True),
    ("no sign-in needed", "none", JSON, _body("{ __typename }"), True),
    (
        "two operations, none picked: graphql-core asks for a name",
        "agent",
        JSON,
        _body(TWO_OPERATIONS, {"t": SOEST}),
        True,
    ),
    ("introspection", "agent", JSON, _body("{ __schema { queryType { name } } }"), True),
    ("content type with a charset", "agent", "application/json; charset=utf-8", _body("{ me { subject } }"), True),
    ("an operation name that picks nothing", "agent", JSON, _body(TWO_OPERATIONS, operationName="Nope"), False),
    ("a subscription over POST", "agent", JSON, _body("subscription { centreUpdates { waiting } }"), False),
    (
        "a subscription picked by name over POST",
        "agent",
        JSON,
        _body("query Me { me { subject } } subscription Centre { centreUpdates { waiting } }", operationName="Centre"),
        False,
    ),
    ("no query", "agent", JSON, _body(None), False),
    ("an empty query", "agent", JSON, _body(""), False),
    ("a query that is not text", "agent", JSON, _body(5), False),
    ("variables that are not an object", "agent", JSON, _body("{ me { subject } }", [1]), False),
    ("a batch", "agent", JSON, b'[{"query": "{ me { subject } }"}]', False),
    ("not JSON", "agent", JSON, b"{ me { subject } }", False),
    ("not a JSON object", "agent", JSON, b'"{ me { subject } }"', False),
    ("another content type", "agent", "text/plain", _body("{ me { subject } }"), False),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def strawberrys(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with strawberry's own pipeline (GRAPHQL_SHORT_PATHS=false)."""
    async with serve(
        create_app(dataclasses.replace(settings, graphql_short_paths=False)), "http://testserver.local"
    ) as c:
        yield c


def _headers(world: World, who: str, content_type: str) -> dict[str, str]:
    headers = {"content-type": content_type, "accept-language": "de"}
    if who == "agent":
        headers.update(world.headers(KREIS, "agent"))
    elif who == "forged":
        headers["authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    return headers


@pytest.mark.parametrize(("name", "who", "content_type", "body", "answered"), CASES, ids=[c[0] for c in CASES])
async def test_the_pipeline_answers_what_strawberrys_view_answers(
    client: httpx.AsyncClient,
    strawberrys: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    who: str,
    content_type: str,
    body: bytes,
    answered: bool,
) -> None:
    answers: list[Any] = []
    answer = Pipeline.answer

    async def counted(self: Pipeline, *args: Any) -> dict[str, Any]:
        answers.append(args)
        return await answer(self, *args)

    monkeypatch.setattr(Pipeline, "answer", counted)
    body = body.replace(SOEST.encode(), world.slug(SOEST).encode())
    headers = _headers(world, who, content_type)
    ours = await client.post("/graphql", content=body, headers=headers)
    assert len(answers) == (1 if answered else 0), name
    reference = await strawberrys.post("/graphql", content=body, headers=headers)
    assert (ours.status_code, ours.headers.get("content-type")) == (
        reference.status_code,
        reference.headers.get("content-type"),
    )
    assert ours.content == reference.content, name
    if answered:
        assert ours.status_code == 200 and ours.json().keys() <= {"data", "errors"}


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        (_body("subscription { centreUpdates { waiting } }"), 1, 1),
        (
            _body(
                "query Me { me { subject } }\nsubscription Centre { centreUpdates { waiting } }", operationName="Centre"
            ),
            2,
            1,
        ),
    ],
    ids=["the only operation", "picked by name"],
)
async def test_a_subscription_over_post_is_refused_with_a_code_in_both_drivers(
    client: httpx.AsyncClient, strawberrys: httpx.AsyncClient, world: World, body: bytes, line: int, column: int
) -> None:
    """Not executed as a query (graphql-core would call the subscription's generator as a resolver
    and answer 200 with a masked INTERNAL error, logged as a bug): a 400 that says where to go."""
    for driver in (client, strawberrys):
        refused = await driver.post("/graphql", content=body, headers=_headers(world, "agent", JSON))
        assert refused.status_code == 400
        assert refused.headers["content-type"] == JSON
        assert refused.json() == {
            "data": None,
            "errors": [
                {
                    "message": "Abonnements laufen über einen WebSocket (graphql-transport-ws) unter /graphql, "
                    "nicht über POST",
                    "locations": [{"line": line, "column": column}],
                    "extensions": {"code": "OPERATION_NOT_ALLOWED"},
                }
            ],
        }
