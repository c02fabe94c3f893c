"""Live article changes over Redis pub/sub (published after commit, so nobody hears of a change
that was rolled back).

Channels: `knowledge:article:<id>` carries changes of the article itself (local or shared);
`knowledge:article:<id>:<town>` carries changes of a town's local version of a shared article,
so only that town's subscribers hear of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.knowledge.schemas import ArticleChange

PREFIX = "knowledge:article:"
log = structlog.get_logger("knowledge.events")


def article_channel(article_id: UUID) -> str:
    return f"{PREFIX}{article_id}"


def local_channel(base_article_id: UUID, town_id: UUID) -> str:
    return f"{PREFIX}{base_article_id}:{town_id}"


async def publish(redis: Redis, channel: str, change: ArticleChange) -> None:
    try:
        await redis.publish(channel, msgspec.json.encode(change))
    except RedisError:
        # The change is committed; subscribers miss a notice but see it on their next read.
        log.warning("article_change_not_published", channel=channel)


async def listen(redis: Redis, channels: Sequence[str]) -> AsyncIterator[ArticleChange]:
    """Changes on `channels` until the consumer stops iterating."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*channels)
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                yield msgspec.json.decode(message["data"], type=ArticleChange)
            except msgspec.ValidationError:
                log.warning("article_change_unreadable", channel=message.get("channel"))
    finally:
        await pubsub.unsubscribe(*channels)
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
