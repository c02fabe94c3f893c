"""GraphQL's short paths (decision 020) answer exactly what graphql-core's own execution answers.

The app as it runs (short paths on) and the same app with them off (`GRAPHQL_SHORT_PATHS=false`:
graphql-core completes every field) get the same requests against the same database; their
response bodies must be equal byte for byte — data, errors, their order and extensions — for
full and partial selections, aliases, repeated fields, fragments, `__typename`, variables,
`@include`/`@skip`, nested resolvers, and refused requests. A small schema of its own checks what
real data cannot produce: a null in a non-null field, an Int out of range, a refused enum value,
a list item of the wrong kind (the short path must give up and leave the error to graphql-core).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from backend.api.execution import LeafShortcutExecutionContext
from backend.main import create_app
from backend.settings import Settings
from tests.support.asgi import serve
from tests.support.world import World

KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
TICKETS = 4

TICKET_FIELDS = (
    "id tenantId number departmentId departmentName status priority subject leikaKey articleId callId source "
    "assignee createdAt updatedAt deadlineStartedAt dueAt deadlineRule calendarVersion answeredAt closedAt "
    "personalDataErasedAt slaState changeSeq version"
)

# (name, query, variables(world) ) — every one is sent to both apps.
QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "the bench's page: all 25 fields, variables",
        "query Tickets($t: String!, $n: Int!) { tickets(tenant: $t, first: $n) "
        f"{{ nodes {{ {TICKET_FIELDS} }} pageInfo {{ endCursor hasNextPage }} }} }}",
        {"t": SOEST, "n": 50},
    ),
    (
        "a smaller page: the next page's cursor",
        "query($t: String!) { tickets(tenant: $t, first: 2) "
        "{ nodes { number subject } pageInfo { endCursor hasNextPage } } }",
        {"t": SOEST},
    ),
    (
        "partial selection, aliases, a field twice, __typename at every level",
        "query($t: String!) { __typename tickets(tenant: $t) { __typename nodes { __typename nr: number id "
        "state: status number sla: slaState due: dueAt closedAt } } }",
        {"t": SOEST},
    ),
    (
        "named and inline fragments, merged with plain fields",
        "fragment Head on Ticket { id subject status } "
        "query($t: String!) { tickets(tenant: $t) { nodes { ...Head ... on Ticket { priority subject } version } } }",
        {"t": SOEST},
    ),
    (
        "@include and @skip by variables",
        "query($t: String!, $with: Boolean!, $without: Boolean!) { tickets(tenant: $t) { nodes { "
        "id subject @include(if: $with) status @skip(if: $without) dueAt @include(if: $without) } } }",
        {"t": SOEST, "with": True, "without": True},
    ),
    (
        # The same text as above (one parsed document): what it collects must follow the variables.
        "@include and @skip by variables, the other way",
        "query($t: String!, $with: Boolean!, $without: Boolean!) { tickets(tenant: $t) { nodes { "
        "id subject @include(if: $with) status @skip(if: $without) dueAt @include(if: $without) } } }",
        {"t": SOEST, "with": False, "without": False},
    ),
    (
        "a nested resolver in the items: graphql-core completes them",
        "query($t: String!) { tickets(tenant: $t) { nodes { id number personalData { name callbackNumber } } } }",
        {"t": SOEST},
    ),
    (
        "an empty page",
        "query($t: String!) { tickets(tenant: $t, status: CLOSED) { nodes { id } pageInfo { hasNextPage } } }",
        {"t": GESEKE},
    ),
    (
        "one object, and a list without `first`",
        "query($t: String!) { tenant(tenant: $t) { __typename slug name id departments { id name active } } }",
        {"t": SOEST},
    ),
    ("me", "{ me { subject tenant { slug name } } }", {}),
    (
        "an error in a resolver: a tenant out of reach",
        'query { tickets(tenant: "no-such-town") { nodes { id } } }',
        {},
    ),
    (
        "a refused argument",
        "query($t: String!) { tickets(tenant: $t, first: 0) { nodes { id } } }",
        {"t": SOEST},
    ),
    ("an unknown field", "query($t: String!) { tickets(tenant: $t) { nodes { id colour } } }", {"t": SOEST}),
    (
        "a variable of the wrong type",
        "query($t: String!) { tickets(tenant: $t, first: $t) { nodes { id } } }",
        {"t": SOEST},
    ),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def graphql_core(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with the short paths off: graphql-core completes every field."""
    async with serve(
        create_app(dataclasses.replace(settings, graphql_short_paths=False)), "http://testserver.local"
    ) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tickets(client: httpx.AsyncClient, world: World) -> list[str]:
    """TICKETS open Soest tickets; their ids."""
    made: list[str] = []
    departments = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/departments", headers=world.headers(KREIS, "platform-admin")
    )
    department = next(d["id"] for d in departments.json() if d["name"] == "Bürgerbüro")
    for n in range(TICKETS):
        response = await client.post(
            "/v1/tickets",
            json={
                "tenantSlug": world.slug(SOEST),
                "subject": f"Kurze Wege {n}",
                "concern": "Nachfrage zum Antrag",
                "citizen": {"consent": True, "name": "Kim Kurzweg", "callbackNumber": "02921 1030"},
                "departmentId": department,
                "leikaKey": "99050012104000",
            },
            headers=world.headers(KREIS, "agent"),
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    return made


def _with_slugs(variables: dict[str, Any], world: World) -> dict[str, Any]:
    towns = {KREIS, SOEST, GESEKE}
    return {k: world.slug(v) if isinstance(v, str) and v in towns else v for k, v in variables.items()}


@pytest.mark.parametrize(("name", "query", "variables"), QUERIES, ids=[q[0] for q in QUERIES])
@pytest.mark.usefixtures("tickets")
async def test_the_short_paths_answer_byte_for_byte_what_graphql_core_answers(
    client: httpx.AsyncClient,
    graphql_core: httpx.AsyncClient,
    world: World,
    name: str,
    query: str,
    variables: dict[str, Any],
) -> None:
    body = json.dumps({"query": query, "variables": _with_slugs(variables, world)})
    headers = {**world.headers(KREIS, "agent"), "content-type": "application/json"}
    short = await client.post("/graphql", content=body, headers=headers)
    reference = await graphql_core.post("/graphql", content=body, headers=headers)
    assert short.status_code == reference.status_code
    assert short.content == reference.content, name
    # Again: now from the selections and plans kept across requests (decision 033, amended).
    again = await client.post("/graphql", content=body, headers=headers)
    assert (again.status_code, again.content) == (reference.status_code, reference.content), name
    answer = short.json()
    if "error" not in name and "refused" not in name and "unknown" not in name and "wrong type" not in name:
        assert "errors" not in answer, answer  # the cases meant to succeed do
    else:
        assert answer["errors"]


async def test_the_page_the_bench_reads_has_every_ticket(
    client: httpx.AsyncClient, world: World, tickets: list[str]
) -> None:
    """The comparison above is over real rows, not an empty page: the bench's page is full of
    tickets with every field, and the fixture's own are there (read by their number: more
    than a page of Soest tickets due earlier than these, made by tests that ran before, hid
    them from the page)."""
    body = {"query": QUERIES[0][1], "variables": _with_slugs(QUERIES[0][2], world)}
    answer = (await client.post("/graphql", json=body, headers=world.headers(KREIS, "agent"))).json()
    nodes = answer["data"]["tickets"]["nodes"]
    assert len(nodes) >= TICKETS
    assert set(nodes[0]) == set(TICKET_FIELDS.split())
    assert all(UUID(node["id"]) and node["createdAt"].endswith("+00:00") for node in nodes)
    for id_ in tickets:
        one = "query($id: UUID!) { ticket(id: $id) { subject createdAt } }"
        found = (
            await client.post(
                "/graphql", json={"query": one, "variables": {"id": id_}}, headers=world.headers(KREIS, "agent")
            )
        ).json()
        assert found["data"]["ticket"]["subject"].startswith("Kurze Wege "), found


# --- what real rows cannot produce ----------------------------------------------------------


@strawberry.enum
class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


@strawberry.type
class Item:
    id: UUID
    name: str
    count: int
    shade: Shade
    note: str | None
    at: datetime


class Stray:
    """An item as a resolver might wrongly hand one over: attributes of the wrong kind."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _items(n: int, **odd: Any) -> list[Any]:
    items: list[Any] = [
        Item(
            id=UUID(int=i),
            name=f"n{i}",
            count=i,
            shade=Shade.LIGHT,
            note=None if i % 2 else "x",
            at=datetime(2026, 12, 6, 21, i, i, i * 99_999, tzinfo=UTC),
        )
        for i in range(n)
    ]
    if odd:
        values = {
            "id": UUID(int=99),
            "name": "odd",
            "count": 1,
            "shade": Shade.DARK,
            "note": None,
            "at": datetime(2026, 12, 6, tzinfo=UTC),
            **odd,
        }
        items[n // 2] = Stray(**values)
    return items


CASES: dict[str, list[Any]] = {
    "plain": _items(6),
    "null in a non-null field": _items(6, name=None),
    "an Int out of 32 bits": _items(6, count=2**40),
    "a bool where an Int belongs": _items(6, count=True),
    "a number where a String belongs": _items(6, name=7),
    "the enum's value instead of its member": _items(6, shade="light"),
    "a value that is no member of the enum": _items(6, shade="purple"),
    "a list where a String belongs": _items(6, name=["a"]),
    "a time in Berlin": _items(6, at=datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))),
    "a time whose offset has seconds": _items(6, at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=3661)))),
    "a time without a zone": _items(6, at=datetime(2026, 1, 1, 12)),
    "a text where a UUID belongs": _items(6, id="not-a-uuid"),
    "a missing attribute": [*_items(3), object()],
    "a null item in a non-null list": [*_items(3), None],
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, case: str) -> list[Item]:
        return CASES[case]

    @strawberry.field
    def maybe_items(self, case: str) -> list[Item | None] | None:
        return CASES[case]


class Counting(LeafShortcutExecutionContext):
    fields = 0

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        Counting.fields += 1
        return super().execute_field(*args, **kwargs)


SELECTION = "{ __typename id name count shade note at alias: name }"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("field", ["items", "maybeItems"])
async def test_values_the_short_path_does_not_answer_for_go_to_graphql_core(case: str, field: str) -> None:
    short = strawberry.Schema(query=Query, execution_context_class=Counting)
    reference = strawberry.Schema(query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    query = f'{{ {field}(case: "{case}") {SELECTION} }}'
    Counting.fields = 0
    got = await short.execute(query)
    expected = await reference.execute(query)
    assert json.dumps(got.data) == json.dumps(expected.data)
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    if case == "plain":
        assert not got.errors
        assert Counting.fields == 1  # the root field; the six items' seven fields took the short path
    if expected.errors:
        assert Counting.fields > 1  # graphql-core completed the list again, and reported the error
