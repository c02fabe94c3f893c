"""Liveness and readiness for load balancers and Kubernetes; metrics for Prometheus."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from backend.metrics import CONTENT_TYPE
from backend.state import AppState


@get("/healthz", include_in_schema=True, tags=["operations"], summary="Process is alive", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(msgspec.Struct, frozen=True):
    status: str
    postgres: str
    redis: str


@get(
    "/readyz",
    tags=["operations"],
    summary="PostgreSQL and Redis reachable (503 otherwise)",
    responses={
        503: ResponseSpec(data_container=Readiness, description="A dependency is unreachable", generate_examples=False)
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    state: AppState = request.app.state.app_state
    checks: dict[str, str] = {}

    async def database() -> None:
        async with state.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")

    async def redis() -> None:
        await state.redis.ping()

    for name, check in (("postgres", database), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), timeout=2)
            checks[name] = "ok"
        except Exception:  # readiness reports, it never raises
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", **checks},
        status_code=200 if ready else 503,
        media_type=MediaType.JSON,
    )


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics of this instance (keep off the public ingress)",
    media_type=CONTENT_TYPE,
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Counters, histograms and gauges in the Prometheus text format: requests by route
    template, routing cache use, sign-in rejections, the database pool, worker heartbeats, and
    per town webhook backlog and overdue callbacks. No personal data; scrape every instance."""
    state: AppState = request.app.state.app_state
    return Response(await state.metrics.exposition(), media_type=CONTENT_TYPE)
