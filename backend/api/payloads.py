"""Typed errors inside mutation payloads, and the helper that fills them from domain errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import strawberry

from backend.api.context import Info
from backend.errors import DomainError, ErrorCode, PoolExhausted, ValidationFailed
from backend.i18n import Message, request_locale, validation_message
from backend.state import UnitOfWork
from backend.structs import error_field

strawberry.enum(ErrorCode, name="ErrorCode", description="Stable machine-readable error codes")


def _message(root: UserError, info: strawberry.Info) -> str:
    """In the request's language (Accept-Language, decision 017); clients switch on `code`."""
    return root.text.render(request_locale(info.context))


@strawberry.type(name="UserError", description="An expected failure of a mutation; nothing was changed.")
class UserError:
    code: ErrorCode
    message: str = strawberry.field(resolver=_message)
    text: strawberry.Private[Message]
    field: str | None = None


T = TypeVar("T")
S = TypeVar("S")
P = TypeVar("P")


def to_input(struct: type[S], values: Any) -> S:
    """Validate a GraphQL input object with the same msgspec constraints the REST API uses."""
    try:
        return msgspec.convert(values, struct, from_attributes=True)
    except msgspec.ValidationError as error:
        raise ValidationFailed(validation_message(str(error).split(" - at ")[0]), field=error_field(error)) from None


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
                code=error.code, text=error.message, field=getattr(error, "field", None) or error.data.get("field")
            )
        ]


async def mutate(
    info: Info, payload: Callable[..., P], field: str, action: Callable[[UnitOfWork], Awaitable[Any]]
) -> P:
    """The one shape of a mutation: `action` runs in a writing unit of work; its result (a Struct
    the payload's type mirrors) goes into `payload.<field>`, a domain error into `payload.errors`.
    Convert inputs inside `action` (`to_input`), so that a refused input is a payload error too."""

    async def run() -> Any:
        async with info.context.uow(readonly=False) as uow:
            return await action(uow)

    value, errors = await run_mutation(run)
    return payload(**{field: value, "errors": errors})


def from_struct(gql_type: type[T], source: object) -> T:
    """A strawberry type filled from the domain struct's fields of the same names (the GraphQL
    types mirror the schemas; this spares a hand-written copy per type)."""
    names = [f.name for f in dataclasses.fields(gql_type) if f.init]  # type: ignore[arg-type]
    return gql_type(**{name: getattr(source, name) for name in names})
