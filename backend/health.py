"""Liveness and readiness for load balancers and Kubernetes; metrics for Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import asyncpg
import msgspec
import structlog
import uvicorn
from litestar import MediaType, Request, Response, get
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from redis.asyncio import Redis

from backend.db.pool import acquire, watch_of
from backend.errors import NotAuthenticated, NotFound, PoolExhausted
from backend.http.openapi import problem_responses
from backend.i18n import _l
from backend.metrics import CONTENT_TYPE, Metrics
from backend.settings import Settings, SettingsError
from backend.state import AppState

log = structlog.get_logger("health")

METRICS_PATH = "/metrics"


@get("/healthz", include_in_schema=True, tags=["operations"], summary="Process is alive", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# Probes wait 3 s (infra/k8s/deployment.yaml) or 2 s (the compose healthcheck): both checks run
# side by side, PostgreSQL's within POOL_WAIT_SECONDS + QUERY_SECONDS, Redis' within REDIS_SECONDS.
POOL_WAIT_SECONDS = 1.0
QUERY_SECONDS = 0.5
REDIS_SECONDS = 0.5


PostgresState = Literal["ok", "busy", "starved", "unavailable"]


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready", "not ready"]
    # ok; busy: every pooled connection is in use (requests wait, connections are handed out);
    # starved: requests have waited and no connection was handed out for longer than
    # DB_POOL_STARVED_SECONDS (a wedge: not ready); unavailable: no connection could be opened or used.
    postgres: PostgresState
    # Reported only: without Redis requests are answered from PostgreSQL (decision 009).
    redis: Literal["ok", "unavailable"]


async def postgres_state(pool: asyncpg.Pool) -> PostgresState:
    """Through the request pool, where a busy pool is *ready*. A probe cannot tell "busy" from
    "broken" by failing: when every connection is held by slow queries, every replica is busy
    at once, and a 503 then empties the Service - the outage the probe was meant to avoid.
    A dedicated connection per probe was the other candidate; it costs a new PostgreSQL backend
    every 5 s per pod and fails on every pod together when PostgreSQL is at max_connections.
    So: a full pool that yields no connection within POOL_WAIT_SECONDS is "busy" (ready; the
    DatabasePoolExhausted alert watches it) - unless it has handed out no connection to anyone
    waiting for longer than DB_POOL_STARVED_SECONDS: then it is "starved" (not ready; the
    DatabasePoolStarved alert fires), since a pool that makes no progress is a wedge, not load
    (decision 013). A connection that cannot be opened (refused, broken, or not opened in time
    while the pool has room) or does not answer SELECT 1 within QUERY_SECONDS is
    "unavailable" (not ready)."""
    try:
        async with acquire(pool, wait_seconds=POOL_WAIT_SECONDS, quiet=True) as conn:
            await conn.fetchval("SELECT 1", timeout=QUERY_SECONDS)
    except PoolExhausted:
        if pool.get_idle_size() > 0 or pool.get_size() < pool.get_max_size():
            return "unavailable"  # room in the pool, yet no connection could be opened in time
        watch = watch_of(pool)
        return "starved" if watch is not None and watch.starved() else "busy"
    except Exception:  # readiness reports, it never raises (a query timeout among them)
        return "unavailable"
    return "ok"


async def redis_state(redis: Redis) -> Literal["ok", "unavailable"]:
    try:
        await asyncio.wait_for(redis.ping(), timeout=REDIS_SECONDS)
    except Exception:  # refused, hung (timeout) or erring: reported, never raised
        return "unavailable"
    return "ok"


@get(
    "/readyz",
    tags=["operations"],
    summary="Ready while PostgreSQL answers and its pool is not starved (else 503); Redis is reported",
    responses={
        503: ResponseSpec(
            data_container=Readiness,
            description="PostgreSQL cannot be reached from this instance, or its pool is starved",
            generate_examples=False,
        )
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """For load balancers and the Kubernetes readiness probe: 503 when this instance cannot
    open or use a PostgreSQL connection, or when its pool has been starved (requests waited and
    no connection was handed out) for longer than DB_POOL_STARVED_SECONDS. A pool whose
    connections are all in use but handed out again is `busy`, still ready. Redis is reported
    but never makes the instance unready: without it sign-in and routing are answered from
    PostgreSQL, and a Redis outage would otherwise take every replica out at once. Both are
    also on /metrics as `bs_dependency_up`."""
    state: AppState = request.app.state.app_state
    postgres, redis = await asyncio.gather(postgres_state(state.pool), redis_state(state.redis))
    state.metrics.dependency_up.labels("postgres").set(postgres != "unavailable")
    state.metrics.dependency_up.labels("redis").set(redis == "ok")
    ready = postgres in ("ok", "busy")
    if postgres == "starved":
        watch = watch_of(state.pool)
        log.error(
            "database_pool_starved",
            starved_seconds=round(watch.starved_for(), 1) if watch is not None else None,
            waiting=watch.waiting if watch is not None else None,
            pool_max=state.pool.get_max_size(),
        )
    return Response(
        Readiness(status="ready" if ready else "not ready", postgres=postgres, redis=redis),
        status_code=200 if ready else 503,
        media_type=MediaType.JSON,
    )


def metrics_refusal(scope: Scope, token: str | None) -> int | None:
    """404 for any path but exactly `/metrics` (not `/metrics/`, not `/metrics%2f`, which routing
    would otherwise fold onto it), 401 without the bearer secret when one is set; else None."""
    raw_path = scope.get("raw_path")
    raw = raw_path.split(b"?", 1)[0] if isinstance(raw_path, bytes) else METRICS_PATH.encode()
    if scope.get("path") != METRICS_PATH or raw != METRICS_PATH.encode():
        return 404
    if token is not None:
        sent = Headers.from_scope(scope).get("authorization", "")
        scheme, _, credentials = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            return 401
    return None


@get(
    METRICS_PATH,
    tags=["operations"],
    summary="Prometheus metrics of this instance (keep off the public ingress)",
    media_type=CONTENT_TYPE,
    responses=problem_responses(401, 404),
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Counters, histograms and gauges in the Prometheus text format: requests by route
    template, routing cache use, sign-in rejections, the database pool, worker heartbeats, and
    per town webhook backlog and overdue callbacks. No personal data; scrape every instance.
    Served here only without `METRICS_PORT`; with `METRICS_TOKEN` it needs that bearer secret."""
    state: AppState = request.app.state.app_state
    refusal = metrics_refusal(request.scope, state.settings.metrics_token)
    if refusal == 404:
        raise NotFound(_l("no such path"))
    if refusal == 401:
        raise NotAuthenticated(_l("the metrics bearer secret is required"))
    return Response(await state.metrics.exposition(), media_type=CONTENT_TYPE)


