"""Figures for operations: Prometheus text at `GET /metrics`, one registry per app instance.

What the engineer on call graphs and alerts on (docs/decisions/012-metrics.md): requests,
latency and errors per route; whether routing decisions come from the cache or, with Redis
down, from PostgreSQL; sign-in rejections by reason and JWKS fetches; the database pool; the
background workers' heartbeats; and per town the webhook backlog, paused endpoints and overdue
callbacks. Labels stay bounded and free of personal data: route templates (never a path or a
query string, which may hold a caller number), tenant slugs and fixed words.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE", "FIGURES_ACQUIRE_SECONDS", "Metrics"]

# The classic text format: read by every Prometheus version (and by most other scrapers).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

log = structlog.get_logger("metrics")
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: noise here

# From a routing decision (~1 ms) to a day's call import (seconds).
MAX_OPERATION_NAMES = 200  # distinct GraphQL operation names per process; more count as "other"
OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Figures read from PostgreSQL are read again at most this often, however often anyone scrapes.
FIGURES_SECONDS = 10.0
# A scrape never waits for the database longer than this per source (Prometheus gives up after
# its scrape timeout, 10 s by default, and the pool gauges would vanish with the rest) …
SOURCE_SECONDS = 3.0
# … nor queues for a pooled connection longer than this: an exhausted pool is what it must show.
FIGURES_ACQUIRE_SECONDS = 1.0


class _Pool(Protocol):
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


class _PoolWatch(Protocol):
    waiting: int
    timeouts: int
    starved_after: float

    def starved_for(self) -> float: ...


class _Verifier(Protocol):
    verifications: int
    rejections: dict[str, int]


class _Process:
    """What this process knows without any I/O, read at each scrape: the database pool, sign-in
    counts kept by `auth` (which knows nothing of Prometheus), and the routing table's age."""

    def __init__(self) -> None:
        self.pool: _Pool | None = None
        self.pool_watch: _PoolWatch | None = None
        self.verifier: _Verifier | None = None
        self.jwks_fetches: Callable[[], int] | None = None
        self.routing_table_age: Callable[[], float | None] | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # labels and values only exist once the app has started

    def collect(self) -> Iterator[Metric]:
        if self.pool is not None:
            connections = GaugeMetricFamily(
                "bs_db_pool_connections", "Database connections of this instance's pool", labels=["state"]
            )
            size, idle = self.pool.get_size(), self.pool.get_idle_size()
            connections.add_metric(["busy"], size - idle)
            connections.add_metric(["idle"], idle)
            yield connections
            yield GaugeMetricFamily(
                "bs_db_pool_max_connections", "Upper bound of the pool", value=self.pool.get_max_size()
            )
        if self.pool_watch is not None:
            watch = self.pool_watch
            yield GaugeMetricFamily(
                "bs_db_pool_waiting", "Requests waiting for a pooled connection", value=watch.waiting
            )
            yield CounterMetricFamily(
                "bs_db_pool_acquire_timeouts",
                "Requests that got no pooled connection within DB_ACQUIRE_TIMEOUT_SECONDS (answered 503)",
                watch.timeouts,
            )
            yield GaugeMetricFamily(
                "bs_db_pool_starved_seconds",
                "How long someone has waited for a pooled connection without any being handed out (0: not starved)",
                value=watch.starved_for(),
            )
            yield GaugeMetricFamily(
                "bs_db_pool_starved_threshold_seconds",
                "DB_POOL_STARVED_SECONDS: starved longer than this, /readyz answers 503",
                value=watch.starved_after,
            )
        if self.verifier is not None:
            yield CounterMetricFamily(
                "bs_token_verifications",
                "Bearer tokens checked in full (signature and claims)",
                self.verifier.verifications,
            )
            rejected = CounterMetricFamily("bs_token_rejections", "Bearer tokens refused, by reason", labels=["reason"])
            for reason, count in sorted(self.verifier.rejections.items()):
                rejected.add_metric([reason], count)
            yield rejected
        if self.jwks_fetches is not None:
            yield CounterMetricFamily("bs_jwks_fetches", "JWKS documents fetched from issuers", self.jwks_fetches())
        if self.routing_table_age is not None:
            age = self.routing_table_age()
            if age is not None:
                yield GaugeMetricFamily(
                    "bs_routing_table_age_seconds", "Age of the routing table this instance decides with", value=age
                )


