"""Each GraphQL operation, by its name (decision 031): counted and timed for /metrics, and a span
when tracing is on. `/graphql` as one route says nothing about which operation is slow."""

from __future__ import annotations

import time
from collections.abc import Iterator

from opentelemetry import trace
from strawberry.extensions import SchemaExtension

from backend import tracing


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        span = tracing.tracer.start_span("graphql.operation") if tracing.enabled() else None
        try:
            if span is None:
                yield
            else:
                with trace.use_span(span, end_on_exit=True):
                    yield
                    self._name_span(span)
        finally:
            self._count(time.perf_counter() - started)

    def _kind(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except Exception:  # a document that did not parse has no type
            return "unknown"

    def _name_span(self, span: trace.Span) -> None:
        name = self.execution_context.operation_name
        kind = self._kind()
        span.update_name(f"{kind} {name}" if name else kind)
        span.set_attribute("graphql.operation.type", kind)
        if name:
            span.set_attribute("graphql.operation.name", name)
        result = self.execution_context.result
        if result is not None and result.errors:
            span.set_status(trace.Status(trace.StatusCode.ERROR))

    def _count(self, seconds: float) -> None:
        metrics = getattr(getattr(self.execution_context.context, "app", None), "metrics", None)
        if metrics is None:
            return
        result = self.execution_context.result
        ok = result is not None and not result.errors
        try:
            name = self.execution_context.operation_name
        except Exception:
            name = None
        metrics.observe_operation(name, self._kind(), ok, seconds)
