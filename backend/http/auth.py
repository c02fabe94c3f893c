"""Turn the Authorization header into a Principal (REST dependency and GraphQL context)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import Message, Scope

from auth.errors import Unauthenticated
from auth.principal import Principal
from backend import generations
from backend.errors import RateLimited
from backend.http.openapi import with_parameter_problem, with_rate_limit_problem
from backend.observability import note_request
from backend.ratelimit import Quota
from backend.state import AppState
from outbound import Networks


def bearer_from(value: object) -> str | None:
    """The token of an `Authorization: Bearer …` value (header or WebSocket init payload)."""
    if not isinstance(value, str):
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorization_of(scope: Scope) -> str | None:
    """The first Authorization header of the request, read from the ASGI scope: litestar's
    `connection.headers` builds a multi-dict of every header for it, ~8 µs per request on the
    hot path (decision 040, fourth amendment); the same value (names case-insensitive, latin-1)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return value.decode("latin-1")
    return None


_QUOTA = "rate_limit_quota"
_ADMISSION = "admission"


def client_address(scope: Scope, trusted_proxies: Networks) -> str:
    """The client's address: the peer's, unless the peer is one of our proxies
    (`TRUSTED_PROXIES`); then the right-most X-Forwarded-For entry that is not one of them
    (entries further left are whatever the client chose to send, so never believed)."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [
        hop.strip()
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop[:64]
    return hops[0][:64] if hops else peer


def _refused(
    state: AppState, connection: ASGIConnection[Any, Any, Any, Any] | None, refusal: Unauthenticated
) -> Unauthenticated | RateLimited:
    """A request without a valid token counts against its client address; over the limit it
    is answered 429 instead of 401."""
    if state.rate_limiter is None or connection is None:
        return refusal
    address = client_address(connection.scope, state.trusted_proxies)
    try:
        state.rate_limiter.take_unauthenticated(address)
    except RateLimited as limited:
        _keep_quota(connection, Quota(state.rate_limiter.unauthenticated_limit, 0, limited.retry_after))
        return limited
    return refusal


async def admit(state: AppState, token: str | None, connection: ASGIConnection[Any, Any, Any, Any] | None) -> Principal:
    """Sign in and count the request against the principal's rate limit (REST and GraphQL).
    The generations read at sign-in stay on the request for its handlers; what is left of the
    rate limit goes back in the response headers (`quota_headers`). A request already admitted
    by `admit_early` gets that outcome again: one verification and one count per request."""
    if connection is not None:
        earlier = connection.scope.get("state", {}).get(_ADMISSION)
        if earlier is not None and earlier[0] == token:
            if isinstance(earlier[1], Exception):
                raise earlier[1]
            admitted: Principal = earlier[1]
            return admitted
    if token is None:
        raise _refused(state, connection, Unauthenticated())
    try:
        principal, read = await state.sign_in(state, token)
    except Unauthenticated as refusal:
        raise _refused(state, connection, refusal) from None
    if connection is not None:
        generations.keep_on_request(connection, read)
    if state.rate_limiter is not None:
        try:
            quota = state.rate_limiter.take(principal)
        except RateLimited as refused:
            _keep_quota(connection, Quota(state.rate_limiter.limit_for(principal), 0, refused.retry_after))
            raise
        _keep_quota(connection, quota)
    # Logs carry the tenant and the pseudonymous subject id, never the token or a name.
    note_request(tenant=principal.tenant_slug, principal=principal.subject)
    return principal


def _keep_quota(connection: ASGIConnection[Any, Any, Any, Any] | None, quota: Quota) -> None:
    if connection is not None:
        connection.scope.setdefault("state", {})[_QUOTA] = quota


async def quota_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: RateLimit-Limit, -Remaining and -Reset on every response to a
    signed-in request (429s included), so partner and telephony systems can pace themselves.
    Async on purpose: litestar runs a plain function hook in a worker thread, which cost
    ~120 µs per message (measured: /ping went from 29 to 269 µs of CPU)."""
    if message["type"] == "http.response.start":
        quota = scope.get("state", {}).get(_QUOTA)
        if isinstance(quota, Quota):
            message["headers"] = [*message.get("headers", ()), *quota.headers()]


async def admit_early(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """For a layer that must know the caller before the handler runs (idempotency): the verified
    principal, or None without a bearer token or when sign-in fails. The outcome stays on the
    request, so the handler's own sign-in returns the same principal, or raises the same error
    and renders it as it always does (problem+json, GraphQL `extensions.code`)."""
    token = bearer_from(authorization_of(connection.scope))
    if token is None:
        return None
    state: AppState = connection.app.state.app_state
    try:
        principal = await admit(state, token, connection)
    except Exception as refused:  # kept for the handler to raise, and render as it always does
        connection.scope.setdefault("state", {})[_ADMISSION] = (token, refused)
        return None
    connection.scope.setdefault("state", {})[_ADMISSION] = (token, principal)
    return principal


async def verify_again(state: AppState, token: str) -> tuple[Principal, generations.Generations | None]:
    """The token's sign-in as it is now, without counting a request, and the generations read
    for it: a subscription checks it before each event it hands out (remembered per token under
    the sign-in generation) and decides the event with the same read."""
    return await state.sign_in(state, token)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    state: AppState = connection.app.state.app_state
    return await admit(state, bearer_from(authorization_of(connection.scope)), connection)


async def provide_principal(request: Request[Any, Any, Any], app_state: AppState) -> Principal:
    # Depends on `app_state` only so litestar resolves the two one after the other: two
    # independent dependencies are resolved in a task group, which cost ~70 µs per request.
    del app_state
    return await authenticate(request)


async def signed_in(request: Request[Any, Any, Any]) -> tuple[AppState, Principal]:
    """The app state and the verified principal without litestar's dependency resolution, for a
    hot path (the forwarding decision): the same sign-in and refusals as `provide_principal`."""
    state: AppState = request.app.state.app_state
    return state, await admit(state, bearer_from(authorization_of(request.scope)), request)


def provide_app_state(request: Request[Any, Any, Any]) -> AppState:
    state: AppState = request.app.state.app_state
    return state


class AuthenticatedController(Controller):
    """Base of every REST controller: the app state and the verified principal as dependencies,
    the bearer scheme in the OpenAPI document, and there the 422 of a parameter that does not
    parse or holds a control character, and the 429 of the rate limit."""

    dependencies = {
        "app_state": Provide(provide_app_state, sync_to_thread=False),
        "principal": Provide(provide_principal),
    }
    security = [{"bearer": []}]

    def get_route_handlers(self) -> list[BaseRouteHandler]:
        handlers = super().get_route_handlers()  # copies, owned by this controller
        for handler in handlers:
            if isinstance(handler, HTTPRouteHandler):
                with_parameter_problem(handler)
                with_rate_limit_problem(handler)
        return handlers
