"""REST for Open311 (decision 030): GeoReport v2 under `/open311/v2` for partner towns' clients,
and under `/v1` the town admin's services and api keys. Thin: parse → service → response.

GeoReport answers in the format the path ends with (`.json`, `.xml`), errors included, as the
specification's error array (`[{"code": 400, "description": "…"}]`) with the same HTTP status.
"""

from __future__ import annotations

import calendar
import re
import types
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID

import msgspec
import structlog
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from auth.errors import AccessError, Unauthenticated
from auth.principal import Principal
from backend import clock
from backend.errors import DomainError, NotAllowed, RateLimited, ValidationFailed
from backend.http.auth import AuthenticatedController, admit, bearer_from, client_address, provide_app_state
from backend.http.bodies import PROBLEM_RENDERER
from backend.http.openapi import problem_responses
from backend.http.problems import INTERNAL_ERROR, locale_of, status_error
from backend.i18n import Message, _l, validation_message
from backend.open311 import service, wire
from backend.open311.schemas import (
    ApiKey,
    ApiKeyInput,
    ApiKeyIssued,
    GeoReportCreated,
    GeoReportDiscovery,
    GeoReportEndpoint,
    GeoReportError,
    GeoReportRequest,
    GeoReportService,
    GeoReportServiceDefinition,
    GeoReportToken,
    Open311Service,
    Open311ServiceInput,
    RequestQuery,
    Status,
    Submission,
)
from backend.state import AppState, unit_of_work

log = structlog.get_logger("open311")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T08:00:00+01:00"  # when this facade last changed what it offers
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]{1,60})\](\[\])?$")
_FORMATS = {"json": wire.Format.JSON, "xml": wire.Format.XML}

Jurisdiction = Annotated[
    str | None, Parameter(description="the town's slug (required when several towns offer Open311)")
]
ApiKeyParameter = Annotated[str | None, Parameter(description="the partner system's api_key")]
ERRORS = {
    400: "a parameter or field is missing or not valid",
    401: "the bearer token is not valid",
    403: "no api_key, an invalid one, or a token whose grants do not allow it",
    404: "no such town, service, request or token (another town's look the same)",
    413: "the body is too large",
    429: "too many requests; see Retry-After",
}


def georeport_responses(status: int, data: object, *errors: int) -> dict[int, ResponseSpec]:
    """The answer and the errors, each in GeoReport's shape (XML paths: the same, as XML)."""
    found = {
        status: ResponseSpec(
            data_container=data, description="GeoReport v2, JSON or XML by the path's suffix", generate_examples=False
        )
    }
    for code in errors:
        found[code] = ResponseSpec(
            data_container=list[GeoReportError],
            description=f"GeoReport errors: {ERRORS[code]}",
            generate_examples=False,
        )
    return found


READ_ERRORS = (400, 401, 403, 404, 429)


# --- errors ---------------------------------------------------------------------------------


