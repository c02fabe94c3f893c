"""Several data-modifying statements sent as one: each becomes a part of a `WITH`, its `$n`
parameters renumbered after the ones before it. One round trip instead of one each; PostgreSQL
runs every part to completion, and the foreign-key checks of all parts at the statement's end,
so a row may reference a row another part inserts. The parts must not touch the same rows (they
see one snapshot) and their text must hold no `$` but parameters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import asyncpg

Statement = tuple[str, Sequence[Any]]
_PARAMETER = re.compile(r"\$(\d+)")


def _shifted(offset: int, parameter: re.Match[str]) -> str:
    return f"${int(parameter[1]) + offset}"


def combined(statements: Sequence[Statement]) -> Statement:
    parts: list[str] = []
    arguments: list[Any] = []
    for number, (sql, values) in enumerate(statements):
        parts.append(f"part{number} AS ({_PARAMETER.sub(partial(_shifted, len(arguments)), sql)})")
        arguments.extend(values)
    return "WITH " + ",\n".join(parts) + "\nSELECT 1", arguments


async def execute(conn: asyncpg.Connection, statements: Sequence[Statement | None]) -> None:
    """The statements (None: nothing to write) in one round trip; one alone as itself."""
    present = [s for s in statements if s is not None]
    if len(present) == 1:
        await conn.execute(present[0][0], *present[0][1])
    elif present:
        sql, arguments = combined(present)
        await conn.execute(sql, *arguments)
