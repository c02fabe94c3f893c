"""Ticket changes on Redis pub/sub, published after commit: ids and statuses, no personal data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.tickets.schemas import TicketChange

log = structlog.get_logger("tickets")
CHANNEL_PREFIX = "tickets:changes:"


def channel(tenant_id: UUID) -> str:
    return f"{CHANNEL_PREFIX}{tenant_id}"


async def publish(redis: Redis, changes: Iterable[TicketChange]) -> None:
    for change in changes:
        try:
            await redis.publish(channel(change.tenant_id), msgspec.json.encode(change))
        except RedisError:
            # Subscribers miss a live update; the change itself is committed and in the feed.
            log.warning("ticket_change_not_published", ticket=str(change.ticket_id))


async def listen(redis: Redis, tenant_ids: Iterable[UUID], poll_seconds: float = 1.0) -> AsyncIterator[TicketChange]:
    """Changes of the given tenants as they are published; ends when the consumer stops."""
    pubsub = redis.pubsub()
    channels = sorted(channel(t) for t in tenant_ids)
    try:
        if not channels:
            await asyncio.Event().wait()  # nothing to see, but stay open like any other subscription
        await pubsub.subscribe(*channels)
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll_seconds)
            if message is None or message.get("type") != "message":
                continue
            yield msgspec.json.decode(message["data"], type=TicketChange)
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        except RedisError:
            pass
