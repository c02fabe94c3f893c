"""GraphQL string arguments (`tenant:`, `q:`, `slug:`, `after:` …) never carry control characters.

A NUL in `knowledgeSearch(tenant: "\\u0000")` reached PostgreSQL, which refuses NUL, and came
back INTERNAL. Text inside input objects is the Input structs' to check (`backend.structs`,
through `to_input`): there a bad field is the mutation payload's error naming the field. What is
left, the String and ID arguments themselves, is checked here for every operation, as literals
and as variables: a request-level VALIDATION_FAILED error naming the argument, nothing executed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from backend.errors import ErrorCode, ValidationFailed
from backend.i18n import _l
from backend.structs import CONTROL_CHARACTERS
from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    ListValueNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult

_TEXT_SCALARS = frozenset({"String", "ID"})


class _StringArguments(Visitor):
    """Literal strings and variables given to String/ID arguments, with the argument's name."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.literals: list[tuple[str, str]] = []
        self.variables: list[tuple[str, str]] = []

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        argument = self.type_info.get_argument()
        named = get_named_type(argument.type) if argument is not None else None
        if isinstance(named, GraphQLScalarType) and named.name in _TEXT_SCALARS:
            self._collect(node.value, node.name.value)

    def _collect(self, value: ValueNode, name: str) -> None:
        if isinstance(value, StringValueNode):
            self.literals.append((value.value, name))
        elif isinstance(value, VariableNode):
            self.variables.append((value.name.value, name))
        elif isinstance(value, ListValueNode):
            for item in value.values:
                self._collect(item, name)


_Found = tuple[str | None, tuple[tuple[str, str], ...]]
# By document text: front ends send a handful of documents over and over (hashing a parsed
# document would walk all of it).
_FOUND: dict[str, _Found] = {}
_KEEP = 512


def _string_arguments(schema: GraphQLSchema, query: str, document: DocumentNode) -> _Found:
    """(the argument whose literal holds a control character, or None; (variable, argument)…)."""
    found = _FOUND.get(query)
    if found is None:
        type_info = TypeInfo(schema)
        collected = _StringArguments(type_info)
        visit(document, TypeInfoVisitor(type_info, collected))
        bad = next((name for value, name in collected.literals if CONTROL_CHARACTERS.search(value)), None)
        found = (bad, tuple(collected.variables))
        if len(_FOUND) >= _KEEP:
            _FOUND.clear()
        _FOUND[query] = found
    return found


def _holds_control_character(value: object) -> bool:
    if isinstance(value, str):
        return CONTROL_CHARACTERS.search(value) is not None
    if isinstance(value, list):
        return any(_holds_control_character(item) for item in value)
    return False


def refused_argument(
    schema: GraphQLSchema, query: str, document: DocumentNode, variables: dict[str, Any]
) -> str | None:
    bad_literal, variable_arguments = _string_arguments(schema, query, document)
    if bad_literal is not None:
        return bad_literal
    for variable, argument in variable_arguments:
        if _holds_control_character(variables.get(variable)):
            return argument
    return None


def control_character_error(
    schema: GraphQLSchema, query: str, document: DocumentNode, variables: dict[str, Any]
) -> GraphQLError | None:
    """The request-level VALIDATION_FAILED error for a String/ID argument (literal or variable)
    holding a control character; None when there is none."""
    argument = refused_argument(schema, query, document, variables)
    if argument is None:
        return None
    refused = ValidationFailed(_l("`{field}` must not contain control characters", field=argument))
    return GraphQLError(  # ErrorCodes renders the message in the request's language
        str(refused.message),
        original_error=refused,
        extensions={"code": ErrorCode.VALIDATION_FAILED.value, "field": argument},
    )


class RefuseControlCharacters(SchemaExtension):
    """`control_character_error` inside strawberry's execution (the HTTP pipeline calls it itself)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.result:
            error = control_character_error(
                context.schema._schema, context.query or "", document, context.variables or {}
            )
            if error is not None:
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield
