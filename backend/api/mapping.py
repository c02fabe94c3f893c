"""One GraphQL mapping: a strawberry type shows a domain Struct as it is (decision 020).

A type that shows a Struct says so with `@mirrors(Struct)`; its plain fields are the Struct's
fields (minus the ones declared in `exclude`), with the Struct's types — checked by
`tests/contracts/test_graphql_mapping.py`, so the two cannot drift apart. Fields with resolvers
(`personalData`, `departments`, …) are additions and not compared.

Resolvers hand the Struct itself to GraphQL (`shown`): strawberry reads plain fields by name,
and methods of the type get the Struct as `self`. No copy per object, no copying helpers; for a
page of 50 tickets the copies alone cost ~0.4 ms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

import msgspec
import strawberry

T = TypeVar("T")


@dataclass(frozen=True)
class Mirror:
    gql_type: type
    struct: type[msgspec.Struct]
    exclude: frozenset[str]


# Every `@mirrors` type, for the contract test.
MIRRORS: list[Mirror] = []


def mirrors(struct: type[msgspec.Struct], *, exclude: Iterable[str] = ()) -> Callable[[type[T]], type[T]]:
    """Class decorator (outside `@strawberry.type`): this type shows `struct`'s fields."""

    def register(gql_type: type[T]) -> type[T]:
        MIRRORS.append(Mirror(gql_type, struct, frozenset(exclude)))
        return gql_type

    return register


def shown(gql_type: type[T], value: object) -> T:
    """`value` (a Struct the type mirrors) given to GraphQL as `gql_type`, without a copy."""
    return cast(T, value)


def shown_all(gql_type: type[T], values: Iterable[object]) -> list[T]:
    return cast(list[T], list(values))


@strawberry.type(name="PageInfo")
class PageInfoGQL:
    end_cursor: str | None
    has_next_page: bool

    @classmethod
    def after(cls, next_cursor: str | None) -> PageInfoGQL:
        """The page info of a page whose next page starts after `next_cursor` (None: last page)."""
        return cls(end_cursor=next_cursor, has_next_page=next_cursor is not None)
