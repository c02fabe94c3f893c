"""GraphQL over HTTP: limits, introspection and GraphiQL switches, error codes and masking, N+1."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest_asyncio
import strawberry
from asyncpg.connection import LoggedQuery
from litestar import Litestar
from strawberry.litestar import make_graphql_controller

from backend.api.errors import ErrorCodes
from backend.main import create_app
from backend.settings import GraphQLLimits, Settings
from backend.state import unit_of_work
from backend.tenants import service
from backend.tenants.schemas import AgreementCreate
from tests.support.asgi import serve
from tests.support.world import World, make_tenant, system_principal

Client = httpx.AsyncClient
BASE_URL = "http://testserver.local"
# Depth 2 is the smallest the settings accept; the schema itself is only three levels deep.
STRICT_LIMITS = GraphQLLimits(max_depth=2, max_aliases=3, max_tokens=200, max_cost=100)


async def post(client: Client, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def strict(settings: Settings) -> AsyncIterator[Client]:
    """The app as production runs it: small limits, no introspection, no GraphiQL."""
    strict_settings = dataclasses.replace(
        settings, graphql=STRICT_LIMITS, graphql_introspection=False, graphiql_enabled=False
    )
    async with serve(create_app(strict_settings), BASE_URL) as client:
        yield client


# --------------------------------------------------------------------------- limits


async def test_depth_limit(strict: Client, client: Client, world: World) -> None:
    headers = world.headers("stadt-soest", "agent")
    deep = "{ me { tenant { departments { name } } } }"
    shallow = "{ me { tenant { name } } }"
    rejected = await post(strict, "query Deep " + deep, headers)
    assert rejected.get("data") is None
    assert "exceeds maximum operation depth of 2" in rejected["errors"][0]["message"]
    assert codes(rejected) == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await post(strict, shallow, headers))["data"]["me"]["tenant"]["name"]
    # The default limit (10) lets the same query through.
    assert "errors" not in await post(client, deep, headers)


async def test_alias_limit(strict: Client, world: World) -> None:
    headers = world.headers("stadt-soest", "agent")
    too_many = "{ a: me { subject } b: me { subject } c: me { subject } d: me { subject } }"
    rejected = await post(strict, too_many, headers)
    assert rejected.get("data") is None
    assert "aliases found. Allowed: 3" in rejected["errors"][0]["message"]
    assert codes(rejected) == ["GRAPHQL_VALIDATION_FAILED"]
    allowed = await post(strict, "{ a: me { subject } b: me { subject } c: me { subject } }", headers)
    assert "errors" not in allowed and allowed["data"]["c"]["subject"]


async def test_token_limit(strict: Client) -> None:
    fields = " ".join(["__typename"] * 250)
    rejected = await post(strict, "{ " + fields + " }")
    assert rejected.get("data") is None
    assert "more than 200 tokens" in rejected["errors"][0]["message"]
    # Parse errors go through the same error extension as the rest (the parser cache once let
    # them bypass it, without a code).
    assert codes(rejected) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(await post(strict, "{ me { ")) == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await post(strict, "{ __typename }"))["data"] == {"__typename": "Query"}


async def test_cost_limit_rejects_before_any_resolver_runs(strict: Client, client: Client, world: World) -> None:
    # Cost: 1 (tenants) + 100 (first) × (1 nodes + 3 fields) = 401 > 100.
    query = "{ tenants(first: 100) { nodes { slug name kind } } }"
    rejected = await post(strict, query)  # no token: limits apply before authentication
    assert rejected.get("data") is None
    error = rejected["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 401 and "limit of 100" in error["message"]
    # The default limit (5000) allows this query; a wider one built from aliases does not.
    headers = world.headers("kreis-soest", "supervisor")
    assert "errors" not in await post(client, query, headers)
    selection = "nodes { slug name departments { id name email phone active } closingDays { day name } }"
    wide = "{ " + " ".join(f"t{i}: tenants(first: 100) {{ {selection} }}" for i in range(5)) + " }"
    assert codes(await post(client, wide, headers)) == ["QUERY_TOO_COMPLEX"]


async def test_a_negative_or_huge_first_cannot_switch_the_cost_limit_off(strict: Client) -> None:
    # `first` multiplies within [1, 100]: a negative page once made the cost negative, and
    # with it any sibling of any cost passed. 401 (as above) + 1 + 1 × 4 = 406.
    page = "{ nodes { slug name kind } }"
    for first in ("-1000000", "0"):
        query = f"{{ a: tenants(first: 100) {page} b: tenants(first: {first}) {page} }}"
        error = (await post(strict, query))["errors"][0]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["cost"] == 406
    huge = (await post(strict, f"{{ tenants(first: 1000000) {page} }}"))["errors"][0]
    assert huge["extensions"]["cost"] == 401  # no page is larger than 100
    # A variable counts with its value, clamped the same way.
    query = f"query($n: Int!) {{ a: tenants(first: 100) {page} b: tenants(first: $n) {page} }}"
    error = (await post(strict, query, n=-1000000))["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 406


async def test_first_from_a_variable_counts_with_its_value(client: Client, world: World) -> None:
    """`first: $n` once counted as 50 whatever `$n` was (validation is cached per document and
    saw no variables): 15 aliases of `first: $n` with n = 100 passed at 1.5× the limit of 5000."""
    headers = world.headers("kreis-soest", "supervisor")
    selection = "nodes { slug name departments { id } }"  # 1 + n × (1 + 2 + 2) per alias
    query = "query($n: Int!) { " + " ".join(f"t{i}: tenants(first: $n) {{ {selection} }}" for i in range(15)) + " }"
    # The same document, first as allowed (15 × 251 = 3765), then over the limit: the cost is
    # not cached with the validation.
    assert "errors" not in await post(client, query, headers, n=50)
    refused = await post(client, query, headers, n=100)
    assert refused.get("data") is None
    assert codes(refused) == ["QUERY_TOO_COMPLEX"]
    assert refused["errors"][0]["extensions"]["cost"] == 15 * (1 + 100 * 5)
    assert "errors" not in await post(client, query, headers, n=50)
    # A variable's default counts when the request leaves it out.
    with_default = query.replace("$n: Int!", "$n: Int = 100")
    assert codes(await post(client, with_default, headers)) == ["QUERY_TOO_COMPLEX"]
    assert "errors" not in await post(client, with_default, headers, n=10)


async def test_page_size_above_100_is_a_validation_error(client: Client, world: World) -> None:
    body = await post(client, "{ tenants(first: 101) { nodes { slug } } }", world.headers("kreis-soest", "agent"))
    assert body["data"] is None
    assert codes(body) == ["VALIDATION_FAILED"]
    assert "between 1 and 100" in body["errors"][0]["message"]


# --------------------------------------------------------------------------- introspection, GraphiQL


INTROSPECTION = "{ __schema { queryType { name } mutationType { name } } }"


async def test_introspection_works_in_the_test_settings(client: Client) -> None:
    body = await post(client, INTROSPECTION)
    assert body["data"]["__schema"] == {"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}


async def test_introspection_can_be_switched_off(strict: Client) -> None:
    body = await post(strict, INTROSPECTION)
    assert body.get("data") is None
    assert "introspection has been disabled" in body["errors"][0]["message"]
    type_probe = await post(strict, '{ __type(name: "Tenant") { name } }')
    assert type_probe.get("data") is None


async def test_graphiql_is_served_when_enabled(client: Client) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_absent_when_disabled(strict: Client) -> None:
    response = await strict.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code >= 400
    assert "graphiql" not in response.text.lower()


# --------------------------------------------------------------------------- errors


async def test_missing_token_is_unauthenticated(client: Client) -> None:
    body = await post(client, "{ me { subject } }")
    assert body["data"] is None
    assert codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["path"] == ["me"]


async def test_agent_may_not_read_agreements(client: Client, world: World) -> None:
    body = await post(client, "{ agreements { id } }", world.headers("kreis-soest", "agent"))
    assert body["data"] is None
    assert codes(body) == ["FORBIDDEN"]
    allowed = await post(client, "{ agreements { id } }", world.headers("kreis-soest", "supervisor"))
    assert "errors" not in allowed and allowed["data"]["agreements"]


CREATE_TENANT = """
mutation CreateTenant($input: CreateTenantInput!) {
  createTenant(input: $input) { tenant { slug } errors { code message field } }
}
"""


async def test_mutation_errors_are_in_the_payload(client: Client, world: World) -> None:
    headers = world.headers("kreis-soest", "platform-admin")
    bad = await post(client, CREATE_TENANT, headers, input={"slug": "Bad Slug", "name": "x", "kind": "TOWN"})
    assert "errors" not in bad
    payload = bad["data"]["createTenant"]
    assert payload["tenant"] is None
    assert payload["errors"][0]["code"] == "VALIDATION_FAILED" and payload["errors"][0]["field"] == "slug"

    good = {"slug": f"gemeinde-welver-{uuid.uuid4().hex[:6]}", "name": "Gemeinde Welver", "kind": "MUNICIPALITY"}
    created = await post(client, CREATE_TENANT, headers, input=good)
    assert created["data"]["createTenant"] == {"tenant": {"slug": good["slug"]}, "errors": []}
    duplicate = (await post(client, CREATE_TENANT, headers, input=good))["data"]["createTenant"]
    assert duplicate["tenant"] is None
    assert duplicate["errors"][0]["code"] == "DUPLICATE" and duplicate["errors"][0]["field"] == "slug"


async def test_mutation_needs_the_role(client: Client, world: World) -> None:
    body = await post(
        client,
        CREATE_TENANT,
        world.headers("kreis-soest", "agent"),
        input={"slug": f"nope-{uuid.uuid4().hex[:6]}", "name": "x", "kind": "TOWN"},
    )
    assert body["data"] is None and codes(body) == ["FORBIDDEN"]


@strawberry.type
class BuggyQuery:
    @strawberry.field
    def share(self, people: int) -> int:
        return 100 // people  # people = 0: ZeroDivisionError, a bug a client can trigger


async def test_unexpected_exceptions_are_masked() -> None:
    schema = strawberry.Schema(query=BuggyQuery, extensions=[ErrorCodes])
    app = Litestar(route_handlers=[make_graphql_controller(schema, path="/graphql")])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"Accept-Language": "en"}) as buggy:
        assert (await post(buggy, "{ share(people: 4) }"))["data"] == {"share": 25}
        response = await buggy.post("/graphql", json={"query": "{ share(people: 0) }"})
    body = response.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL"}
    assert error["message"] == "Internal error; the request id identifies it in our logs."
    assert error["path"] == ["share"]
    for leak in ("ZeroDivision", "division", "Traceback", "test_graphql.py"):
        assert leak not in response.text


# --------------------------------------------------------------------------- N+1


# Sign-in looks up issuers and acting tenants when Redis has forgotten them (any test that adds
# a tenant or an agreement, in any session sharing Redis, makes it forget): not the query's cost.
SIGN_IN_LOOKUPS = (
    "auth_issuer_bindings(",
    "auth_client_tenant_ids(",
    "auth_settled_client_tenant_ids(",
    "auth_all_tenant_ids(",
)
POOL_RESET = "SELECT pg_advisory_unlock_all()"


class QueryLog:
    """Every statement the app's pool runs, via asyncpg's query logger on each connection."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: LoggedQuery) -> None:
        self.queries.append(" ".join(record.query.split()))

    async def attach(self, app: Litestar, pool_size: int) -> None:
        pool = app.state.app_state.pool
        # Holding every connection at once reaches each of them; loggers survive release.
        connections = [await pool.acquire() for _ in range(pool_size)]
        for conn in connections:
            conn.add_query_logger(self)
        for conn in connections:
            await pool.release(conn)

    async def settle(self) -> list[str]:
        for _ in range(3):  # loggers are called with loop.call_soon
            await asyncio.sleep(0)
        taken, self.queries = self.queries, []
        return [q for q in taken if not q.startswith(POOL_RESET) and not any(f in q for f in SIGN_IN_LOOKUPS)]


