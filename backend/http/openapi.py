"""OpenAPI documentation of the RFC 9457 problem+json errors (rendered by `backend.http.problems`).

Handlers list the statuses they can answer with: `responses=problem_responses(401, 403, 404)`.
The schema replaces litestar's default 400 body, which our handlers never send. A route with
parameters also answers 422 when one does not parse (a uuid, a date) or holds a control
character, and every signed-in route 429 over the rate limit; the controllers' base class
documents both for every such route (`with_parameter_problem`, `with_rate_limit_problem`).
"""

from __future__ import annotations

from dataclasses import fields, replace

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPI, OpenAPIHeader, OpenAPIResponse, OpenAPIType, Schema

from backend.errors import (
    Conflict,
    DomainError,
    Duplicate,
    ErrorCode,
    InvalidTransition,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    RateLimited,
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
    429: _spec(
        "Over the rate limit of the person or machine client; `Retry-After` says when to try again",
        RateLimited(
            _l(
                "more than {limit} requests in {window_seconds} s; try again in {reset} s",
                limit=600,
                window_seconds=60,
                reset=12,
            ),
            retry_after=12,
        ),
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


INVALID_PARAMETER = _spec(
    "A path or query parameter is not a valid value of its type, or holds a control character; `errors` names it",
    ValidationFailed(_l("`{name}` is not a valid {kind}", name="department_id", kind="uuid"), field="department_id"),
)
# Not parameters of the request: the body, the connection, and our controllers' dependencies.
_NOT_PARAMETERS = frozenset({"self", "request", "data", "state", "scope", "headers", "app_state", "principal"})


def with_parameter_problem(handler: HTTPRouteHandler) -> None:
    """Document the 422 a route answers when a path or query parameter does not parse or holds a
    control character (`backend.http.problems`, `backend.http.input_guard`), unless the route
    documents 422 already."""
    parameters = set(handler.parsed_fn_signature.parameters) - _NOT_PARAMETERS
    if parameters and 422 not in (handler.responses or {}):
        handler.responses = {**(handler.responses or {}), 422: INVALID_PARAMETER}


def with_rate_limit_problem(handler: HTTPRouteHandler) -> None:
    """Document the 429 of a signed-in route: every request that signs in counts against the
    principal's rate limit (`backend.http.auth.admit`)."""
    if 429 not in (handler.responses or {}):
        handler.responses = {**(handler.responses or {}), 429: PROBLEM_RESPONSES[429]}


RETRY_AFTER = OpenAPIHeader(
    description="seconds until the rate limit lets this caller in again",
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    required=True,
)


def document_retry_after(app: Litestar) -> None:
    """Add the `Retry-After` header to every documented 429 (litestar's response specs carry no
    headers), so clients generated from the document honour it. Done whenever litestar builds the
    document, on first use, as `backend.http.documentation` hooks in: the plugin instance becomes
    a subclass of whatever class it has now."""
    plugin = app.plugins.get(OpenAPIPlugin)
    base = type(plugin)

    def _build_openapi(self: OpenAPIPlugin) -> OpenAPI:
        document = base._build_openapi(self)
        _add_retry_after(document)
        _collapse_lone_one_of(document)
        return document

    plugin.__class__ = type(f"RetryAfter{base.__name__}", (base,), {"__slots__": (), "_build_openapi": _build_openapi})


def _add_retry_after(document: OpenAPI) -> None:
    for path_item in (document.paths or {}).values():
        for method in ("get", "put", "post", "patch", "delete"):
            operation = getattr(path_item, method, None)
            response = (operation.responses or {}).get("429") if operation is not None else None
            if isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), "Retry-After": RETRY_AFTER}


def _collapse_lone_one_of(document: OpenAPI) -> None:
    """A field a PATCH body may leave out (msgspec's UNSET) reaches the document as a oneOf of one
    member, which validators call illogical: the member alone says the same."""
    components = document.components
    for schema in (components.schemas or {}).values() if components is not None else ():
        properties = schema.properties or {}
        for name, prop in list(properties.items()):
            if isinstance(prop, Schema) and prop.one_of is not None and len(prop.one_of) == 1:
                (only,) = prop.one_of
                if isinstance(only, Schema):
                    own = {f.name: getattr(prop, f.name) for f in fields(prop) if f.name != "one_of"}
                    properties[name] = replace(only, **{k: v for k, v in own.items() if v is not None})
