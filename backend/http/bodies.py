"""Reading a request body in ASGI middleware (idempotency, the input guard) and answering there.

Middleware that must see the body before the handler reads it here, up to the route's
`request_max_body_size`, and hands it on with `replaying` (or `handing_on`, which also gives it
to litestar's request); a problem it finds is sent as the
problem+json the exception handlers would render.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import (
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from litestar.utils.scope.state import ScopeState

from backend.errors import DomainError
from backend.http.problems import locale_of, status_error


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


def body_limit(scope: Scope) -> int | None:
    """The route's `request_max_body_size` (litestar's default unless a layer sets its own)."""
    handler = scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    limit = resolve() if resolve is not None else None
    return limit if isinstance(limit, int) else None


def announced_length(headers: dict[bytes, bytes]) -> int | None:
    try:
        return int(headers[b"content-length"])
    except (KeyError, ValueError):
        return None


async def read_body(receive: Receive, limit: int | None) -> bytes:
    """The whole body, counted as it comes: past `limit` bytes, stop reading (`BodyTooLarge`)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the body already read to the app behind, then the connection's."""
    replayed = False

    async def replay() -> ReceiveMessage:
        nonlocal replayed
        if not replayed:
            replayed = True
            return HTTPRequestEvent(type="http.request", body=body, more_body=False)
        return await receive()

    return replay


def handing_on(scope: Scope, body: bytes, receive: Receive) -> Receive:
    """`replaying`, and the body left where litestar's `Request.body()` looks first (the
    connection state in the scope): the handler takes the bytes read here instead of streaming
    them again through the replay (an async generator, ~14 µs of a small POST)."""
    ScopeState.from_scope(scope).body = body
    return replaying(body, receive)


def too_large() -> DomainError:
    # As litestar itself answers (HttpError via the problem handler), for the same body.
    return status_error(RequestEntityTooLarge.status_code)


async def respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


# A controller whose clients expect errors in another shape (Open311's GeoReport error array)
# names its renderer in its handlers' `opt`: (error, path, locale) → (status, media type, body).
# Refusals before the handler then answer in that shape too.
PROBLEM_RENDERER = "problem_renderer"
ProblemRenderer = Callable[[DomainError, str, str], tuple[int, str, bytes]]


async def send_problem(send: Send, error: DomainError, scope: Scope) -> None:
    """The problem+json the exception handlers would render, in the request's language."""
    locale = locale_of(ASGIConnection(scope))
    path = scope.get("path", "")
    renderer: ProblemRenderer | None = (getattr(scope.get("route_handler"), "opt", None) or {}).get(PROBLEM_RENDERER)
    status, media_type, body = error.status, "application/problem+json", b""
    if renderer is not None:
        status, media_type, body = renderer(error, path, locale)
    else:
        body = json.dumps(error.problem(locale, instance=path)).encode()
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-language", locale.encode()),
        (b"vary", b"Accept-Language"),
    ]
    await respond(send, status, headers, body)
