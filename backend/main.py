"""create_app(): REST controllers, the GraphQL controller, and the shared clients' lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from auth.oidc import JWKSCache, TokenVerifier
from backend import devidp, redisclient
from backend.billing.controller import BillingController
from backend.centre.controller import CentreController
from backend.db.pool import create_pool, enforce_one_connection
from backend.db.roles import application_role_problem
from backend.directory import worker as directory_worker
from backend.directory.compiled import tenant_changed as directory_changed
from backend.directory.controller import DirectoryController
from backend.directory.controller_scim import ScimController
from backend.generations import Lease
from backend.gql_schema import graphql_controller
from backend.health import healthz, metrics, readyz, serve_metrics
from backend.http.auth import quota_headers
from backend.http.documentation import LICENSE, TAGS, document_completely, operation_id
from backend.http.idempotency import idempotency_middleware
from backend.http.input_guard import input_guard_middleware
from backend.http.openapi import document_retry_after
from backend.http.problems import EXCEPTION_HANDLERS
from backend.http.routes import answer_options_for_every_method
from backend.knowledge import index_worker, meaning, reranker, xzufi_worker
from backend.knowledge.controller import KnowledgeController
from backend.knowledge.controller_xzufi import XzufiController
from backend.metrics import Metrics
from backend.observability import configure_logging, request_logging_middleware
from backend.open311.controller import GeoReportController, GeoReportDiscoveryController, Open311AdminController
from backend.ratelimit import RateLimiter
from backend.settings import Settings, SettingsError, load_settings
from backend.state import AppState, redis_namespace
from backend.telephony import worker as telephony_worker
from backend.telephony.cache import routing_changed, table_age
from backend.telephony.controller import TelephonyController
from backend.tenants.controller import TenantController
from backend.tenants.refusals import RedisRefusalLog
from backend.tenants.signin import DatabaseIssuerRegistry, sign_in, signin_changed
from backend.tickets import personal as ticket_personal
from backend.tickets import worker as ticket_worker
from backend.tickets.controller import TicketController
from backend.tickets.webhooks import openapi_webhooks
from backend.tracing import request_tracing, shutdown_tracing
from backend.web.problems import problem_pages_router
from backend.web.ui import openapi_render_plugins, static_assets_router
from backend.webpages import worker as webpages_worker
from backend.webpages.controller import WebPagesController
from outbound import outbound_client

API_VERSION = "0.1.0"


def _warm_up_search(rerank: bool) -> None:
    """The encoders one after the other (two at once would share the cores with the first searches)."""
    meaning.warm_up()
    if rerank:
        reranker.warm_up()


@get("/ping", include_in_schema=False, sync_to_thread=False)
def ping() -> str:
    """Baseline for benchmarks: the cheapest route the stack can serve."""
    return "pong"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Bürgerservice API",
        version=API_VERSION,
        description=(
            "REST for telephony systems, partner-town systems and administrators of the shared "
            "telephone citizen service. Errors are RFC 9457 problem+json. Sign in with a bearer "
            "token from your municipality's OpenID Connect provider. Requests are limited per "
            "person or machine client and minute: every response to a signed-in request carries "
            "RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds); over the limit, "
            "429 with Retry-After."
        ),
        path="/docs",
        render_plugins=openapi_render_plugins(),
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
        ),
        tags=TAGS,
        license=LICENSE,
        webhooks=openapi_webhooks(),
        operation_id_creator=operation_id,
        use_handler_docstrings=True,
    )


def cors_config(settings: Settings) -> CORSConfig | None:
    """Browser front ends on other origins (CORS_ALLOWED_ORIGINS); none listed: no CORS headers,
    so browsers refuse cross-origin calls. Tokens travel in the Authorization header, never in
    cookies, so credentials stay off."""
    if not settings.cors_allowed_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allowed_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Accept-Language"],
        expose_headers=[
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Retry-After",
            "Idempotent-Replayed",
            "Location",
        ],
        allow_credentials=False,
        max_age=600,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings)
    if not settings.is_production:
        # Where code is written and tested, a unit of work that asks for a second connection
        # fails at once; in production it is logged (decision 013).
        enforce_one_connection()
    figures = Metrics(API_VERSION)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(
            settings.application_database_url,
            settings.db_pool_min,
            settings.db_pool_max,
            acquire_timeout=settings.db_acquire_timeout_seconds,
            starved_after=settings.db_pool_starved_seconds,
        )
        # Refuse a role that row-level security does not hold for (superuser, BYPASSRLS, owner).
        if problem := await application_role_problem(pool):
            await pool.close()
            structlog.get_logger("startup").error(problem)  # one line above the server's traceback
            raise SettingsError(problem)
        redis = redisclient.connect(settings.redis_url or "")
        # Discovery and key documents live at URLs town admins chose: the outbound policy
        # applies (docs/decisions/014); identity providers may redirect, each hop is checked.
        http = outbound_client(
            settings.outbound_policy(), timeout=settings.oidc_http_timeout_seconds, follow_redirects=True
        )
        jwks = JWKSCache(
            redis,
            devidp.jwks_source(settings, http),
            settings.jwks_cache_seconds,
            settings.jwks_refetch_interval_seconds,
            namespace=redis_namespace(settings),
            failure_backoff_seconds=settings.jwks_failure_backoff_seconds,
        )
        verifier = TokenVerifier(
            DatabaseIssuerRegistry(pool),
            jwks,
            settings.jwt_leeway_seconds,
            refusals=RedisRefusalLog(redis, redis_namespace(settings)),
        )
        limiter = RateLimiter(
            redis,
            redis_namespace(settings),
            settings.rate_limit_per_minute,
            settings.rate_limit_machine_per_minute,
            unauthenticated_limit=settings.rate_limit_unauthenticated_per_minute,
        )
        app.state.app_state = AppState(
            settings=settings,
            pool=pool,
            redis=redis,
            http=http,
            verifier=verifier,
            sign_in=sign_in,
            tenant_change_listeners=[routing_changed, directory_changed],
            replay_auditor=ticket_personal.audit_replay,
            rate_limiter=limiter,
            metrics=figures,
        )
        state = app.state.app_state
        if settings.generation_lease_ms and settings.redis_url:
            state.generation_lease = Lease(state, settings.generation_lease_ms)
            state.generation_lease.start()

        async def keys_changed(_issuer: str) -> None:
            await signin_changed(state)  # remembered sign-ins drop on every instance (decision 040)

        jwks.on_change = keys_changed
        figures.process.pool = pool
        figures.process.pool_watch = pool.watch
        figures.process.verifier = verifier
        figures.process.jwks_fetches = lambda: jwks.fetch_count
        figures.process.routing_table_age = lambda: table_age(app.state.app_state)
        figures.on_scrape(lambda: ticket_worker.read_figures(pool, figures))
        # The sentence encoder and the lemma dictionary load off the event loop while the
        # instance starts serving, not in the first caller's search (decision 026).
        warming = (
            asyncio.create_task(asyncio.to_thread(_warm_up_search, "rerank" in settings.search_retrievers))
            if "meaning" in settings.search_retrievers
            else None
        )
        # Everything loaded so far (modules, schemas, settings) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it. Measured: one
        # full collection paused a GraphQL request ~80 ms (the p99 of `make bench`), none after.
        gc.collect()
        gc.freeze()
        try:
            async with serve_metrics(settings, figures) as port:
                app.state.metrics_port = port
                yield
                if warming is not None and not warming.done():
                    await warming  # a thread cannot be cancelled; let it finish before the pool goes
        finally:
            if state.generation_lease is not None:
                await state.generation_lease.stop()
            await limiter.aclose()
            await http.aclose()
            shutdown_tracing()
            await redis.aclose()
            await pool.close()

    handlers: list[object] = [
        ping,
        healthz,
        readyz,
        *([] if settings.metrics_port else [metrics]),  # with a port of their own, only there
        TenantController,
        TelephonyController,
        TicketController,
        KnowledgeController,
        XzufiController,
        BillingController,
        DirectoryController,
        WebPagesController,
        CentreController,
        Open311AdminController,
        GeoReportDiscoveryController,
        GeoReportController,
        ScimController,
        graphql_controller(settings),
        static_assets_router(),
        problem_pages_router(),
    ]
    if settings.dev_signin_enabled:
        handlers.append(devidp.dev_idp_router())
    app = Litestar(
        route_handlers=handlers,  # type: ignore[arg-type]
        lifespan=[
            lifespan,
            ticket_worker.lifespan,
            telephony_worker.lifespan,
            directory_worker.lifespan,
            webpages_worker.lifespan,
            xzufi_worker.lifespan,
            index_worker.lifespan,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            *request_tracing(settings),  # outermost: the log lines below carry its trace id
            DefineMiddleware(request_logging_middleware, metrics=figures),
            input_guard_middleware,  # before idempotency: refused input signs nobody in
            idempotency_middleware,
        ],
        before_send=[quota_headers],
        openapi_config=openapi_config(),
        # What problem+json falls back to when Accept-Language names nothing we have (017).
        state=State({"default_locale": settings.default_locale}),
        cors_config=cors_config(settings),
        debug=False,
    )
    document_completely(app)
    answer_options_for_every_method(app)
    document_retry_after(app)
    return app


__all__ = ["CORSConfig", "Router", "create_app"]
