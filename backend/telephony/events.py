"""Call events for the agents' screen pop, through Redis pub/sub so that any app instance can
serve any agent's subscription (the API stays stateless). Published after commit only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import msgspec
import structlog
from redis.exceptions import RedisError

from backend.db.roles import database_name
from backend.state import AppState
from backend.telephony.schemas import Call

log = structlog.get_logger("telephony.events")


class CallEvent(msgspec.Struct, frozen=True):
    kind: str  # offered | answered | ended | updated
    call: Call


_DECODER = msgspec.json.Decoder(CallEvent)


def channel(app: AppState) -> str:
    return f"telephony:{database_name(app.settings.application_database_url)}:calls"


async def publish_call(app: AppState, kind: str, call: Call) -> None:
    try:
        await app.redis.publish(channel(app), msgspec.json.encode(CallEvent(kind=kind, call=call)))
    except RedisError:
        log.warning("screen_pop_unavailable")  # the call is recorded; only the live view misses it


async def call_events(app: AppState, tenant_ids: frozenset[UUID]) -> AsyncIterator[CallEvent]:
    """Events of calls of `tenant_ids`, from now on, until the subscriber goes away."""
    pubsub = app.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(app))
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                event = _DECODER.decode(message["data"])
            except msgspec.DecodeError:
                continue
            if event.call.tenant_id in tenant_ids:
                yield event
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
