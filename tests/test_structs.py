"""Every text an Input holds is checked for control characters, whichever type carries it;
fields that cannot hold text are skipped (the check ran on every field)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import msgspec
import pytest

from backend.structs import Input, Lines, _text_fields


class Kind(enum.StrEnum):
    PHONE = "phone"


class Inner(Input, frozen=True):
    name: str


class Sample(Input, frozen=True):
    name: str = ""
    note: Lines = ""
    maybe: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    anything: Any = None
    count: int = 0
    kind: Kind = Kind.PHONE
    id: uuid.UUID | None = None
    inner: list[Inner] = msgspec.field(default_factory=list)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a\x07b"},
        {"maybe": "a\x00"},
        {"tags": ["ok", "bad\x1b"]},
        {"labels": {"key\n": "v"}},
        {"labels": {"k": "v\x00"}},
        {"anything": ["x", {"y": "z\x07"}]},
        {"name": "two\nlines"},
    ],
)
def test_a_control_character_is_refused_in_any_field_that_holds_text(fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(fields), type=Sample)


def test_lines_allow_line_breaks_and_fields_without_text_are_not_walked() -> None:
    decoded = msgspec.json.decode(b'{"note": "one\\ntwo", "count": 3, "kind": "phone"}', type=Sample)
    assert decoded.note == "one\ntwo"
    assert [name for name, _, _ in _text_fields(Sample)] == ["name", "note", "maybe", "tags", "labels", "anything"]
