"""GraphQL limits: depth, aliases, tokens, and a simple cost estimate.

Cost: every field costs 1; a field taking `first` multiplies what is below it by `first`
(default 50 when absent), so `tenants(first: 100) { departments { name } }` costs ~200. The
multiplier is clamped to [1, max page size]: what a client asks for cannot make the estimate
smaller than one item per field (a negative `first` once switched the limit off), and no page
is larger than the cap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar

from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.schema import validate_document

from backend.api.suggestions import HideSuggestions
from backend.errors import ErrorCode, QueryTooComplex
from backend.i18n import _l
from backend.settings import Settings
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)

DEFAULT_PAGE = 50
T = TypeVar("T")


# A selection's cost as data: (fields without a selection, [(multiplier, cost of the field's
# selection)]), the multiplier a page size or a variable's name with its default page.
Multiplier = int | tuple[str, int]
Plan = tuple[int, tuple[tuple[Multiplier, "Plan"], ...]]


def _multiplier(field: FieldNode, defaults: dict[str, int], max_page: int) -> Multiplier:
    """The field's `first`: a literal, or a variable read per request (1 without `first`)."""
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, IntValueNode):
            return max(1, min(int(argument.value.value), max_page))
        if isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            return (name, defaults.get(name, DEFAULT_PAGE))
        return DEFAULT_PAGE
    return 1


def _plan(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    defaults: dict[str, int],
    max_page: int,
    seen: frozenset[str],
) -> Plan:
    leaves = 0
    below: list[tuple[Multiplier, Plan]] = []
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            if selection.selection_set is None:
                leaves += 1
            else:
                sub = _plan(selection.selection_set, fragments, defaults, max_page, seen)
                below.append((_multiplier(selection, defaults, max_page), sub))
        elif isinstance(selection, InlineFragmentNode):
            inner = _plan(selection.selection_set, fragments, defaults, max_page, seen)
            leaves += inner[0]
            below.extend(inner[1])
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                inner = _plan(fragment.selection_set, fragments, defaults, max_page, seen | {name})
                leaves += inner[0]
                below.extend(inner[1])
    return leaves, tuple(below)


class DocumentMemo:
    """Results per parsed document, keyed by its identity: the parser cache hands out one
    document per query text. Not keyed by the document's value: graphql-core hashes the whole
    tree, ~100 µs per request for a 50-ticket query (strawberry's ValidationCache paid it on
    every request). The memo keeps its documents alive, so an id cannot be reused meanwhile."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._items: dict[int, tuple[DocumentNode, Any]] = {}

    def get(self, document: DocumentNode, compute: Callable[[DocumentNode], T]) -> T:
        hit = self._items.get(id(document))
        if hit is not None and hit[0] is document:
            value: T = hit[1]
            return value
        value = compute(document)
        if len(self._items) >= self.maxsize:
            self._items.pop(next(iter(self._items)))  # the oldest
        self._items[id(document)] = (document, value)
        return value


def cost_plans(document: DocumentNode, max_page: int) -> tuple[Plan, ...]:
    """One plan per operation of the document."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    plans = []
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        defaults = {
            v.variable.name.value: int(v.default_value.value)
            for v in operation.variable_definitions or ()
            if isinstance(v.default_value, IntValueNode)
        }
        plans.append(_plan(operation.selection_set, fragments, defaults, max_page, frozenset()))
    return tuple(plans)


def cost(plan: Plan, variables: dict[str, Any], max_page: int) -> int:
    """Every field costs 1; a field's selection costs `first` times over, `first` in
    [1, max_page] whatever the client sent, variables with the values of this request."""
    leaves, below = plan
    total = leaves
    for multiplier, sub in below:
        if isinstance(multiplier, tuple):
            name, default = multiplier
            value = variables.get(name, default)
            requested = value if isinstance(value, int) and not isinstance(value, bool) else default
            multiplier = max(1, min(requested, max_page))
        total += 1 + multiplier * cost(sub, variables, max_page)
    return total


