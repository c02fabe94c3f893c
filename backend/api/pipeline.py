"""One GraphQL request over HTTP, step by step, without strawberry's per-request machinery
(decision 033).

Strawberry runs every operation through its HTTP view (request adapter, content negotiation,
dependency injection of context, root value and sub-response) and its extension runner (every
extension's hooks wrapped in context managers, four stages, found again by `inspect` on every
request): ~330 µs of CPU where `/ping` costs ~50 µs, the same for `{ __typename }` as for a page
of tickets, and most of what GraphQL cost above REST for a small read.

Here the same steps are plain calls, in strawberry's order, each the one implementation that
strawberry's extensions call too (`backend/api/limits.py`, `arguments.py`, `errors.py`,
`operations.py`):

    parse (cached per text, token limit) → operation type → validate (cached per document)
    → cost (with the variables) → control characters → execute (graphql-core, our executor,
    the strawberry schema's compiled schema and resolvers) → error codes, masking, language
    → observed for /metrics and traces throughout.

What this module does not answer it leaves to strawberry's view, unread and unchanged: a body
that is not a single JSON operation, a missing query, an operation that is not a query or a
mutation or cannot be chosen (`operationName`). WebSocket subscriptions stay strawberry's.
`GRAPHQL_SHORT_PATHS=false` sends every request through strawberry as before, and
`tests/contracts/test_graphql_short_paths.py` holds both to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from graphql.pyutils import is_awaitable
from strawberry.execution import optimized_is_awaitable
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_first_operation

from backend.api.arguments import control_character_error
from backend.api.errors import coded_errors
from backend.api.execution import LeafShortcutExecutionContext
from backend.api.limits import Limits
from backend.api.operations import observed, operation_kind
from backend.api.prepared import prepared_executor
from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema

# POST carries queries and mutations; a subscription over POST is refused before either driver
# (`backend.api.operations.subscription_over_post`).
_ALLOWED = frozenset({OperationType.QUERY, OperationType.MUTATION})


class Operation(msgspec.Struct, frozen=True):
    """A single GraphQL operation as a JSON body carries it; anything else does not decode."""

    query: str | None = None
    variables: dict[str, Any] | None = None
    operationName: str | None = None
    extensions: dict[str, Any] | None = None


_DECODE = msgspec.json.Decoder(Operation)


def operation_of(content_type: str | None, body: bytes) -> Operation | None:
    """The body's operation, or None where strawberry's view must answer (and word the refusal):
    not `application/json`, not JSON, a batch, a field of the wrong kind, no query."""
    if content_type is None or "application/json" not in content_type.lower():
        return None
    try:
        operation = _DECODE.decode(body)
    except msgspec.DecodeError:  # ValidationError included
        return None
    return operation if operation.query else None


class _Request:
    """What the steps learn about one request, for the observer asked at its end."""

    __slots__ = ("document", "name", "ok")

    def __init__(self, name: str | None) -> None:
        self.document: DocumentNode | None = None
        self.name = name
        self.ok = False

    def operation_name(self) -> str | None:
        if self.name is not None:
            return self.name
        first = get_first_operation(self.document) if self.document is not None else None
        return first.name.value if first is not None and first.name is not None else None

    def kind(self) -> str:
        kind = operation_kind(self.document, self.name) if self.document is not None else None
        return "unknown" if kind is None else kind.value

    def succeeded(self) -> bool:
        return self.ok


class Pipeline:
    """The steps for one schema, built once."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: Limits,
        executor: type[Any],
        locale_of: Callable[[Any], str],
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.executor = executor
        self.locale_of = locale_of
        # Selections collected once across requests (decision 033, amended) where the executor
        # knows how; graphql-core's own would refuse the keyword.
        self.stable_selections = issubclass(executor, LeafShortcutExecutionContext)

    def operation_type(self, operation: Operation) -> OperationType | None:
        """The operation's type when this pipeline answers it; None to leave it to strawberry
        (which refuses an unknown `operationName` with a 400)."""
        try:
            document = self.limits.parse(operation.query or "")
        except GraphQLError:
            return OperationType.QUERY  # any type: the parse error is reported like strawberry's
        kind = operation_kind(document, operation.operationName)
        return kind if kind in _ALLOWED else None

    async def answer(self, operation: Operation, context: Any) -> dict[str, Any]:
        """The response body as GraphQL over HTTP has it: `data`, then `errors` when there are any."""
        request = _Request(operation.operationName)
        with observed(context, request.operation_name, request.kind, request.succeeded):
            data, errors = await self._run(operation, context, request)
            if errors:
                errors = coded_errors(errors, self.locale_of(context))
            request.ok = not errors
        if errors:
            return {"data": data, "errors": [error.formatted for error in errors]}
        return {"data": data}

    async def _run(
        self, operation: Operation, context: Any, request: _Request
    ) -> tuple[dict[str, Any] | None, list[GraphQLError] | None]:
        try:
            document = request.document = self.limits.parse(operation.query or "")
        except GraphQLError as error:
            return None, [error]
        try:
            return await self._checked_and_executed(operation, document, context, request)
        except Exception as error:  # as strawberry's execute: reported, coded and masked, never a 500
            return None, [error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)]

    async def _checked_and_executed(
        self, operation: Operation, document: DocumentNode, context: Any, request: _Request
    ) -> tuple[dict[str, Any] | None, list[GraphQLError] | None]:
        query, variables = operation.query or "", operation.variables or {}
        invalid = self.limits.validation_errors(self.schema, document)
        if invalid:
            return None, list(invalid)
        refused = self.limits.cost_error(document, variables) or control_character_error(
            self.schema, query, document, variables
        )
        if refused is not None:
            return None, [refused]
        executor = prepared_executor(
            self.executor,
            self.schema,
            document,
            context,
            operation.variables,
            # Strawberry's choice when none is named: the first operation's name.
            request.operation_name(),
            is_awaitable=optimized_is_awaitable,
            operation_extensions=operation.extensions,
            # No "@", no directive: nothing but the selection decides what it collects.
            **({"stable_selections": "@" not in query} if self.stable_selections else {}),
        )
        if isinstance(executor, list):  # the variables do not fit the operation
            return None, executor
        try:
            result = executor.execute_operation()
            if is_awaitable(result):
                result = await result
        finally:
            # graphql-core's executor holds its own bound methods (`async_helpers`), a reference
            # cycle that kept each request's executor, context, litestar request and scope alive
            # until a garbage collection: ~90 objects a request, a generation-0 collection every
            # ~8 requests and ~45 µs of CPU per request spent collecting (REST: none). The
            # execution has ended here; nothing asks for the helpers any more.
            executor.async_helpers = None
        if not isinstance(result, ExecutionResult):  # @defer/@stream: not in this schema
            raise GraphQLError("Unexpected multiple payloads")
        return result.data, result.errors
