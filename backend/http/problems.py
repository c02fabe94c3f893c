"""RFC 9457 problem+json for every error a REST client can see, rendered in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, ValidationException
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from auth.errors import AccessError, Unauthenticated
from backend.errors import (
    DomainError,
    ErrorCode,
    HttpError,
    NotAllowed,
    NotAuthenticated,
    PoolExhausted,
    RateLimited,
    ValidationFailed,
)
from backend.i18n import Message, _l, negotiate, validation_message

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("http")

_STATUS_CODES = {
    400: ErrorCode.VALIDATION_FAILED,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.VALIDATION_FAILED,
    415: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


# Framework errors (litestar's own 4xx/5xx) get our words, one text per status: litestar's
# details are English phrases ("Not Found") that would otherwise pass untranslated.
_STATUS_DETAILS = {
    400: _l("the request could not be read (malformed syntax or body)"),
    401: _l("a valid bearer token is required"),
    403: _l("not allowed for your role"),
    404: _l("there is nothing at this path"),
    405: _l("this method is not allowed here; see the Allow header"),
    409: _l("the request conflicts with the current state"),
    413: _l("the request body is too large"),
    415: _l("this content type is not supported; send JSON"),
    429: _l("too many requests; try again later"),
    503: _l("the service is unavailable; try again later"),
}
INTERNAL_ERROR = _l("internal error; the request id identifies it in our logs")


def status_error(status: int) -> HttpError:
    """A framework error of this status, in our words."""
    code = _STATUS_CODES.get(status, ErrorCode.INTERNAL)
    return HttpError(_STATUS_DETAILS.get(status, INTERNAL_ERROR), code, status)


def locale_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The request's language for messages (decision 017)."""
    return negotiate(connection.headers.get("accept-language"), connection.app.state.default_locale)


def problem_response(
    error: DomainError, request: Request[Any, Any, Any], headers: Mapping[str, str] | None = None
) -> Response[dict[str, Any]]:
    """The problem+json response in the request's language; `headers` are the exception's own
    (e.g. `Allow` on a 405)."""
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="buergerservice"'
    if isinstance(error, RateLimited | PoolExhausted):
        headers["retry-after"] = str(error.retry_after)
    locale = locale_of(request)
    headers["content-language"] = locale
    headers["vary"] = "Accept-Language"
    return Response(
        content=error.problem(locale, instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem_response(exc, request)


def _access_error_handler(request: Request[Any, Any, Any], exc: AccessError) -> Response[dict[str, Any]]:
    message = Message(exc.message)  # marked in `auth` (N_): the text is the msgid
    error: DomainError = NotAuthenticated(message) if isinstance(exc, Unauthenticated) else NotAllowed(message)
    return problem_response(error, request)


def _validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    # Field names and messages only: echoing input values could leak personal data. The field
    # names stay as sent; the sentences are translated.
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append({"field": item.get("key"), "message": validation_message(str(item.get("message") or ""))})
    named = ", ".join(str(error["field"]) for error in errors if error["field"])
    message = _l("invalid input: {fields}", fields=named) if named else _l("invalid input")
    return problem_response(ValidationFailed(message, errors=errors), request, exc.headers)


def unparsable_path_parameter(request: Request[Any, Any, Any]) -> ValidationFailed | None:
    """The path parameter that did not parse, when a route of this method matches the path by
    its shape (`/closing-days/2026-02-30` on `/closing-days/{day:date}`). Litestar's router
    reports such a path as not found; the client sent a bad value, as in a query parameter."""
    path = request.scope["path"]
    if root_path := request.scope.get("root_path", ""):
        path = path.split(root_path, maxsplit=1)[-1]
    parts = [part for part in path.split("/") if part]
    for route in request.app.routes:
        if not isinstance(route, HTTPRoute) or request.method not in route.methods:
            continue
        if len(route.path_components) != len(parts):
            continue
        failed = None
        for component, value in zip(route.path_components, parts, strict=True):
            if isinstance(component, str):
                if component != value:
                    break
            elif component.parser is not None and failed is None:
                try:
                    component.parser(value)
                except ValueError:  # msgspec.ValidationError is one
                    failed = component
        else:
            if failed is not None:
                kind = failed.type.__name__.lower()
                return ValidationFailed(
                    _l("`{name}` is not a valid {kind}", name=failed.name, kind=kind), field=failed.name
                )
    return None


def _http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundException) and isinstance(exc.__cause__, ValueError):
        # The router raises NotFound from the ValueError of a path parameter that did not parse.
        invalid = unparsable_path_parameter(request)
        if invalid is not None:
            return problem_response(invalid, request, exc.headers)
    status = 401 if isinstance(exc, NotAuthorizedException) else exc.status_code
    return problem_response(status_error(status), request, exc.headers)


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(HttpError(INTERNAL_ERROR, ErrorCode.INTERNAL, HTTP_500_INTERNAL_SERVER_ERROR), request)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: _domain_error_handler,
    AccessError: _access_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_error_handler,
    Exception: _unexpected_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem_response"]
