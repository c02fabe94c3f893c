"""Configuration from the environment, validated once at start.

Every variable is listed in README.md (configuration table). A bad value stops the
process with one clear line per problem instead of failing later inside a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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
    # Requests per minute and principal, across all instances (backend/ratelimit.py).
    rate_limit_per_minute: int = 600
    rate_limit_machine_per_minute: int = 6000
    # Seals stored secrets (backend/sealing.py); unset outside production: a key file in data_dir.
    secrets_key: str | None = None
    secrets_key_previous: str | None = None
    graphql: GraphQLLimits = field(default_factory=GraphQLLimits)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

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
        graphiql_enabled=read.boolean("GRAPHIQL_ENABLED", dev_default),
        dev_signin_enabled=read.boolean("DEV_SIGNIN_ENABLED", dev_default),
        background_worker=read.boolean("BACKGROUND_WORKER", env != "test"),
        data_dir=Path(read.text("DATA_DIR", str(PROJECT_ROOT / ".data")) or ".data").resolve(),
        jwt_leeway_seconds=read.integer("JWT_LEEWAY_SECONDS", 60, 0, 300),
        jwks_cache_seconds=read.integer("JWKS_CACHE_SECONDS", 3600, 60, 86400),
        jwks_refetch_interval_seconds=read.integer("JWKS_REFETCH_INTERVAL_SECONDS", 60, 1, 3600),
        rate_limit_per_minute=read.integer("RATE_LIMIT_PER_MINUTE", 600, 1, 1_000_000),
        rate_limit_machine_per_minute=read.integer("RATE_LIMIT_MACHINE_PER_MINUTE", 6000, 1, 1_000_000),
        secrets_key=read.sealing_key("SECRETS_KEY"),
        secrets_key_previous=read.sealing_key("SECRETS_KEY_PREVIOUS"),
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
    if read.problems:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(read.problems))
    return settings
