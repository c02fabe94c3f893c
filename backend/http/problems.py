"""RFC 9457 problem+json for every error a REST client can see, rendered in one place."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from auth.errors import AccessError, Forbidden, Unauthenticated
from backend.errors import (
    DomainError,
    ErrorCode,
    HttpError,
    NotAllowed,
    NotAuthenticated,
    RateLimited,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("http")

_STATUS_CODES = {
    400: ErrorCode.VALIDATION_FAILED,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.VALIDATION_FAILED,
    415: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def problem_response(error: DomainError, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="buergerservice"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return Response(
        content=error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem_response(exc, request)


def _access_error_handler(request: Request[Any, Any, Any], exc: AccessError) -> Response[dict[str, Any]]:
    error: DomainError
    if isinstance(exc, Unauthenticated):
        error = NotAuthenticated(exc.message)
    elif isinstance(exc, Forbidden):
        error = NotAllowed(exc.message)
    else:
        error = NotAllowed(exc.message)
    return problem_response(error, request)


def _validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    # Field names and messages only: echoing input values could leak personal data.
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append({"field": item.get("key"), "message": item.get("message")})
    return problem_response(ValidationFailed(exc.detail or "invalid request", errors=errors), request)


def _http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.INTERNAL)
    detail = exc.detail if exc.status_code < 500 else "internal error"
    if isinstance(exc, NotAuthorizedException):
        detail = "a valid bearer token is required"
    return problem_response(HttpError(detail, code, exc.status_code), request)


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    message = "internal error; the request id identifies it in our logs"
    return problem_response(HttpError(message, ErrorCode.INTERNAL, HTTP_500_INTERNAL_SERVER_ERROR), request)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: _domain_error_handler,
    AccessError: _access_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_error_handler,
    Exception: _unexpected_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem_response"]