def _status_and_text(exc: Exception, locale: str) -> tuple[int, str, dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        if isinstance(exc, RateLimited):
            headers["retry-after"] = str(exc.retry_after)
        field = exc.data.get("field")
        text = exc.text(locale)
        if field and isinstance(field, str) and not text.startswith(field):
            text = f"{field}: {text}"
        return (400 if exc.status == 422 else exc.status), text, headers
    if isinstance(exc, AccessError):
        status = 401 if isinstance(exc, Unauthenticated) else 403
        return status, Message(exc.message).render(locale), headers
    if isinstance(exc, HTTPException):
        status = 401 if isinstance(exc, NotAuthorizedException) else exc.status_code
        status = 400 if status == 422 else status
        return status, status_error(status).text(locale), headers
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return 500, INTERNAL_ERROR.render(locale), headers


def render_problem(error: DomainError, path: str, locale: str) -> tuple[int, str, bytes]:
    """For refusals before the handler (`backend.http.bodies.send_problem`)."""
    status, text, _ = _status_and_text(error, locale)
    fmt = wire.format_of(path) or wire.Format.JSON
    return status, wire.MEDIA_TYPES[fmt], wire.errors(fmt, status, text)


def georeport_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Every failure of a GeoReport route, as GeoReport's error array in the path's format."""
    locale = locale_of(request)
    status, text, headers = _status_and_text(exc, locale)
    fmt = wire.format_of(request.url.path) or wire.Format.JSON
    headers.update({"content-language": locale, "vary": "Accept-Language"})
    return Response(
        wire.errors(fmt, status, text), status_code=status, media_type=wire.MEDIA_TYPES[fmt], headers=headers
    )


def _format(path: str) -> wire.Format:
    fmt = wire.format_of(path)
    if fmt is None:
        raise HTTPException(status_code=404)
    return fmt


def _answer(fmt: wire.Format, root: str, content: Any, status: int = 200) -> Response[bytes]:
    return Response(wire.render(fmt, root, content), status_code=status, media_type=wire.MEDIA_TYPES[fmt])


# --- parsing --------------------------------------------------------------------------------


def _given(value: str | None) -> str | None:
    """Clients send empty fields for what they do not have (`email=`): as if missing."""
    return value if value else None


def _stem(name: str) -> str:
    """`123.json` → `123`: the id of a `requests/{id}.json` path."""
    stem, _, suffix = name.rpartition(".")
    if suffix not in _FORMATS or not stem:
        raise HTTPException(status_code=404)
    return stem


_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _days_of(text: str) -> tuple[date, date]:
    """The first and last day of a W3C year (`2026`), year and month (`2026-12`) or complete date."""
    if len(text) == 4:
        year = int(text) if text.isascii() and text.isdigit() else -1
        return date(year, 1, 1), date(year, 12, 31)  # ValueError for what is no year
    if len(text) == 7:
        first = date.fromisoformat(text + "-01")
        return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])
    day = date.fromisoformat(text)
    return day, day


def _time(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    """A W3C date and time (`2026-12-01T08:00:00+01:00`, `…Z`, fractions) or a date as W3C's
    profile allows it — a year, a year and month, a complete date — read in Berlin: from its first
    day's start, or to its last day's end for `end_date`.
    Clients that do not percent-encode send the offset's `+` as a space: read it as `+`."""
    if not value:
        return None
    text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    try:
        if "T" not in text and len(text) in (4, 7, 10):
            first, last = _days_of(text)
            return datetime.combine(last if end else first, time.max if end else time.min, tzinfo=clock.BERLIN)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(_l("{field} is not a W3C date and time", field=field)) from None
    if parsed.tzinfo is None:
        raise ValidationFailed(_l("{field} needs a time zone offset", field=field))
    return parsed


def _query(
    service_request_id: str | None,
    service_code: str | None,
    status: str | None,
    start_date: str | None,
    end_date: str | None,
) -> RequestQuery:
    ids: list[int] = []
    for part in (service_request_id or "").split(","):
        if part.strip():
            if not (part.strip().isascii() and part.strip().isdigit()) or len(part.strip()) > 18:
                raise ValidationFailed(_l("service_request_id must be numbers separated by commas"))
            ids.append(int(part.strip()))
    codes = tuple(c.strip() for c in (service_code or "").split(",") if c.strip())
    if any(not c.isdigit() or len(c) > 14 for c in codes):
        raise ValidationFailed(_l("service_code must be LeiKa keys separated by commas"))
    statuses: list[Status] = []
    for part in (status or "").split(","):
        if part.strip():
            if part.strip().lower() not in ("open", "closed"):
                raise ValidationFailed(_l("status must be open or closed"))
            statuses.append(Status(part.strip().lower()))
    if len(ids) > 100:
        raise ValidationFailed(_l("at most 100 service_request_id at once"))
    return RequestQuery(
        ids=tuple(dict.fromkeys(ids)),
        service_codes=codes,
        statuses=tuple(statuses),
        start=_time(start_date, "start_date"),
        end=_time(end_date, "end_date", end=True),
    )


def _repeated(request: Request[Any, Any, Any], name: str, value: str | None) -> str | None:
    """The specification lets a list parameter be "declared multiple times, comma delimited"
    (`status=open&status=closed`): every occurrence counts, as if joined by commas."""
    given = [v for v in request.query_params.getall(name, []) if isinstance(v, str)]
    return ",".join(given) if len(given) > 1 else value


async def _fields(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The POST parameters: form-encoded as the specification says (`attribute[code]=value`,
    `attribute[code][]=a` for several), or a JSON object with the same names."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            raise ValidationFailed(_l("the request could not be read (malformed syntax or body)")) from None
        if not isinstance(body, dict):
            raise ValidationFailed(_l("the request could not be read (malformed syntax or body)"))
        pairs: list[tuple[str, Any]] = list(body.items())
    else:
        form = await request.form()
        pairs = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    fields: dict[str, Any] = {}
    # Every value given for a code, whichever notation (the form's order is not kept).
    attributes: dict[str, list[Any]] = {}
    for key, value in pairs:
        if key == "attribute" and isinstance(value, dict):
            for code, given in value.items():
                attributes.setdefault(str(code), []).extend(given if isinstance(given, list) else [given])
            continue
        match = _ATTRIBUTE.match(key)
        if match:
            attributes.setdefault(match.group(1), []).extend(value if isinstance(value, list) else [value])
        elif value not in ("", None):
            fields[key] = value
    fields["attribute"] = attributes
    return fields


def _text(fields: dict[str, Any], name: str) -> str | None:
    """A POST field that must be text (a JSON body may hold anything)."""
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(_l("{field} must be text", field=name), field=name)
    return _given(value)


def _submission(fields: dict[str, Any]) -> Submission:
    known = {name: fields[name] for name in Submission.__struct_fields__ if name in fields}
    try:
        return msgspec.convert(known, Submission, strict=False)
    except msgspec.ValidationError as refused:
        raise ValidationFailed(validation_message(str(refused))) from None


# --- who calls ------------------------------------------------------------------------------


async def _caller(
    request: Request[Any, Any, Any], state: AppState, api_key: str | None, jurisdiction_id: str | None
) -> service.Caller:
    token = bearer_from(request.headers.get("authorization"))
    principal = await admit(state, token, request) if token is not None else None
    found = await service.caller(
        state, api_key=_given(api_key), jurisdiction_id=_given(jurisdiction_id), principal=principal
    )
    if principal is None and state.rate_limiter is not None:
        if found.public:
            state.rate_limiter.take_unauthenticated(client_address(request.scope, state.trusted_proxies))
        else:
            state.rate_limiter.take(found.principal)
    return found


# Each format its own route (and operation id): litestar keeps a handler's several paths in a
# set, whose order, and so the exported document's, would change from run to run.
Handler = TypeVar("Handler", bound=Callable[..., Any])


def _as(fmt: str, fn: Handler) -> Handler:
    """The same coroutine under a name of its own (`_services_json`): litestar orders a
    controller's handlers by qualified name, then by memory address, so two handlers of one
    function would swap places between runs."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, f"{fn.__name__}_{fmt}", fn.__defaults__, fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}_{fmt}"
    copy.__annotations__ = fn.__annotations__
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__module__ = fn.__module__
    return cast(Handler, copy)


DISCOVERY_ROUTE: dict[str, Any] = {
    "summary": "GeoReport v2 discovery: where the endpoint is and what it speaks",
    "responses": georeport_responses(200, GeoReportDiscovery, 404),
}
SERVICES_ROUTE: dict[str, Any] = {
    "summary": "The services a town accepts Open311 requests for",
    "responses": georeport_responses(200, list[GeoReportService], *READ_ERRORS),
}
CREATE_REQUEST_ROUTE: dict[str, Any] = {
    "summary": "Hand a citizen's report to the town's department (form-encoded, `attribute[code]=value`, or JSON)",
    "responses": georeport_responses(201, list[GeoReportCreated], 400, 401, 403, 404, 413, 429),
}
LIST_REQUESTS_ROUTE: dict[str, Any] = {
    "summary": "Requests by ids, or by service, status and dates (no personal data)",
    "responses": georeport_responses(200, list[GeoReportRequest], *READ_ERRORS),
}


class GeoReportDiscoveryController(Controller):
    """Where the endpoint is and what it speaks: open, no token, no town."""

    path = "/open311/v2"
    tags = ["open311"]
    exception_handlers = dict.fromkeys(
        (DomainError, AccessError, ValidationException, HTTPException, Exception), georeport_error
    )
    opt = {PROBLEM_RENDERER: render_problem}

    async def _discovery(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        fmt = _format(request.url.path)
        base = str(request.base_url).rstrip("/") + "/open311/v2/"
        content = GeoReportDiscovery(
            changeset=CHANGESET,
            contact="Open311 der Kreisverwaltung Soest (Bürgerservice)",
            key_service="api_key vom Administrator Ihrer Stadt (Bürgerservice)",
            endpoints=[
                GeoReportEndpoint(SPECIFICATION, base, CHANGESET, "production", ["application/json", "text/xml"])
            ],
        )
        return _answer(fmt, "discovery", content)

    discovery_json = get("/discovery.json", **DISCOVERY_ROUTE)(_as("json", _discovery))
    discovery_xml = get("/discovery.xml", **DISCOVERY_ROUTE)(_as("xml", _discovery))


class GeoReportController(Controller):
    """GeoReport v2. GETs are open for the town's non-personal data; POST needs an api_key or
    a partner's bearer token."""

    path = "/open311/v2"
    tags = ["open311"]
    dependencies = {"app_state": Provide(provide_app_state, sync_to_thread=False)}
    # Every class the app maps to problem+json, so the most specific one is ours here.
    exception_handlers = dict.fromkeys(
        (DomainError, AccessError, ValidationException, HTTPException, Exception), georeport_error
    )
    security = [{}, {"bearer": []}]
    opt = {PROBLEM_RENDERER: render_problem}

    async def _services(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKeyParameter = None,
    ) -> Response[bytes]:
        fmt = _format(request.url.path)
        caller = await _caller(request, app_state, api_key, jurisdiction_id)
        async with unit_of_work(app_state, caller.principal, readonly=True) as uow:
            found = await service.services(uow, caller.tenant_slug)
        return _answer(fmt, "services", [service.service_list_entry(s) for s in found])

    services_json = get("/services.json", **SERVICES_ROUTE)(_as("json", _services))
    services_xml = get("/services.xml", **SERVICES_ROUTE)(_as("xml", _services))

    @get(
        "/services/{service_file:str}",
        summary="A service definition (`{service_code}.json` or `.xml`): the attributes a client asks",
        responses=georeport_responses(200, GeoReportServiceDefinition, *READ_ERRORS),
    )
    async def service_definition(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        service_file: str,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKeyParameter = None,
    ) -> Response[bytes]:
        fmt, code = _format(request.url.path), _stem(service_file)
        caller = await _caller(request, app_state, api_key, jurisdiction_id)
        async with unit_of_work(app_state, caller.principal, readonly=True) as uow:
            found = await service.service_definition(uow, caller.tenant_slug, code)
        return _answer(fmt, "service_definition", service.definition_entry(found))

    async def _create_request(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        api_key: ApiKeyParameter = None,
        jurisdiction_id: Jurisdiction = None,
    ) -> Response[bytes]:
        fmt = _format(request.url.path)
        fields = await _fields(request)
        key = _given(api_key) or _text(fields, "api_key")
        # Some clients put api_key and jurisdiction_id in the query of a POST too.
        town = _text(fields, "jurisdiction_id") or _given(jurisdiction_id)
        bearer = bearer_from(request.headers.get("authorization"))
        if key is None and bearer is None:
            raise NotAllowed(_l("an api_key is required to submit requests"))
        caller = await _caller(request, app_state, key, town)
        data = _submission(fields)
        async with unit_of_work(app_state, caller.principal) as uow:
            created = await service.submit(uow, caller.tenant_slug, data, caller.api_key_id, locale_of(request))
        return _answer(fmt, "service_requests", [created], status=201)

    create_request_json = post("/requests.json", **CREATE_REQUEST_ROUTE)(_as("json", _create_request))
    create_request_xml = post("/requests.xml", **CREATE_REQUEST_ROUTE)(_as("xml", _create_request))

    async def _list_requests(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKeyParameter = None,
        service_request_id: Annotated[str | None, Parameter(description="ids, comma-separated")] = None,
        service_code: Annotated[str | None, Parameter(description="LeiKa keys, comma-separated")] = None,
        status: Annotated[str | None, Parameter(description="open, closed or both, comma-separated")] = None,
        start_date: Annotated[str | None, Parameter(description="W3C date and time (default: 90 days ago)")] = None,
        end_date: Annotated[str | None, Parameter(description="W3C date and time (default: now)")] = None,
    ) -> Response[bytes]:
        fmt = _format(request.url.path)
        query = _query(
            _repeated(request, "service_request_id", service_request_id),
            _repeated(request, "service_code", service_code),
            _repeated(request, "status", status),
            start_date,
            end_date,
        )
        caller = await _caller(request, app_state, api_key, jurisdiction_id)
        async with unit_of_work(app_state, caller.principal, readonly=True) as uow:
            found = await service.requests(uow, caller.tenant_slug, query, locale_of(request))
        return _answer(fmt, "service_requests", found)

    list_requests_json = get("/requests.json", **LIST_REQUESTS_ROUTE)(_as("json", _list_requests))
    list_requests_xml = get("/requests.xml", **LIST_REQUESTS_ROUTE)(_as("xml", _list_requests))

    @get(
        "/requests/{request_file:str}",
        summary="One request by its id (`{id}.json` or `.xml`; no personal data)",
        responses=georeport_responses(200, list[GeoReportRequest], *READ_ERRORS),
    )
    async def get_request(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        request_file: str,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKeyParameter = None,
    ) -> Response[bytes]:
        fmt, wanted = _format(request.url.path), _stem(request_file)
        if (
            not (wanted.isascii() and wanted.isdigit()) or len(wanted) > 18
        ):  # ids are ticket numbers: nothing else exists
            raise HTTPException(status_code=404)
        query = _query(wanted, None, None, None, None)
        caller = await _caller(request, app_state, api_key, jurisdiction_id)
        async with unit_of_work(app_state, caller.principal, readonly=True) as uow:
            found = await service.requests(uow, caller.tenant_slug, query, locale_of(request))
        if not found:
            raise HTTPException(status_code=404)
        return _answer(fmt, "service_requests", found)

    @get(
        "/tokens/{token_file:str}",
        summary="The request id a token stands for (`{token}.json` or `.xml`)",
        responses=georeport_responses(200, list[GeoReportToken], *READ_ERRORS),
    )
    async def get_token(
        self,
        request: Request[Any, Any, Any],
        app_state: AppState,
        token_file: str,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKeyParameter = None,
    ) -> Response[bytes]:
        fmt, wanted = _format(request.url.path), _stem(token_file)
        caller = await _caller(request, app_state, api_key, jurisdiction_id)
        async with unit_of_work(app_state, caller.principal, readonly=True) as uow:
            found = await service.token(uow, caller.tenant_slug, wanted)
        return _answer(fmt, "service_requests", [found])


# --- the town admin's configuration ---------------------------------------------------------

SERVICES = "/tenants/{slug:str}/open311-services"
KEYS = "/tenants/{slug:str}/open311-keys"


class Open311AdminController(AuthenticatedController):
    path = "/v1"
    tags = ["open311"]

    @get(SERVICES, summary="The services the town offers over Open311", responses=problem_responses(400, 401, 403, 404))
    async def list_services(self, app_state: AppState, principal: Principal, slug: str) -> list[Open311Service]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.configured_services(uow, slug)

    @put(
        SERVICES + "/{service_code:str}",
        summary="Offer a service over Open311, with its definition (town admin)",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def put_service(
        self, app_state: AppState, principal: Principal, slug: str, service_code: str, data: Open311ServiceInput
    ) -> Open311Service:
        async with unit_of_work(app_state, principal) as uow:
            return await service.put_service(uow, slug, service_code, data)

    @delete(
        SERVICES + "/{service_code:str}",
        summary="Stop offering a service over Open311",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_service(self, app_state: AppState, principal: Principal, slug: str, service_code: str) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await service.remove_service(uow, slug, service_code)

    @get(
        KEYS,
        summary="The api keys issued to partner systems (without the keys)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_keys(self, app_state: AppState, principal: Principal, slug: str) -> list[ApiKey]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return await service.api_keys(uow, slug)

    @post(
        KEYS,
        summary="Issue an api key to a partner system; the key is shown once",
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def issue_key(self, app_state: AppState, principal: Principal, slug: str, data: ApiKeyInput) -> ApiKeyIssued:
        async with unit_of_work(app_state, principal) as uow:
            return await service.issue_api_key(uow, slug, data)

    @post(
        KEYS + "/{key_id:uuid}/revocation",
        summary="Revoke an api key: the partner system can no longer submit with it",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def revoke_key(self, app_state: AppState, principal: Principal, slug: str, key_id: UUID) -> ApiKey:
        async with unit_of_work(app_state, principal) as uow:
            return await service.revoke_api_key(uow, slug, key_id)
