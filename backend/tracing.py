"""OpenTelemetry traces (decision 031): off unless `OTEL_EXPORTER_OTLP_ENDPOINT` names a
collector; then spans for each request (a caller's W3C `traceparent` continued), each GraphQL
operation (named by it), each SQL statement (asyncpg), Redis command and outgoing HTTP request
(httpx, which sends `traceparent` on, webhooks included), exported over OTLP/HTTP in batches.

Off, nothing is instrumented: no middleware, no patched drivers, and the API's no-op tracer
answers the few calls our own code makes (the GraphQL extension, the log processor) in well under
a microsecond. What spans carry follows the logs' rule: no query strings, no SQL parameters, no
Redis values, no bodies.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from litestar.middleware import DefineMiddleware
from opentelemetry import trace

from backend.settings import Settings

_configured: trace.TracerProvider | None = None
tracer = trace.get_tracer("buergerservice")


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def _server_request(span: trace.Span, scope: dict[str, Any]) -> None:
    # The ASGI instrumentation records the full URL; the query may hold a caller's number or a
    # citizen's question (decision 012's rule for logs holds for spans too).
    if span.is_recording():
        path = scope.get("path", "")
        span.set_attribute("http.target", path)
        span.set_attribute("url.path", path)
        span.set_attribute("http.url", path)
        span.set_attribute("url.query", "")


def _client_request(span: trace.Span, request: Any) -> None:
    if span.is_recording():
        url = without_query(str(getattr(request, "url", "")))
        span.set_attribute("http.url", url)
        span.set_attribute("url.full", url)


def configure_tracing(settings: Settings) -> trace.TracerProvider | None:
    """The process's tracer provider when an endpoint is set (instrumenting asyncpg, Redis and
    httpx once per process), else None."""
    global _configured
    if settings.otel_endpoint is None:
        return None
    if _configured is not None:
        return _configured
    # Imported only when on: the SDK and exporter cost start-up time nobody needs otherwise.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name, "deployment.environment": settings.env})
    )
    endpoint = settings.otel_endpoint.rstrip("/")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=5)))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor(capture_parameters=False).instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)  # commands only: "SET ? ?"
    HTTPXClientInstrumentor().instrument(tracer_provider=provider, request_hook=_client_request)
    _configured = provider
    return provider


def request_tracing(settings: Settings) -> list[DefineMiddleware]:
    """The request span's middleware (outermost, so log lines inside carry its trace id), or
    nothing when tracing is off."""
    provider = configure_tracing(settings)
    if provider is None:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    config = OpenTelemetryConfig(
        tracer_provider=provider,
        server_request_hook_handler=_server_request,
        exclude=["/healthz", "/readyz", "/metrics"],  # probes and scrapes
        exclude_spans=["receive", "send"],  # one span per ASGI message is noise
    )
    return [config.middleware]


def shutdown_tracing() -> None:
    """Send what is still batched (at the end of the process's lifespan)."""
    if _configured is not None:
        flush = getattr(_configured, "force_flush", None)
        if flush is not None:
            flush(5000)


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span id on every log line."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def name_request_span(method: str, route: str) -> None:
    """Name the request's span by its route template once routing has found it ("POST
    /v1/tenants/{slug:str}/web-sites", not the path with a town's slug or an id in it)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


def enabled() -> bool:
    return _configured is not None
