"""Each GraphQL operation, by its name (decision 031): counted and timed for /metrics, and a span
when tracing is on. `/graphql` as one route says nothing about which operation is slow."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from backend import tracing
from backend.api.limits import DocumentMemo
from backend.i18n import _l
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from graphql import OperationType as GraphQLOperationType


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


# Not ErrorCode: like GRAPHQL_VALIDATION_FAILED, a GraphQL-over-HTTP refusal of the request
# itself, before any field runs; no REST route can answer with it.
OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
SUBSCRIPTION_OVER_POST = _l(
    "subscriptions are served over a WebSocket (graphql-transport-ws) at /graphql, not over POST"
)


# Names a client may try per document before the memo stops growing: the name is the client's.
_NAMES_PER_DOCUMENT = 16
_KINDS = DocumentMemo()


def operation_kind(document: DocumentNode, operation_name: str | None) -> OperationType | None:
    """Strawberry's `get_operation_type`, None where no operation has that name; once per
    (document, name). The POST handler, the pipeline and the observer each asked for it on every
    request, walking the document's definitions three times (issue 13 §6)."""
    kinds: dict[str | None, OperationType | None] = _KINDS.get(document, lambda _document: {})
    if operation_name in kinds:
        return kinds[operation_name]
    try:
        kind: OperationType | None = get_operation_type(document, operation_name)
    except RuntimeError:  # no operation of that name
        kind = None
    if len(kinds) < _NAMES_PER_DOCUMENT:
        kinds[operation_name] = kind
    return kind


def subscription_over_post(
    document: DocumentNode, operation_name: str | None, locale: Callable[[], str]
) -> GraphQLError | None:
    """The refusal of a subscription sent over POST, or None for any other operation (or none
    that the name picks: that is the drivers' to answer). Executed, graphql-core would call the
    subscription's async generator as a plain resolver and answer with an INTERNAL error."""
    if operation_kind(document, operation_name) is not OperationType.SUBSCRIPTION:
        return None
    picked = next(
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and d.operation is GraphQLOperationType.SUBSCRIPTION
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    )
    return GraphQLError(
        SUBSCRIPTION_OVER_POST.render(locale()), nodes=[picked], extensions={"code": OPERATION_NOT_ALLOWED}
    )
