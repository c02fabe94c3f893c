"""`Idempotency-Key` for POST/PATCH/PUT/DELETE: a retried request gets the first answer again.

A telephone system or partner system that lost the response to a timeout sends the same request
with the same key; it gets the stored response (`Idempotent-Replayed: true`) and nothing is
created twice. The same key with a different body is refused (422); while the first request
is still running, a second one gets 409. Keys are scoped to the verified caller (issuer, subject
and tenant), not to the token's bytes: a machine client that fetched a new access token before
retrying still gets its first answer. So the caller is signed in here, before the handler (which
reuses that sign-in); a request without a valid token runs as if it had no key, and never reads
or writes a record. Bodies are read up to the route's `request_max_body_size`, no further
(413 beyond). Records are kept in Redis for 24 hours. Server errors are not stored, so they can
be retried. Without Redis the request simply runs (domain-level idempotency — e.g. call ids,
slugs — still holds).

A record holds no readable personal data or secret (decision 015): the answer's body is sealed
(backend/sealing.py, the record's key as associated data), and when the answer held a citizen's
data the record names the tickets (ids only, backend/disclosures.py). A replay of such an
answer is a read: audited like one, and refused (410) once that data has been erased — the
retention purge also drops the bodies of those records (`erase_records`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple
from uuid import UUID

import structlog
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.principal import Principal
from backend import disclosures
from backend.disclosures import Disclosure
from backend.errors import Conflict, DomainError, ErrorCode, HttpError, ValidationFailed
from backend.http.auth import admit_early
from backend.http.problems import locale_of, status_error
from backend.i18n import Message as Text
from backend.i18n import _l
from backend.redisclient import always_try
from backend.sealing import Sealer, SealError
from backend.state import AppState, unit_of_work

HEADER = b"idempotency-key"
METHODS = {"POST", "PATCH", "PUT", "DELETE"}
KEEP_SECONDS = 24 * 3600
PENDING_SECONDS = 60
log = structlog.get_logger("idempotency")


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _body_limit(scope: Scope) -> int | None:
    """The route's `request_max_body_size` (litestar's default unless a layer sets its own)."""
    handler = scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    limit = resolve() if resolve is not None else None
    return limit if isinstance(limit, int) else None


def _announced_length(headers: dict[bytes, bytes]) -> int | None:
    try:
        return int(headers[b"content-length"])
    except (KeyError, ValueError):
        return None


async def _read_body(receive: Receive, limit: int | None) -> bytes:
    """The whole body, counted as it comes: past `limit` bytes, stop reading (`_TooLarge`)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large() -> DomainError:
    # As litestar itself answers (HttpError via the problem handler), for the same body without a key.
    return status_error(RequestEntityTooLarge.status_code)


def _caller(principal: Principal) -> str:
    who = "\x00".join([principal.issuer, principal.subject, str(principal.tenant_id)])
    return hashlib.sha256(who.encode()).hexdigest()[:32]  # no subject ids in Redis keys


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


