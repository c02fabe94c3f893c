"""GraphQL error handling: expected errors get `extensions.code`, unexpected ones are masked.

Mutations report expected failures inside their payload (`errors: [UserError!]!`); this
extension covers what remains: auth failures, rate and query limits, and bugs (masked, logged).
A refused request (RATE_LIMITED) is reported once, however many fields it asked for, with
`extensions.retryAfter` (seconds to the next window, as REST's `Retry-After`); a field that got
no database connection in time is SERVICE_UNAVAILABLE with `extensions.retryAfter` too.
"""

from __future__ import annotations

from typing import Any

import structlog
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from auth.errors import AccessError, Forbidden, Unauthenticated
from backend.errors import DomainError, ErrorCode, PoolExhausted, RateLimited
from backend.i18n import _l, render_text, request_locale

log = structlog.get_logger("graphql")


def error_code(error: GraphQLError) -> ErrorCode | str | None:
    original = error.original_error
    if isinstance(original, Unauthenticated):
        return ErrorCode.UNAUTHENTICATED
    if isinstance(original, Forbidden | AccessError):
        return ErrorCode.FORBIDDEN
    if isinstance(original, DomainError):
        return original.code
    if isinstance(original, GraphQLError):
        return error_code(original)
    code: Any = (error.extensions or {}).get("code")
    if code:
        return str(code)
    if original is None:
        # Parse and validation errors of the document itself: the client's mistake, say so.
        return "GRAPHQL_VALIDATION_FAILED"
    return None


INTERNAL_ERROR = _l("Internal error; the request id identifies it in our logs.")


def coded_errors(errors: list[GraphQLError], locale: str) -> list[GraphQLError]:
    """Every error with its `extensions.code` and its message in `locale`; unexpected ones logged
    and masked; RATE_LIMITED once per request. Called per request, after validation, whose
    errors may come from a cache shared by every request."""
    processed: list[GraphQLError] = []
    refused = False
    for error in errors:
        code = error_code(error)
        if code == ErrorCode.RATE_LIMITED:
            if refused:  # every field that signs in is refused alike: once per request
                continue
            refused = True
        if code is None:
            log.error(
                "graphql_unexpected_error",
                error_type=type(error.original_error).__name__,
                path=error.path,
                exc_info=error.original_error,
            )
            processed.append(
                GraphQLError(
                    INTERNAL_ERROR.render(locale),
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    original_error=None,
                    extensions={"code": ErrorCode.INTERNAL.value},
                )
            )
            continue
        message = error.message
        extensions = {**(error.extensions or {}), "code": str(code)}
        original = error.original_error
        if isinstance(original, GraphQLError) and isinstance(original.original_error, DomainError):
            original = original.original_error  # a limit found in validation (QueryTooComplex)
        if isinstance(original, AccessError):
            message = render_text(original.message, locale)
        elif isinstance(original, DomainError):
            message = original.text(locale)
        if isinstance(error.original_error, RateLimited | PoolExhausted):
            extensions["retryAfter"] = error.original_error.retry_after
        processed.append(
            GraphQLError(
                message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=None,
                extensions=extensions,
            )
        )
    return processed


class ErrorCodes(MaskErrors):
    """`coded_errors` inside strawberry's execution (the HTTP pipeline calls it itself). Also
    where our messages get the request's language (decision 017)."""

    def __init__(self) -> None:
        super().__init__(error_message=str(INTERNAL_ERROR))

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return coded_errors(errors, request_locale(self.execution_context.context))