async def test_departments_and_closing_days_of_a_page_are_loaded_in_one_query_each(
    settings: Settings, world: World
) -> None:
    pool_size = 2
    app = create_app(dataclasses.replace(settings, db_pool_min=pool_size, db_pool_max=pool_size))
    log = QueryLog()
    headers = world.headers("kreis-soest", "supervisor")  # acts for the three towns of the world
    query = (
        "query Page($first: Int!) "
        "{ tenants(first: $first) { nodes { slug departments { name } closingDays { day } } } }"
    )
    async with serve(app, BASE_URL) as counted:
        await log.attach(app, pool_size)
        await post(counted, query, headers, first=1)  # warm caches (issuer, acting tenants)
        await log.settle()

        statements: dict[int, list[str]] = {}
        for first in (1, 3):
            body = await post(counted, query, headers, first=first)
            assert "errors" not in body
            nodes = body["data"]["tenants"]["nodes"]
            assert len(nodes) == first and all(n["departments"] for n in nodes)
            statements[first] = await log.settle()

    for first, ran in statements.items():
        assert len([q for q in ran if "FROM departments" in q]) == 1, (first, ran)
        assert len([q for q in ran if "FROM closing_days" in q]) == 1, (first, ran)
    # Three tenants cost exactly what one costs: no statement per tenant. Today that is three
    # transactions (tenants, then one batch per loader) of BEGIN, tenant scope, SELECT and COMMIT.
    assert len(statements[3]) == len(statements[1]) <= 12, statements


