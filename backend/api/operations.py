"""Each GraphQL operation, by its name (decision 031): counted and timed for /metrics, and a span
when tracing is on. `/graphql` as one route says nothing about which operation is slow."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from strawberry.extensions import SchemaExtension

from backend import tracing


@contextmanager
def observed(
    context: Any, name: Callable[[], str | None], kind: Callable[[], str], ok: Callable[[], bool]
) -> Iterator[None]:
    """Time the block as one operation. Name, type and outcome are asked for when it ends (the
    document is parsed inside it); both drivers of a request use it (decision 033)."""
    started = time.perf_counter()
    span = tracing.tracer.start_span("graphql.operation") if tracing.enabled() else None
    try:
        if span is None:
            yield
        else:
            with trace.use_span(span, end_on_exit=True):
                yield
                _name_span(span, name(), kind(), ok())
    finally:
        metrics = getattr(getattr(context, "app", None), "metrics", None)
        if metrics is not None:
            metrics.observe_operation(name(), kind(), ok(), time.perf_counter() - started)


def _name_span(span: trace.Span, name: str | None, kind: str, ok: bool) -> None:
    span.update_name(f"{kind} {name}" if name else kind)
    span.set_attribute("graphql.operation.type", kind)
    if name:
        span.set_attribute("graphql.operation.name", name)
    if not ok:
        span.set_status(trace.Status(trace.StatusCode.ERROR))


class OperationObserver(SchemaExtension):
    """`observed` inside strawberry's execution (WebSocket subscriptions, and what the HTTP
    pipeline leaves to strawberry)."""

    def on_operation(self) -> Iterator[None]:
        with observed(self.execution_context.context, self._name, self._kind, self._ok):
            yield

    def _kind(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except Exception:  # a document that did not parse has no type
            return "unknown"

    def _name(self) -> str | None:
        try:
            return self.execution_context.operation_name
        except Exception:
            return None

    def _ok(self) -> bool:
        result = self.execution_context.result
        return result is not None and not result.errors
