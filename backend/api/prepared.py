"""An executor for each request from what its document and operation name fix once (issue 13 §6,
decision 033 amended).

graphql-core's `Executor.build` works out on every request what depends only on the document:
which operation the name picks, the fragments and their variable signatures, and for each of
the operation's variables its type from the AST (`get_variable_signature`: a schema look-up and
a new `GraphQLNonNull` per `String!`). For the tenant read that was about a third of building
an executor. Here the first request of a (document, operation name) is built by graphql-core as
before; its executor shows the operation, the fragments and whether suggestions are hidden, and
those are kept beside the document with the variables' signatures. Later requests coerce their
variables against the kept signatures and construct the executor directly.

Only what graphql-core would coerce without a word of its own is coerced here: a variable of a
scalar or enum type (or its non-null form) without a default, given a value the type accepts or
a null where null is allowed, or absent where it may be. Anything else — a list, an input
object, a default, a value refused, a required variable missing — sends the request through
graphql-core's `get_variable_values`, which coerces all its variables again and words every error
as before (coercion has no effect, so doing it twice changes nothing).
"""

from __future__ import annotations

from typing import Any

from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource, get_variable_values

from backend.api.limits import DocumentMemo
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    Undefined,
    default_field_resolver,
    default_type_resolver,
)

# graphql-core's own limit (`Executor.build`'s default).
_MAX_COERCION_ERRORS = 50
# Names a client may try per document before the memo stops growing: the name is the client's.
_NAMES_PER_DOCUMENT = 16

# A variable coerced here: (name, signature, its scalar or enum type, non-null).
_Variable = tuple[str, GraphQLVariableSignature, GraphQLScalarType | GraphQLEnumType, bool]


class _Operation:
    """What a document and an operation name fix for every request."""

    __slots__ = ("fragment_definitions", "fragments", "hide_suggestions", "operation", "simple", "variables")

    def __init__(self, schema: GraphQLSchema, executor: Any) -> None:
        self.operation: OperationDefinitionNode = executor.operation
        self.fragment_definitions: dict[str, FragmentDefinitionNode] = executor.fragment_definitions
        self.fragments: dict[str, Any] = executor.fragments
        self.hide_suggestions: bool = executor.hide_suggestions
        variables: list[_Variable] = []
        simple = True
        for definition in self.operation.variable_definitions or ():
            signature = get_variable_signature(schema, definition)
            if isinstance(signature, GraphQLError) or signature.default is not None:
                simple = False
                break
            type_, non_null = signature.type, isinstance(signature.type, GraphQLNonNull)
            leaf = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
            if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                simple = False
                break
            variables.append((signature.name, signature, leaf, non_null))
        self.simple = simple
        self.variables = tuple(variables)

    def variable_values(self, schema: GraphQLSchema, inputs: dict[str, Any]) -> VariableValues | list[GraphQLError]:
        """What graphql-core's `get_variable_values` gives for these inputs."""
        if self.simple:
            sources: dict[str, VariableValueSource] = {}
            coerced: dict[str, Any] = {}
            for name, signature, leaf, non_null in self.variables:
                value = inputs.get(name, Undefined)
                if value is Undefined:
                    if non_null:
                        break  # missing: graphql-core words it
                    sources[name] = VariableValueSource(signature)
                    continue
                sources[name] = VariableValueSource(signature, value)
                if value is None:
                    if non_null:
                        break
                    coerced[name] = None
                    continue
                try:
                    coerced_value = leaf.coerce_input_value(value)
                except Exception:  # refused: graphql-core words it
                    break
                if coerced_value is Undefined:
                    break
                coerced[name] = coerced_value
            else:
                return VariableValues(sources, coerced)
        return get_variable_values(
            schema,
            self.operation.variable_definitions or (),
            inputs,
            max_errors=_MAX_COERCION_ERRORS,
            hide_suggestions=self.hide_suggestions,
        )


_OPERATIONS = DocumentMemo()


def prepared_executor(
    executor_class: Any,
    schema: GraphQLSchema,
    document: DocumentNode,
    context: Any,
    raw_variables: dict[str, Any] | None,
    operation_name: str | None,
    **custom: Any,
) -> Any:
    """`executor_class.build(schema, document, None, context, raw_variables, operation_name,
    **custom)`: an executor, or the list of errors that made one impossible."""
    operations: dict[tuple[Any, str | None], _Operation] = _OPERATIONS.get(document, lambda _document: {})
    key = (executor_class, operation_name)
    known = operations.get(key)
    if known is None:
        built = executor_class.build(schema, document, None, context, raw_variables, operation_name, **custom)
        if not isinstance(built, list) and len(operations) < _NAMES_PER_DOCUMENT:
            operations[key] = _Operation(schema, built)
        return built
    variable_values = known.variable_values(schema, raw_variables or {})
    if isinstance(variable_values, list):
        return variable_values
    # `Executor.build`'s own construction, with its defaults (no root value, resolvers, middleware).
    return executor_class(
        schema,
        known.fragment_definitions,
        known.fragments,
        None,
        context,
        known.operation,
        variable_values,
        default_field_resolver,
        default_type_resolver,
        default_field_resolver,
        False,
        None,
        custom.pop("is_awaitable", None),
        None,
        hide_suggestions=known.hide_suggestions,
        abort_signal=None,
        hooks=None,
        **custom,
    )
