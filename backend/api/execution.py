"""GraphQL execution with a short path for plain leaf fields (decision 020).

graphql-core executes every field of every object the same way: a `Path`, a resolve info, the
resolver, `complete_value`, awaitable checks. For a plain attribute (no resolver, no arguments,
a scalar or enum) that is ~20 calls to produce `str(uuid)`: a page of 50 tickets × 25 fields
spent ~80 % of its server time there, and GraphQL answered at 0.25× of REST for the same page.

Here a field that strawberry marks as basic (`_is_default`: no resolver, no field extensions),
takes no arguments and returns a scalar or an enum is read and coerced directly, the way
`complete_leaf_value` does it. Anything else — object fields, resolvers, arguments, schema
extensions that wrap resolvers, and any value that would be an error (null for a non-null field,
a value the type refuses) — takes graphql-core's own path, so results and errors are the same.
The plan for a selection is computed once per operation (graphql-core already memoises the
grouped field set per list, so all 50 items share one).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)

# (response name, basic resolver or None, coerce, nullable, field details)
_Step = tuple[str, Callable[..., Any] | None, Callable[[Any], Any] | None, bool, FieldDetailsList]


class LeafShortcutExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(field set) → (field set, parent type, plan); the field set is kept alive with its
        # plan, so that its id cannot be reused while this operation runs.
        self._plans: dict[int, tuple[GroupedFieldSet, GraphQLObjectType, list[_Step]]] = {}
        manager = self.middleware_manager
        # A schema extension with a `resolve` hook must see every field: no shortcut then.
        self._shortcuts = manager is None or not manager.middlewares

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[_Step]:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[1] is parent_type:
            return cached[2]
        steps: list[_Step] = []
        for response_name, details in grouped_field_set.items():
            field_def = self.schema.get_field(parent_type, details[0].node.name.value)
            resolve = field_def.resolve if field_def is not None else None
            leaf = field_def.type if field_def is not None else None
            nullable = not isinstance(leaf, GraphQLNonNull)
            if isinstance(leaf, GraphQLNonNull):
                leaf = leaf.of_type
            plain = (
                self._shortcuts
                and field_def is not None
                and getattr(resolve, "_is_default", False)
                and not field_def.args
                and not any(d.node.arguments for d in details)
                and isinstance(leaf, GraphQLScalarType | GraphQLEnumType)
            )
            if plain:
                read = _reader(field_def, resolve)  # type: ignore[arg-type]
                steps.append((response_name, read, _coercer(leaf), nullable, details))  # type: ignore[arg-type]
            else:
                steps.append((response_name, None, None, nullable, details))
        self._plans[id(grouped_field_set)] = (grouped_field_set, parent_type, steps)
        return steps

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        steps = self._plan(parent_type, grouped_field_set) if self._shortcuts else ()
        if not any(read is not None for _, read, _, _, _ in steps):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for response_name, read, coerce, nullable, details in steps:
            if read is not None:
                value = read(source_value)
                if value is None:
                    if nullable:
                        results[response_name] = None
                        continue
                else:
                    try:
                        coerced = coerce(value)  # type: ignore[misc]
                    except Exception:  # graphql-core's path reports it
                        coerced = None
                    if coerced is not None and coerced is not Undefined:
                        results[response_name] = coerced
                        continue
            results[response_name] = Undefined  # keeps the field's place in the answer
            rest[response_name] = details
        if not rest:
            return results
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):

            async def merged() -> dict[str, Any]:
                return _merge(results, await others)

            return merged()
        return _merge(results, others)  # type: ignore[arg-type]


def _coercer(leaf: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """`coerce_output_value`, with enum members looked up in a dict: strawberry's enum type
    scans its values and reads `.value` of each (~1 µs a field)."""
    coerce = leaf.coerce_output_value
    members = getattr(leaf, "wrapped_cls", None)
    if not isinstance(leaf, GraphQLEnumType) or members is None:
        return coerce
    names = {m: name for name, v in leaf.values.items() for m in members if m.value == v.value}

    def coerce_enum(value: Any) -> Any:
        name = names.get(value)
        return name if name is not None else coerce(value)

    return coerce_enum


def _reader(field_def: GraphQLField, resolve: Callable[..., Any]) -> Callable[[Any], Any]:
    """The basic resolver as one C call when it is the default `getattr` (it is, unless the
    schema's config names another default resolver)."""
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if isinstance(field, StrawberryField) and field.default_resolver is getattr:
        return attrgetter(field.python_name)
    return lambda source: resolve(source, None)


def _merge(results: dict[str, Any], others: dict[str, Any]) -> dict[str, Any]:
    """The shortcut's values and graphql-core's, in the order the query asked for them."""
    merged: dict[str, Any] = {}
    for name, value in results.items():
        if value is Undefined:
            if name in others:
                merged[name] = others[name]
        else:
            merged[name] = value
    return merged
