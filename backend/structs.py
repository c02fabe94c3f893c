"""Base for every API payload: camelCase on the wire (REST and GraphQL agree)."""

from __future__ import annotations

import msgspec


class Schema(msgspec.Struct, rename="camel", frozen=True):
    """Subclasses repeat `frozen=True`: msgspec inherits it, but mypy checks each class."""


class Input(msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True):
    """Request bodies: unknown fields are an error, not silently ignored."""
