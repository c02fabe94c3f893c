"""The forwarding decision's data, compiled in process per town and invalidated on every
instance by generation counters (`backend.generations`, decision 009), as routing does.

What changes when an administrator or the identity provider acts — the town itself, people,
responsibilities, substitutes, department lines, absences, the calendar, the tickets' callback
rule — is read once per town and `directory` generation and held here. A committed change bumps
the counter (`changed`, after commit); the next request on any instance reads the new
generation and compiles again. The generation is read before the data, so a snapshot compiled
from pre-change rows can only be kept under the old generation, which no later request asks for.

What changes by the minute — the people's own switches and the telephone system's events — is
held too, per town, under the `presence` generation, which every presence write bumps after
commit (`presence_changed`). A new presence generation costs one statement: the rows written
since the last read (decision 039, `repository.presence_written_since`), merged into the held
ones. Whether a row is in force at the decision's moment (an event expired, a switch run out) is
decided per decision from its times, so an expired event stops counting without any write.

So a decision whose generations did not move makes no PostgreSQL round trip: the door is the
permission matrix and the held town (`town`). Both counters are read at sign-in, in the one
Redis round trip every request makes. Without Redis (no generations) nothing is remembered.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from redis.asyncio import Redis

from auth.permissions import Operation, require
from auth.principal import Principal
from backend import generations
from backend.directory import repository
from backend.directory.presence import department_calendar
from backend.directory.schemas import DepartmentLine, Person, Responsibility
from backend.errors import NotFound
from backend.i18n import _l
from backend.state import AppState, UnitOfWork, unit_of_work
from backend.tenants.calendar import WorkingCalendar, load_calendar
from backend.tenants.reach import reach
from backend.tenants.schemas import Tenant
from backend.tickets import service as tickets
from backend.tickets.deadline import CallbackRule


@dataclass(frozen=True, slots=True)
class Snapshot:
    tenant: Tenant
    people: dict[UUID, Person]  # the active ones
    # Responsibilities by LeiKa key or prefix, each with its place in the table's order: a
    # decision looks up the 14 prefixes of its key instead of scanning 10^4 entries (that scan
    # was ~1 ms of CPU per decision).
    keyed: dict[str, tuple[tuple[int, Responsibility], ...]]
    lines: dict[UUID, DepartmentLine]
    calendar: WorkingCalendar
    calendars: dict[UUID, WorkingCalendar]  # per department line: the town's with its hours
    weekly: dict[UUID, tuple[dict[str, Any], ...]]
    dated: dict[UUID, tuple[dict[str, Any], ...]]
    callback: CallbackRule  # the tickets' deadline rule and responsibility table
    # What a decision derives from this snapshot alone, remembered with it and so dropped with
    # it (a new directory generation compiles a new snapshot; presence is not in here): the
    # people chosen per (key, surname, area) and the sentences' names and extensions per person
    # (`service._decision`). Both were recomputed per decision, ~30 % of its own CPU (decision
    # 040's amendment). The choices are bounded: a surname is the caller's, any text.
    choices: dict[tuple[str | None, str | None, str | None], Any] = field(default_factory=dict)
    texts: dict[UUID, Any] = field(default_factory=dict)

    def responsible_for(self, leika_key: str) -> list[Responsibility]:
        found = [entry for n in range(1, len(leika_key) + 1) for entry in self.keyed.get(leika_key[:n], ())]
        return [r for _, r in sorted(found, key=lambda entry: entry[0])]

    def dated_at(self, person_id: UUID, at: datetime) -> dict[str, Any] | None:
        return next((d for d in self.dated.get(person_id, ()) if d["starts_at"] <= at < d["ends_at"]), None)

    def calendar_of(self, department_id: UUID | None) -> WorkingCalendar:
        """The calendar a person of this department (or the department's line) is open by."""
        return self.calendars.get(department_id, self.calendar) if department_id else self.calendar


ANSWERS_REMEMBERED = 1024  # forwarding answers per presence view (`Live.answers`)


K = TypeVar("K")
V = TypeVar("V")


class Recent(OrderedDict[K, V]):
    """At most `size` entries; the least recently used goes first. An OrderedDict's own
    methods: cachetools' LRUCache took ~2 µs of Python frames per hit on the forwarding
    decision's hot path (decision 040, 2026-12-07)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def used(self, key: K) -> V | None:
        """The entry, now the most recently used; None when not held."""
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def keep(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Live:
    """The town's switch and telephone rows (the latest per person), and the watermark to read
    the next changes from. Replaced whole, never changed: a decision under way keeps its view."""

    watermark: int
    switch: dict[UUID, dict[str, Any]] = field(default_factory=dict)  # state, since, until
    phone: dict[UUID, dict[str, Any]] = field(default_factory=dict)  # state, since, until (expiry)
    # Answers of the forwarding decision remembered with this view of presence and so dropped
    # with it (a presence or directory change replaces it), each for the span of time in which
    # nothing it says can change (`service._answer`, decision 040's third amendment).
    # Bounded (a surname is any text a caller gives): a flood pushes out the least recently used.
    answers: Recent[tuple[str | None, str | None, str | None], Any] = field(
        default_factory=lambda: Recent(ANSWERS_REMEMBERED)
    )

    def switch_at(self, person_id: UUID, at: datetime) -> dict[str, Any] | None:
        row = self.switch.get(person_id)
        return row if row is not None and row["since"] <= at < row["until"] else None

    def phone_at(self, person_id: UUID, at: datetime) -> dict[str, Any] | None:
        """The telephone's state while its event is in force; an expired event says nothing."""
        row = self.phone.get(person_id)
        return row if row is not None and row["since"] <= at < row["until"] else None

    def merged(self, rows: list[asyncpg.Record]) -> Live:
        switch, phone, watermark = dict(self.switch), dict(self.phone), self.watermark
        for row in rows:
            if row["source"] == "watermark":
                watermark = int(row["state"])
                continue
            held = {"state": row["state"], "since": row["since"], "until": row["until"]}
            (switch if row["source"] == "switch" else phone)[row["person_id"]] = held
        return Live(watermark, switch, phone)


@dataclass(frozen=True, slots=True)
class Town:
    directory: int  # the generations it was read under
    presence: int
    snapshot: Snapshot
    live: Live


@dataclass
class _Local:
    towns: dict[UUID, Town] = field(default_factory=dict)
    slugs: dict[str, UUID] = field(default_factory=dict)
    # The reads under way, by slug and generations: a burst after a change waits for one
    # compilation (10^4 people: ~0.3 s of CPU each) instead of making one per request.
    pending: dict[tuple[str, int, int], asyncio.Future[Town]] = field(default_factory=dict)


# One in-process copy per app instance (keyed by its Redis client, which lives as long as it).
_LOCAL: weakref.WeakKeyDictionary[Redis, _Local] = weakref.WeakKeyDictionary()
compilations = 0  # how often a snapshot was compiled (tests, metrics)
presence_reads = 0  # how often presence rows were read (tests)


def _local(app: AppState) -> _Local:
    local = _LOCAL.get(app.redis)
    if local is None:
        local = _LOCAL[app.redis] = _Local()
    return local


async def _compile(uow: UnitOfWork, tenant: Tenant) -> Snapshot:
    global compilations
    compilations += 1
    conn = uow.conn
    people = await repository.list_people(conn, tenant.id, active_only=True)
    weekly: dict[UUID, list[dict[str, Any]]] = {}
    dated: dict[UUID, list[dict[str, Any]]] = {}
    for row in await repository.all_person_absences(conn, tenant.id):
        if row["kind"] == "weekly":
            weekly.setdefault(row["person_id"], []).append(dict(row))
        else:
            dated.setdefault(row["person_id"], []).append(dict(row))
    keyed: dict[str, list[tuple[int, Responsibility]]] = {}
    for place, entry in enumerate(await repository.list_responsibilities(conn, tenant.id)):
        if entry.leika_key is not None:
            keyed.setdefault(entry.leika_key, []).append((place, entry))
    lines = await repository.department_lines(conn, tenant.id)
    calendar = await load_calendar(conn, tenant)
    return Snapshot(
        tenant=tenant,
        people={p.id: p for p in people},
        keyed={key: tuple(entries) for key, entries in keyed.items()},
        lines=lines,
        calendar=calendar,
        calendars={
            line.department_id: department_calendar(calendar, tuple(line.hours))
            for line in lines.values()
            if line.hours is not None
        },
        weekly={k: tuple(v) for k, v in weekly.items()},
        dated={k: tuple(v) for k, v in dated.items()},
        callback=await tickets.callback_rule(uow, tenant.id, Operation.FORWARDING_READ),
    )


async def _read_presence(uow: UnitOfWork, tenant: Tenant, since: Live | None) -> Live:
    global presence_reads
    presence_reads += 1
    base = since or Live(watermark=0)
    return base.merged(await repository.presence_written_since(uow.conn, tenant.id, base.watermark))


async def tenant_changed(app: AppState) -> None:
    """A town's calendar, hours or departments changed (tenants domain)."""
    await generations.bump(app, "directory")


async def held(uow: UnitOfWork, tenant: Tenant, operation: Operation = Operation.DIRECTORY_READ) -> Town:
    """The town's compiled directory and presence at the current generations, for a principal
    who may `operation` it and whose request already passed the door (the directory search and
    the knowledge search's directory entries, decision 038): what this process holds, else read
    in the request's unit of work."""
    if tenant.id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))
    read = await generations.read(uow.app)
    if read is None:
        return Town(0, 0, await _compile(uow, tenant), await _read_presence(uow, tenant, None))
    town = _local(uow.app).towns.get(tenant.id)
    if town is not None and (town.directory, town.presence) == (read.directory, read.presence):
        return town
    return await _refreshed(uow, tenant, read)


