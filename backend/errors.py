"""One ErrorCode enum and the domain errors that carry it.

REST renders every error as RFC 9457 `application/problem+json` in one place (main.py);
GraphQL turns expected errors into typed payload errors and auth errors into
`extensions.code`. Messages are written for clients: no SQL, no stack traces, no personal data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


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
TITLES: dict[ErrorCode, str] = {
    ErrorCode.UNAUTHENTICATED: "Not signed in",
    ErrorCode.FORBIDDEN: "Not allowed",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ErrorCode.VALIDATION_FAILED: "Invalid input",
    ErrorCode.CONFLICT: "Conflict",
    ErrorCode.RATE_LIMITED: "Too many requests",
    ErrorCode.QUERY_TOO_COMPLEX: "Query too complex",
    ErrorCode.SERVICE_UNAVAILABLE: "Service unavailable",
    ErrorCode.INTERNAL: "Internal error",
}


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL
    status: int = 500

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.value.lower().replace("_", "-"),
            "title": TITLES[self.code],
            "status": self.status,
            "detail": self.message,
            "code": self.code.value,
        }
        if instance:
            body["instance"] = instance
        body.update(self.data)
        return body


class NotFound(DomainError):
    """Also what another tenant's object looks like: indistinguishable from a missing one."""

    code = ErrorCode.NOT_FOUND
    status = 404


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION_FAILED
    status = 422

    def __init__(self, message: str, field: str | None = None, **data: Any) -> None:
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

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    code = ErrorCode.SERVICE_UNAVAILABLE
    status = 503


class PoolExhausted(ServiceUnavailable):
    """No database connection became free within the acquire timeout (DB_ACQUIRE_TIMEOUT_SECONDS):
    the request fails now rather than queueing for ever. REST: 503 with Retry-After; GraphQL:
    SERVICE_UNAVAILABLE with `extensions.retryAfter`, in mutations too (it is about the request,
    not the input)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "the service is busy: no database connection became free in time; try again shortly", retryAfter=retry_after
        )
        self.retry_after = retry_after


class HttpError(DomainError):
    """A framework-level HTTP error (unknown route, bad method, internal) in the same shape."""

    def __init__(self, message: str, code: ErrorCode, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
