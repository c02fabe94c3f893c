"""The bulk import of a day's call detail records: parsed and resolved line by line, COPYed
into a staging table, inserted idempotently; bad lines are reported by number.

The rules for a single call (times, its source, derived figures) are `calls`' own; this module
repeats `calls._derived` inline only where the loop runs per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from auth.permissions import Operation, require
from backend.errors import ValidationFailed
from backend.state import UnitOfWork
from backend.telephony import cache, imports, repository
from backend.telephony.calls import CallSource, aware, call_source, check_times
from backend.telephony.numbers import normalise_caller, normalise_dialled
from backend.telephony.routing import BERLIN, CompiledRouting
from backend.telephony.schemas import ImportProblem, ImportReport, Outcome, Purpose

_UNRESOLVED: Any = object()
MAX_REPORTED_PROBLEMS = 1000


# --- staging ---------------------------------------------------------------------------------------


def _staging_rows(
    compiled: CompiledRouting,
    acting: frozenset[UUID],
    source: CallSource,
    lines: Iterator[imports.ParsedLine],
    problems: list[ImportProblem],
) -> Iterator[tuple[Any, ...]]:
    owners: dict[tuple[str, date], Any] = {}
    for parsed in lines:
        record = parsed.record
        if record is None:
            problems.append(
                ImportProblem(line=parsed.line, message=parsed.error or "invalid", external_id=parsed.external_id)
            )
            continue
        try:
            offered = aware(record.offered_at, "offeredAt")
            answered = aware(record.answered_at, "answeredAt")
            ended = aware(record.ended_at, "endedAt")
            assert offered is not None
            check_times(offered, answered, ended)
            dialled = normalise_dialled(record.dialled)
        except ValidationFailed as error:
            problems.append(ImportProblem(line=parsed.line, message=str(error.message), external_id=record.external_id))
            continue
        caller = normalise_caller(record.caller)
        # Resolved once per (dialled number, Berlin day): only 115 depends on the caller too.
        key = (dialled, offered.astimezone(BERLIN).date())
        found = owners.get(key, _UNRESOLVED)
        if found is _UNRESOLVED:
            found = owners[key] = compiled.tenant_of_call(dialled, None, offered, acting)
        if found is not None and found[0].purpose is Purpose.ONE_ONE_FIVE:
            found = compiled.tenant_of_call(dialled, caller, offered, acting)
        if found is None:
            problems.append(
                ImportProblem(
                    line=parsed.line,
                    external_id=record.external_id,
                    message="the dialled number was not ours when the call started",
                )
            )
            continue
        entry, tenant_id, resolved_by = found
        wait_seconds = record.wait_seconds  # as `_derived`, inline: this loop is per line
        wait_derived = wait_seconds is None
        until = answered or ended
        if wait_derived and until is not None:
            wait_seconds = int((until - offered).total_seconds())
        talk_seconds = int((ended - answered).total_seconds()) if answered and ended else None
        yield (
            parsed.line,
            tenant_id,
            source.system,
            record.external_id,
            entry.id,
            dialled,
            entry.purpose.value,
            resolved_by.value,
            caller,
            record.queue,
            offered,
            answered,
            ended,
            record.agent,
            wait_seconds,
            talk_seconds,
            Outcome.ABANDONED.value if ended is not None and answered is None else None,
            wait_derived,
        )


IMPORT_CHUNK_ROWS = 10_000
_PARSE_SLICE = 250  # rows parsed between chances for the chunk being written to make progress


async def _parse_chunk(rows: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The next chunk of parsed rows; hands the event loop back every few hundred rows, so a
    chunk being written (its COPY, INSERT and conflict check) moves on meanwhile."""
    chunk: list[tuple[Any, ...]] = []
    while len(chunk) < IMPORT_CHUNK_ROWS:
        piece = list(itertools.islice(rows, min(_PARSE_SLICE, IMPORT_CHUNK_ROWS - len(chunk))))
        chunk += piece
        if len(piece) < _PARSE_SLICE:
            break
        await asyncio.sleep(0)
    return chunk


async def _write_chunk(
    conn: asyncpg.Connection, chunk: list[tuple[Any, ...]], source_tenant_id: UUID
) -> tuple[int, int, list[Any]]:
    await repository.clear_import_staging(conn)
    staged = await repository.copy_into_staging(conn, chunk)
    inserted = await repository.insert_from_staging(conn, source_tenant_id)
    # Every row went in: none can conflict (this skips the join on a fresh file).
    conflicting = [] if inserted == staged else await repository.reconcile_staging(conn, source_tenant_id)
    return staged, inserted, conflicting


async def import_calls(uow: UnitOfWork, body: bytes, content_type: str) -> ImportReport:
    """A day's call detail records: parsed and resolved line by line, COPYed into a staging
    table, inserted idempotently. Bad lines are reported by number; the good ones go in."""
    acting = require(uow.principal, Operation.CALL_WRITE)
    source = call_source(uow.principal)
    compiled = await cache.cached_routing(uow.app, wait=False)
    if compiled is None:  # Redis is down, or the shared table is not at hand: my tenants' table,
        # on this unit of work's connection (it holds one, and must never wait for another)
        compiled = CompiledRouting(await cache.compile_on(uow.conn, sorted(acting)))
    problems: list[ImportProblem] = []
    rows = _staging_rows(compiled, acting, source, imports.parse(body, content_type), problems)
    await repository.create_import_staging(uow.conn)
    # In chunks, so that PostgreSQL inserts one chunk while Python parses the next: the two
    # halves of the work (about a third and two thirds of it) overlap instead of adding up.
    written: list[tuple[int, int, list[Any]]] = []
    writing: asyncio.Task[tuple[int, int, list[Any]]] | None = None
    try:
        while chunk := await _parse_chunk(rows):
            if writing is not None:
                written.append(await writing)
            writing = asyncio.create_task(_write_chunk(uow.conn, chunk, source.tenant_id))
        if writing is not None:
            written.append(await writing)
    except BaseException:
        if writing is not None:  # nothing may still use the connection when the transaction ends
            writing.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writing
        raise
    staged, inserted = sum(w[0] for w in written), sum(w[1] for w in written)
    for conflict in (c for w in written for c in w[2]):
        problems.append(
            ImportProblem(
                line=conflict["line"],
                external_id=conflict["external_id"],
                message="this call was already recorded with other values",
            )
        )
    problems.sort(key=lambda p: p.line)
    conflicts = sum(1 for p in problems if p.message.startswith("this call was already"))
    return ImportReport(
        rows=staged + len(problems) - conflicts,
        inserted=inserted,
        duplicates=staged - inserted - conflicts,
        errors=problems[:MAX_REPORTED_PROBLEMS],
        error_count=len(problems),
    )
