"""OpenAPI documentation of the RFC 9457 problem+json errors (rendered by `backend.http.problems`).

Handlers list the statuses they can answer with: `responses=problem_responses(401, 403, 404)`.
The schema replaces litestar's default 400 body, which our handlers never send. A route with a
typed path parameter (uuid, date) also answers 422 when it does not parse; the controllers'
base class documents that for every such route (`with_path_parameter_problem`).
"""

from __future__ import annotations

import re

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from backend.errors import (
    Conflict,
    DomainError,
    Duplicate,
    ErrorCode,
    InvalidTransition,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
)
from backend.http.problems import PROBLEM_JSON, status_error
from backend.i18n import _l


class FieldProblem(msgspec.Struct, frozen=True):
    """What is wrong with one input field (its name on the wire)."""

    field: str | None
    message: str | None


class Problem(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """RFC 9457 problem details; `code` is the stable machine-readable error code, `type` a URI
    reference (resolve it against the request's URL) to a page saying what the code means.

    Some problems add members: `field` on a conflict names the field that clashes, `errors`
    the invalid fields, `retryAfter` the seconds a rate-limited caller waits.
    """

    type: str
    title: str
    status: int
    detail: str
    code: ErrorCode
    instance: str
    errors: list[FieldProblem] = msgspec.field(default_factory=list)
    field: str | None = None
    retry_after: int | None = None


def _spec(description: str, *examples: DomainError) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        generate_examples=False,
        description=description,
        media_type=PROBLEM_JSON,
        examples=[
            # The document is English.
            Example(summary=example.code.value, value=example.problem("en", instance="/v1/tenants/stadt-soest"))
            for example in examples
        ],
    )


PROBLEM_RESPONSES: dict[int, ResponseSpec] = {
    400: _spec("Malformed request (e.g. a body that is not JSON)", status_error(400)),
    401: _spec("No valid bearer token", NotAuthenticated(_l("a valid bearer token is required"))),
    403: _spec("Signed in, but the role or scope does not allow this", NotAllowed(_l("not allowed for your role"))),
    404: _spec(
        "Not found, or not visible to you (other tenants' objects look missing)", NotFound(_l("tenant not found"))
    ),
    409: _spec(
        "Conflicts with the current state; `code` tells which: VERSION_CONFLICT (changed by someone else: "
        "reload and retry), DUPLICATE (exists already), INVALID_TRANSITION (the object's state does not allow "
        "it), CONFLICT (any other clash, e.g. an overlapping period)",
        VersionConflict(_l("the tenant was changed by someone else; reload and try again")),
        Duplicate(_l("a tenant with slug {slug!r} already exists", slug="stadt-soest"), field="slug"),
        InvalidTransition(_l("the agreement already ends on {ends_on}", ends_on="2027-12-31")),
        Conflict(_l("this client already has an agreement with the operator in that period")),
    ),
    422: _spec(
        "Invalid input; `errors` names the fields",
        ValidationFailed(_l("AGS must have 8 digits (municipality) or 5 (district)"), field="ags"),
    ),
    503: _spec(
        "A service this depends on (e.g. an identity provider) did not answer; nothing changed",
        ServiceUnavailable(
            _l(
                "the issuer's keys could not be fetched ({error}); the keys in use stay as they were",
                error="ConnectError",
            )
        ),
    ),
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented problem responses for these status codes."""
    return {status: PROBLEM_RESPONSES[status] for status in statuses}


INVALID_PATH_PARAMETER = _spec(
    "A path parameter is not a valid value of its type; `errors` names it",
    ValidationFailed(_l("`{name}` is not a valid {kind}", name="department_id", kind="uuid"), field="department_id"),
)
_PATH_PARAMETER_TYPE = re.compile(r"{\s*\w+\s*:\s*(\w+)\s*}")


def with_path_parameter_problem(handler: HTTPRouteHandler) -> None:
    """Document the 422 a route answers when a typed path parameter does not parse (rendered by
    `backend.http.problems`), unless the route documents 422 already."""
    typed = {kind for path in handler.paths for kind in _PATH_PARAMETER_TYPE.findall(path)} - {"str", "path"}
    if typed and 422 not in (handler.responses or {}):
        handler.responses = {**(handler.responses or {}), 422: INVALID_PATH_PARAMETER}
