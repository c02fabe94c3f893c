"""Changes of the centre that are not call events (an agent's status), through Redis pub/sub
like the call events, so that every instance's live view hears of them. After commit only."""

from __future__ import annotations

from uuid import UUID

import structlog
from redis.exceptions import RedisError

from backend.db.roles import database_name
from backend.state import AppState

log = structlog.get_logger("centre.events")


def channel(app: AppState) -> str:
    return f"centre:{database_name(app.settings.application_database_url)}:changes"


async def publish_change(app: AppState, tenant_id: UUID) -> None:
    try:
        await app.redis.publish(channel(app), str(tenant_id))
    except RedisError:
        log.warning("centre_change_unpublished")  # stored; the live view catches up on its next tick
