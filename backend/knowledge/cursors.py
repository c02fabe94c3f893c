"""Positions in a list as handed out in `nextCursor` (JSON, base64url), and the page size rule.

Each list reads back only its own kind of cursor, with typed fields, so a crafted cursor is a
validation error, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from uuid import UUID

import msgspec

from backend.errors import ValidationFailed
from backend.i18n import _l

MAX_PAGE_SIZE = 50
MAX_CURSOR_OFFSET = 1_000_000  # far beyond any list of hits; keeps a crafted offset in range


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )


class Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A position in a list; each list has its own subclass."""


CursorT = TypeVar("CursorT", bound=Cursor)


class TimeCursor(Cursor, frozen=True):
    """Editors' article list: after this (updated at, id)."""

    t: Annotated[datetime, msgspec.Meta(tz=True)]
    i: UUID

    def __post_init__(self) -> None:
        try:
            self.t.astimezone(UTC)  # what the driver does; out of range near year 1 or 9999
        except (OverflowError, ValueError):
            raise ValueError("time out of range") from None


class OffsetCursor(Cursor, frozen=True):
    """Search by LeiKa key: after this many hits."""

    o: Annotated[int, msgspec.Meta(ge=0, le=MAX_CURSOR_OFFSET)]


class ScoreCursor(Cursor, frozen=True):
    """Search in words: after this (score, document id)."""

    s: float
    i: UUID

    def __post_init__(self) -> None:
        if not math.isfinite(self.s):
            raise ValueError("score out of range")


def encode_cursor(value: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[CursorT]) -> CursorT | None:
    """The cursor of this list, or None for the first page; ValidationFailed (field `after`)
    for anything this list did not hand out."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):  # ValidationError is a DecodeError
        raise ValidationFailed(_l("not a cursor of this list"), field="after") from None
