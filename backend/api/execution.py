"""GraphQL execution with short paths for plain leaf fields and lists of them (decision 020).

graphql-core executes every field of every object the same way: a `Path`, a resolve info, the
resolver, `complete_value`, awaitable checks. For a plain attribute (no resolver, no arguments,
a scalar or enum) that is ~20 calls to produce `str(uuid)`: a page of 50 tickets × 25 fields
spent ~80 % of its server time there, and GraphQL answered at 0.25× of REST for the same page.

Two short paths, both on a plan computed once per (object type, selection) and kept across
requests (the parser cache hands out one document per query text, so its field nodes are the
same objects every time):

- A field that strawberry marks as basic (`_is_default`: no resolver, no field extensions), takes
  no arguments and returns a scalar or an enum is a *plain* field: read and coerced directly,
  the way `complete_leaf_value` does it.
- A list of objects whose whole selection is plain fields (and `__typename`) — a page of
  Structs — is completed column by column: each field read from all items at once
  (`map(attrgetter)`), its values checked by type once per column and coerced with the type's own
  `coerce_output_value` (built-in scalars whose values already have the output type pass as
  they are), and the rows zipped into dicts. No per-item `Path`, no per-object completion.

Anything else — object fields, resolvers, arguments, `@defer`/`@stream`, `is_type_of` checks,
schema extensions that wrap resolvers — takes graphql-core's own path. So does any value that
would be an error (null for a non-null field, a value the type refuses): the short path then
gives up on the whole object or list and graphql-core completes it again from the start (reading
plain attributes has no effect, so doing it twice changes nothing), and results and errors are
byte for byte the same (`tests/contracts/test_graphql_short_paths.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter
from typing import Any
from uuid import UUID

import msgspec
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, GroupedFieldSet, collect_subfields
from graphql.execution.executor import Executor
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat
from strawberry.types.field import StrawberryField

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)

# A plain field: (response name, read one source, coerce one value, nullable, field details).
_Step = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None, bool, FieldDetailsList]
# A column of a plain list: (read all sources, coerce a column of values, nullable); for
# `__typename` the read gives the type's name for every source.
_Column = tuple[Callable[[list[Any]], list[Any]], Callable[[list[Any]], list[Any]], bool]

_NONE = type(None)
_UNREAD: Any = object()
_TZINFO = attrgetter("tzinfo")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
# Built-in scalars whose coercion returns a value of exactly these types unchanged.
_PASSING: dict[str, frozenset[type]] = {
    GraphQLString.name: frozenset({str}),
    GraphQLID.name: frozenset({str}),
    GraphQLBoolean.name: frozenset({bool}),
    GraphQLInt.name: frozenset({int}),
}
_PLAIN_OUTPUT = frozenset({str, int, float, bool})
_PLAN_CACHE_SIZE = 512


class _GiveUp(Exception):
    """A value the short path does not answer for: graphql-core completes it instead."""


class LeafShortcutExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, stable_selections: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # A schema extension with a `resolve` hook must see every field: no short path then.
        self._shortcuts = manager is None or not manager.middlewares
        # The caller vouches that the document has no directives (`@skip`/`@include` read the
        # variables, `@defer`/`@stream` change the collection); without fragment variables as
        # well, what a selection collects depends on nothing but the selection: it is collected
        # once across requests, and the plans below find it by identity.
        self._stable = (
            stable_selections and self._shortcuts and not any(f.variable_signatures for f in self.fragments.values())
        )
        # id(field set) → (field set, steps): graphql-core hands all items of a list one field
        # set; keeping it alive with its steps keeps its id from being reused meanwhile.
        self._steps: dict[int, tuple[GroupedFieldSet, list[_Step] | None]] = {}

    def build_response(self, data: dict[str, Any] | None) -> Any:
        """graphql-core's plain response when no `@defer`/`@stream` work was produced. The
        incremental executor would gather that work first (and, with errors, make an exception
        to cancel none of it) only to find nothing and build the same response."""
        if not self.tasks and not self.streams:
            return Executor.build_response(self, data)
        return super().build_response(data)

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        if not self._stable:
            return super().collect_subfields(return_type, field_details_list)
        return _plans.collected(self, return_type, field_details_list)

    def _steps_for(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[_Step] | None:
        stable = _plans.stable(grouped_field_set)
        if stable is not None:
            if stable.steps is _UNREAD:
                stable.steps = _plans.steps(self.schema, parent_type, grouped_field_set)
            return stable.steps  # type: ignore[no-any-return]
        memo = self._steps.get(id(grouped_field_set))
        if memo is None:
            memo = (grouped_field_set, _plans.steps(self.schema, parent_type, grouped_field_set))
            self._steps[id(grouped_field_set)] = memo
        return memo[1]

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if path is None and self._stable and _plans.plain_root(self, parent_type, grouped_field_set) is False:
            steps = None  # the root fields have resolvers, as root fields do (known per operation)
        else:
            steps = self._steps_for(parent_type, grouped_field_set) if self._shortcuts else None
        if not steps:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for response_name, read, coerce, nullable, details in steps:
            value = _UNREAD if read is None else _plain_value(read, coerce, nullable, source_value)  # type: ignore[arg-type]
            results[response_name] = Undefined if value is _UNREAD else value  # Undefined keeps the place
            if value is _UNREAD:
                rest[response_name] = details
        if not rest:
            return results
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):

            async def merged() -> dict[str, Any]:
                return _merge(results, await others)

            return merged()
        return _merge(results, others)  # type: ignore[arg-type]

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        rows = self._plain_rows(return_type, field_details_list, path, result) if self._shortcuts else None
        if rows is not None:
            return rows
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _plain_rows(
        self, return_type: GraphQLList[GraphQLOutputType], field_details_list: FieldDetailsList, path: Path, result: Any
    ) -> list[dict[str, Any]] | None:
        """The list completed column by column, or None when graphql-core must complete it."""
        if type(result) is not list or not result:
            return None
        item_type = return_type.of_type
        if isinstance(item_type, GraphQLNonNull):
            item_type = item_type.of_type
        if not isinstance(item_type, GraphQLObjectType) or item_type.is_type_of is not None:
            return None
        if self.get_stream_usage(field_details_list, path) is not None:
            return None
        grouped_field_set, defer_usages, _ = self.collect_subfields(item_type, field_details_list)
        if defer_usages:
            return None
        stable = _plans.stable(grouped_field_set)
        if stable is None:
            columns = _plans.columns(self.schema, item_type, grouped_field_set)
        else:
            if stable.columns is _UNREAD:
                stable.columns = _plans.columns(self.schema, item_type, grouped_field_set)
            columns = stable.columns
        if columns is None:
            return None
        try:
            values = [_column(result, column) for column in columns]
        except Exception:  # a null for a non-null field, a refused value, an odd item
            return None
        # Rows as dicts without a Python loop (~20 % faster than a comprehension over zip): every
        # column was read from the same items, so all have their length.
        return list(map(dict, map(zip, repeat(list(grouped_field_set)), zip(*values, strict=True))))


def _plain_value(read: Callable[[Any], Any], coerce: Callable[[Any], Any], nullable: bool, source: Any) -> Any:
    """A plain field's answer, or `_UNREAD` where graphql-core must answer (and report the error)."""
    try:
        value = read(source)
        if value is None:
            return None if nullable else _UNREAD
        coerced = coerce(value)
    except Exception:
        return _UNREAD
    return _UNREAD if coerced is None or coerced is Undefined else coerced


