"""JSON logs with request id, tenant and principal; no tokens, no query strings, no bodies.
The same middleware times each request for the metrics (by route template, never by path)."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.metrics import Metrics
from backend.settings import Settings
from backend.tracing import add_trace_ids, name_request_span

REQUEST_ID_HEADER = "x-request-id"
# Filled during the request (e.g. by sign-in) and read when the access line is written. A dict
# rather than bound contextvars: the handler may run in a copied context whose bindings would
# not reach the middleware, but mutations of this shared dict do.
_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)


def note_request(**fields: Any) -> None:
    """Add fields (tenant, principal …) to the current request's access log line."""
    current = _request_fields.get()
    if current is not None:
        current.update(fields)
    structlog.contextvars.bind_contextvars(**fields)


def configure_logging(settings: Settings) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,  # the current span's ids, when tracing is on (decision 031)
    ]
    # Libraries that log through the standard library (uvicorn, httpx …) get the same format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, settings.log_level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def _clean_request_id(raw: str | None) -> str:
    # Accept a caller's id (PBX, partner system) only when it is short and plain.
    if raw and len(raw) <= 64 and raw.replace("-", "").replace("_", "").isalnum():
        return raw
    return uuid.uuid4().hex


def request_logging_middleware(app: ASGIApp, metrics: Metrics | None = None) -> ASGIApp:
    log = structlog.get_logger("http")

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET and metrics is not None:
            # Open GraphQL subscriptions (an agent's screen pop) while they last.
            connected = metrics.websockets.labels(scope.get("path_template") or "unrouted")
            connected.inc()
            try:
                await app(scope, receive, send)
            finally:
                connected.dec()
            return
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        request_id = _clean_request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        fields: dict[str, Any] = {}
        token = _request_fields.set(fields)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Before the body: the span ends with the last of it (decision 031).
                name_request_span(scope.get("method", ""), scope.get("path_template") or "unrouted")
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if metrics is not None:
                # Route middleware runs after routing: the template is known ("/v1/calls/{call_id:uuid}").
                metrics.observe_request(
                    scope.get("method", ""), scope.get("path_template") or "unrouted", status, seconds
                )
            path = scope.get("path", "")
            if path not in ("/healthz", "/readyz", "/metrics"):  # probes and scrapes
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=path,  # never the query string: it may hold personal data
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    **fields,
                )
            _request_fields.reset(token)
            structlog.contextvars.clear_contextvars()

    return middleware
