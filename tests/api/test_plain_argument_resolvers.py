"""Resolvers with plain arguments, called without strawberry's argument conversion
(backend/api/resolvers.py): the same answers as strawberry's own resolvers, and only where
strawberry would have passed every argument on unchanged.

A small schema of its own, built twice — once left to strawberry, once with the resolvers
replaced — and the same operations run against both.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission

from backend.api.resolvers import plain_argument_resolvers

TOWN = uuid.UUID("6f1d3c7e-2f59-4c1b-9a57-0d7f3c2b1a10")


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Never(BasePermission):
    message = "not allowed"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.input
class Window:
    days: int = 7


@strawberry.type
class Town:
    name: str

    @strawberry.field
    def greeting(self, loud: bool = False, times: int | None = None) -> str:
        text = f"hello {self.name}" * (times or 1)
        return text.upper() if loud else text


@strawberry.type
class Query:
    @strawberry.field
    def echo(
        self,
        info: strawberry.Info,
        text: str | None = None,
        number: int = 3,
        colour: Colour | None = None,
        town_id: uuid.UUID | None = None,
    ) -> str:
        return "|".join(
            map(repr, (info.field_name, info.path.key, text, number, colour, town_id, type(colour).__name__))
        )

    @strawberry.field
    async def slow(self, root: Any, times: int) -> str:
        return f"{root!r} {times}"

    @strawberry.field
    def failing(self, reason: str) -> str:
        raise ValueError(reason)

    @strawberry.field
    def town(self, name: str) -> Town:
        return Town(name=name)

    @strawberry.field
    def listed(self, names: list[str]) -> str:
        return ",".join(names)

    @strawberry.field
    def windowed(self, window: Window) -> int:
        return window.days

    @strawberry.field
    def maybe(self, text: strawberry.Maybe[str | None] = None) -> str:
        return repr(text)

    @strawberry.field(permission_classes=[Never])
    def guarded(self, text: str) -> str:
        return text


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, times: int) -> AsyncIterator[int]:
        for tick in range(times):
            yield tick


def _schema(replaced: bool) -> tuple[strawberry.Schema, int]:
    schema = strawberry.Schema(query=Query, subscription=Subscription)
    count = plain_argument_resolvers(schema._schema, schema.config, schema.schema_converter.scalar_registry)
    if not replaced:
        return strawberry.Schema(query=Query, subscription=Subscription), count
    return schema, count


def _resolvers(schema: strawberry.Schema) -> dict[str, Any]:
    fields = {f"Query.{n}": f for n, f in schema._schema.query_type.fields.items()}  # type: ignore[union-attr]
    fields["Town.greeting"] = schema._schema.type_map["Town"].fields["greeting"]  # type: ignore[attr-defined]
    fields["Subscription.ticks"] = schema._schema.subscription_type.fields["ticks"]  # type: ignore[union-attr]
    return {name: field.resolve for name, field in fields.items()}


def test_only_fields_whose_arguments_strawberry_passes_on_unchanged_are_replaced() -> None:
    original, _ = _schema(replaced=False)
    fast, count = _schema(replaced=True)
    before, after = _resolvers(original), _resolvers(fast)
    changed = {name for name in before if getattr(before[name], "__qualname__", None) != after[name].__qualname__}
    assert changed == {"Query.echo", "Query.slow", "Query.failing", "Query.town", "Town.greeting"}
    assert count == len(changed)


OPERATIONS: list[tuple[str, dict[str, Any] | None]] = [
    ("{ echo }", None),
    ('{ echo(text: "a", number: 5, colour: GREEN, townId: "6f1d3c7e-2f59-4c1b-9a57-0d7f3c2b1a10") }', None),
    (
        "query($t: String, $n: Int!, $c: Colour, $u: UUID) { one: echo(text: $t, number: $n, colour: $c, townId: $u) }",
        {"t": "x", "n": 1, "c": "RED", "u": str(TOWN)},
    ),
    ("query($t: String, $c: Colour) { echo(text: $t, colour: $c) }", {"t": None, "c": None}),
    ("query($t: String) { echo(text: $t) }", {}),
    ("{ slow(times: 2) }", None),
    ('{ failing(reason: "no") }', None),
    ('{ town(name: "Soest") { name greeting shout: greeting(loud: true, times: 2) } }', None),
    ('{ listed(names: ["a", "b"]) }', None),
    ("{ windowed(window: {}) }", None),
    ('{ m1: maybe m2: maybe(text: null) m3: maybe(text: "t") }', None),
    ('{ guarded(text: "t") }', None),
    ('{ echo(number: "five") }', None),
    ("query($n: Int!) { echo(number: $n) }", {"n": "five"}),
    ("query($c: Colour) { echo(colour: $c) }", {"c": "BLUE"}),
]


@pytest.mark.parametrize(("query", "variables"), OPERATIONS)
async def test_the_answers_are_strawberrys(query: str, variables: dict[str, Any] | None) -> None:
    answers = []
    for replaced in (False, True):
        schema, _ = _schema(replaced)
        result = await schema.execute(query, variable_values=variables)
        answers.append((result.data, [error.formatted for error in result.errors or ()]))
    assert answers[1] == answers[0]
    assert answers[0][0] is not None or answers[0][1]  # something was answered at all


def test_the_operation_type_is_remembered_per_document_and_name_within_bounds() -> None:
    """`operation_kind` (backend/api/operations.py) answers as strawberry's `get_operation_type`
    and keeps at most a handful of names per document: the name is the client's to choose."""
    from strawberry.types.graphql import OperationType

    from backend.api import operations
    from graphql import parse

    document = parse("query A { echo } mutation B { echo } subscription C { ticks(times: 1) }")
    assert operations.operation_kind(document, None) is OperationType.QUERY
    assert operations.operation_kind(document, "B") is OperationType.MUTATION
    assert operations.operation_kind(document, "C") is OperationType.SUBSCRIPTION
    assert operations.operation_kind(document, "B") is OperationType.MUTATION  # from the memo
    for n in range(100):
        assert operations.operation_kind(document, f"missing{n}") is None
    remembered = operations._KINDS.get(document, lambda _document: {})
    assert len(remembered) == operations._NAMES_PER_DOCUMENT
    assert remembered["B"] is OperationType.MUTATION