async def _send_problem(send: Send, error: DomainError, scope: Scope) -> None:
    locale = locale_of(ASGIConnection(scope))
    body = json.dumps(error.problem(locale, instance=scope.get("path", ""))).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-language", locale.encode()),
        (b"vary", b"Accept-Language"),
    ]
    await _respond(send, error.status, headers, body)


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in METHODS:
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        key = headers.get(HEADER, b"").decode("latin-1").strip()
        if not key:
            await app(scope, receive, send)
            return
        path = scope.get("path", "")
        if len(key) > 255:
            await _send_problem(send, ValidationFailed(_l("Idempotency-Key is longer than 255 characters")), scope)
            return
        limit = _body_limit(scope)
        announced = _announced_length(headers)
        if limit is not None and announced is not None and announced > limit:
            # Nothing read, nobody signed in: the same answer litestar gives without a key.
            await _send_problem(send, _too_large(), scope)
            return
        principal = await admit_early(ASGIConnection(scope))
        if principal is None:
            # No or no valid token: no record is read or written; the handler answers (401, 429 …).
            await app(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _send_problem(send, _too_large(), scope)
            return
        except _Disconnected:
            return  # the client is gone: nothing to run, nothing to store
        state: State = scope["app"].state
        app_state = state.app_state
        redis = app_state.redis
        record_key = f"idem:{app_state.namespace}:{_caller(principal)}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        fingerprint = hashlib.sha256(
            b"|".join([scope["method"].encode(), path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()

        try:
            first = await redis.set(record_key, json.dumps({"pending": fingerprint}), nx=True, ex=PENDING_SECONDS)
            stored = None if first else await redis.get(record_key)
        except RedisError:
            log.warning("idempotency_store_unavailable")
            first, stored = True, None
            redis = None

        if not first:
            record: dict[str, Any] = json.loads(stored) if stored else {}
            if record.get("pending", record.get("fingerprint")) != fingerprint:
                await _send_problem(
                    send, ValidationFailed(_l("this Idempotency-Key was used for a different request")), scope
                )
            elif "pending" in record:
                await _send_problem(
                    send, Conflict(_l("a request with this Idempotency-Key is still in progress")), scope
                )
            else:
                await _replay(send, app_state, principal, record, record_key, scope)
            return

        replayed = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return HTTPRequestEvent(type="http.request", body=body, more_body=False)
            return await receive()

        status = 500
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.lower() in (b"content-type", b"location")
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        with disclosures.collecting() as disclosed:
            try:
                await app(scope, replay_receive, capture)
            finally:
                if redis is not None:
                    try:
                        # The pending marker is in Redis: the answer must be too, even if Redis was
                        # paused meanwhile, or a retry after the marker expires would run again.
                        with always_try():
                            answer = _Answer(status, response_headers, b"".join(chunks), disclosed)
                            await _finish(redis, app_state.sealer, record_key, fingerprint, answer)
                    except RedisError:
                        log.warning("idempotency_store_unavailable")

    return middleware


class _Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    disclosed: list[Disclosure]


ERASED = _l(
    "the first answer to this request held personal data that has been erased since; the request was not run again"
)


def _gone(detail: Text) -> DomainError:
    return HttpError(detail, ErrorCode.CONFLICT, 410)


async def _replay(
    send: Send, app_state: AppState, principal: Principal, record: dict[str, Any], record_key: str, scope: Scope
) -> None:
    """The first answer again; one that held a citizen's data only after auditing the replay as
    a read, in the caller's own transaction, and never once that data has been erased."""
    if record.get("erased"):
        await _send_problem(send, _gone(ERASED), scope)
        return
    disclosed = [Disclosure(UUID(tenant), UUID(ticket), what) for tenant, ticket, what in record.get("disclosed", [])]
    if disclosed:
        auditor = app_state.replay_auditor
        via = "graphql" if scope.get("path") == "/graphql" else "rest"
        async with unit_of_work(app_state, principal) as uow:
            audited = auditor is not None and await auditor(uow, disclosed, via)
        if not audited:
            await _send_problem(send, _gone(ERASED), scope)
            return
    try:
        body = app_state.sealer.open(record["body"], record_key).encode("latin-1")
    except (SealError, KeyError):  # sealed under a key retired since, or written before sealing
        await _send_problem(send, _gone(_l("the first answer to this request can no longer be sent again")), scope)
        return
    headers_out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
    headers_out.append((b"idempotent-replayed", b"true"))
    await _respond(send, record["status"], headers_out, body)


async def _finish(redis: Redis, sealer: Sealer, record_key: str, fingerprint: str, answer: _Answer) -> None:
    """Keep the answer for retries; forget the key of one that may be retried (5xx, 401, 429)."""
    if answer.status < 500 and answer.status not in (401, 429):
        record = {
            "fingerprint": fingerprint,
            "status": answer.status,
            "headers": answer.headers,
            "body": sealer.seal(answer.body.decode("latin-1"), record_key),
            "disclosed": [[str(d.tenant_id), str(d.ticket_id), d.what] for d in dict.fromkeys(answer.disclosed)],
        }
        await redis.set(record_key, json.dumps(record), ex=KEEP_SECONDS)
        # For the purge. Lost with Redis, the body still is never replayed once erased.
        for ticket_id in {d.ticket_id for d in answer.disclosed}:
            await redis.sadd(disclosures.index_key(ticket_id), record_key)
            await redis.expire(disclosures.index_key(ticket_id), KEEP_SECONDS)
    else:
        await redis.delete(record_key)


async def erase_records(redis: Redis, ticket_ids: list[UUID]) -> int:
    """Retention purge: records whose answer held these tickets' data keep their fingerprint
    and status (a retry still does not run twice) but lose the body; a replay then gets 410."""
    erased = 0
    for ticket_id in ticket_ids:
        index = disclosures.index_key(ticket_id)
        for key in await redis.smembers(index):
            raw = await redis.get(key)
            if raw is None:
                continue
            record = json.loads(raw)
            record.pop("body", None)
            record["erased"] = True
            await redis.set(key, json.dumps(record), keepttl=True)
            erased += 1
        await redis.delete(index)
    return erased
