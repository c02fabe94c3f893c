"""Sign-in: the bearer token to a principal, with the lookups auth.TokenVerifier needs —
which tenants trust an issuer, and for whom a principal acts. All of it is needed on every
request and changes rarely, so verified tokens, bindings and acting tenants are remembered in
process under the sign-in generation (`backend.generations`), which every committed change to
issuers, tenants or agreements increments (`signin_changed`, run after commit). Without Redis
nothing is remembered and everything comes from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from cachetools import TTLCache

from auth.oidc import IssuerBinding
from auth.principal import Principal
from auth.roles import OPERATOR_WIDE_ROLES, OPERATOR_WIDE_SCOPES, Role, Scope
from backend import clock, generations
from backend.db.pool import acquire, may_acquire
from backend.generations import Generations
from backend.state import AppState
from backend.tenants import repository

BERLIN = ZoneInfo("Europe/Berlin")
# Safety net: nothing remembered is used longer than this, whatever the generation says.
MAX_AGE_SECONDS = 60
MEMO_SIZE = 4096
K = TypeVar("K")
V = TypeVar("V")


async def signin_changed(app: AppState) -> None:
    """After a committed change: every instance looks tokens, issuers and acting tenants up again."""
    await generations.bump(app, "signin")


async def sign_in(app: AppState, token: str) -> tuple[Principal, Generations | None]:
    """The verified principal, and the generations read for it (for the request to keep).
    Signing in may read issuers and tenants from PostgreSQL: never from inside a unit of work
    (decision 013), which the guard checks on every sign-in, not only on a cache miss."""
    may_acquire(app.pool)
    read = await generations.read(app)
    # Agreements are dated in Europe/Berlin: access ends with the agreement's last day there.
    tag = f"{read.signin}:{clock.today().isoformat()}" if read is not None else None
    return await app.verifier.verify(token, tag), read


class _Memo(Generic[K, V]):
    """Values remembered under the cache tag they were computed for, for a limited time."""

    def __init__(self) -> None:
        # Bounded and aged: a flood of made-up issuers pushes out the least recently used
        # entries, not every town's at once; nothing outlives MAX_AGE_SECONDS.
        self._entries: TTLCache[K, tuple[str, V]] = TTLCache(maxsize=MEMO_SIZE, ttl=MAX_AGE_SECONDS)

    def get(self, key: K, tag: str | None) -> V | None:
        entry = self._entries.get(key)
        if tag is None or entry is None or entry[0] != tag:
            return None
        return entry[1]

    def put(self, key: K, tag: str | None, value: V) -> V:
        if tag is not None:
            self._entries[key] = (tag, value)
        return value


class DatabaseIssuerRegistry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._bindings: _Memo[str, list[IssuerBinding]] = _Memo()
        self._acting: _Memo[tuple[UUID, str], frozenset[UUID]] = _Memo()

    async def bindings_for(self, issuer: str, tag: str | None) -> Sequence[IssuerBinding]:
        known = self._bindings.get(issuer, tag)
        if known is not None:
            return known
        async with acquire(self.pool) as conn:
            records = await repository.issuer_bindings(conn, issuer)
        bindings = [
            IssuerBinding(
                tenant_id=r["tenant_id"],
                tenant_slug=r["tenant_slug"],
                issuer=issuer,
                audience=r["audience"],
                org_claim=r["org_claim"],
                org_value=r["org_value"],
                role_claim=r["role_claim"],
                role_mapping=r["role_mapping"],
                operator=r["is_operator"],
                group_claim=r["group_claim"],
            )
            for r in records
        ]
        return self._bindings.put(issuer, tag, bindings)  # an unknown issuer's [] too

    async def acting_tenants(
        self, binding: IssuerBinding, roles: frozenset[Role], scopes: frozenset[Scope], tag: str | None
    ) -> frozenset[UUID]:
        reach: Literal["all", "clients"]
        if Role.PLATFORM_ADMIN in roles:
            reach = "all"
        elif roles & OPERATOR_WIDE_ROLES or scopes & OPERATOR_WIDE_SCOPES:
            reach = "clients"
        else:
            return frozenset({binding.tenant_id})
        return await self._reach(binding.tenant_id, reach, tag) | {binding.tenant_id}

    async def settled_tenants(self, binding: IssuerBinding, roles: frozenset[Role], tag: str | None) -> frozenset[UUID]:
        """The operator's finance settles with former clients too: the last month's invoice,
        credit notes and the yearly rate come after an agreement has ended. Only invoice and
        tariff grants reach them (`Reach.SETTLED`); everything else stays with `acting`."""
        if Role.FINANCE not in roles:
            return frozenset()
        return await self._reach(binding.tenant_id, "settled", tag)

    async def _reach(self, home: UUID, reach: Literal["all", "clients", "settled"], tag: str | None) -> frozenset[UUID]:
        """All tenants, `home`'s clients today, or every client it settles with (ended ones
        too), remembered under the sign-in tag."""
        known = self._acting.get((home, reach), tag)
        if known is not None:
            return known
        today = clock.today()
        async with acquire(self.pool) as conn:
            if reach == "all":
                ids = await repository.all_tenant_ids(conn)
            elif reach == "clients":
                ids = await repository.client_tenant_ids(conn, home, today)
            else:
                ids = await repository.settled_client_tenant_ids(conn, home, today)
        return self._acting.put((home, reach), tag, frozenset(ids))
