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
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
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
from backend.http.bodies import (
    BodyTooLarge,
    ClientDisconnected,
    announced_length,
    body_limit,
    read_body,
    respond,
    send_problem,
    too_large,
)
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


def _caller(principal: Principal) -> str:
    who = "\x00".join([principal.issuer, principal.subject, str(principal.tenant_id)])
    return hashlib.sha256(who.encode()).hexdigest()[:32]  # no subject ids in Redis keys


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    """The steps, each below: find the key, refuse what can be refused unread, sign the caller
    in, read the body, claim the key in Redis, then either answer again from the record or run
    the handler and keep its answer."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        if key is None:
            await app(scope, receive, send)
            return
        limit = body_limit(scope)
        if refusal := _refusal_unread(scope, key, limit):
            await send_problem(send, refusal, scope)
            return
        principal = await admit_early(ASGIConnection(scope))
        if principal is None:
            # No or no valid token: no record is read or written; the handler answers (401, 429 …).
            await app(scope, receive, send)
            return
        try:
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await send_problem(send, too_large(), scope)
            return
        except ClientDisconnected:
            return  # the client is gone: nothing to run, nothing to store
        app_state: AppState = scope["app"].state.app_state
        request = _Request(_record_key(app_state, principal, key), _fingerprint(scope, body))
        claim = await _claim(app_state.redis, request)
        if claim.stored is not None:
            await _answer_again(send, app_state, principal, request, claim.stored, scope)
            return
        await _run_and_keep(app, scope, _body_then(body, receive), send, claim.store, app_state.sealer, request)

    return middleware


def _key_of(scope: Scope) -> str | None:
    """The request's Idempotency-Key; None where there is none or it does not apply (reads)."""
    if scope["type"] != ScopeType.HTTP or scope.get("method") not in METHODS:
        return None
    key = dict(scope.get("headers", [])).get(HEADER, b"").decode("latin-1").strip()
    return key or None


def _refusal_unread(scope: Scope, key: str, limit: int | None) -> DomainError | None:
    """What is refused before anything is read or anybody signed in."""
    if len(key) > 255:
        return ValidationFailed(_l("Idempotency-Key is longer than 255 characters"))
    announced = announced_length(dict(scope.get("headers", [])))
    if limit is not None and announced is not None and announced > limit:
        return too_large()  # the same answer litestar gives without a key
    return None


class _Request(NamedTuple):
    record_key: str  # where the record lives: the deployment, the caller, the key (hashed)
    fingerprint: str  # what the request was: method, path, query and body (hashed)


def _record_key(app_state: AppState, principal: Principal, key: str) -> str:
    return f"idem:{app_state.namespace}:{_caller(principal)}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _fingerprint(scope: Scope, body: bytes) -> str:
    parts = [
        str(scope.get("method", "")).encode(),
        scope.get("path", "").encode(),
        scope.get("query_string", b""),
        body,
    ]
    return hashlib.sha256(b"|".join(parts)).hexdigest()


class _Claim(NamedTuple):
    stored: bytes | str | None  # the record found under the key (None: this request is the first)
    store: Redis | None  # where the answer is to be kept (None: Redis is unavailable)


async def _claim(redis: Redis, request: _Request) -> _Claim:
    """Mark the key pending, or read what is already under it. Without Redis the request runs.

    Tried even while Redis is paused (decision 009): the client sent the key so that a retry
    does not act twice, and a pause can follow one slow answer while Redis is fine again. A
    keyed write is worth one wait of the socket timeout; the pause keeps its point for reads."""
    try:
        with always_try():
            pending = json.dumps({"pending": request.fingerprint})
            if await redis.set(request.record_key, pending, nx=True, ex=PENDING_SECONDS):
                return _Claim(None, redis)
            # A record that vanished in between reads as b"{}": a different request (422), as before.
            return _Claim(await redis.get(request.record_key) or b"{}", redis)
    except RedisError:
        log.warning("idempotency_store_unavailable")
        return _Claim(None, None)


async def _answer_again(
    send: Send, app_state: AppState, principal: Principal, request: _Request, stored: bytes | str, scope: Scope
) -> None:
    """The key was used before: refuse another request under it, or one still running; else replay."""
    record: dict[str, Any] = json.loads(stored)
    if record.get("pending", record.get("fingerprint")) != request.fingerprint:
        await send_problem(send, ValidationFailed(_l("this Idempotency-Key was used for a different request")), scope)
    elif "pending" in record:
        await send_problem(send, Conflict(_l("a request with this Idempotency-Key is still in progress")), scope)
    else:
        await _replay(send, app_state, principal, record, request.record_key, scope)


def _body_then(body: bytes, receive: Receive) -> Receive:
    """The body already read, handed to the handler once; then the connection's own messages."""
    handed = False

    async def receive_again() -> ReceiveMessage:
        nonlocal handed
        if not handed:
            handed = True
            return HTTPRequestEvent(type="http.request", body=body, more_body=False)
        return await receive()

    return receive_again


class _Recorder:
    """Passes the handler's answer on to the client and keeps what a replay needs."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in message.get("headers", [])
                if k.lower() in (b"content-type", b"location")
            ]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self.send(message)


async def _run_and_keep(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, store: Redis | None, sealer: Sealer, request: _Request
) -> None:
    """Run the handler and keep its answer under the key, whatever happens to the request."""
    recorder = _Recorder(send)
    with disclosures.collecting() as disclosed:
        try:
            await app(scope, receive, recorder)
        finally:
            if store is not None:
                try:
                    # The pending marker is in Redis: the answer must be too, even if Redis was
                    # paused meanwhile, or a retry after the marker expires would run again.
                    with always_try():
                        answer = _Answer(recorder.status, recorder.headers, b"".join(recorder.chunks), disclosed)
                        await _finish(store, sealer, request.record_key, request.fingerprint, answer)
                except RedisError:
                    log.warning("idempotency_store_unavailable")


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
        await send_problem(send, _gone(ERASED), scope)
        return
    disclosed = [Disclosure(UUID(tenant), UUID(ticket), what) for tenant, ticket, what in record.get("disclosed", [])]
    if disclosed:
        auditor = app_state.replay_auditor
        via = "graphql" if scope.get("path") == "/graphql" else "rest"
        async with unit_of_work(app_state, principal) as uow:
            audited = auditor is not None and await auditor(uow, disclosed, via)
        if not audited:
            await send_problem(send, _gone(ERASED), scope)
            return
    try:
        body = app_state.sealer.open(record["body"], record_key).encode("latin-1")
    except (SealError, KeyError):  # sealed under a key retired since, or written before sealing
        await send_problem(send, _gone(_l("the first answer to this request can no longer be sent again")), scope)
        return
    headers_out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
    headers_out.append((b"idempotent-replayed", b"true"))
    await respond(send, record["status"], headers_out, body)


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
