"""The GraphQL schema: one Query and one Mutation assembled from each domain's mixins.

The composition root of the GraphQL side, beside `main.py` (the REST side's): it imports every
domain's GraphQL module, which is why it does not live in the API kit (`backend/api/`), whose
helpers the domains themselves import (decision 022)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from typing import Any

import msgspec
import strawberry
from graphql.error import GraphQLError
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTasks
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.types import ASGIApp, Receive, Scope, Send
from strawberry.litestar import make_graphql_controller
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types import ExecutionContext
from strawberry.types.scalar import ScalarDefinition

from backend.api.arguments import RefuseControlCharacters
from backend.api.context import GraphQLContext
from backend.api.errors import ErrorCodes
from backend.api.execution import LeafShortcutExecutionContext
from backend.api.limits import Limits, limit_extensions
from backend.api.operations import OperationObserver, subscription_over_post
from backend.api.pipeline import Operation, Pipeline, operation_of
from backend.api.resolvers import plain_argument_resolvers
from backend.api.suggestions import ExecutionWithoutSuggestions
from backend.billing.gql import BillingMutation, BillingQuery
from backend.centre.gql import CentreMutation, CentreQuery, CentreSubscription
from backend.directory.gql import DirectoryMutation, DirectoryQuery, DirectorySubscription
from backend.http.bodies import respond
from backend.i18n import request_locale
from backend.knowledge.gql import KnowledgeMutation, KnowledgeQuery, KnowledgeSubscription
from backend.knowledge.gql_xzufi import XzufiMutation, XzufiQuery
from backend.open311.gql import Open311Mutation, Open311Query
from backend.settings import Settings
from backend.state import AppState
from backend.telephony.gql import TelephonyMutation, TelephonyQuery, TelephonySubscription
from backend.tenants.gql import TenantMutation, TenantQuery
from backend.tickets.gql import TicketMutation, TicketQuery, TicketSubscription
from backend.web.ui import local_graphiql
from backend.webpages.gql import WebPagesMutation, WebPagesQuery


class LeafShortcutWithoutSuggestions(ExecutionWithoutSuggestions, LeafShortcutExecutionContext):
    """Production's executor: the leaf shortcut (decision 020), and no schema names in errors."""


@strawberry.type
class Query(
    TenantQuery,
    TelephonyQuery,
    TicketQuery,
    KnowledgeQuery,
    XzufiQuery,
    BillingQuery,
    DirectoryQuery,
    WebPagesQuery,
    CentreQuery,
    Open311Query,
):
    pass


@strawberry.type
class Mutation(
    TenantMutation,
    TelephonyMutation,
    TicketMutation,
    KnowledgeMutation,
    XzufiMutation,
    BillingMutation,
    DirectoryMutation,
    WebPagesMutation,
    CentreMutation,
    Open311Mutation,
):
    pass


@strawberry.type
class Subscription(
    TelephonySubscription, TicketSubscription, KnowledgeSubscription, CentreSubscription, DirectorySubscription
):
    pass


class Schema(strawberry.Schema):
    limits: Limits  # the rules both drivers of a request call (decision 033)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log nothing here. Strawberry's default logs each error with the line of the query it
        points at, and a wrongly typed variable with its value: caller numbers and citizens'
        details would reach the logs. ErrorCodes logs unexpected errors, without values."""


# Our custom scalars name the specification of their text form (@specifiedBy), so generated
# clients and readers know what "Date" or "Decimal" accept without reading our code.
SPECIFIED_BY: dict[object, str] = {
    dt.date: "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",  # full-date
    dt.datetime: "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",  # date-time
    dt.time: "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",  # partial-time
    decimal.Decimal: "https://www.w3.org/TR/xmlschema11-2/#decimal",
    uuid.UUID: "https://www.rfc-editor.org/rfc/rfc9562",
}
SCALAR_MAP: dict[object, ScalarDefinition] = {
    origin: dataclasses.replace(DEFAULT_SCALAR_REGISTRY[origin], specified_by_url=url)
    for origin, url in SPECIFIED_BY.items()
}


class CachedNames(NameConverter):
    """Strawberry's names, each converted once. Strawberry converts every argument's name again
    on every call of a resolver (`convert_arguments` → `to_camel_case`, a regular expression):
    nine times for `tickets`, ~15 µs of a request."""

    def __init__(self) -> None:
        super().__init__(auto_camel_case=True)
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


def create_schema(settings: Settings) -> Schema:
    limits = Limits(settings)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[OperationObserver, *limit_extensions(limits), RefuseControlCharacters, ErrorCodes],
        config=StrawberryConfig(name_converter=CachedNames(), scalar_map=SCALAR_MAP),
        execution_context_class=_executor(settings),
    )
    schema.limits = limits
    if settings.graphql_short_paths:
        # No exception handlers are registered above: resolvers with plain arguments can skip
        # strawberry's argument conversion (backend/api/resolvers.py). Without short paths,
        # strawberry's own resolvers stay: the contract tests' other side.
        plain_argument_resolvers(schema._schema, schema.config, schema.schema_converter.scalar_registry)
    return schema


def _executor(settings: Settings) -> type[StrawberryGraphQLCoreExecutionContext]:
    if settings.graphql_short_paths:
        return LeafShortcutExecutionContext if settings.graphql_introspection else LeafShortcutWithoutSuggestions
    return StrawberryGraphQLCoreExecutionContext if settings.graphql_introspection else ExecutionWithoutSuggestions


async def _context(state: State) -> GraphQLContext:
    # Litestar injects the app's `state` for HTTP and WebSocket alike; strawberry then sets
    # `request` or `websocket` on the context, from which the bearer token is read lazily.
    app_state: AppState = state.app_state
    return GraphQLContext(app=app_state)


async def _context_after_response(state: State, response: Response[Any]) -> GraphQLContext:
    """`_context`, provided after `response` (see `graphql_controller`)."""
    return await _context(state)


async def _no_root_value(custom_context: Any) -> None:
    """No root value, provided after the custom context (see `graphql_controller`)."""
    return None


async def _http_context(
    custom_context: GraphQLContext, response: Response[Any], request: Request[Any, Any, Any], root_value: Any
) -> GraphQLContext:
    """Strawberry's HTTP context getter for a `BaseContext`, provided after the root value."""
    custom_context.request = request
    custom_context.response = response
    return custom_context


