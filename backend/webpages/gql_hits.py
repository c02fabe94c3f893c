"""The GraphQL type of a web page hit, apart from `gql.py`: the knowledge search's result shows
it, and `gql.py` shows the knowledge's article payload (one module each way would be a cycle)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from backend.api.mapping import mirrors
from backend.webpages import schemas


@mirrors(schemas.WebPageHit)
@strawberry.type(name="WebPageHit", description="A town's web page found by a search (not an article)")
class WebPageHitGQL:
    id: UUID
    tenant_id: UUID
    url: str
    title: str
    snippet: str = strawberry.field(description="HTML-escaped text with <mark> around the matched words")
    snippet_text: str = strawberry.field(description="The snippet without markup (screen readers, braille)")
    fetched_at: datetime
    age_days: int = strawberry.field(description="days since the page was last fetched")
    score: float