def _column(sources: list[Any], column: _Column) -> list[Any]:
    read, coerce, nullable = column
    values = read(sources)
    kinds = set(map(type, values))
    if _NONE not in kinds:
        return coerce(values)
    if not nullable:
        raise _GiveUp
    present = [i for i, v in enumerate(values) if v is not None]
    if not present:
        return values
    coerced = coerce([values[i] for i in present])
    for i, value in zip(present, coerced, strict=True):
        values[i] = value
    return values


class _Stable:
    """A selection collected once for every request (`_Plans.collected`), with its plans: found
    by the identity of its grouped field set, no key to compute (~25 ids for a page of tickets)."""

    __slots__ = ("collected", "columns", "steps")

    def __init__(self, collected: CollectedFields) -> None:
        self.collected = collected
        self.steps: Any = _UNREAD
        self.columns: Any = _UNREAD


class _Plans:
    """Plans per (object type, selection), across requests. The key holds the ids of the field
    nodes and the value keeps those nodes alive, so an id cannot stand for another node."""

    def __init__(self) -> None:
        self._steps: dict[tuple[Any, ...], tuple[Any, list[_Step] | None]] = {}
        self._columns: dict[tuple[Any, ...], tuple[Any, list[_Column] | None]] = {}
        self._enum_names: dict[int, tuple[GraphQLEnumType, dict[Any, str]]] = {}
        self._collected: dict[tuple[Any, ...], tuple[Any, _Stable]] = {}
        self._stable: dict[int, _Stable] = {}  # id(grouped field set) → its collection and plans
        self._roots: dict[tuple[int, int], tuple[Any, bool]] = {}

    def collected(
        self, executor: LeafShortcutExecutionContext, return_type: GraphQLObjectType, details: FieldDetailsList
    ) -> CollectedFields:
        """graphql-core's `collect_subfields`, once per (type, field nodes) across requests, for
        documents without directives (graphql-core memoizes it per execution only: ~40 µs a
        request for a page of tickets)."""
        key = (id(return_type), *(id(d.node) for d in details))
        cached = self._collected.get(key)
        if cached is None:
            grouped, defer_usages, forbidden = collect_subfields(
                executor.schema,
                executor.fragments,
                executor.variable_values,
                executor.operation,
                return_type,
                details,
                executor.hide_suggestions,
            )
            # A plain dict: graphql-core's defaultdict would grow on a lookup of a missing name.
            stable = _Stable(CollectedFields(dict(grouped), defer_usages, forbidden))
            if len(self._collected) >= _PLAN_CACHE_SIZE:
                self._collected.clear()
                self._stable.clear()
            cached = self._collected[key] = ((return_type, [d.node for d in details]), stable)
            self._stable[id(stable.collected.grouped_field_set)] = stable
        return cached[1].collected

    def plain_root(
        self, executor: LeafShortcutExecutionContext, root_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> bool:
        """Whether the operation's root selection has a plain field, once per (operation, root
        type): graphql-core collects the root anew for every request (a new field set, so the
        plans would compute their key and copy the steps each time), but for a document without
        directives always the same fields from the same nodes."""
        operation = executor.operation
        key = (id(operation), id(root_type))
        known = self._roots.get(key)
        if known is None or known[0][0] is not operation or known[0][1] is not root_type:
            known = ((operation, root_type), executor._steps_for(root_type, grouped_field_set) is not None)
            self._remember(self._roots, key, known)
        return known[1]

    def stable(self, grouped_field_set: GroupedFieldSet) -> _Stable | None:
        """The plans of a grouped field set collected by `collected`; None for any other (the
        identity check: an id alone could be a new object's after the cache was cleared)."""
        stable = self._stable.get(id(grouped_field_set))
        if stable is None or stable.collected.grouped_field_set is not grouped_field_set:
            return None
        return stable

    @staticmethod
    def _key(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> tuple[Any, ...]:
        return (
            id(parent_type),
            *((name, *(id(d.node) for d in details)) for name, details in grouped_field_set.items()),
        )

    @staticmethod
    def _pinned(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Any:
        return (parent_type, [d.node for details in grouped_field_set.values() for d in details])

    def steps(
        self, schema: GraphQLSchema, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[_Step] | None:
        """The fields of one object, plain ones with their reader; None when none is plain."""
        key = self._key(parent_type, grouped_field_set)
        cached = self._steps.get(key)
        if cached is not None:
            steps = cached[1]
            # The details of this execution (graphql-core's fallback needs them), the plan's readers.
            return None if steps is None else [(*s[:4], grouped_field_set[s[0]]) for s in steps]
        steps = []
        for response_name, details in grouped_field_set.items():
            plain = self._plain(schema, parent_type, details)
            if plain is None:
                steps.append((response_name, None, None, True, details))
            else:
                read, leaf, nullable = plain
                steps.append((response_name, read, self._coercer(leaf), nullable, details))
        found = steps if any(s[1] is not None for s in steps) else None
        self._remember(self._steps, key, (self._pinned(parent_type, grouped_field_set), found))
        return found

    def columns(
        self, schema: GraphQLSchema, item_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[_Column] | None:
        """Columns for a list of objects whose every field is plain or `__typename`; else None."""
        key = self._key(item_type, grouped_field_set)
        cached = self._columns.get(key)
        if cached is not None:
            return cached[1]
        columns: list[_Column] | None = []
        for details in grouped_field_set.values():
            if details[0].node.name.value == "__typename" and not any(d.node.arguments for d in details):
                columns.append((_constant(item_type.name), _unchanged, False))  # type: ignore[union-attr]
                continue
            plain = self._plain(schema, item_type, details)
            if plain is None:
                columns = None
                break
            read, leaf, nullable = plain
            columns.append((_all(read), self._column_coercer(leaf), nullable))  # type: ignore[union-attr]
        self._remember(self._columns, key, (self._pinned(item_type, grouped_field_set), columns))
        return columns

    @staticmethod
    def _remember(cache: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
        if len(cache) >= _PLAN_CACHE_SIZE:  # documents come and go (the parser cache is bounded too)
            cache.clear()
        cache[key] = value

    @staticmethod
    def _plain(
        schema: GraphQLSchema, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> tuple[Callable[[Any], Any], GraphQLScalarType | GraphQLEnumType, bool] | None:
        """(reader, leaf type, nullable) of a plain field; None for any other."""
        field_def = schema.get_field(parent_type, details[0].node.name.value)
        if field_def is None:
            return None
        resolve = field_def.resolve
        leaf = field_def.type
        nullable = not isinstance(leaf, GraphQLNonNull)
        if isinstance(leaf, GraphQLNonNull):
            leaf = leaf.of_type
        if (
            not getattr(resolve, "_is_default", False)
            or field_def.args
            or any(d.node.arguments for d in details)
            or not isinstance(leaf, GraphQLScalarType | GraphQLEnumType)
        ):
            return None
        return _reader(field_def, resolve), leaf, nullable  # type: ignore[arg-type]

    def _names(self, leaf: GraphQLEnumType) -> dict[Any, str] | None:
        """Enum member → GraphQL name: strawberry's enum type scans its values and reads `.value`
        of each (~1 µs a field)."""
        members = getattr(leaf, "wrapped_cls", None)
        if members is None:
            return None
        cached = self._enum_names.get(id(leaf))
        if cached is None or cached[0] is not leaf:
            names = {m: name for name, v in leaf.values.items() for m in members if m.value == v.value}
            cached = self._enum_names[id(leaf)] = (leaf, names)
        return cached[1]

    def _coercer(self, leaf: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
        """`coerce_output_value` of one value, enum members through their name."""
        coerce = leaf.coerce_output_value
        names = self._names(leaf) if isinstance(leaf, GraphQLEnumType) else None
        if names is None:
            return coerce

        def coerce_enum(value: Any) -> Any:
            name = names.get(value)
            return name if name is not None else coerce(value)

        return coerce_enum

    def _column_coercer(self, leaf: GraphQLScalarType | GraphQLEnumType) -> Callable[[list[Any]], list[Any]]:
        """`coerce_output_value` over a column of values without nulls; raises `_GiveUp` where
        graphql-core would report an error."""
        coerce = leaf.coerce_output_value
        passing = _PASSING.get(leaf.name) if leaf.name in _PASSING and leaf is _builtin(leaf) else None
        names = self._names(leaf) if isinstance(leaf, GraphQLEnumType) else None

        def coerce_all(values: list[Any]) -> list[Any]:
            return _checked(list(map(coerce, values)))

        if names is not None:

            def coerce_enum(values: list[Any]) -> list[Any]:
                try:
                    return list(map(names.__getitem__, values))
                except (KeyError, TypeError):
                    return coerce_all(values)

            return coerce_enum
        if coerce is str:  # strawberry's UUID (and any scalar written with `str`)
            return _uuids_or(coerce_all)
        if coerce is isoformat and leaf.name == "DateTime":
            return _utc_datetimes_or(coerce_all)
        if passing is None:
            return coerce_all
        is_int = leaf.name == GraphQLInt.name

        def coerce_passing(values: list[Any]) -> list[Any]:
            if set(map(type, values)) <= passing and (not is_int or _INT_MIN <= min(values) <= max(values) <= _INT_MAX):
                return values
            return coerce_all(values)

        return coerce_passing


def _uuids_or(coerce_all: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], list[Any]]:
    """A column of UUIDs as msgspec writes them (in C): the same text as `str(uuid)`."""

    def coerce_uuids(values: list[Any]) -> list[Any]:
        if set(map(type, values)) == {UUID}:
            return msgspec.to_builtins(values)  # type: ignore[no-any-return]
        return coerce_all(values)

    return coerce_uuids


def _utc_datetimes_or(coerce_all: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], list[Any]]:
    """A column of UTC datetimes (as asyncpg reads `timestamptz`) as msgspec writes them, in C,
    with its `Z` written `+00:00` as `isoformat()` writes it: the same text, ~5× faster.
    Other offsets take `isoformat()` (msgspec leaves out an offset's seconds)."""

    def coerce_datetimes(values: list[Any]) -> list[Any]:
        if set(map(type, values)) == {datetime} and set(map(_TZINFO, values)) == {UTC}:
            return [text[:-1] + "+00:00" for text in msgspec.to_builtins(values)]
        return coerce_all(values)

    return coerce_datetimes


def _builtin(leaf: GraphQLScalarType | GraphQLEnumType) -> Any:
    """The specified scalar of that name (a schema may define its own `String`, in principle)."""
    return {s.name: s for s in (GraphQLString, GraphQLID, GraphQLBoolean, GraphQLInt)}.get(leaf.name)


def _checked(coerced: list[Any]) -> list[Any]:
    """graphql-core refuses a coercion that gives null or Undefined; text and numbers are
    neither (one pass in C over the column's types, the common case)."""
    if set(map(type, coerced)) <= _PLAIN_OUTPUT:
        return coerced
    if any(value is None or value is Undefined for value in coerced):
        raise _GiveUp
    return coerced


def _unchanged(values: list[Any]) -> list[Any]:
    return values


def _constant(value: str) -> Callable[[list[Any]], list[Any]]:
    return lambda sources: [value] * len(sources)


def _all(read: Callable[[Any], Any]) -> Callable[[Sequence[Any]], list[Any]]:
    return lambda sources: list(map(read, sources))


_plans = _Plans()


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
