"""Records to Structs by column name (Structs are camelCase on the wire, snake_case in Python)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def row_to(cls: type[T], row: Any) -> T:
    return msgspec.convert(SimpleNamespace(**dict(row)), cls, from_attributes=True)