def metrics_listener(figures: Metrics, token: str | None) -> ASGIApp:
    """The ASGI app of the metrics port: `GET /metrics` and nothing else, plain text answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            return  # lifespan is off; WebSockets have nothing to read here
        refusal = metrics_refusal(scope, token)
        if refusal is None and scope.get("method") not in ("GET", "HEAD"):
            refusal = 405
        status, body, content_type = (refusal, b"", "text/plain") if refusal else (200, b"", CONTENT_TYPE)
        if refusal is None:
            body = await figures.exposition()
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if refusal == 401:
            headers.append((b"www-authenticate", b'Bearer realm="metrics"'))
        await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers))
        body = b"" if scope.get("method") == "HEAD" else body
        await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))

    return app


class _Listener(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the API's server owns SIGTERM/SIGINT; its shutdown stops this one


@contextlib.asynccontextmanager
async def serve_metrics(settings: Settings, figures: Metrics) -> AsyncIterator[int | None]:
    """With `METRICS_PORT`: a second listener in this process for Prometheus alone, open while
    the app runs; yields its port (None without one). The socket is bound here, so a port in
    use stops the start with an error instead of a listener that silently never came up."""
    if settings.metrics_port is None:
        yield None
        return
    family = socket.AF_INET6 if ":" in settings.metrics_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.metrics_host, settings.metrics_port))
    except OSError as error:
        sock.close()
        raise SettingsError(f"METRICS_PORT={settings.metrics_port}: cannot listen ({error.strerror})") from error
    config = uvicorn.Config(
        metrics_listener(figures, settings.metrics_token), lifespan="off", access_log=False, log_config=None
    )
    server = _Listener(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
