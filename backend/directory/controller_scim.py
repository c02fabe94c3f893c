"""SCIM 2.0 per town at `/scim/v2/<town>/…` for the town's identity provider (decision 027).
Thin: the body as JSON → `scim` → `application/scim+json`. Every error, ours or the framework's,
is SCIM's error message (`urn:ietf:params:scim:api:messages:2.0:Error`, the status as a string)
in the request's language, as problem+json is everywhere else."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post, put
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Parameter

from auth.principal import Principal
from backend.directory import scim
from backend.errors import ValidationFailed
from backend.http.auth import AuthenticatedController
from backend.http.openapi import INVALID_PARAMETER
from backend.http.problems import EXCEPTION_HANDLERS
from backend.i18n import _l
from backend.state import AppState, unit_of_work

SCIM_JSON = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_DEFAULT_TYPES = {400: "invalidValue", 409: "uniqueness"}

Filter = Annotated[str | None, Parameter(description='`userName eq "…"` (Users), `displayName eq "…"` (Groups)')]
StartIndex = Annotated[int | None, Parameter(query="startIndex", description="1-based")]
Count = Annotated[int | None, Parameter(description="page size (at most 200)")]


class ScimError(msgspec.Struct, rename={"scim_type": "scimType"}, omit_defaults=True):
    """RFC 7644 §3.12."""

    schemas: list[str]
    status: str
    detail: str
    scim_type: str | None = None


def _error_spec(description: str, status: int, scim_type: str | None = None) -> ResponseSpec:
    example = {"schemas": [ERROR], "status": str(status), "detail": description}
    return ResponseSpec(
        data_container=ScimError,
        generate_examples=False,
        description=description,
        media_type=SCIM_JSON,
        examples=[Example(summary=str(status), value=example | ({"scimType": scim_type} if scim_type else {}))],
    )


SCIM_ERRORS: dict[int, ResponseSpec] = {
    400: _error_spec("Malformed or invalid request; scimType says which (invalidSyntax, invalidFilter, …)", 400),
    401: _error_spec("No valid bearer token", 401),
    403: _error_spec("Not the town's provisioning client (scope directory:provision)", 403),
    404: _error_spec("No such resource, or a town this client does not provision", 404),
    409: _error_spec("userName or group name taken", 409, "uniqueness"),
    # Refused at the door, before SCIM (control characters in the path): problem+json.
    422: INVALID_PARAMETER,
    429: _error_spec("Over the machine client's rate limit; Retry-After says when", 429),
}


def scim_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The answer the rest of the API would give (its status, text, headers), as SCIM's error."""
    handler = next(EXCEPTION_HANDLERS[kind] for kind in type(exc).__mro__ if kind in EXCEPTION_HANDLERS)
    problem = handler(request, exc)
    body: dict[str, Any] = problem.content
    status = 400 if problem.status_code == 422 else problem.status_code  # SCIM has no 422
    error: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": body.get("detail") or body["title"]}
    scim_type = body.get("scim_type") or _DEFAULT_TYPES.get(status)
    if scim_type:
        error["scimType"] = scim_type
    headers = {k: v for k, v in problem.headers.items() if k.lower() != "content-type"}
    return Response(error, status_code=status, media_type=SCIM_JSON, headers=headers)


def _answer(resource: dict[str, Any], status: int = 200) -> Response[dict[str, Any]]:
    return Response(resource, status_code=status, media_type=SCIM_JSON)


async def _resource(request: Request[Any, Any, Any]) -> Any:
    try:
        return msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ValidationFailed(_l("the body is not JSON"), scim_type="invalidSyntax") from None


