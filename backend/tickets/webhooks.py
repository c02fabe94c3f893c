"""Standard Webhooks (https://www.standardwebhooks.com/): secrets, signatures, one HTTP attempt.

A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is the decoded bytes. The
signature header lists one `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` per active
secret, separated by spaces, so receivers keep verifying while a secret is being rotated.
Secrets are stored sealed (backend/sealing.py), bound to their tenant and endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from litestar.enums import ParamType
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from backend.sealing import Sealer
from outbound import refusal_of

SECRET_PREFIX = "whsec_"
USER_AGENT = "buergerservice-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _context(tenant_id: UUID, endpoint_id: UUID) -> str:
    return f"ticket_webhook_secrets:{tenant_id}:{endpoint_id}"


def seal_secret(sealer: Sealer, secret: str, tenant_id: UUID, endpoint_id: UUID) -> str:
    return sealer.seal(secret, _context(tenant_id, endpoint_id))


def open_secret(sealer: Sealer, stored: str, tenant_id: UUID, endpoint_id: UUID) -> str:
    """The secret as stored: sealed, or plain text written before secrets were sealed."""
    if stored.startswith(SECRET_PREFIX):
        return stored
    return sealer.open(stored, _context(tenant_id, endpoint_id))


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("not a webhook secret")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, message_id, timestamp, body) for s in secrets_)


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_seconds: int = 300) -> bool:
    """What a receiver does (used by tests and offered to partner developers as reference)."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id, timestamp = lower.get("webhook-id", ""), lower.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, message_id, int(timestamp), body)
    return any(hmac.compare_digest(expected, given) for given in lower.get("webhook-signature", "").split())


def body_of(kind: str, event_at: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "timestamp": event_at, "data": data}, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None  # a class of failure, never a response body
    duration_ms: int


async def send(
    http: httpx.AsyncClient, url: str, message_id: str, body: bytes, secrets_: list[str], timeout_seconds: float
) -> Outcome:
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
    }
    started = time.perf_counter()
    try:
        response = await http.post(url, content=body, headers=headers, timeout=timeout_seconds)
    except httpx.TimeoutException:
        return Outcome(False, None, "timeout", _ms(started))
    except httpx.HTTPError as error:
        # The town admin reads this: a refused address says so, and other failures do not
        # tell one kind of connection failure from another (that would map our network).
        if refusal_of(error) is not None:
            return Outcome(False, None, "address not allowed for outbound requests", _ms(started))
        return Outcome(False, None, "connection failed", _ms(started))
    except (httpx.InvalidURL, ValueError):  # a URL the HTTP client cannot use: retried, visible in the log
        return Outcome(False, None, "unusable URL", _ms(started))
    ok = 200 <= response.status_code < 300
    return Outcome(ok, response.status_code, None if ok else f"HTTP {response.status_code}", _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def openapi_webhooks() -> dict[str, PathItem | Reference]:
    """The requests we send to a town's webhook endpoints, for the OpenAPI document's `webhooks`:
    receivers generate their handler from it and verify with any Standard Webhooks library."""
    from backend.tickets.schemas import EventKind, Priority, TicketStatus

    def text(description: str, **more: Any) -> Schema:
        return Schema(type=OpenAPIType.STRING, description=description, **more)

    header = {
        "webhook-id": ("the message id: the same on every retry of one event, so receivers drop repeats", None),
        "webhook-timestamp": (
            "seconds since 1970 when this attempt was signed; refuse ones older than 5 minutes",
            None,
        ),
        "webhook-signature": (
            "space-separated `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`, one per "
            "active secret (two while a secret is rotated); the key is the base64 after `whsec_`",
            None,
        ),
    }
    data = Schema(
        type=OpenAPIType.OBJECT,
        description="ids, statuses and times only, never the citizen's details: fetch the ticket for those",
        required=["ticketId", "tenantId", "number", "status", "departmentId", "priority", "dueAt", "changeSeq"],
        properties={
            "ticketId": text("the ticket", format=OpenAPIFormat.UUID),
            "tenantId": text("the town that owns it", format=OpenAPIFormat.UUID),
            "number": text("the ticket number people quote"),
            "status": text("status after the change", enum=[s.value for s in TicketStatus]),
            "departmentId": text("the department it is forwarded to", format=OpenAPIFormat.UUID),
            "priority": text("priority", enum=[p.value for p in Priority]),
            "dueAt": text("callback deadline", format=OpenAPIFormat.DATE_TIME),
            "changeSeq": Schema(
                type=OpenAPIType.INTEGER,
                description="the town's change sequence: order events by it, and catch up on gaps with "
                "GET /v1/tickets/changes",
            ),
        },
        additional_properties=True,  # details of the event kind, e.g. fromStatus/toStatus
    )
    body = Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "timestamp", "data"],
        properties={
            "type": text("what happened", enum=[k.value for k in EventKind]),
            "timestamp": text("when it happened", format=OpenAPIFormat.DATE_TIME),
            "data": data,
        },
    )
    operation = Operation(
        operation_id="ticketChanged",
        summary="A ticket of the town changed",
        description=(
            "Sent by POST to every active endpoint of the ticket's town (`POST /v1/tenants/{slug}/webhooks`) "
            "from an outbox, after the change committed, at least once. "
            "Any 2xx acknowledges; anything else or no answer within the timeout is retried with backoff, "
            "and an endpoint failing for three days is paused until its admin resumes it. "
            "Signed as Standard Webhooks (https://www.standardwebhooks.com/)."
        ),
        tags=["tickets"],
        parameters=[
            Parameter(name=name, param_in=ParamType.HEADER, required=True, description=description, schema=text(name))
            for name, (description, _) in header.items()
        ],
        request_body=RequestBody(required=True, content={"application/json": OpenAPIMediaType(schema=body)}),
        responses={
            "2XX": OpenAPIResponse(description="received; the event is not sent again"),
            "default": OpenAPIResponse(description="not received: the event is retried"),
        },
        security=[],
    )
    return {"ticketChanged": PathItem(post=operation)}
