"""Base for every API payload: camelCase on the wire (REST and GraphQL agree)."""

from __future__ import annotations

import msgspec


class Schema(msgspec.Struct, rename="camel", frozen=True):
    """Subclasses repeat `frozen=True`: msgspec inherits it, but mypy checks each class."""


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    return False


class Input(msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True):
    """Request bodies: unknown fields are an error, not silently ignored.

    Text may not contain NUL characters: PostgreSQL cannot store them, so they are rejected
    here (a validation error naming the field) instead of failing inside the database.
    """

    def __post_init__(self) -> None:
        for name, wire_name in zip(self.__struct_fields__, self.__struct_encode_fields__, strict=True):
            if _contains_nul(getattr(self, name)):
                raise ValueError(f"`{wire_name}` must not contain NUL characters")
