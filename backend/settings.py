"""Configuration from the environment, validated once at start.

Every variable is listed in README.md (configuration table). A bad value stops the
process with one clear line per problem instead of failing later inside a request.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from backend.i18n import LOCALES
from outbound import OutboundPolicy
from outbound.policy import ALWAYS_REFUSED

Environment = Literal["development", "test", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "test", "production")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """Raised with every problem found, one per line."""


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_cost: int = 5000
    max_page_size: int = 100


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment = "development"
    database_url: str | None = None
    app_database_url: str | None = None
    db_app_password: str | None = field(default=None, repr=False)
    db_owner_password: str | None = field(default=None, repr=False)
    db_pool_min: int = 2
    db_pool_max: int = 10
    # How long a request waits for a pooled connection before it fails with 503 (decision 013).
    db_acquire_timeout_seconds: float = 5.0
    # A pool starved this long (waiters, no connection handed out) makes /readyz fail.
    db_pool_starved_seconds: float = 30.0
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    graphql_introspection: bool = True
    # GraphQL's short paths for plain fields and lists of them (decision 020); off only to
    # compare answers with graphql-core's own execution, or if an answer ever differed.
    graphql_short_paths: bool = True
    graphiql_enabled: bool = True
    dev_signin_enabled: bool = True
    # Background work in each app instance (ticket deadlines, webhook delivery, retention purge).
    # Off unless load_settings() turns it on: tests drive the worker themselves.
    background_worker: bool = False
    data_dir: Path = PROJECT_ROOT / ".data"
    jwt_leeway_seconds: int = 60
    jwks_cache_seconds: int = 3600
    jwks_refetch_interval_seconds: int = 60
    oidc_http_timeout_seconds: float = 5.0
    # After a failed discovery or JWKS fetch an issuer is not fetched again for this long,
    # doubling with each further failure up to ten minutes (auth.oidc.JWKSCache), on all instances.
    jwks_failure_backoff_seconds: int = 10
    # How long an instance trusts the generation counters it holds after a heartbeat came back
    # through Redis; a bump's writer waits this long before answering. 0: every request reads
    # the counters from Redis (decision 009, amended 2026-12-07). The same on every instance.
    generation_lease_ms: int = 100
    # Networks outbound requests may reach although private (docs/decisions/014).
    outbound_allowed_networks: tuple[str, ...] = ()  # CIDR
    # Loopback for outbound requests: None means allowed outside production (the tests' identity
    # provider and webhook receivers run on 127.0.0.1); tests set False to run production's rule.
    outbound_loopback: bool | None = None
    # Peers whose X-Forwarded-For names the client (the ingress); nobody else's is believed.
    trusted_proxies: tuple[str, ...] = ()  # CIDR
    # Requests per minute and principal, across all instances (backend/ratelimit.py).
    rate_limit_per_minute: int = 600
    rate_limit_machine_per_minute: int = 6000
    # Requests a minute per client address that come without a valid token (401s), then 429.
    rate_limit_unauthenticated_per_minute: int = 60
    # Seals stored secrets (backend/sealing.py); unset outside production: a key file in data_dir.
    secrets_key: str | None = None
    secrets_key_previous: str | None = None
    # Where Prometheus reads /metrics (decision 015): a port of its own (the API port then has no
    # /metrics), and/or a bearer secret. Production refuses to start with neither.
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"  # noqa: S104  # the pod's own address: Prometheus scrapes from outside
    metrics_token: str | None = field(default=None, repr=False)
    graphql: GraphQLLimits = field(default_factory=GraphQLLimits)
    # Browser front ends on other origins that may call the API (CORS); none by default.
    cors_allowed_origins: tuple[str, ...] = ()
    # The language of error messages when a request's Accept-Language names none we have (017).
    default_locale: str = "de"
    # Fetching the towns' web pages (decision 025): pause between requests to one host, the
    # largest page read, the time one request may take, pages per site and round.
    web_crawl_delay_seconds: float = 1.0
    web_page_max_bytes: int = 2_000_000
    web_fetch_timeout_seconds: float = 10.0
    web_crawl_max_pages: int = 200
    # OpenTelemetry traces (decision 031): exported over OTLP/HTTP when an endpoint is set.
    otel_endpoint: str | None = None
    otel_service_name: str = "buergerservice"
    # The knowledge search's retrievers (decision 026): lexical (full text) and/or meaning
    # (sentence vectors); both are fused. One alone is for comparing them (`make eval`).
    search_retrievers: tuple[str, ...] = ("lexical", "meaning")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def outbound_policy(self) -> OutboundPolicy:
        loopback = self.env != "production" if self.outbound_loopback is None else self.outbound_loopback
        return OutboundPolicy(self.outbound_allowed_networks, allow_loopback=loopback)

    @property
    def application_database_url(self) -> str:
        """The application role's connection: APP_DATABASE_URL, else DATABASE_URL as `bs_app`."""
        if self.app_database_url:
            return self.app_database_url
        if self.database_url:
            from backend.db.roles import APP_ROLE, with_user

            return with_user(self.database_url, APP_ROLE, self.db_app_password)
        raise SettingsError("DATABASE_URL is not set (`make run` starts an embedded PostgreSQL)")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class _Reader:
    """Collects every bad value instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str | None) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or default

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.problems.append(f"{name}={raw!r}: expected one of true/false/1/0/yes/no")
        return default

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected a whole number")
            return default
        if not minimum <= value <= maximum:
            self.problems.append(f"{name}={value}: must be between {minimum} and {maximum}")
            return default
        return value

    def optional_port(self, name: str) -> int | None:
        if not self.environ.get(name, "").strip():
            return None
        return self.integer(name, 0, 1, 65535) or None

    def secret(self, name: str, min_length: int) -> str | None:
        value = self.text(name, None)
        if value is not None and len(value) < min_length:
            self.problems.append(f"{name}: at least {min_length} characters (e.g. `openssl rand -hex 32`)")
            return None
        return value

    def networks(self, name: str, *, refuse_link_local: bool = False) -> tuple[str, ...]:
        """A comma- or space-separated list of CIDR networks (`10.20.0.0/16, 2001:db8::/32`)."""
        found: list[str] = []
        for item in self.environ.get(name, "").replace(",", " ").split():
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not a network (use CIDR, e.g. 10.20.0.0/16)")
                continue
            if refuse_link_local and any(network.overlaps(n) for n in ALWAYS_REFUSED if n.version == network.version):
                self.problems.append(f"{name}: {item} reaches link-local addresses (cloud metadata), always refused")
                continue
            found.append(str(network))
        return tuple(found)

    def seconds(self, name: str, default: float, minimum: float, maximum: float) -> float:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected a number of seconds")
            return default
        if not minimum <= value <= maximum:  # also refuses nan
            self.problems.append(f"{name}={value:g}: must be between {minimum:g} and {maximum:g} seconds")
            return default
        return value

    def sealing_key(self, name: str) -> str | None:
        from backend.sealing import parse_key

        raw = self.text(name, None)
        if raw is None:
            return None
        try:
            parse_key(raw)
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return None
        return raw

    def origins(self, name: str, *, production: bool) -> tuple[str, ...]:
        """A comma-separated list of exact origins (`https://agent.example.de`, no path)."""
        raw = self.text(name, None)
        if raw is None:
            return ()
        origins = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            if item == "*":
                if production:
                    self.problems.append(f"{name}: '*' is not allowed with APP_ENV=production; list the origins")
                origins.append(item)
                continue
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                self.problems.append(f"{name}: {item!r} is not an origin (scheme://host[:port], no path)")
                continue
            if parts.query or parts.fragment or parts.username:
                self.problems.append(f"{name}: {item!r} is not an origin (scheme://host[:port], no path)")
                continue
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return tuple(origins)

    def url(self, name: str, schemes: set[str]) -> str | None:
        raw = self.text(name, None)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in schemes:
            allowed = ", ".join(sorted(schemes))
            self.problems.append(f"{name}: scheme {parts.scheme or '(none)'!r} not allowed; use {allowed}")
        return raw


def load_settings(environ: Mapping[str, str] | None = None, *, serving: bool = True) -> Settings:
    """Read and validate all settings; raise SettingsError listing every problem. `serving`:
    False for one-off commands such as migrations, which need neither Redis nor the sealing
    key (the migration Job is given the database credentials only)."""
    env_map = os.environ if environ is None else environ
    read = _Reader(env_map)

    env_raw = (read.text("APP_ENV", "development") or "development").lower()
    if env_raw not in ENVIRONMENTS:
        read.problems.append(f"APP_ENV={env_raw!r}: expected one of {', '.join(ENVIRONMENTS)}")
        env_raw = "development"
    env: Environment = env_raw  # type: ignore[assignment]
    dev_default = env != "production"

    pg_schemes = {"postgres", "postgresql"}
    log_level = (read.text("LOG_LEVEL", "INFO") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        read.problems.append(f"LOG_LEVEL={log_level!r}: expected one of {', '.join(sorted(_LOG_LEVELS))}")
        log_level = "INFO"
    log_format = read.text("LOG_FORMAT", "json")
    if log_format not in ("json", "console"):
        read.problems.append(f"LOG_FORMAT={log_format!r}: expected json or console")
        log_format = "json"

    pool_min = read.integer("DB_POOL_MIN", 2, 0, 100)
    pool_max = read.integer("DB_POOL_MAX", 10, 1, 500)
    if pool_min > pool_max:
        read.problems.append(f"DB_POOL_MIN={pool_min} is larger than DB_POOL_MAX={pool_max}")

    default_locale = (read.text("DEFAULT_LOCALE", "de") or "de").lower()
    if default_locale not in LOCALES:
        read.problems.append(f"DEFAULT_LOCALE={default_locale!r}: expected one of {', '.join(LOCALES)}")
        default_locale = "de"

    retrievers = tuple(
        dict.fromkeys(
            r.strip() for r in (read.text("SEARCH_RETRIEVERS", "lexical,meaning") or "").split(",") if r.strip()
        )
    )
    # "rerank" (e5 ordering the two retrievers' services, decision 026) works only with both of them.
    if (
        not retrievers
        or not set(retrievers) <= {"lexical", "meaning", "rerank"}
        or ("rerank" in retrievers and not {"lexical", "meaning"} <= set(retrievers))
    ):
        read.problems.append(
            f"SEARCH_RETRIEVERS={','.join(retrievers)!r}: expected lexical, meaning or both, and rerank with both"
        )
        retrievers = ("lexical", "meaning")

    port = read.integer("PORT", 8000, 1, 65535)
    host = read.text("HOST", "127.0.0.1") or "127.0.0.1"
    public_base_url = read.url("PUBLIC_BASE_URL", {"http", "https"}) or f"http://{host}:{port}"

    settings = Settings(
        env=env,
        database_url=read.url("DATABASE_URL", pg_schemes),
        app_database_url=read.url("APP_DATABASE_URL", pg_schemes),
        db_app_password=read.text("DB_APP_PASSWORD", None),
        db_owner_password=read.text("DB_OWNER_PASSWORD", None),
        db_pool_min=pool_min,
        db_pool_max=pool_max,
        db_acquire_timeout_seconds=read.seconds("DB_ACQUIRE_TIMEOUT_SECONDS", 5.0, 0.05, 120.0),
        db_pool_starved_seconds=read.seconds("DB_POOL_STARVED_SECONDS", 30.0, 1.0, 3600.0),
        redis_url=read.url("REDIS_URL", {"redis", "rediss", "unix"}),
        host=host,
        port=port,
        public_base_url=public_base_url.rstrip("/"),
        log_level=log_level,
        log_format=log_format,  # type: ignore[arg-type]
        graphql_introspection=read.boolean("GRAPHQL_INTROSPECTION", dev_default),
        graphql_short_paths=read.boolean("GRAPHQL_SHORT_PATHS", True),
        graphiql_enabled=read.boolean("GRAPHIQL_ENABLED", dev_default),
        dev_signin_enabled=read.boolean("DEV_SIGNIN_ENABLED", dev_default),
        background_worker=read.boolean("BACKGROUND_WORKER", env != "test"),
        data_dir=Path(read.text("DATA_DIR", str(PROJECT_ROOT / ".data")) or ".data").resolve(),
        jwt_leeway_seconds=read.integer("JWT_LEEWAY_SECONDS", 60, 0, 300),
        jwks_cache_seconds=read.integer("JWKS_CACHE_SECONDS", 3600, 60, 86400),
        jwks_refetch_interval_seconds=read.integer("JWKS_REFETCH_INTERVAL_SECONDS", 60, 1, 3600),
        rate_limit_per_minute=read.integer("RATE_LIMIT_PER_MINUTE", 600, 1, 1_000_000),
        rate_limit_machine_per_minute=read.integer("RATE_LIMIT_MACHINE_PER_MINUTE", 6000, 1, 1_000_000),
        rate_limit_unauthenticated_per_minute=read.integer("RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE", 60, 1, 1_000_000),
        jwks_failure_backoff_seconds=read.integer("JWKS_FAILURE_BACKOFF_SECONDS", 10, 1, 3600),
        generation_lease_ms=read.integer("GENERATION_LEASE_MS", 100, 0, 2000),
        outbound_allowed_networks=read.networks("OUTBOUND_ALLOWED_NETWORKS", refuse_link_local=True),
        trusted_proxies=read.networks("TRUSTED_PROXIES"),
        secrets_key=read.sealing_key("SECRETS_KEY"),
        secrets_key_previous=read.sealing_key("SECRETS_KEY_PREVIOUS"),
        cors_allowed_origins=read.origins("CORS_ALLOWED_ORIGINS", production=env == "production"),
        default_locale=default_locale,
        search_retrievers=retrievers,
        metrics_port=read.optional_port("METRICS_PORT"),
        metrics_host=read.text("METRICS_HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104
        metrics_token=read.secret("METRICS_TOKEN", 32),
        web_crawl_delay_seconds=read.seconds("WEB_CRAWL_DELAY_SECONDS", 1.0, 0.0, 60.0),
        web_page_max_bytes=read.integer("WEB_PAGE_MAX_BYTES", 2_000_000, 10_000, 50_000_000),
        web_fetch_timeout_seconds=read.seconds("WEB_FETCH_TIMEOUT_SECONDS", 10.0, 0.5, 120.0),
        web_crawl_max_pages=read.integer("WEB_CRAWL_MAX_PAGES", 200, 1, 10_000),
        otel_endpoint=read.url("OTEL_EXPORTER_OTLP_ENDPOINT", {"http", "https"}),
        otel_service_name=read.text("OTEL_SERVICE_NAME", "buergerservice") or "buergerservice",
        graphql=GraphQLLimits(
            max_depth=read.integer("GRAPHQL_MAX_DEPTH", 10, 2, 50),
            max_aliases=read.integer("GRAPHQL_MAX_ALIASES", 15, 1, 200),
            max_tokens=read.integer("GRAPHQL_MAX_TOKENS", 2000, 100, 100000),
            max_cost=read.integer("GRAPHQL_MAX_COST", 5000, 10, 1000000),
        ),
    )
    if settings.db_pool_starved_seconds < settings.db_acquire_timeout_seconds:
        read.problems.append(
            f"DB_POOL_STARVED_SECONDS={settings.db_pool_starved_seconds:g} is shorter than "
            f"DB_ACQUIRE_TIMEOUT_SECONDS={settings.db_acquire_timeout_seconds:g}"
        )
    if settings.is_production and settings.dev_signin_enabled:
        read.problems.append("DEV_SIGNIN_ENABLED=true is not allowed with APP_ENV=production")
    if settings.is_production and (settings.database_url is None and settings.app_database_url is None):
        read.problems.append("APP_DATABASE_URL or DATABASE_URL is required with APP_ENV=production")
    if serving and settings.is_production and settings.secrets_key is None:
        read.problems.append("SECRETS_KEY is required with APP_ENV=production (base64 of 32 random bytes)")
    if serving and settings.is_production and settings.redis_url is None:
        read.problems.append("REDIS_URL is required with APP_ENV=production")
    if settings.metrics_port is not None and settings.metrics_port == port:
        read.problems.append(f"METRICS_PORT={port} is the API's PORT; give metrics a port of their own")
    if serving and settings.is_production and settings.metrics_port is None and settings.metrics_token is None:
        # Per-town figures (overdue callbacks, webhook backlog) are not for whoever reaches the API.
        read.problems.append(
            "METRICS_PORT or METRICS_TOKEN is required with APP_ENV=production: /metrics is not served "
            "on the API's port without a secret"
        )
    if read.problems:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(read.problems))
    return settings
