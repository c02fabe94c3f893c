"""Call detail records from a telephony system's export: CSV with a header line, or JSON lines.

Both carry the fields of `CallRecordInput`; CSV headers may be snake_case or camelCase. Each
line is parsed on its own, so one bad line is reported by its number and the rest still go in.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from backend.structs import LINE_CONTROL_CHARACTERS
from backend.telephony.schemas import CallRecordInput

CSV_FIELDS = (
    "external_id",
    "dialled",
    "caller",
    "queue",
    "offered_at",
    "answered_at",
    "ended_at",
    "agent",
    "wait_seconds",
)
_CAMEL = {name: name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]) for name in CSV_FIELDS}
_BY_HEADER = {**{name: _CAMEL[name] for name in CSV_FIELDS}, **{camel: camel for camel in _CAMEL.values()}}


class _Clean(CallRecordInput, frozen=True):
    """For a line with no control character anywhere: no cell can hold one, so the per-field
    check of `Input` (most of the cost of a line) is skipped; everything else is the same."""

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line: int
    record: CallRecordInput | None
    error: str | None = None
    external_id: str | None = None


def _problem(error: msgspec.ValidationError | msgspec.DecodeError) -> str:
    # Field names only, never the values: a caller number must not end up in a report or log.
    text = str(error)
    message, _, where = text.partition(" - at `$.")
    return f"{message} ({where.rstrip('`')})" if where else message


# JSON carries a control character only as an escape (`\\u0007`, `\\n`), never raw, except
# DEL and U+FFFE/U+FFFF: a line with none of these cannot hold one.
_MAY_HOLD_CONTROL_CHARACTERS = re.compile(rb"\\|\x7f|\xef\xbf[\xbe\xbf]")


def _convert(
    line: int, values: dict[str, Any], target: type[CallRecordInput] = CallRecordInput, *, strict: bool = False
) -> ParsedLine:
    external_id = values.get("externalId") if isinstance(values.get("externalId"), str) else None
    try:
        record = msgspec.convert(values, target, strict=strict)
    except msgspec.ValidationError as error:
        return ParsedLine(line, None, _problem(error), external_id)
    return ParsedLine(line, record, None, record.external_id)


def parse_json_lines(body: bytes) -> Iterator[ParsedLine]:
    decoder = msgspec.json.Decoder()
    for number, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            values = decoder.decode(raw)
        except msgspec.DecodeError:
            yield ParsedLine(number, None, "not a JSON object")
            continue
        if not isinstance(values, dict):
            yield ParsedLine(number, None, "not a JSON object")
            continue
        target = CallRecordInput if _MAY_HOLD_CONTROL_CHARACTERS.search(raw) else _Clean
        yield _convert(number, values, target, strict=True)  # JSON has types: no 0 for a time


def parse_csv(body: bytes) -> Iterator[ParsedLine]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield ParsedLine(1, None, "the file is not UTF-8")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    names = [_BY_HEADER.get(h.strip()) for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n is None]
    if unknown or "externalId" not in names:
        yield ParsedLine(1, None, f"unknown or missing columns; expected {', '.join(CSV_FIELDS)}")
        return
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield ParsedLine(number, None, f"expected {len(names)} fields, found {len(row)}")
            continue
        values = {name: (cell.strip() or None) for name, cell in zip(names, row, strict=True) if name}
        clean = LINE_CONTROL_CHARACTERS.search("".join(row)) is None
        yield _convert(number, values, _Clean if clean else CallRecordInput)


def parse(body: bytes, content_type: str) -> Iterator[ParsedLine]:
    if "csv" in content_type:
        return parse_csv(body)
    return parse_json_lines(body)
