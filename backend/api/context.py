"""The typed GraphQL context: who is calling (verified lazily), units of work, data loaders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from auth.errors import Unauthenticated
from auth.principal import Principal
from backend.errors import RateLimited
from backend.generations import Generations
from backend.http.auth import admit, bearer_from, verify_again
from backend.i18n import N_, negotiate
from backend.state import AppState, UnitOfWork, unit_of_work


def still_grants(started: Principal, now: Principal) -> bool:
    """The same person or client with the same roles and scopes, still acting for every tenant
    the subscription started with. Gaining a tenant (a new agreement) does not end it."""
    same = (now.issuer, now.subject, now.tenant_id, now.roles, now.scopes) == (
        started.issuer,
        started.subject,
        started.tenant_id,
        started.roles,
        started.scopes,
    )
    return same and started.acting_tenant_ids <= now.acting_tenant_ids


class GraphQLContext(BaseContext, kw_only=True):
    app: AppState
    # Subscriptions: browsers cannot set headers on a WebSocket, so the token comes in the
    # graphql-transport-ws `connection_init` payload ({"Authorization": "Bearer …"}).
    connection_params: dict[str, Any] = msgspec.field(default_factory=dict)
    principal_cache: Principal | None = None
    # Resolvers run concurrently: one sign-in (and one counted request) per GraphQL request.
    principal_lock: asyncio.Lock = msgspec.field(default_factory=asyncio.Lock)
    principal_refusal: Exception | None = None
    loaders: dict[str, DataLoader[Any, Any]] = msgspec.field(default_factory=dict)

    @property
    def locale(self) -> str:
        """The language of messages for this request (decision 017): its `Accept-Language`,
        for a subscription the WebSocket handshake's."""
        connection = self.request if self.request is not None else self.websocket
        header = connection.headers.get("accept-language") if connection is not None else None
        return negotiate(header, self.app.settings.default_locale)

    def bearer(self) -> str | None:
        if self.request is not None:
            return bearer_from(self.request.headers.get("authorization"))
        params = {k.lower(): v for k, v in self.connection_params.items()}
        return bearer_from(params.get("authorization"))

    async def principal(self) -> Principal:
        if self.principal_cache is not None:
            return self.principal_cache
        async with self.principal_lock:
            if self.principal_refusal is not None:
                raise self.principal_refusal  # once per request: counted once by the rate limit
            if self.principal_cache is None:
                try:
                    self.principal_cache = await admit(self.app, self.bearer(), self.request)
                except (Unauthenticated, RateLimited) as refused:
                    self.principal_refusal = refused
                    raise
            return self.principal_cache

    async def still_signed_in(self) -> Generations | None:
        """Before a subscription hands out its next event. A subscription lives as long as its
        WebSocket, far beyond the token's lifetime: an expired token, a removed issuer or a
        withdrawn key, a changed role or an ended agreement must stop the events (caller
        numbers among them) rather than only the next sign-in. Ends it as UNAUTHENTICATED.
        Returns the generations read for the check, for deciding the event without another read."""
        started = await self.principal()
        bearer = self.bearer()
        if bearer is None:
            raise Unauthenticated(N_("your sign-in changed; sign in and subscribe again"))
        now, read = await verify_again(self.app, bearer)
        if not still_grants(started, now):
            raise Unauthenticated(N_("your sign-in changed; sign in and subscribe again"))
        return read

    @asynccontextmanager
    async def uow(self, *, readonly: bool = True) -> AsyncIterator[UnitOfWork]:
        """A transaction for one resolver or one loader batch (resolvers run concurrently)."""
        principal = await self.principal()
        async with unit_of_work(self.app, principal, readonly=readonly) as uow:
            yield uow

    def answered(self) -> None:
        """The request has its answer: drop the loaders. Each holds its load function, which
        holds this context: a reference cycle that kept context, request and loaded rows alive
        until a garbage collection."""
        self.loaders.clear()

    def loader(self, name: str, factory: Any) -> DataLoader[Any, Any]:
        """One loader per request and name, so batching spans the whole query."""
        if name not in self.loaders:
            self.loaders[name] = factory(self)
        return self.loaders[name]


Info = StrawberryInfo[GraphQLContext, None]
