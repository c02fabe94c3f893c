"""Resolvers whose arguments are plain scalars, called without strawberry's generic argument
conversion (issue 13 §6, decision 033 amended).

Strawberry calls every resolver through a chain built for the general case: an `Info`, then
`convert_arguments` (for each argument: its GraphQL name, `convert_argument` with an import
statement and up to a dozen type checks — for a scalar it returns the value unchanged), field
extensions folded with `functools.reduce`, and three nested wrappers: ~20–40 µs of CPU for
`tickets` with its nine arguments, on every request.

For a field whose arguments are all scalars or optional scalars (graphql-core has already
coerced them; strawberry passes them on as they are), with no field extension (permissions
are extensions) and no exception handler (the schema registers none), this module puts a
resolver on the compiled schema's field that does what that chain ends in: the same call of
the same resolver with the same positional and keyword arguments. Anything else —
lists (strawberry copies them), input objects, `Maybe`, `GlobalID`, extensions, subscriptions —
keeps strawberry's resolver. Enums count as plain: graphql-core's enum type, as strawberry
builds it, already gives the member, which strawberry passes on unchanged too. Only with
`GRAPHQL_SHORT_PATHS` on; the contract tests compare the answers with strawberry's own pipeline
and resolvers byte for byte (`tests/contracts/test_graphql_pipeline.py`, `test_graphql_short_paths.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema


def plain_argument_resolvers(
    schema: GraphQLSchema, config: StrawberryConfig, scalar_registry: Mapping[object, Any]
) -> int:
    """Replace the resolvers that qualify on the compiled schema; returns how many did."""
    replaced = 0
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named is schema.subscription_type:
            continue
        for graphql_field in named.fields.values():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField):
                continue
            resolve = _direct(field, config, scalar_registry)
            if resolve is not None:
                graphql_field.resolve = resolve
                replaced += 1
    return replaced


def _plain(type_: Any, scalar_registry: Mapping[object, Any]) -> bool:
    """A type whose values strawberry's `convert_argument` returns unchanged."""
    if type(type_) is StrawberryOptional:  # exactly: `Maybe` is a subclass and wraps its value
        type_ = type_.of_type
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return True  # graphql-core's enum type (strawberry's) has already made the member
    return type_ is not GlobalID and is_scalar(type_, scalar_registry)


def _direct(
    field: StrawberryField, config: StrawberryConfig, scalar_registry: Mapping[object, Any]
) -> Callable[..., Any] | None:
    resolver = field.base_resolver
    if resolver is None or field.extensions or field.is_subscription:
        return None
    if not all(_plain(argument.type, scalar_registry) for argument in field.arguments):
        return None
    # (GraphQL name, Python name) per argument, converted once here instead of on every call.
    names = tuple((config.name_converter.from_argument(a), a.python_name) for a in field.arguments)
    pass_self = resolver.self_parameter is not None
    sources = tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None)
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    info_class = config.info_class
    get_result = field.get_result

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        kwargs = {python: arguments[name] for name, python in names if name in arguments}
        for name in sources:
            kwargs[name] = source
        if info_name is not None:  # only the resolver reads it (`get_result` passes it on as is)
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        # An async resolver returns its coroutine; graphql-core awaits it, as it awaited
        # strawberry's wrapper around the same coroutine.
        return get_result(source, info=None, args=[source] if pass_self else [], kwargs=kwargs)

    resolve._is_default = False  # type: ignore[attr-defined]  # as strawberry marks a resolver
    return resolve
