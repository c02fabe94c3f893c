"""Traces (issue 18 §2): an app process with OTEL_EXPORTER_OTLP_ENDPOINT exports its spans to a
local OTLP/HTTP collector this test starts (protobuf decoded with opentelemetry-proto). A
caller's traceparent is continued, the GraphQL span is named by its operation, SQL, Redis and
outgoing HTTP are spans of the same trace, the outgoing request carries traceparent on, the JSON
log lines carry the trace id, and no span carries a query string."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from backend.settings import Settings
from tests.support.servers import app_process, free_port
from tests.support.world import World


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP receiver (POST /v1/traces, application/x-protobuf), and a plain receiver
    for the app's outgoing requests (an identity provider's discovery document)."""

    port: int = field(default_factory=free_port)
    spans: list[Span] = field(default_factory=list)
    outgoing: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadingHTTPServer:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            for span in scope.spans:
                                collector.spans.append(
                                    Span(
                                        span.name,
                                        span.trace_id.hex(),
                                        span.span_id.hex(),
                                        span.parent_span_id.hex(),
                                        {a.key: str(a.value).strip() for a in span.attributes},
                                    )
                                )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                with collector.lock:
                    collector.outgoing.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def trace(self, trace_id: str, wanted: int, timeout: float = 30.0) -> list[Span]:
        """The trace's spans once at least `wanted` arrived and no more came for a second."""
        deadline = time.monotonic() + timeout
        count, still_since = -1, time.monotonic()
        while True:
            with self.lock:
                found = [s for s in self.spans if s.trace_id == trace_id]
            if len(found) != count:
                count, still_since = len(found), time.monotonic()
            elif count >= wanted and time.monotonic() - still_since > 1.0:
                return found
            if time.monotonic() > deadline:
                return found
            time.sleep(0.1)


async def test_a_request_is_traced_end_to_end(settings: Settings, world: World) -> None:
    collector = Collector()
    server = collector.start()
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{parent}-01"
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        with app_process(settings, env) as app:
            admin = {**world.headers("stadt-geseke", "town-admin"), "traceparent": traceparent}
            async with httpx.AsyncClient(timeout=20) as http:
                answer = await http.post(
                    f"{app.url}/graphql",
                    json={"query": "query WhoAmI { me { subject } }", "operationName": "WhoAmI"},
                    headers=admin,
                )
                assert answer.status_code == 200, answer.text
                # An outgoing request on the town's behalf: registering an issuer fetches its discovery.
                issuer = f"http://localhost:{collector.port}/idp-{world.suffix}"
                registered = await http.post(
                    f"{app.url}/v1/tenants/{world.slug('stadt-geseke')}/identity-issuers?probe=secret-query",
                    json={"issuer": issuer, "audience": "tracing"},
                    headers=admin,
                )
                assert registered.status_code == 201, registered.text
            spans = collector.trace(trace_id, wanted=12)
            log = app.log()
        names = [s.name for s in spans]
        assert "query WhoAmI" in names, names
        servers = [s for s in spans if s.parent_span_id == parent]
        # Both requests continue the caller's trace, named by route template (no slug, no id).
        assert sorted(s.name for s in servers) == [
            "POST /graphql",
            "POST /v1/tenants/{slug}/identity-issuers",
        ], names
        assert any(s.attributes.get("db.system", "").endswith('"postgresql"') for s in spans), names
        assert any(s.attributes.get("db.system", "").endswith('"redis"') for s in spans), names
        outgoing = [s for s in spans if f"localhost:{collector.port}/idp-" in s.attributes.get("http.url", "")]
        assert outgoing and outgoing[0].name == "GET", names
        sent = [h for h in collector.outgoing if "traceparent" in h]
        assert sent and sent[0]["traceparent"].split("-")[1] == trace_id, collector.outgoing
        everything = json.dumps([s.attributes for s in spans])
        assert "secret-query" not in everything and "probe=" not in everything
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        traced = [line for line in lines if line.get("trace_id") == trace_id]
        assert any(line.get("event") == "request" for line in traced), log[-2000:]
    finally:
        server.shutdown()
        server.server_close()