async def town(
    app: AppState, principal: Principal, slug: str, read: generations.Generations | None
) -> tuple[Snapshot, Live]:
    """The town's compiled directory and presence at the generations the request read (at
    sign-in, else now), for a principal who may ask for the town's forwarding decision: the
    door of the hot path. A town it may not reach is missing, as `reach` answers; a town not
    held at these generations is read through `reach` in a unit of work of its own."""
    read = read or await generations.read(app)
    found = town_held(app, principal, slug, read)  # the door's refusals come first, as always
    if found is not None:
        return found
    if read is None:  # no generations: nothing held is trusted, nothing read is kept
        async with unit_of_work(app, principal, readonly=True) as uow:
            tenant = await reach(uow, slug, Operation.FORWARDING_READ)
            return await _compile(uow, tenant), await _read_presence(uow, tenant, None)
    held = await _read_once(app, principal, slug, read)
    if held.snapshot.tenant.id not in require(principal, Operation.FORWARDING_READ):
        raise NotFound(_l("tenant not found"))
    return held.snapshot, held.live


def town_held(
    app: AppState, principal: Principal, slug: str, read: generations.Generations | None
) -> tuple[Snapshot, Live] | None:
    """`town` for a town this process holds at the generations the request read, without a
    coroutine of its own (the steady state waits for nothing: decision 040, 2026-12-07); None
    when it must be read (`town`). The same door: the same refusals."""
    reachable = require(principal, Operation.FORWARDING_READ)
    if read is None:
        return None
    local = _local(app)
    tenant_id = local.slugs.get(slug)
    held = local.towns.get(tenant_id) if tenant_id is not None else None
    if (
        held is None
        or held.snapshot.tenant.slug != slug
        or (held.directory, held.presence) != (read.directory, read.presence)
    ):
        return None
    if held.snapshot.tenant.id not in reachable:
        raise NotFound(_l("tenant not found"))
    return held.snapshot, held.live


