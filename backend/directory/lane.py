"""The forwarding decision's own lane (decision 040, seventh round): `GET /v1/forwarding` with a
plain query string is answered here, in front of litestar's handler, without its parameter
extraction (the kwargs model and the signature model's conversion) and its response objects
(`Response`, `ASGIResponse`, the headers multi-dict). Those cost ~25 µs of the ~86 µs a
decision costs in process, more than the decision itself; over HTTP ~1.5× that.

Same answers, same refusals: the lane signs in and decides exactly as the handler does
(`signed_in`, `service.forwarding_decision`); anything either raises propagates, through the
same middleware, to the same exception handlers the handler's errors reach, and is rendered as
before. The answer is encoded by litestar's own JSON encoder with the headers litestar sends
for it (content-type, content-length; the request id and the RateLimit headers are added
further out, as for every route). Values are decoded by litestar's own query parser, so a
percent-encoded surname ("M%C3%BCller", the telephone system's usual case) or a `+` reads as
the handler would read it. Whatever else the lane cannot read exactly as litestar would — a
parameter twice or empty, a value too long once decoded, a name it does not know (`at`
included) or one written encoded, no `tenant`, another method — goes to the handler
untouched. The handler stays the route's published contract (OpenAPI, 400s of its parameters)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from litestar import Request
from litestar._asgi.utils import wrap_in_exception_handler
from litestar._parsers import parse_query_string
from litestar.serialization import encode_json
from litestar.types import ASGIApp, Receive, Scope, Send

from backend import generations
from backend.directory import service
from backend.directory.schemas import ForwardingDecision
from backend.http.auth import signed_in

# The route's query parameters and their `max_length` as the handler declares them (tenant
# has none; a limit counts characters once decoded, as the handler's check does). A value of
# these characters is one litestar's parser decodes on its own (URL escapes, `+` for a space);
# anything else in it, `=` or a byte beyond ASCII, is left to the handler.
_LIMITS = {b"tenant": None, b"leikaKey": 14, b"surname": 100, b"area": 100}
_PLAIN = re.compile(rb"[A-Za-z0-9._~%+-]+")
_NAMES = ((b"tenant", "tenant"), (b"leikaKey", "leika_key"), (b"surname", "surname"), (b"area", "area"))
_JSON = (b"content-type", b"application/json")
_FIELDS = "forwarding_lane.fields"  # the parameters read, handed to `_answer` in the scope


def plain_query(query: bytes) -> dict[str, str] | None:
    """The parameters of a query string the lane may read itself, by their Python names
    (`tenant`, `leika_key`, `surname`, `area`); None for any other (the handler reads it)."""
    found: set[bytes] = set()
    for pair in query.split(b"&"):
        name, equals, value = pair.partition(b"=")
        if not equals or name not in _LIMITS or name in found or _PLAIN.fullmatch(value) is None:
            return None
        found.add(name)
    if b"tenant" not in found:
        return None
    # Each name once and written plainly, so litestar's reading has exactly these names.
    decoded = dict(parse_query_string(query))
    fields: dict[str, str] = {}
    for name, key in _NAMES:
        if name not in found:
            continue
        text = decoded.get(name.decode("ascii"), "")
        limit = _LIMITS[name]
        if not text or (limit is not None and len(text) > limit):
            return None
        fields[key] = text
    return fields


async def decide(
    request: Request[Any, Any, Any],
    tenant: str,
    leika_key: str | None,
    surname: str | None,
    area: str | None,
    at: datetime | None = None,
) -> ForwardingDecision:
    """Sign in and decide: the handler's body, shared by the lane."""
    app_state, principal = await signed_in(request)
    read = generations.of_request(request)
    return await service.forwarding_decision(app_state, principal, tenant, leika_key, surname, at, area, read)


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    fields: dict[str, str] = scope[_FIELDS]  # type: ignore[literal-required]
    decision = await decide(
        Request(scope, receive, send),
        fields["tenant"],
        fields.get("leika_key"),
        fields.get("surname"),
        fields.get("area"),
    )
    body = encode_json(decision)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [_JSON, (b"content-length", str(len(body)).encode())]}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


# What litestar puts between a route's middleware and its handler: an error is rendered there by
# the route's exception handlers, so the middleware around (request id, access log, metrics)
# sees the error response as it sees the handler's.
_ANSWER = wrap_in_exception_handler(_answer)


def forwarding_lane(app: ASGIApp) -> ASGIApp:
    """Handler middleware of `GET /v1/forwarding` (inside every app-wide middleware)."""

    async def lane(scope: Scope, receive: Receive, send: Send) -> None:
        fields = plain_query(scope.get("query_string", b"")) if scope.get("method") == "GET" else None
        if fields is None:
            await app(scope, receive, send)
            return
        scope[_FIELDS] = fields  # type: ignore[literal-required]
        await _ANSWER(scope, receive, send)

    return lane
