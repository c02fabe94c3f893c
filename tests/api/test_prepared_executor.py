"""Executors built from what a document fixes once (backend/api/prepared.py): the same as
graphql-core's `Executor.build` for every request after the first, variables that the short
way coerces and variables that it leaves to graphql-core alike.

A small schema of its own; each document is first run once (which keeps its operation), then
each case is built both ways and compared: the coerced variables, the errors word for word, the
executed result.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

import pytest
import strawberry

from backend.api.execution import LeafShortcutExecutionContext
from backend.api.prepared import prepared_executor
from backend.api.suggestions import ExecutionWithoutSuggestions
from graphql import ExecutionResult, GraphQLError, parse


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@strawberry.input
class Window:
    days: int = 7


@strawberry.type
class Query:
    @strawberry.field
    def echo(
        self,
        text: str | None = None,
        number: int = 3,
        colour: Colour | None = None,
        town_id: uuid.UUID | None = None,
        names: list[str] | None = None,
        window: Window | None = None,
    ) -> str:
        return "|".join(map(repr, (text, number, colour, town_id, names, window and window.days)))


class Hiding(ExecutionWithoutSuggestions, LeafShortcutExecutionContext):
    pass


SCHEMA = strawberry.Schema(query=Query)._schema

PLAIN = "query($t: String!, $n: Int, $c: Colour, $u: UUID) { echo(text: $t, number: $n, colour: $c, townId: $u) }"
DEFAULT = 'query($t: String = "x", $n: Int) { echo(text: $t, number: $n) }'
LIST = "query($l: [String!]) { echo(names: $l) }"
INPUT = "query($w: Window) { echo(window: $w) }"
NAMED = "query A($t: String!) { echo(text: $t) } query B($n: Int!) { echo(number: $n) }"

CASES: list[tuple[str, str | None, dict[str, Any] | None]] = [
    (PLAIN, None, {"t": "a", "n": 2, "c": "GREEN", "u": "6f1d3c7e-2f59-4c1b-9a57-0d7f3c2b1a10"}),
    (PLAIN, None, {"t": "a"}),
    (PLAIN, None, {"t": "a", "n": None, "c": None, "u": None}),
    (PLAIN, None, {"t": "a", "extra": 1}),
    (PLAIN, None, {}),  # a required variable missing
    (PLAIN, None, None),
    (PLAIN, None, {"t": None}),  # null for a non-null variable
    (PLAIN, None, {"t": 5}),  # a number for a String
    (PLAIN, None, {"t": "a", "n": "2"}),
    (PLAIN, None, {"t": "a", "n": 2**40}),
    (PLAIN, None, {"t": "a", "c": "BLUE"}),
    (PLAIN, None, {"t": "a", "c": "green"}),
    (PLAIN, None, {"t": "a", "u": "not a uuid"}),
    (PLAIN, None, {"t": ["a"]}),
    (DEFAULT, None, {}),
    (DEFAULT, None, {"t": "y", "n": 1}),
    (DEFAULT, None, {"n": "x"}),
    (LIST, None, {"l": ["a", "b"]}),
    (LIST, None, {"l": "a"}),
    (LIST, None, {"l": [None]}),
    (INPUT, None, {"w": {"days": 3}}),
    (INPUT, None, {"w": {}}),
    (INPUT, None, {"w": {"weeks": 1}}),
    (NAMED, "A", {"t": "a"}),
    (NAMED, "B", {"n": 4}),
    (NAMED, "B", {"n": "4"}),
    (NAMED, "C", {}),  # no such operation: never kept
    (NAMED, None, {}),  # two operations, no name
]


def _built(executor_class: Any, query: str, name: str | None, variables: dict[str, Any] | None, prepared: bool) -> Any:
    document = _documents.setdefault(query, parse(query))
    if prepared:
        return prepared_executor(executor_class, SCHEMA, document, None, variables, name, stable_selections=True)
    return executor_class.build(SCHEMA, document, None, None, variables, name, stable_selections=True)


_documents: dict[str, Any] = {}


def _outcome(built: Any) -> Any:
    if isinstance(built, list):
        assert all(isinstance(error, GraphQLError) for error in built)
        return [error.formatted for error in built]
    result = built.execute_operation()
    assert isinstance(result, ExecutionResult)
    return (
        built.variable_values.coerced,
        {name: source.value for name, source in built.variable_values.sources.items()},
        built.hide_suggestions,
        built.operation,
        result.data,
        [error.formatted for error in result.errors or ()],
    )


@pytest.mark.parametrize("executor_class", [LeafShortcutExecutionContext, Hiding])
@pytest.mark.parametrize(("query", "name", "variables"), CASES)
def test_prepared_executor_equals_graphql_cores(
    executor_class: Any,
    query: str,
    name: str | None,
    variables: dict[str, Any] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = {PLAIN: {"t": "a"}, DEFAULT: {}, LIST: {}, INPUT: {}, NAMED: {"t": "a"} if name != "B" else {"n": 1}}
    # The first request of the document and name is graphql-core's; it keeps what it found.
    first = prepared_executor(
        executor_class,
        SCHEMA,
        _documents.setdefault(query, parse(query)),
        None,
        good[query],
        name,
        stable_selections=True,
    )
    expected = _outcome(_built(executor_class, query, name, variables, prepared=False))
    if not isinstance(first, list):
        # Once a document and name have run, graphql-core's `build` is not asked again.
        monkeypatch.setattr(executor_class, "build", classmethod(lambda *_a, **_k: pytest.fail("built again")))
    assert _outcome(_built(executor_class, query, name, variables, prepared=True)) == expected


def test_suggestions_stay_hidden_where_the_executor_hides_them() -> None:
    document = parse("query($c: Colour) { echo(colour: $c) }")
    for executor_class, hidden in ((Hiding, True), (LeafShortcutExecutionContext, False)):
        kept = prepared_executor(executor_class, SCHEMA, document, None, {"c": "GREEN"}, None)
        assert not isinstance(kept, list)
        refused = prepared_executor(executor_class, SCHEMA, document, None, {"c": "GREN"}, None)
        assert isinstance(refused, list)
        assert ("Did you mean" not in refused[0].message) is hidden