async def _read_once(app: AppState, principal: Principal, slug: str, read: generations.Generations) -> Town:
    """The town read through the door in a unit of work, once for every request of the same
    moment that asks for it. Waiting holds no connection (the hot path has no unit of work),
    and the one reading holds its own, so nobody waits for the pool on someone's behalf."""
    local = _local(app)
    key = (slug, read.directory, read.presence)
    pending = local.pending.get(key)
    if pending is not None:
        try:
            return await asyncio.shield(pending)
        except Exception:  # noqa: S110 - its principal's failure (a town it may not reach): we read ourselves
            pass
    future: asyncio.Future[Town] = asyncio.get_running_loop().create_future()
    local.pending[key] = future
    try:
        async with unit_of_work(app, principal, readonly=True) as uow:
            tenant = await reach(uow, slug, Operation.FORWARDING_READ)
            town = await _refreshed(uow, tenant, read)
        future.set_result(town)
        return town
    except BaseException as error:
        # Those waiting read themselves (also when this request was cancelled: not theirs).
        future.set_exception(error if isinstance(error, Exception) else RuntimeError("the read was cancelled"))
        future.exception()  # retrieved: nobody may be waiting
        raise
    finally:
        if local.pending.get(key) is future:
            del local.pending[key]


async def _refreshed(uow: UnitOfWork, tenant: Tenant, read: generations.Generations) -> Town:
    local = _local(uow.app)
    held = local.towns.get(tenant.id)
    if held is None or held.directory != read.directory:
        # A new directory generation reads every presence row again too: deprovisioning
        # deletes a person's rows, which a read of the rows written since cannot see.
        snapshot, live = await _compile(uow, tenant), await _read_presence(uow, tenant, None)
    elif held.presence != read.presence:
        snapshot, live = held.snapshot, await _read_presence(uow, tenant, held.live)
    else:
        snapshot, live = held.snapshot, held.live
    # Whatever was read here is at least as new as `read`: kept under it (a slower request's
    # older generation may replace a newer one; the next request then reads again, that is all).
    town = local.towns[tenant.id] = Town(read.directory, read.presence, snapshot, live)
    local.slugs[tenant.slug] = tenant.id
    return town


@dataclass(frozen=True, slots=True)
class _Bump:
    uow: UnitOfWork
    counter: generations.Counter

    async def __call__(self) -> None:
        await generations.bump(self.uow.app, self.counter)


def _once_after_commit(uow: UnitOfWork, counter: generations.Counter) -> None:
    uow.after_commit_once((_Bump, counter), lambda: _Bump(uow, counter))


def changed(uow: UnitOfWork) -> None:
    """After this unit of work commits, every instance compiles the directory again (one bump
    however many changes: an import of a thousand lines is one)."""
    _once_after_commit(uow, "directory")


def presence_changed(uow: UnitOfWork) -> None:
    """After this unit of work commits, every instance reads the presence rows written since
    its last read before its next decision."""
    _once_after_commit(uow, "presence")
