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

from backend.i18n import N_, Message, _l, render, render_text


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    # 409s, told apart so clients can react (decision 004): reload and retry; look the existing
    # one up; the object's state does not allow it. CONFLICT is any other clash (overlaps,
    # periods already invoiced, a request still running).
    VERSION_CONFLICT = "VERSION_CONFLICT"
    DUPLICATE = "DUPLICATE"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"


# A problem's `type` is a URI reference to the page this service serves about its code
# (backend/web/problems.py), resolved against the request's URL: the same text on every
# deployment and in the OpenAPI document, and it opens on the server that answered.
PROBLEM_TYPE_BASE = "/problems/"


def problem_slug(code: ErrorCode) -> str:
    return code.value.lower().replace("_", "-")


# Message ids of the problem titles (English; the catalogues hold the translations).
TITLES: dict[ErrorCode, str] = {
    ErrorCode.UNAUTHENTICATED: N_("Not signed in"),
    ErrorCode.FORBIDDEN: N_("Not allowed"),
    ErrorCode.NOT_FOUND: N_("Not found"),
    ErrorCode.METHOD_NOT_ALLOWED: N_("Method not allowed"),
    ErrorCode.VALIDATION_FAILED: N_("Invalid input"),
    ErrorCode.VERSION_CONFLICT: N_("Changed meanwhile"),
    ErrorCode.DUPLICATE: N_("Already exists"),
    ErrorCode.INVALID_TRANSITION: N_("Not possible in this state"),
    ErrorCode.CONFLICT: N_("Conflict"),
    ErrorCode.RATE_LIMITED: N_("Too many requests"),
    ErrorCode.QUERY_TOO_COMPLEX: N_("Query too complex"),
    ErrorCode.SERVICE_UNAVAILABLE: N_("Service unavailable"),
    ErrorCode.INTERNAL: N_("Internal error"),
}
# What each code means and what a client does about it: the page behind the problem's `type`.
MEANINGS: dict[ErrorCode, tuple[tuple[int, ...], str]] = {
    ErrorCode.UNAUTHENTICATED: (
        (401,),
        "No valid bearer token came with the request: none, expired, not yet valid, signed by a key or "
        "issuer no tenant trusts, or for another audience. Get a new token from your municipality's "
        "identity provider; a town's admin sees why sign-ins are refused in the issuer's refusal log.",
    ),
    ErrorCode.FORBIDDEN: (
        (403,),
        "The token is valid, but its roles or scopes do not allow this operation. Ask your town's "
        "admin for the role; repeating the request will not help.",
    ),
    ErrorCode.NOT_FOUND: (
        (404,),
        "The object or route does not exist, or belongs to a tenant you do not act for (another "
        "town's objects look exactly like missing ones).",
    ),
    ErrorCode.METHOD_NOT_ALLOWED: (
        (405,),
        "The route exists but not with this HTTP method; the `Allow` header lists the methods it has.",
    ),
    ErrorCode.VALIDATION_FAILED: (
        (400, 413, 415, 422),
        "The request could not be used: a body that is not JSON or too large, or values that break a "
        "rule. `errors` names each field and what is wrong with it; fix them and send again.",
    ),
    ErrorCode.VERSION_CONFLICT: (
        (409,),
        "Someone else changed the object after the version your change is based on. Read it again, "
        "apply your change to the new version, and send it with that version.",
    ),
    ErrorCode.DUPLICATE: (
        (409,),
        "What the request would create exists already (`field` names the value that clashes: a slug, "
        "a name, an external id), or was done already. Look the existing one up; sending again will not help.",
    ),
    ErrorCode.INVALID_TRANSITION: (
        (409,),
        "The object's current state does not allow this step (a ticket status move outside the "
        "workflow, editing an article in review, issuing an invoice that is not a draft). Read the "
        "object; only the steps its state allows can succeed.",
    ),
    ErrorCode.CONFLICT: (
        (409,),
        "The request contradicts stored data in another way: a period that overlaps another one, "
        "days already invoiced, a request with the same Idempotency-Key still running. The message "
        "says which; read the object again, then decide.",
    ),
    ErrorCode.RATE_LIMITED: (
        (429,),
        "More requests in the last minute than the person or machine client may send. Wait the "
        "seconds in `Retry-After` (also `retryAfter` in the body), then continue.",
    ),
    ErrorCode.QUERY_TOO_COMPLEX: (
        (400,),
        "A GraphQL query deeper, wider or more costly than the limits allow. Ask for fewer fields or smaller pages.",
    ),
    ErrorCode.SERVICE_UNAVAILABLE: (
        (503,),
        "A service this request depends on (the database, an identity provider) did not answer in "
        "time; nothing was changed. Try again later.",
    ),
    ErrorCode.INTERNAL: (
        (500,),
        "An unexpected error on our side; its details are in our logs under the request id. Nothing is "
        "known to have changed; report it if it repeats.",
    ),
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
            "type": PROBLEM_TYPE_BASE + problem_slug(self.code),
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


class VersionConflict(Conflict):
    """The object changed since the version the client based its change on: reload, try again."""

    code = ErrorCode.VERSION_CONFLICT


class Duplicate(Conflict):
    """What is to be created exists already (a slug, an external id, a name, one per call or year)."""

    code = ErrorCode.DUPLICATE


class InvalidTransition(Conflict):
    """The object's state does not allow this change (a status move, editing what is in review,
    issuing what is not a draft); retrying does not help until the state changes."""

    code = ErrorCode.INVALID_TRANSITION


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


class PoolExhausted(ServiceUnavailable):
    """No database connection became free within the acquire timeout (DB_ACQUIRE_TIMEOUT_SECONDS):
    the request fails now rather than queueing for ever. REST: 503 with Retry-After; GraphQL:
    SERVICE_UNAVAILABLE with `extensions.retryAfter`, in mutations too (it is about the request,
    not the input)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            _l("the service is busy: no database connection became free in time; try again shortly"),
            retryAfter=retry_after,
        )
        self.retry_after = retry_after


class HttpError(DomainError):
    """A framework-level HTTP error (unknown route, bad method, internal) in the same shape."""

    def __init__(self, message: Message, code: ErrorCode, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
