"""Input that broke later, or broke the server, is refused at the door (issue 12, section 3).

Central rules are checked on every route they cover, walked from the published contracts:
every string parameter of the OpenAPI document gets a NUL, every JSON body route a body nested
1,000 deep, every String/ID argument of the GraphQL schema a NUL. Each of these was a 500 (or
INTERNAL) before.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from backend.gql_schema import create_schema
from backend.http.input_guard import MAX_JSON_DEPTH, _walked_too_deep, json_too_deep
from backend.settings import PROJECT_ROOT, Settings
from backend.structs import LINES, Input
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)
from tests.support.world import World

OPENAPI: dict[str, Any] = json.loads((PROJECT_ROOT / "openapi" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "patch", "delete")
DEEP = b"[" * 1000 + b"]" * 1000  # 2 KB


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _concrete(path: str, skip: str | None = None) -> str:
    """The path with a plausible value for each parameter (the route must match)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == skip:
            return "%00"
        parameter = next(
            (
                p
                for _, p_path, op in _operations()
                if p_path == path
                for p in op.get("parameters", [])
                if p["name"] == name
            ),
            {"schema": {}},
        )
        kind = parameter["schema"].get("format")
        return {"uuid": str(uuid.uuid4()), "date": "2026-01-05"}.get(kind, "x")

    return re.sub(r"{(\w+)}", value, path)


