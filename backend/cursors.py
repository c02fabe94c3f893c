"""Keyset cursors of the lists that page by (moment, id): `moment|id`, as the API hands them out.

Read back strictly: an aware moment PostgreSQL can compare (a year-1 moment east of UTC is out
of range once in UTC) and a UUID; anything else is a validation error of the field, not a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from backend.errors import ValidationFailed
from backend.i18n import _l


def encode(moment: datetime, ident: UUID) -> str:
    return f"{moment.isoformat()}|{ident}"


def decode(cursor: str | None, field: str = "after") -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        text, _, ident = cursor.partition("|")
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("naive cursor")
        return moment.astimezone(UTC), UUID(ident)
    except (ValueError, OverflowError):
        raise ValidationFailed(_l("not a cursor this API handed out"), field=field) from None
