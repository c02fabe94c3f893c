"""One GraphQL mapping (decision 020): a type that mirrors a Struct shows exactly its fields.

Resolvers hand the Struct itself to GraphQL, so a field the Struct lacks would fail only when a
client asks for it, and a Struct field the type forgets would silently stay unpublished. This
walks every `@mirrors` type: its plain fields (no resolver) are the Struct's fields minus the
declared exclusions, with the same types (a mirrored type stands for its Struct; the JSON scalar
for a dict).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union

import msgspec
import strawberry
from strawberry.scalars import JSON

from backend.api import mapping
from backend.api.mapping import MIRRORS, Mirror, mirrors
from backend.gql_schema import create_schema
from backend.settings import load_settings


def _strip(tp: Any) -> Any:
    """A type without msgspec constraints, for comparing."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _strip(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return Union[tuple(_strip(a) for a in typing.get_args(tp))]  # noqa: UP007
    if origin is not None:
        return origin[tuple(_strip(a) for a in typing.get_args(tp))]
    return tp


def _as_struct(tp: Any, shown_as: dict[type, type]) -> Any:
    """A GraphQL annotation in Struct terms: mirrored types become their Structs."""
    if tp is JSON:
        return JSON
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_as_struct(a, shown_as) for a in typing.get_args(tp))]  # noqa: UP007
    if origin is not None:
        return origin[tuple(_as_struct(a, shown_as) for a in typing.get_args(tp))]
    return shown_as.get(tp, tp)


def _same(gql: Any, struct: Any) -> bool:
    if gql is JSON:  # the JSON scalar carries any dict or list
        return typing.get_origin(struct) in (dict, list) or struct in (dict, list, Any)
    return bool(gql == struct)


def mismatches(mirror: Mirror, shown_as: dict[type, type]) -> list[str]:
    definition = mirror.gql_type.__strawberry_definition__  # type: ignore[attr-defined]
    plain = {f.python_name for f in definition.fields if f.base_resolver is None}
    hints = typing.get_type_hints(mirror.gql_type, include_extras=False)
    struct_fields = {f.name: _strip(f.type) for f in msgspec.structs.fields(mirror.struct)}
    expected = set(struct_fields) - mirror.exclude
    gql, struct = mirror.gql_type.__name__, mirror.struct.__name__
    problems = [f"{gql} lacks {name}" for name in sorted(expected - plain)]
    problems += [f"{gql} has {name}, {struct} not" for name in sorted(plain - expected)]
    problems += [
        f"{gql}.{name}: {hints[name]} vs {struct_fields[name]}"
        for name in sorted(plain & expected)
        if not _same(_as_struct(hints[name], shown_as), struct_fields[name])
    ]
    problems += [f"{gql} excludes {name}, which is no field" for name in sorted(mirror.exclude - set(struct_fields))]
    return problems


def test_every_mirrored_type_shows_exactly_its_structs_fields() -> None:
    create_schema(load_settings({}))  # imports every domain's GraphQL module
    assert len(MIRRORS) >= 10
    shown_as = {m.gql_type: m.struct for m in MIRRORS}
    problems = [p for m in MIRRORS for p in mismatches(m, shown_as)]
    assert problems == []


def test_a_type_that_drifts_from_its_struct_is_named() -> None:
    class Town(msgspec.Struct):
        slug: str
        name: str
        founded: int | None

    @strawberry.type(name="DriftingTown")
    class TownGQL:
        slug: str
        name: int  # wrong type
        mayor: str  # not in the Struct; `founded` forgotten

    before = len(MIRRORS)
    try:
        mirrors(Town)(TownGQL)
        assert sorted(mismatches(MIRRORS[-1], {})) == [
            "TownGQL has mayor, Town not",
            "TownGQL lacks founded",
            "TownGQL.name: <class 'int'> vs <class 'str'>",
        ]
    finally:
        del MIRRORS[before:]
    assert mapping.MIRRORS is MIRRORS