def _is_string(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string":
        return True
    return any(_is_string(option) for option in schema.get("oneOf", []) + schema.get("anyOf", []))


STRING_PARAMETERS = [
    pytest.param(method, path, parameter["name"], parameter["in"], id=f"{method} {path} {parameter['name']}")
    for method, path, operation in _operations()
    for parameter in operation.get("parameters", [])
    if parameter["in"] in ("query", "path")
    and _is_string(parameter["schema"])
    # a uuid or date in the path cannot hold text: such a path is another route (404)
    and not (parameter["in"] == "path" and parameter["schema"].get("format"))
]


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(("method", "path", "name", "where"), STRING_PARAMETERS)
async def test_every_string_parameter_refuses_control_characters(
    client: httpx.AsyncClient, world: World, method: str, path: str, name: str, where: str
) -> None:
    headers = world.headers("kreis-soest", "platform-admin")
    for bad in ("\x00", "a\x07b"):
        if where == "path":
            url = _concrete(path, skip=name).replace("%00", quote(bad))
            response = await client.request(method, url, headers=headers)
        else:
            response = await client.request(method, _concrete(path), params={name: bad}, headers=headers)
        if path.startswith("/open311/"):  # GeoReport answers with its own error array (decision 030)
            assert response.status_code == 400, (response.status_code, response.text[:300])
            description = f"`{name}` must not contain control characters"
            if path.endswith(".xml"):
                assert f"<description>{description}</description>" in response.text
            else:
                assert response.json() == [{"code": 400, "description": description}]
            continue
        body = _problem(response, 422)
        assert body["errors"] == [{"field": name, "message": f"`{name}` must not contain control characters"}]


def test_the_walk_covers_the_routes_of_the_issue() -> None:
    walked = {(method, path, name) for method, path, name, _ in (p.values for p in STRING_PARAMETERS)}
    assert ("GET", "/v1/articles/search", "tenant") in walked
    assert ("GET", "/v1/tenants/{slug}", "slug") in walked
    assert len(walked) > 50


JSON_BODIES = [
    pytest.param(method, path, id=f"{method} {path}")
    for method, path, operation in _operations()
    if "requestBody" in operation
] + [pytest.param("POST", "/graphql", id="POST /graphql")]


@pytest.mark.parametrize(("method", "path"), JSON_BODIES)
async def test_every_json_body_nested_too_deep_is_a_400_before_sign_in(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for body in (DEEP, b'{"a":' * 700 + b"1" + b"}" * 700, b"[" * 2000):
        response = await client.request(
            method, _concrete(path), content=body, headers={"content-type": "application/json"}
        )
        problem = _problem(response, 400)  # no token: refused before sign-in would say 401
        assert problem["detail"] == f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"


def test_json_depth_is_measured_without_recursion() -> None:
    assert not json_too_deep(b"[" * 32 + b"]" * 32)
    assert json_too_deep(b"[" * 33 + b"]" * 33)
    assert not json_too_deep(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": "\\"[[["}' * 3)
    assert not json_too_deep(b'{"a": [1, {"b": [2, 3]}], "c": {}}\n{"a": [[]]}\n')  # JSON lines
    assert not json_too_deep(b"{not json at all")  # unbalanced, shallow: the decoder says so
    assert json_too_deep(b"[{" * 20)  # unbalanced and deep
    assert not json_too_deep(b"")


def test_counting_brackets_answers_as_the_walk_does() -> None:
    """The shortcut (fewer opening brackets than the limit) may never answer otherwise than the
    walk: every body of up to 6 bracket, quote, escape and letter bytes, at small limits, and
    bodies around the real limit."""
    alphabet = [b"[", b"]", b"{", b"}", b'"', b"\\", b"a"]
    for length in range(7):
        for letters in itertools.product(alphabet, repeat=length):
            body = b"".join(letters)
            for limit in (1, 2, 3):
                assert json_too_deep(body, limit) == _walked_too_deep(body, limit), (body, limit)
    for body in (b"[" * 31 + b"]" * 32, b"[" * 32 + b"]" * 33, b"[" * 31, b"{" * 32):
        assert json_too_deep(body) == _walked_too_deep(body, MAX_JSON_DEPTH), body


# --------------------------------------------------------------------------- GraphQL arguments


def _dummy(kind: Any) -> Any:
    if isinstance(kind, GraphQLNonNull):
        return _dummy(kind.of_type)
    if isinstance(kind, GraphQLList):
        return [_dummy(kind.of_type)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    return {
        "String": "x",
        "ID": "x",
        "Int": 1,
        "Boolean": True,
        "UUID": str(uuid.uuid4()),
        "Date": "2026-01-05",
        "DateTime": "2026-01-05T10:00:00+01:00",
        "Decimal": "1",
        "JSON": {},
    }[kind.name]


def _buildable(argument: GraphQLArgument) -> bool:
    return not isinstance(get_named_type(argument.type), GraphQLInputObjectType)


def _graphql_cases() -> list[Any]:
    schema = create_schema(Settings())._schema
    cases = []
    for operation, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert isinstance(root, GraphQLObjectType)
        for field_name, field in root.fields.items():
            required = [a for a in field.args.values() if isinstance(a.type, GraphQLNonNull)]
            if not all(_buildable(a) for a in required):
                continue  # takes an input object: its text is the Input structs' (tested below)
            for name, argument in field.args.items():
                named = get_named_type(argument.type)
                if isinstance(named, GraphQLScalarType) and named.name in ("String", "ID"):
                    cases.append(pytest.param(operation, field_name, name, id=f"{field_name}({name})"))
    return cases


def _operation(operation: str, field_name: str, tested: str, bad: str) -> tuple[str, dict[str, Any]]:
    schema = create_schema(Settings())._schema
    root = schema.query_type if operation == "query" else schema.mutation_type
    assert root is not None
    field: GraphQLField = root.fields[field_name]
    arguments = {
        name: argument
        for name, argument in field.args.items()
        if name == tested or isinstance(argument.type, GraphQLNonNull)
    }
    variables = {name: _dummy(argument.type) for name, argument in arguments.items()}
    kind = arguments[tested].type
    kind = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    variables[tested] = [bad] if isinstance(kind, GraphQLList) else bad
    declared = ", ".join(f"${name}: {argument.type}" for name, argument in arguments.items())
    given = ", ".join(f"{name}: ${name}" for name in arguments)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{operation}({declared}) {{ {field_name}({given}){selection} }}", variables


GRAPHQL_STRING_ARGUMENTS = _graphql_cases()


@pytest.mark.parametrize(("operation", "field_name", "argument"), GRAPHQL_STRING_ARGUMENTS)
async def test_every_graphql_string_argument_refuses_control_characters(
    client: httpx.AsyncClient, world: World, operation: str, field_name: str, argument: str
) -> None:
    headers = world.headers("kreis-soest", "platform-admin")
    for bad in ("\x00", "a\x1bb"):
        query, variables = _operation(operation, field_name, argument, bad)
        response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = response.json()
        assert body["data"] is None, body
        assert [(e["extensions"]["code"], e["extensions"].get("field")) for e in body["errors"]] == [
            ("VALIDATION_FAILED", argument)
        ], body
    # As a literal in the document, too.
    literal = 'query { knowledgeSearch(query: "a", tenant: "\\u0000") { __typename } }'
    body = (await client.post("/graphql", json={"query": literal}, headers=headers)).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION_FAILED"]


def test_the_graphql_walk_covers_the_arguments_of_the_issue() -> None:
    walked = {(field, argument) for _, field, argument in (p.values for p in GRAPHQL_STRING_ARGUMENTS)}
    assert {("knowledgeSearch", "tenant"), ("leikaService", "tenant"), ("searchSynonyms", "tenant")} <= walked


# --------------------------------------------------------------------------- text in bodies


def test_the_text_rule_holds_for_every_field_of_every_input() -> None:
    class Article(Input, frozen=True):
        title: str
        body: Annotated[str, LINES] = ""
        terms: list[str] = msgspec.field(default_factory=list)
        labels: dict[str, str] = msgspec.field(default_factory=dict)
        parts: list[Annotated[str, LINES]] = msgspec.field(default_factory=list)

    def refused(**values: Any) -> str | None:
        try:
            msgspec.convert({"title": "Titel", **values}, Article)
        except msgspec.ValidationError as error:
            return str(error)
        return None

    assert refused(body="Erste Zeile\nzweite Zeile\r\n\tmit Tab") is None
    assert refused(parts=["a\nb"]) is None
    assert refused(title="Stadt Soest\x07") == "`title` must not contain control characters"
    assert refused(title="Zwei\nZeilen") == "`title` must be a single line (no line breaks or tabs)"
    assert refused(body="Glocke\x07") == "`body` must not contain control characters"
    assert refused(body="NUL\x00") == "`body` must not contain control characters"
    assert refused(body="\ufffe") == "`body` must not contain control characters"
    assert refused(terms=["ok", "Esc\x1b"]) == "`terms` must not contain control characters"
    assert refused(labels={"a\x00": "b"}) == "`labels` must not contain control characters"
    assert refused(labels={"a": "b\nc"}) == "`labels` must be a single line (no line breaks or tabs)"


async def test_a_control_character_in_a_body_is_a_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    slug = world.slug("stadt-soest")
    admin = world.headers("stadt-soest", "town-admin")
    finance = world.headers("kreis-soest", "finance")
    profile = {
        "legalName": "Stadt Soest\u0007",
        "street": "Am Vreithof 16",
        "postalCode": "59494",
        "city": "Soest",
        "email": "kasse@soest.example.org",
        "phone": "02921 103-0",
        "contactName": "Stadtkasse",
    }
    response = await client.put(f"/v1/tenants/{slug}/billing-profile", json=profile, headers=finance)
    body = _problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["legalName"], body

    response = await client.post(f"/v1/tenants/{slug}/departments", json={"name": "Bürgeramt\n"}, headers=admin)
    body = _problem(response, 422)
    assert body["errors"] == [{"field": "name", "message": "`name` must be a single line (no line breaks or tabs)"}]

    # GraphQL: the mutation's payload names the field, nothing is stored.
    mutation = (
        "mutation($s: String!, $p: BillingProfileInput!) { setBillingProfile(tenantSlug: $s, input: $p) "
        "{ billingProfile { legalName } errors { code field } } }"
    )
    reply = await client.post(
        "/graphql", json={"query": mutation, "variables": {"s": slug, "p": profile}}, headers=finance
    )
    payload = reply.json()["data"]["setBillingProfile"]
    assert payload == {"billingProfile": None, "errors": [{"code": "VALIDATION_FAILED", "field": "legalName"}]}


def test_every_rest_body_is_an_input(app: Litestar) -> None:
    """The text rule lives in `Input`: a handler reading a body of another type would skip it.
    (Development sign-in and its issuers' token endpoint take forms; production has neither.)"""
    others = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/dev-idp/", "/dev-signin")):
            continue
        for handler in route.route_handlers:
            assert isinstance(handler, HTTPRouteHandler)
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            kinds = [data.annotation, *(inner.annotation for inner in data.inner_types)]
            if not any(isinstance(kind, type) and issubclass(kind, Input) for kind in kinds):
                others.append((route.path, data.annotation))
    assert not others


# --------------------------------------------------------------------------- times, numbers


async def test_times_are_iso_8601_strings_never_numbers(client: httpx.AsyncClient, world: World) -> None:
    slug = world.slug("kreis-soest")
    headers = world.headers("kreis-soest", "platform-admin")
    url = f"/v1/tenants/{slug}/operator-absences/dated"
    for body in (
        {"startsAt": 0, "endsAt": "2027-01-01T10:00:00+01:00"},
        {"startsAt": "2027-01-01T09:00:00+01:00", "endsAt": 86400},
    ):
        field = next(name for name, value in body.items() if isinstance(value, int))
        problem = _problem(await client.post(url, json=body, headers=headers), 422)
        assert [e["field"] for e in problem["errors"]] == [field]
        assert "ISO 8601" in problem["errors"][0]["message"]
    created = await client.post(
        url, json={"startsAt": "2027-01-01T09:00:00+01:00", "endsAt": "2027-01-01T10:00:00+01:00"}, headers=headers
    )
    assert created.status_code == 201, created.text
    await client.delete(f"{url.rsplit('/', 1)[0]}/{created.json()['id']}", headers=headers)

    # A call event's time, too (the telephony system's JSON).
    telephony = world.headers("kreis-soest", "telephony")
    event = {"externalId": f"t-{uuid.uuid4().hex[:8]}", "dialled": "02921 103-0", "type": "offered", "at": 0}
    problem = _problem(await client.post("/v1/calls/events", json=event, headers=telephony), 422)
    assert [e["field"] for e in problem["errors"]] == ["at"]
    record = {"externalId": event["externalId"], "dialled": "02921 103-0", "offeredAt": 1_700_000_000}
    problem = _problem(await client.post("/v1/calls", json=record, headers=telephony), 422)
    assert [e["field"] for e in problem["errors"]] == ["offeredAt"]

    # GraphQL's DateTime takes ISO strings only, as literal or variable.
    agent = world.headers("kreis-soest", "agent")
    for query, variables in (
        ('{ routingDecision(dialled: "02921 103-0", at: 0) { ours } }', {}),
        ('query($at: DateTime) { routingDecision(dialled: "02921 103-0", at: $at) { ours } }', {"at": 0}),
    ):
        reply = (await client.post("/graphql", json={"query": query, "variables": variables}, headers=agent)).json()
        assert reply["data"] is None and [e["extensions"]["code"] for e in reply["errors"]] == [
            "GRAPHQL_VALIDATION_FAILED"
        ], reply


async def test_an_unencoded_plus_in_a_dialled_number_is_refused_with_advice(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("kreis-soest", "telephony")
    response = await client.get("/v1/routing?dialled=+4929211030", headers=headers)
    assert str(response.request.url).endswith("dialled=+4929211030")  # sent as a PBX script does
    body = _problem(response, 422)
    assert body["errors"][0]["field"] == "dialled" and "%2B" in body["detail"]
    response = await client.get("/v1/routing?dialled=0292130&caller=+492942100", headers=headers)
    assert _problem(response, 422)["errors"][0]["field"] == "caller"
    encoded = await client.get("/v1/routing?dialled=%2B4929211030", headers=headers)
    assert encoded.status_code == 200, encoded.text
    spaced = await client.get("/v1/routing", params={"dialled": "02921 103-0"}, headers=headers)
    assert str(spaced.request.url).endswith("dialled=02921+103-0")  # a form encoder's space
    assert spaced.status_code == 200
    assert {**spaced.json(), "at": None} == {**encoded.json(), "at": None}  # the same number


# --------------------------------------------------------------------------- contract: 429, OPTIONS


def test_every_signed_in_operation_documents_its_429_with_retry_after() -> None:
    missing = []
    for method, path, operation in _operations():
        if not any("bearer" in requirement for requirement in operation.get("security", [])):
            continue  # not signed in as a person or machine client (/metrics has its own token)
        response = operation["responses"].get("429")
        # GeoReport's routes answer every error, 429 included, as its error array (decision 030).
        shape = "application/json" if path.startswith("/open311/") and path.endswith(("json", "_file}")) else None
        shape = "text/xml" if path.startswith("/open311/") and path.endswith(".xml") else shape
        # SCIM's routes answer every error as SCIM's error message (RFC 7644 §3.12, decision 027).
        shape = "application/scim+json" if path.startswith("/scim/") else shape
        if (
            response is None
            or (shape or "application/problem+json") not in response.get("content", {})
            or "Retry-After" not in response.get("headers", {})
        ):
            missing.append((method, path))
    assert not missing


async def test_options_lists_every_method_of_every_route(client: httpx.AsyncClient, app: Litestar) -> None:
    wrong = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1"):
            continue
        path = route.path_format
        for component in route.path_parameters.values():
            kind = getattr(component.type, "__name__", "str")
            value = {"UUID": str(uuid.uuid4()), "date": "2026-01-05", "int": "1"}.get(kind, "x")
            path = path.replace("{" + component.name + "}", value)
        response = await client.options(path)
        allowed = {method.strip() for method in response.headers.get("allow", "").split(",")}
        if response.status_code != 204 or allowed != set(route.methods):
            wrong.append((route.path, sorted(allowed), sorted(route.methods)))
    assert not wrong, wrong
