"""Generation counters in Redis for what every request reads and administrators rarely change.

Sign-in (issuers, tenants, agreements), telephony routing (numbers, windows, absences, area
codes, tenant settings), the town directories and their people's presence (the forwarding
decision) are remembered in process under the generation they were read at. A committed change increments its counter
(`bump`, run after commit), so the next request on any
instance reads a new generation and looks again: no instance answers from a state older than
the last commit. A request reads all counters once, in one round trip, at sign-in; what it
read is kept on the request (`of_request`) for the handlers that need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog
from litestar.connection import ASGIConnection
from redis.exceptions import RedisError

from backend.redisclient import always_try

if TYPE_CHECKING:  # the app state names this module's Generations in its sign-in hook
    from backend.state import AppState

Counter = Literal["signin", "routing", "directory", "presence", "knowledge"]
# Read at sign-in, in one MGET; "knowledge" only by search.
_COUNTERS: tuple[Counter, ...] = ("signin", "routing", "directory", "presence")
_STATE_KEY = "generations"
log = structlog.get_logger("generations")


@dataclass(frozen=True, slots=True)
class Generations:
    signin: int
    routing: int
    directory: int = 0  # the town directories (backend.directory.compiled)
    presence: int = 0  # their people's own switches and telephone events (the same, decision 039)


def key(app: AppState, counter: Counter) -> str:
    # One Redis may serve several databases (test sessions, staging): keys name theirs.
    return f"{counter}:{app.namespace}:generation"


async def read(app: AppState) -> Generations | None:
    """All counters in one round trip; None when Redis cannot be reached (trust nothing)."""
    try:
        values = await app.redis.mget([key(app, counter) for counter in _COUNTERS])
    except RedisError:
        return None
    signin, routing, directory, presence = (int(value or 0) for value in values)
    return Generations(signin=signin, routing=routing, directory=directory, presence=presence)


async def read_one(app: AppState, counter: Counter) -> int | None:
    """One counter (the search's `knowledge`: published documents and their vectors changed);
    None when Redis cannot be reached."""
    try:
        value = await app.redis.get(key(app, counter))
    except RedisError:
        return None
    return int(value or 0)


async def bump(app: AppState, counter: Counter) -> None:
    try:
        with always_try():  # even right after Redis failed: other instances rely on the bump
            await app.redis.incr(key(app, counter))
    except RedisError:
        log.warning("generation_unavailable", counter=counter)


def keep_on_request(connection: ASGIConnection[Any, Any, Any, Any], generations: Generations | None) -> None:
    connection.scope.setdefault("state", {})[_STATE_KEY] = generations


def of_request(connection: ASGIConnection[Any, Any, Any, Any] | None) -> Generations | None:
    """What this request read at sign-in; None if it read nothing (then read again)."""
    if connection is None:
        return None
    value = connection.scope.get("state", {}).get(_STATE_KEY)
    return value if isinstance(value, Generations) else None
