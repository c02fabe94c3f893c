"""Input refused before any work: a request whose text the service could not store or export,
or whose body would break the JSON decoder, gets its problem+json before sign-in, idempotency
or the handler.

- Query and path parameters may not hold control characters (`backend.structs`): NUL reached
  PostgreSQL, which refuses it, and came back as a 500.
- A JSON body may nest at most `MAX_JSON_DEPTH` deep: a 2 KB body of 1,000 brackets made the
  decoder overflow Python's stack (a 500 with a traceback, before sign-in). The depth is measured
  on the raw bytes without recursion, before anything decodes them.
- A body for a handler's `data` is decoded strictly against its type: JSON has types, so a time
  is an ISO 8601 string and never the number 0 (litestar converts leniently, for query strings,
  and read `0` as 1970-01-01).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

import msgspec
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.errors import DomainError, ErrorCode, HttpError, ValidationFailed
from backend.http.bodies import (
    BodyTooLarge,
    ClientDisconnected,
    announced_length,
    body_limit,
    handing_on,
    read_body,
    send_problem,
    too_large,
)
from backend.i18n import N_, _l, validation_message
from backend.structs import CONTROL_CHARACTERS, Input, error_field

MAX_JSON_DEPTH = 32  # our deepest payload (an article with contacts, in GraphQL variables) nests 6
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON in `body` nests deeper than `limit` (JSON lines: any one line).

    Fewer opening brackets than `limit` in the whole body (strings included) cannot nest
    deeper: two counts in C answer that, for nearly every body we are sent (a GraphQL operation
    ~5 µs → ~0.3 µs). The rest is walked (`_walked_too_deep`), with the same answer."""
    if body.count(b"[") + body.count(b"{") < limit:
        return False
    return _walked_too_deep(body, limit)


def _walked_too_deep(body: bytes, limit: int) -> bool:
    """Strings are cut out (they may hold brackets), then each round removes the innermost empty
    pairs: a document of depth d is gone after d rounds, each one regular-expression pass in C.
    What is left when a round removes nothing is unbalanced: its opening brackets bound the depth
    a decoder could reach before it notices. (Each round that removes something removes an
    opening bracket, so with fewer than `limit` of them this is False: the shortcut above.)"""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    rounds = 0
    while brackets and rounds < limit:
        reduced = _EMPTY_PAIR.sub(b"", brackets)
        if len(reduced) == len(brackets):
            return rounds + brackets.count(b"[") + brackets.count(b"{") > limit
        brackets = reduced
        rounds += 1
    return bool(brackets)


def _parameter_problem(scope: Scope) -> ValidationFailed | None:
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
            return ValidationFailed(_l(CONTROL_CHARACTER_MESSAGE, field=name), field=name)
    query = scope.get("query_string", b"")
    if b"%" in query or _RAW_CONTROL.search(query):
        for pair in query.decode("latin-1").split("&"):
            name, _, value = pair.partition("=")
            name, value = unquote_plus(name), unquote_plus(value)
            if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value):
                field = CONTROL_CHARACTERS.sub("", name) or None
                return ValidationFailed(_l(CONTROL_CHARACTER_MESSAGE, field=field), field=field)
    return None


_RAW_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_DATA_TYPES: dict[int, Any] = {}


def _strict_data_type(handler: object) -> Any:
    """The type of the handler's `data` parameter when it holds our Input structs, else None."""
    key = id(handler)
    if key not in _DATA_TYPES:
        data_type = None
        if isinstance(handler, HTTPRouteHandler):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None and any(
                isinstance(inner, type) and issubclass(inner, Input)
                for inner in (data.annotation, *(arg.annotation for arg in data.inner_types))
            ):
                data_type = data.annotation
        _DATA_TYPES[key] = data_type
    return _DATA_TYPES[key]


CONTROL_CHARACTER_MESSAGE = N_("`{field}` must not contain control characters")
TIME_MESSAGE = N_("`{field}`: give times and dates as ISO 8601 strings (2026-12-24, 2026-12-24T08:00:00+01:00)")
_TIME_TYPES = ("Expected `datetime`", "Expected `date`", "Expected `time`")


def _body_problem(body: bytes, data_type: Any) -> DomainError | None:
    if json_too_deep(body):
        return HttpError(
            _l("the JSON body nests deeper than {limit} levels", limit=MAX_JSON_DEPTH), ErrorCode.VALIDATION_FAILED, 400
        )
    if data_type is None or not body.strip():
        return None
    try:
        msgspec.json.decode(body, type=data_type, strict=True)
    except msgspec.ValidationError as error:
        # The shape litestar's own validation errors have (`backend.http.problems`).
        field = error_field(error)
        text = str(error).split(" - at ", 1)[0]
        reason = _l(TIME_MESSAGE, field=field) if text.startswith(_TIME_TYPES) else validation_message(text)
        summary = _l("invalid input: {fields}", fields=field) if field else _l("invalid input")
        return ValidationFailed(summary, errors=[{"field": field, "message": reason}])
    except msgspec.DecodeError:
        return None  # litestar answers a body that is not JSON as it always has (400)
    return None


def _wants_body(scope: Scope, data_type: Any) -> bool:
    if scope.get("method") not in _BODY_METHODS:
        return False
    if data_type is not None:
        return True
    content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
    return b"json" in content_type.lower()


def input_guard_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if problem := _parameter_problem(scope):
            await send_problem(send, problem, scope)
            return
        data_type = _strict_data_type(scope.get("route_handler"))
        if not _wants_body(scope, data_type):
            await app(scope, receive, send)
            return
        limit = body_limit(scope)
        announced = announced_length(dict(scope.get("headers", [])))
        if limit is not None and announced is not None and announced > limit:
            await send_problem(send, too_large(), scope)  # the length alone settles it: read nothing
            return
        try:
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await send_problem(send, too_large(), scope)
            return
        except ClientDisconnected:
            return
        if refused := _body_problem(body, data_type):
            await send_problem(send, refused, scope)
            return
        await app(scope, handing_on(scope, body, receive), send)

    return middleware


def refuse_unencoded_plus(query_string: bytes, *names: str) -> None:
    """Phone numbers in a query string: a leading `+` not written as `%2B` reads as a space (form
    encoding), so `dialled=+4929211030` quietly became another number. PBX scripts often send it
    so; say what to do instead of answering for the wrong number. A `+` inside the value is an
    encoded space ("02921+103-0", as form encoders write "02921 103-0") and stays one."""
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        decoded = unquote_plus(name.decode("latin-1"))
        if decoded in names and value.startswith(b"+"):
            raise ValidationFailed(
                _l(
                    "`{field}`: write the leading `+` as `%2B` in a query string (a bare `+` means a space)",
                    field=decoded,
                ),
                field=decoded,
            )
