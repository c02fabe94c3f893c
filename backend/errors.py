"""One ErrorCode enum and the domain errors that carry it.

REST renders every error as RFC 9457 `application/problem+json` in one place (main.py);
GraphQL turns expected errors into typed payload errors and auth errors into
`extensions.code`. Messages are written for clients: no SQL, no stack traces, no personal data.
They are marked English texts (`backend.i18n._l`), translated where they are rendered
(decision 017): code and data stay the same in every language.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from backend.i18n import N_, Message, render, render_text


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"


PROBLEM_TYPE_BASE = "https://buergerservice.example/problems/"
# Message ids of the problem titles (English; the catalogues hold the translations).
TITLES: dict[ErrorCode, str] = {
    ErrorCode.UNAUTHENTICATED: N_("Not signed in"),
    ErrorCode.FORBIDDEN: N_("Not allowed"),
    ErrorCode.NOT_FOUND: N_("Not found"),
    ErrorCode.METHOD_NOT_ALLOWED: N_("Method not allowed"),
    ErrorCode.VALIDATION_FAILED: N_("Invalid input"),
    ErrorCode.CONFLICT: N_("Conflict"),
    ErrorCode.RATE_LIMITED: N_("Too many requests"),
    ErrorCode.QUERY_TOO_COMPLEX: N_("Query too complex"),
    ErrorCode.SERVICE_UNAVAILABLE: N_("Service unavailable"),
    ErrorCode.INTERNAL: N_("Internal error"),
}


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL
    status: int = 500

    def __init__(self, message: Message, **data: Any) -> None:
        super().__init__(str(message))
        self.message = message
        self.data = data

    def text(self, locale: str) -> str:
        return self.message.render(locale)

    def problem(self, locale: str, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body with title, detail and any message in `data` in `locale`."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.value.lower().replace("_", "-"),
            "title": render_text(TITLES[self.code], locale),
            "status": self.status,
            "detail": self.text(locale),
            "code": self.code.value,
        }
        if instance:
            body["instance"] = instance
        body.update(render(self.data, locale))
        return body


class NotFound(DomainError):
    """Also what another tenant's object looks like: indistinguishable from a missing one."""

    code = ErrorCode.NOT_FOUND
    status = 404


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION_FAILED
    status = 422

    def __init__(self, message: Message, field: str | None = None, **data: Any) -> None:
        if field is not None:
            data["errors"] = [{"field": field, "message": message}]
        super().__init__(message, **data)
        self.field = field


class Conflict(DomainError):
    code = ErrorCode.CONFLICT
    status = 409


class NotAuthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED
    status = 401


class NotAllowed(DomainError):
    code = ErrorCode.FORBIDDEN
    status = 403


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED
    status = 429

    def __init__(self, message: Message, retry_after: int) -> None:
        super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after


class QueryTooComplex(DomainError):
    """A GraphQL document over the cost limit (found in validation, before any resolver)."""

    code = ErrorCode.QUERY_TOO_COMPLEX
    status = 400


class ServiceUnavailable(DomainError):
    code = ErrorCode.SERVICE_UNAVAILABLE
    status = 503


class HttpError(DomainError):
    """A framework-level HTTP error (unknown route, bad method, internal) in the same shape."""

    def __init__(self, message: Message, code: ErrorCode, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