# --------------------------------------------------------------------------- hostile input, pinned


async def test_hostile_input_gets_an_error_code_never_internal(client: Client, world: World) -> None:
    """Inputs that once reached PostgreSQL or date arithmetic and came back as INTERNAL."""
    headers = world.headers("kreis-soest", "platform-admin")
    slug = f"hostile-{uuid.uuid4().hex[:6]}"
    tenant_id = await make_tenant(world.state, slug)
    operator = system_principal(world.tenant_ids["kreis-soest"], {world.tenant_ids["kreis-soest"], tenant_id})
    async with unit_of_work(world.state, operator) as uow:
        view = await service.create_agreement(
            uow, AgreementCreate(client_tenant_id=tenant_id, starts_on=date(2090, 1, 1))
        )

    lookup = await post(client, "query($s: String!) { tenant(slug: $s) { slug } }", headers, s="a\x00b")
    assert codes(lookup) == ["VALIDATION_FAILED"] and lookup["data"] is None  # not a slug that could exist
    page = await post(client, "query($a: String) { tenants(after: $a) { nodes { slug } } }", headers, a="\x00")
    assert codes(page) == ["VALIDATION_FAILED"]
    far = await post(client, "query($on: Date) { agreements(on: $on) { id } }", headers, on="9999-12-31")
    assert codes(far) == ["VALIDATION_FAILED"]

    mutations: list[tuple[str, dict[str, Any], str | None]] = [
        (CREATE_TENANT, {"input": {"slug": f"blank-{uuid.uuid4().hex[:6]}", "name": "   ", "kind": "TOWN"}}, "name"),
        (
            "mutation($s: String!, $n: String!) { addDepartment(tenantSlug: $s, input: {name: $n}) "
            "{ errors { code message field } } }",
            {"s": slug, "n": "Amt\x00"},
            "name",
        ),
        (
            'mutation($s: String!) { setClosingDay(tenantSlug: $s, day: "2025-12-24", name: "  ") '
            "{ errors { code message field } } }",
            {"s": slug},
            "name",
        ),
        (
            'mutation($id: UUID!) { terminateAgreement(id: $id, noticedOn: "9999-12-31") '
            "{ errors { code message field } } }",
            {"id": str(view.agreement.id)},
            "noticedOn",
        ),
        (
            'mutation($c: UUID!) { createAgreement(input: {clientTenantId: $c, startsOn: "9999-12-01"}) '
            "{ errors { code message field } } }",
            {"c": str(tenant_id)},
            "startsOn",
        ),
    ]
    for query, variables, field in mutations:
        body = await post(client, query, headers, **variables)
        assert "errors" not in body, (query, body)
        (payload,) = body["data"].values()
        assert [e["code"] for e in payload["errors"]] == ["VALIDATION_FAILED"], (query, payload)
        if field is not None:
            assert payload["errors"][0]["field"] == field, (query, payload)