def _base(request: Request[Any, Any, Any], slug: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/scim/v2/{slug}"


class ScimController(AuthenticatedController):
    path = "/scim/v2/{slug:str}"
    tags = ["scim"]
    # Every kind the app answers as problem+json (litestar picks the most specific kind over all
    # layers, so a bare `Exception` here would lose to the app's `DomainError`).
    exception_handlers = dict.fromkeys(EXCEPTION_HANDLERS, scim_error)

    def get_route_handlers(self) -> list[BaseRouteHandler]:
        handlers = super().get_route_handlers()
        for handler in handlers:
            if isinstance(handler, HTTPRouteHandler):
                handler.media_type = SCIM_JSON
                handler.responses = dict(SCIM_ERRORS)
        return handlers

    @get("/ServiceProviderConfig", summary="SCIM: what this service provider supports")
    async def service_provider_config(
        self, app_state: AppState, principal: Principal, slug: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.service_provider_config(uow, slug, _base(request, slug)))

    @get("/ResourceTypes", summary="SCIM: the resource types (User, Group)")
    async def resource_types(
        self, app_state: AppState, principal: Principal, slug: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.resource_types(uow, slug, _base(request, slug)))

    @get("/Schemas", summary="SCIM: the attributes kept of each schema")
    async def schemas(
        self, app_state: AppState, principal: Principal, slug: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.schemas(uow, slug, _base(request, slug)))

    @get("/Users", summary="SCIM: the town's people (filter, paging)")
    async def list_users(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        request: Request[Any, Any, Any],
        filter: Filter = None,
        start_index: StartIndex = None,
        count: Count = None,
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.list_users(uow, slug, _base(request, slug), filter, start_index, count))

    @post("/Users", summary="SCIM: add a person")
    async def create_user(
        self, app_state: AppState, principal: Principal, slug: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        resource = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.create_user(uow, slug, _base(request, slug), resource), 201)

    @get("/Users/{user_id:str}", summary="SCIM: one person")
    async def get_user(
        self, app_state: AppState, principal: Principal, slug: str, user_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.get_user(uow, slug, _base(request, slug), user_id))

    @put("/Users/{user_id:str}", summary="SCIM: replace a person")
    async def replace_user(
        self, app_state: AppState, principal: Principal, slug: str, user_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        resource = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.replace_user(uow, slug, _base(request, slug), user_id, resource))

    @patch("/Users/{user_id:str}", summary="SCIM: change a person (active=false deprovisions)")
    async def patch_user(
        self, app_state: AppState, principal: Principal, slug: str, user_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        body = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.patch_user(uow, slug, _base(request, slug), user_id, body))

    @delete("/Users/{user_id:str}", summary="SCIM: the person leaves the directory (tickets back to the queue)")
    async def delete_user(self, app_state: AppState, principal: Principal, slug: str, user_id: str) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await scim.delete_user(uow, slug, user_id)

    @get("/Groups", summary="SCIM: the town's departments (filter, paging)")
    async def list_groups(
        self,
        app_state: AppState,
        principal: Principal,
        slug: str,
        request: Request[Any, Any, Any],
        filter: Filter = None,
        start_index: StartIndex = None,
        count: Count = None,
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.list_groups(uow, slug, _base(request, slug), filter, start_index, count))

    @post("/Groups", summary="SCIM: add a department")
    async def create_group(
        self, app_state: AppState, principal: Principal, slug: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        resource = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.create_group(uow, slug, _base(request, slug), resource), 201)

    @get("/Groups/{group_id:str}", summary="SCIM: one department and its people")
    async def get_group(
        self, app_state: AppState, principal: Principal, slug: str, group_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        async with unit_of_work(app_state, principal, readonly=True) as uow:
            return _answer(await scim.get_group(uow, slug, _base(request, slug), group_id))

    @put("/Groups/{group_id:str}", summary="SCIM: replace a department's name and members")
    async def replace_group(
        self, app_state: AppState, principal: Principal, slug: str, group_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        resource = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.replace_group(uow, slug, _base(request, slug), group_id, resource))

    @patch("/Groups/{group_id:str}", summary="SCIM: add or remove members, rename")
    async def patch_group(
        self, app_state: AppState, principal: Principal, slug: str, group_id: str, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        body = await _resource(request)
        async with unit_of_work(app_state, principal) as uow:
            return _answer(await scim.patch_group(uow, slug, _base(request, slug), group_id, body))

    @delete("/Groups/{group_id:str}", summary="SCIM: close a department (its people leave it)")
    async def delete_group(self, app_state: AppState, principal: Principal, slug: str, group_id: str) -> None:
        async with unit_of_work(app_state, principal) as uow:
            await scim.delete_group(uow, slug, group_id)