class Metrics:
    """The instruments, created once per app. Domain code counts through these attributes;
    figures that live in PostgreSQL are read by `on_scrape` sources just before a scrape."""

    def __init__(self, version: str = "") -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        Gauge("bs_build_info", "Version of the running code", ["version"], registry=registry).labels(version).set(1)
        ProcessCollector(registry=registry)  # CPU, memory, open files of this process
        self.process = _Process()
        registry.register(self.process)
        self.requests = Counter(
            "bs_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "bs_http_request_duration_seconds",
            "Time from request to the end of the response, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.websockets = Gauge(
            "bs_websocket_connections",
            "Open WebSocket connections (GraphQL subscriptions: screen pop, ticket and article changes)",
            ["route"],
            registry=registry,
        )
        self.routing_lookups = Counter(
            "bs_routing_lookups",
            "Routing table lookups by source: cache (Redis, kept in process), database (Redis unavailable) or "
            "transaction (a call recorded while the shared table was loading, routed on its own connection)",
            ["source"],
            registry=registry,
        )
        # The hot path counts on these children directly (no label lookup per decision).
        self.routing_from_cache = self.routing_lookups.labels("cache")
        self.routing_from_database = self.routing_lookups.labels("database")
        self.routing_from_transaction = self.routing_lookups.labels("transaction")
        self.worker_rounds = Counter(
            "bs_worker_rounds",
            "Background worker rounds by outcome (ok, failed)",
            ["worker", "outcome"],
            registry=registry,
        )
        self.worker_last_success = Gauge(
            "bs_worker_last_success_timestamp_seconds",
            "Unix time of a worker's last completed round",
            ["worker"],
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "bs_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, failed)",
            ["outcome"],
            registry=registry,
        )
        # Per town, from PostgreSQL (the same on every instance: aggregate with max, not sum).
        self.webhook_waiting = Gauge(
            "bs_webhook_deliveries_waiting", "Webhook deliveries not yet delivered", ["tenant"], registry=registry
        )
        self.webhook_oldest_waiting = Gauge(
            "bs_webhook_oldest_waiting_seconds",
            "Age of the oldest undelivered webhook delivery",
            ["tenant"],
            registry=registry,
        )
        self.webhook_paused = Gauge(
            "bs_webhook_endpoints_paused",
            "Webhook endpoints paused after failing for days",
            ["tenant"],
            registry=registry,
        )
        self.tickets_overdue = Gauge(
            "bs_tickets_overdue", "Open tickets past their callback deadline", ["tenant"], registry=registry
        )
        self.scrape_failures = Counter(
            "bs_metrics_source_failures",
            "Figures that could not be read for a scrape (failed or timed out; the last ones are served)",
            registry=registry,
        )
        self.figures_age = Gauge(
            "bs_metrics_figures_age_seconds",
            "Age of the per-town figures served (grows while PostgreSQL cannot be read for them)",
            registry=registry,
        )
        self.dependency_up = Gauge(
            "bs_dependency_up",
            "Whether PostgreSQL and Redis answered this instance's last readiness check (/readyz)",
            ["dependency"],
            registry=registry,
        )
        # GraphQL by operation name (decision 031): /graphql as one route says nothing. Names are
        # the clients' choice, so only well-formed ones count, and at most MAX_OPERATION_NAMES.
        self.graphql_operations = Counter(
            "bs_graphql_operations",
            "GraphQL operations by operation name, type and outcome (ok, error)",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.graphql_operation_seconds = Histogram(
            "bs_graphql_operation_duration_seconds",
            "Time to execute a GraphQL operation, by operation name and type",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._operation_names: set[str] = set()
        self._operations: dict[tuple[str, str, bool], tuple[Counter, Histogram]] = {}
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._sources: list[Callable[[], Awaitable[None]]] = []
        self.figures_seconds = FIGURES_SECONDS
        self.source_seconds = SOURCE_SECONDS
        self._read_at: float | None = None  # last attempt (monotonic)
        self._figures_at: float | None = None  # last read in which every source succeeded
        self._reading = asyncio.Lock()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The hot path: labelled children are looked up once per (method, route, status).
        children = self._http.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.request_seconds.labels(method, route))
            self._http[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_operation(self, name: str | None, kind: str, ok: bool, seconds: float) -> None:
        label = "anonymous"
        if name:
            if name in self._operation_names:
                label = name
            elif len(self._operation_names) < MAX_OPERATION_NAMES and OPERATION_NAME.fullmatch(name):
                self._operation_names.add(name)
                label = name
            else:
                label = "other"
        # Children looked up once per (name, type, outcome), as for requests: labels() is most of the cost.
        children = self._operations.get((label, kind, ok))
        if children is None:
            children = (
                self.graphql_operations.labels(label, kind, "ok" if ok else "error"),
                self.graphql_operation_seconds.labels(label, kind),
            )
            self._operations[(label, kind, ok)] = children
        children[0].inc()
        children[1].observe(seconds)

    def on_scrape(self, source: Callable[[], Awaitable[None]]) -> None:
        """Register a reader of figures that live elsewhere (PostgreSQL); it sets gauges."""
        self._sources.append(source)

    async def exposition(self) -> bytes:
        """The text format, with the sources' figures at most `figures_seconds` old when they can
        be read. A scrape never waits long on the database: each source gets `source_seconds`; a
        scrape that finds a read under way serves the figures from before instead of queueing
        behind it; a source that fails or times out keeps its last figures, is counted in
        `bs_metrics_source_failures_total`, and `bs_metrics_figures_age_seconds` grows."""
        due = self._read_at is None or time.monotonic() - self._read_at >= self.figures_seconds
        if due and not self._reading.locked():
            async with self._reading:
                await self._read_sources()
        if self._figures_at is not None:
            self.figures_age.set(time.monotonic() - self._figures_at)
        return generate_latest(self.registry)

    async def _read_sources(self) -> None:
        complete = True
        for source in self._sources:
            try:
                await asyncio.wait_for(source(), timeout=self.source_seconds)
            except Exception as error:  # a scrape still shows everything else
                complete = False
                self.scrape_failures.inc()
                log.warning("metrics_source_failed", error_type=type(error).__name__)
        self._read_at = time.monotonic()
        if complete:
            self._figures_at = self._read_at
