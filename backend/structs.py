"""Base for every API payload: camelCase on the wire (REST and GraphQL agree)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import typing
import uuid
from typing import Annotated, Any

import msgspec


class Schema(msgspec.Struct, rename="camel", frozen=True):
    """Subclasses repeat `frozen=True`: msgspec inherits it, but mypy checks each class."""


# Text the service accepts may go into XML (XRechnung), CSV, HTML and speakable text for screen
# readers. XML 1.0 cannot hold C0 control characters other than tab and line breaks, nor U+FFFE
# and U+FFFF (lxml refuses to write them), PostgreSQL cannot store NUL, and a screen reader reads
# a bell or an escape as noise. So no text anywhere may carry them; tabs and line breaks only
# in text meant to have lines (Markdown, notes, comments), never in names or identifiers.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
LINE_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")


class _Lines:
    def __repr__(self) -> str:
        return "LINES"


LINES: Any = _Lines()
"""Marks a text type in which tabs and line breaks belong: `Annotated[str, Meta(...), LINES]`."""

Lines = Annotated[str, LINES]


def control_character_problem(value: str, *, lines: bool = False) -> str | None:
    """Why `value` is refused, or None: the one rule for every text a client sends."""
    pattern = CONTROL_CHARACTERS if lines else LINE_CONTROL_CHARACTERS
    if pattern.search(value) is None:
        return None
    if not lines and CONTROL_CHARACTERS.search(value) is None:
        return "must be a single line (no line breaks or tabs)"
    return "must not contain control characters"


def _allows_lines(annotation: object) -> bool:
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        return any(meta is LINES for meta in metadata) or _allows_lines(inner)
    return any(_allows_lines(argument) for argument in typing.get_args(annotation))


_NO_TEXT: tuple[type, ...] = (bool, int, float, bytes, type(None), enum.Enum, msgspec.Struct, uuid.UUID)
_NO_TEXT += (dt.date, dt.time, decimal.Decimal)


def _can_hold_text(annotation: object) -> bool:
    """Whether a field of this type can hold a string to check. Fields that cannot (numbers,
    dates, ids, enums, literals, nested structs, which check themselves) are skipped: the check
    ran on every field and was a tenth of an XZuFi import's own CPU. Unknown types are checked."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _can_hold_text(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return False  # decoded values are one of the literals
    if origin is not None:
        arguments = typing.get_args(annotation)
        return not arguments or any(_can_hold_text(argument) for argument in arguments if argument is not Ellipsis)
    if annotation is str:
        return True
    if isinstance(annotation, type):
        if issubclass(annotation, str):
            return not issubclass(annotation, enum.Enum)
        return not issubclass(annotation, _NO_TEXT)
    return True  # Any, a type variable, a forward reference left unresolved


def _text_problem(value: object, lines: bool) -> str | None:
    if isinstance(value, str):
        return control_character_problem(value, lines=lines)
    if isinstance(value, list | tuple | frozenset | set):
        for item in value:
            if problem := _text_problem(item, lines):
                return problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := _text_problem(key, False) or _text_problem(item, lines):
                return problem
    # Nested Inputs check themselves when they are built.
    return None


_TEXT_FIELDS: dict[type, tuple[tuple[str, str, bool], ...]] = {}


def _text_fields(cls: type[msgspec.Struct]) -> tuple[tuple[str, str, bool], ...]:
    """(attribute, wire name, allows lines) of each field, resolved once per class."""
    fields = _TEXT_FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = tuple(
            (name, wire_name, _allows_lines(hints[name]))
            for name, wire_name in zip(cls.__struct_fields__, cls.__struct_encode_fields__, strict=True)
            if _can_hold_text(hints[name])
        )
        _TEXT_FIELDS[cls] = fields
    return fields


class Input(msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True):
    """Request bodies: unknown fields are an error, not silently ignored.

    Text may not contain control characters (`CONTROL_CHARACTERS`), and only fields typed with
    `LINES` may hold tabs and line breaks: checked here, for REST and GraphQL alike, so the
    validation error names the field instead of an export failing months later.
    """

    def __post_init__(self) -> None:
        for name, wire_name, lines in _text_fields(type(self)):
            value = getattr(self, name)
            # Plain text that passes is the common case: one search, no calls (every input).
            if type(value) is str and (CONTROL_CHARACTERS if lines else LINE_CONTROL_CHARACTERS).search(value) is None:
                continue
            if problem := _text_problem(value, lines):
                raise ValueError(f"`{wire_name}` {problem}")


def error_field(error: msgspec.ValidationError) -> str | None:
    """The wire name of the field a validation error is about: from its path (`- at `$.name``),
    or from a message that names it (`` `name` must … `` from a struct's own checks, or msgspec's
    "Object missing required field `name`")."""
    text = str(error)
    message, _, where = text.partition(" - at `$")
    path = [part for part in re.split(r"[.\[\]`]+", where) if part and not part.isdigit()]
    named = re.match(r"`(\w+)`", message) or re.search(r"field `(\w+)`", message)
    if named:
        path.append(named.group(1))
    return ".".join(path) or None