class Limits:
    """The limits of one schema, as steps both drivers of a GraphQL request call (decision 033):
    the HTTP pipeline (`backend/api/pipeline.py`) directly, strawberry's execution (WebSocket
    subscriptions, and the HTTP requests the pipeline leaves to it) through `limit_extensions`.

    Built once per schema: the validation rules, the parser cache and the per-document memos.
    Strawberry's limiter extensions would make new rule classes for every request."""

    def __init__(self, settings: Settings) -> None:
        limits = settings.graphql
        self.max_tokens = limits.max_tokens
        self.max_cost = limits.max_cost
        self.max_page = limits.max_page_size
        rules: list[type[ASTValidationRule]] = [
            *specified_rules,
            depth_validator(limits.max_depth, None),
            alias_validator(limits.max_aliases),
        ]
        if not settings.graphql_introspection:
            # Suggestions would spell out what introspection hides (backend/api/suggestions.py).
            rules += [NoSchemaIntrospectionCustomRule, HideSuggestions]
        self.rules = tuple(rules)
        # Parsing and validating the same operation again is wasted work: front ends send a
        # handful of documents over and over. Validation here does not depend on variables.
        self._parse = lru_cache(maxsize=512)(parse)
        self._validated, self._costs = DocumentMemo(), DocumentMemo()

    def parse(self, query: str) -> DocumentNode:
        """The document of a query text, parsed once per text (the token limit applies);
        raises the parser's GraphQLError."""
        return self._parse(query, max_tokens=self.max_tokens)

    def validation_errors(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        """graphql-core's rules, depth and aliases (and no suggestions where introspection is
        off), once per document. The list is shared: callers must not change it."""
        return self._validated.get(document, lambda d: validate_document(schema, d, self.rules))

    def cost_error(self, document: DocumentNode, variables: dict[str, Any]) -> GraphQLError | None:
        """The cost rule, with the request's variables (`first: $n` counts as `$n`).

        Not a validation rule: validation is cached per document and knows no variables, so a
        variable used to count as the default page, and aliases with `first: $n` passed at about
        twice the limit. It runs after the (cached) validation of a valid document; the plan is
        built once per document, so a request only multiplies a few numbers."""
        plans, fixed = self._costs.get(document, self._cost_plans)
        estimate = fixed if fixed is not None else max((cost(p, variables, self.max_page) for p in plans), default=0)
        if estimate <= self.max_cost:
            return None
        # The message is translated per request (ErrorCodes), from the original error.
        too_complex = QueryTooComplex(
            _l(
                "query cost {cost} exceeds the limit of {limit}; ask for fewer items",
                cost=estimate,
                limit=self.max_cost,
            )
        )
        return GraphQLError(
            str(too_complex.message),
            next((d for d in document.definitions if isinstance(d, OperationDefinitionNode)), None),
            original_error=too_complex,
            extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value, "cost": estimate},
        )

    def _cost_plans(self, document: DocumentNode) -> tuple[tuple[Plan, ...], int | None]:
        """The document's plans, and its estimate when no variable counts in it (then the
        variables cannot change it: the same for every request)."""
        plans = cost_plans(document, self.max_page)
        if any(_counts_a_variable(p) for p in plans):
            return plans, None
        return plans, max((cost(p, {}, self.max_page) for p in plans), default=0)


def _counts_a_variable(plan: Plan) -> bool:
    return any(isinstance(multiplier, tuple) or _counts_a_variable(sub) for multiplier, sub in plan[1])


class ParseAndLimit(SchemaExtension):
    """`Limits` inside strawberry's execution: parse (cached; a document that does not parse is
    left to strawberry's own parse, which reports the error and its code as usual), validate
    (cached), then the cost."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        # Strawberry's own parse (after a failed cached one) applies the same token limit.
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # On failure strawberry parses again, where errors are reported (and coded) as usual.
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.limits.parse(context.query or "")
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            context.pre_execution_errors = self.limits.validation_errors(context.schema._schema, document)
            if not context.pre_execution_errors:
                too_complex = self.limits.cost_error(document, context.variables or {})
                if too_complex is not None:
                    # A new list: the cached validation result must stay as it was.
                    context.pre_execution_errors = [too_complex]
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Factories: strawberry builds fresh extension instances for every operation."""
    return [lambda: ParseAndLimit(limits)]
