"""Typed errors inside mutation payloads, and the helper that fills them from domain errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import strawberry

from backend.errors import DomainError, ErrorCode, PoolExhausted, ValidationFailed

ErrorCodeGQL = strawberry.enum(ErrorCode, name="ErrorCode", description="Stable machine-readable error codes")


@strawberry.type(name="UserError", description="An expected failure of a mutation; nothing was changed.")
class UserError:
    code: ErrorCodeGQL  # type: ignore[valid-type]
    message: str
    field: str | None = None


T = TypeVar("T")
S = TypeVar("S")


def to_input(struct: type[S], values: Any) -> S:
    """Validate a GraphQL input object with the same msgspec constraints the REST API uses."""
    try:
        return msgspec.convert(values, struct, from_attributes=True)
    except msgspec.ValidationError as error:
        path = str(error).rsplit("at `$.", 1)
        field = path[1].rstrip("`").split(".")[0].split("[")[0] if len(path) == 2 else None
        raise ValidationFailed(str(error).split(" - at ")[0], field=field) from None


# Not about this mutation's input but about the request: GraphQL errors with `extensions.code`,
# as queries get them (decisions 004, 011). SERVICE_UNAVAILABLE is among them only when no
# database connection became free in time (PoolExhausted, decision 013); the issuer-key refresh
# reports its own in the payload (nothing changed).
REQUEST_ERRORS = frozenset({ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL})


async def run_mutation(action: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a mutation; a domain error becomes a payload error (the transaction rolled back)."""
    try:
        return await action(), []
    except DomainError as error:
        if error.code in REQUEST_ERRORS or isinstance(error, PoolExhausted):
            raise
        return None, [
            UserError(
                code=error.code, message=error.message, field=getattr(error, "field", None) or error.data.get("field")
            )
        ]


def from_struct(gql_type: type[T], source: object) -> T:
    """A strawberry type filled from the domain struct's fields of the same names (the GraphQL
    types mirror the schemas; this spares a hand-written copy per type)."""
    names = [f.name for f in dataclasses.fields(gql_type) if f.init]  # type: ignore[arg-type]
    return gql_type(**{name: getattr(source, name) for name in names})
