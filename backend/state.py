"""What one request works with: the application's shared clients and a unit of work.

A unit of work is one database transaction scoped to the principal's tenants. Services get it,
do their reads and writes on `uow.conn`, and register cache invalidations with `after_commit`:
they run only once the change is committed, so no replica re-caches the old state in between.
Services never commit; the request boundary (REST controller or GraphQL resolver) does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar, cast
from uuid import UUID

import asyncpg
import httpx
import structlog
from redis.asyncio import Redis

from auth.oidc import TokenVerifier
from auth.principal import Principal
from backend.db.roles import database_name
from backend.db.tenancy import SET_TENANTS, tenant_array_literal, tenant_transaction
from backend.disclosures import Disclosure
from backend.errors import Conflict
from backend.generations import Generations, Lease, SharedRead, bumps_settled
from backend.i18n import _l
from backend.metrics import Metrics
from backend.ratelimit import RateLimiter
from backend.sealing import Sealer, development_key, parse_key
from backend.settings import Settings
from outbound import Networks, OutboundPolicy

log = structlog.get_logger("state")

# The bearer token to the verified principal and the generations read for it. The tenants domain
# provides it (`backend.tenants.signin.sign_in`); create_app() passes it in, so the HTTP layer
# signs requests in without importing a domain (decision 022).
SignIn: TypeAlias = "Callable[[AppState, str], Awaitable[tuple[Principal, Generations | None]]]"


def sealer_for(settings: Settings) -> Sealer:
    if settings.secrets_key is None:
        return Sealer(development_key(settings.data_dir))
    previous = [parse_key(settings.secrets_key_previous)] if settings.secrets_key_previous else []
    return Sealer(parse_key(settings.secrets_key), previous)


def redis_namespace(settings: Settings) -> str:
    """One Redis may serve several databases (test sessions, staging): keys name theirs, so
    the cached state of one never answers for another."""
    try:
        return database_name(settings.application_database_url)
    except ValueError:
        return "default"


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    http: httpx.AsyncClient
    verifier: TokenVerifier
    sign_in: SignIn
    # Called after a committed change of a tenant's settings (name, hours, closing days,
    # departments), so domains that cache derived data (telephony routing) can drop it without
    # the tenants domain knowing them. Registered in create_app().
    tenant_change_listeners: list[Callable[[AppState], Awaitable[None]]] = field(default_factory=list)
    # Audits the replay of a stored answer that held personal data, like a read; False when that
    # data was erased since (then it is not replayed). Registered in create_app() (tickets).
    replay_auditor: Callable[[UnitOfWork, list[Disclosure], str], Awaitable[bool]] | None = None
    # Requests per principal and minute; None (scripts, benchmarks in process): no limit.
    rate_limiter: RateLimiter | None = None
    metrics: Metrics = field(default_factory=Metrics)  # create_app passes the app's, served at /metrics
    namespace: str = field(init=False)  # what this deployment's Redis keys name
    sealer: Sealer = field(init=False)  # seals and opens stored secrets
    outbound: OutboundPolicy = field(init=False)  # what requests on someone's behalf may reach
    trusted_proxies: Networks = field(init=False)  # whose X-Forwarded-For names the client
    # The generation counters' MGET that requests of the same moment share (decision 040).
    generation_reads: SharedRead = field(init=False)
    # The counters held in process while a heartbeat vouches for them (decision 009, amended
    # 2026-12-07); started by create_app's lifespan, None elsewhere (each request reads Redis).
    generation_lease: Lease | None = field(init=False)

    def __post_init__(self) -> None:
        self.namespace = redis_namespace(self.settings)
        self.sealer = sealer_for(self.settings)
        self.outbound = self.settings.outbound_policy()
        self.trusted_proxies = Networks(self.settings.trusted_proxies)
        self.generation_reads = SharedRead()
        self.generation_lease = None

    async def tenant_changed(self) -> None:
        for listener in self.tenant_change_listeners:
            await listener(self)


_Hook = TypeVar("_Hook", bound=Callable[[], Awaitable[None]])


@dataclass
class UnitOfWork:
    app: AppState
    principal: Principal
    conn: asyncpg.Connection
    tenant_ids: frozenset[UUID]
    _after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _once: dict[Hashable, Any] = field(default_factory=dict)

    @property
    def redis(self) -> Redis:
        return self.app.redis

    def after_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._after_commit.append(hook)

    def after_commit_once(self, key: Hashable, make: Callable[[], _Hook]) -> _Hook:
        """The hook registered under `key` in this unit of work, made and registered the first
        time: many changes, one hook (one counter bump, one publish carrying them all)."""
        hook = self._once.get(key)
        if hook is None:
            hook = self._once[key] = make()
            self.after_commit(hook)
        return cast(_Hook, hook)

    async def include_tenant(self, tenant_id: UUID) -> None:
        """Widen this transaction's row-level security to a tenant being created in it."""
        self.tenant_ids = self.tenant_ids | {tenant_id}
        await self.conn.execute(SET_TENANTS, tenant_array_literal(self.tenant_ids))


@asynccontextmanager
async def unit_of_work(app: AppState, principal: Principal, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
    """One transaction for the principal's tenants; commit when the block succeeds, then run
    the after-commit hooks."""
    tenant_ids = principal.row_tenant_ids
    try:
        async with tenant_transaction(app.pool, tenant_ids, readonly=readonly) as conn:
            uow = UnitOfWork(app, principal, conn, tenant_ids)
            yield uow
    except asyncpg.TransactionRollbackError as error:
        # A deadlock or serialization failure: PostgreSQL chose this transaction to give way to a
        # simultaneous one and rolled it back, so nothing changed and a retry may well succeed.
        # That is a conflict the client can act on, not an internal error.
        log.info("transaction_rolled_back", sqlstate=error.sqlstate, error_type=type(error).__name__)
        raise Conflict(_l("a simultaneous change got in the way and nothing was changed; try again")) from error
    async with bumps_settled():  # the generations' bumps wait out the leases once, not per counter
        for hook in uow._after_commit:
            await hook()
