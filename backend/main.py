"""create_app(): REST controllers, the GraphQL controller, and the shared clients' lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from litestar import Litestar, Router, get
from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag

from auth.oidc import HttpJWKSSource, JWKSCache, TokenVerifier
from backend import devidp, redisclient
from backend.api.schema import graphql_controller
from backend.billing.controller import BillingController
from backend.db.pool import create_pool, enforce_one_connection
from backend.db.roles import application_role_problem
from backend.health import healthz, metrics, readyz
from backend.http.auth import quota_headers
from backend.http.idempotency import idempotency_middleware
from backend.http.problems import EXCEPTION_HANDLERS
from backend.knowledge.controller import KnowledgeController
from backend.metrics import Metrics
from backend.observability import configure_logging, request_logging_middleware
from backend.ratelimit import RateLimiter
from backend.settings import Settings, SettingsError, load_settings
from backend.state import AppState, redis_namespace
from backend.telephony import worker as telephony_worker
from backend.telephony.cache import routing_changed, table_age
from backend.telephony.controller import TelephonyController
from backend.tenants.controller import TenantController
from backend.tenants.signin import DatabaseIssuerRegistry
from backend.tickets import worker as ticket_worker
from backend.tickets.controller import TicketController
from backend.web.ui import openapi_render_plugins, static_assets_router

API_VERSION = "0.1.0"


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
        tags=[
            Tag(name="tenants"),
            Tag(name="telephony"),
            Tag(name="tickets"),
            Tag(name="knowledge"),
            Tag(name="billing"),
            Tag(name="operations"),
        ],
        use_handler_docstrings=True,
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
        http = httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds, follow_redirects=False)
        source = devidp.DevJWKSSource(settings, http) if settings.dev_signin_enabled else None
        jwks = JWKSCache(
            redis,
            source or HttpJWKSSource(http),
            settings.jwks_cache_seconds,
            settings.jwks_refetch_interval_seconds,
            namespace=redis_namespace(settings),
        )
        verifier = TokenVerifier(DatabaseIssuerRegistry(pool), jwks, settings.jwt_leeway_seconds)
        limiter = RateLimiter(
            redis, redis_namespace(settings), settings.rate_limit_per_minute, settings.rate_limit_machine_per_minute
        )
        app.state.app_state = AppState(
            settings=settings,
            pool=pool,
            redis=redis,
            http=http,
            verifier=verifier,
            tenant_change_listeners=[routing_changed],
            rate_limiter=limiter,
            metrics=figures,
        )
        figures.process.pool = pool
        figures.process.pool_watch = pool.watch
        figures.process.verifier = verifier
        figures.process.jwks_fetches = lambda: jwks.fetch_count
        figures.process.routing_table_age = lambda: table_age(app.state.app_state)
        figures.on_scrape(lambda: ticket_worker.read_figures(pool, figures))
        # Everything loaded so far (modules, schemas, settings) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it. Measured: one
        # full collection paused a GraphQL request ~80 ms (the p99 of `make bench`), none after.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await limiter.aclose()
            await http.aclose()
            await redis.aclose()
            await pool.close()

    handlers: list[object] = [
        ping,
        healthz,
        readyz,
        metrics,
        TenantController,
        TelephonyController,
        TicketController,
        KnowledgeController,
        BillingController,
        graphql_controller(settings),
        static_assets_router(),
    ]
    if settings.dev_signin_enabled:
        handlers.append(devidp.dev_idp_router())
    return Litestar(
        route_handlers=handlers,  # type: ignore[arg-type]
        lifespan=[lifespan, ticket_worker.lifespan, telephony_worker.lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[DefineMiddleware(request_logging_middleware, metrics=figures), idempotency_middleware],
        before_send=[quota_headers],
        openapi_config=openapi_config(),
        cors_config=None,
        debug=False,
    )


__all__ = ["CORSConfig", "Router", "create_app"]