_JSON = msgspec.json.Encoder()


def _encode_json(_view: object, data: object) -> bytes:
    # msgspec writes a 50-ticket answer in ~0.1 ms where json.dumps took ~1 ms (decision 020).
    return _JSON.encode(data)


def _response() -> Response[Any]:
    return Response({}, background=BackgroundTasks([]))


def _json_answer(body: bytes) -> ASGIApp:
    """The pipeline's answer as the ASGI app litestar calls: 200, JSON, its length — what a
    `Response` of the bytes sends, without building the `Response` and then its `ASGIResponse`
    (~20 µs of a small query; no cookies, background tasks or handler headers to apply)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def answer(_scope: Scope, _receive: Receive, send: Send) -> None:
        await respond(send, 200, headers, body)

    return answer


def _post(schema: Schema, pipeline: Pipeline | None) -> Any:
    """`POST /graphql`: a subscription refused with a code (both drivers); then, with the
    pipeline (decision 033), a single JSON operation that is a query or a mutation through it;
    strawberry's own view answers everything else, as it always did.

    The first two answer in the handler's `before_request` hook, which litestar calls with the
    request alone: an answer there skips the handler, and with it litestar's resolution and
    validation of the handler's arguments (~7 µs a request). The handler is strawberry's view."""

    async def answered_first(request: Request[Any, Any, Any]) -> ASGIApp | Response[Any] | None:
        operation = operation_of(request.headers.get("content-type"), await request.body())
        if operation is None:
            return None
        context = GraphQLContext(app=request.app.state.app_state, request=request)
        refused = _subscription_refused(schema, operation, context)
        if refused is not None:
            return refused
        if pipeline is not None and pipeline.operation_type(operation) is not None:
            answer = await pipeline.answer(operation, context)
            context.answered()
            return _json_answer(_JSON.encode(answer))
        return None

    # Annotated as an ASGI app: litestar passes the pipeline's answer on as it is, and still
    # renders a `Response` (a refusal, strawberry's view) as a `Response`.
    @post(status_code=200, before_request=answered_first)
    async def handle_http_post(self: Any, request: Request[Any, Any, Any]) -> ASGIApp:
        app_state: AppState = request.app.state.app_state
        response = _response()
        self.temporal_response = response  # strawberry's view reads its sub-response there
        context = GraphQLContext(app=app_state, request=request, response=response)
        return await self.execute_request(request=request, context=context, root_value=None)  # type: ignore[no-any-return]

    return handle_http_post


def _subscription_refused(schema: Schema, operation: Operation, context: GraphQLContext) -> Response[Any] | None:
    """A subscription over POST: 400 with OPERATION_NOT_ALLOWED. Strawberry would execute it as
    a query and answer 200 with a masked INTERNAL error (and log it as a bug)."""
    try:
        document = schema.limits.parse(operation.query or "")
    except GraphQLError:
        return None  # a syntax error: reported by the driver like any other
    refused = subscription_over_post(document, operation.operationName, lambda: context.locale)
    if refused is None:
        return None
    return Response(
        _JSON.encode({"data": None, "errors": [refused.formatted]}), status_code=400, media_type=MediaType.JSON
    )


def graphql_controller(settings: Settings) -> type:
    schema = create_schema(settings)
    controller = make_graphql_controller(
        schema,
        path="/graphql",
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=False,  # GET would put queries, and personal data, into access logs
        context_getter=_context,
    )
    dependencies = {
        **controller.dependencies,
        # Strawberry runs this two-line sync getter in a worker thread (sync_to_thread=True):
        # a thread hop per request, ~25 % of a small query's server time (decision 020).
        "response": Provide(_response, sync_to_thread=False),
        # Litestar resolves dependencies of the same depth concurrently, in an anyio task group:
        # three tasks per request for `response`, `custom_context` and `root_value`, ~10 % of a
        # small query's server time. Chained (response → custom context → root value → context),
        # every depth holds one, and they run one after the other without a task (decision 020).
        "custom_context": Provide(_context_after_response),
        "root_value": Provide(_no_root_value),
        "context": Provide(_http_context),
    }
    # Strawberry's view and extension runner cost ~330 µs per request of their own.
    pipeline = (
        Pipeline(schema._schema, schema.limits, schema.execution_context_class, request_locale)
        if settings.graphql_short_paths
        else None
    )
    namespace: dict[str, Any] = {
        "encode_json": _encode_json,
        "dependencies": dependencies,
        "handle_http_post": _post(schema, pipeline),
        "__module__": __name__,
    }
    controller = type(controller.__name__, (controller,), namespace)
    controller.include_in_schema = False
    return local_graphiql(controller)
