"""The forwarding decision's data, compiled in process per town and invalidated on every
instance by a generation counter (`backend.generations`, decision 009), as routing does.

What changes when an administrator or the identity provider acts — people, responsibilities,
substitutes, department lines, absences, the town's calendar — is read once per town and
generation and held here. A committed change bumps the counter (`changed`, after commit); the
next request on any instance reads the new generation and compiles again. The generation is
read before the data, so a snapshot compiled from pre-change rows can only be kept under the old
generation, which no later request asks for. What changes by the minute — the person's own
switch, the telephone system's events — is not compiled: the decision reads it for the few
people it names. Without Redis (no generation) nothing is remembered.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from auth.permissions import Operation, require
from backend import generations
from backend.directory import repository
from backend.directory.schemas import DepartmentLine, Person, Responsibility
from backend.errors import NotFound
from backend.i18n import _l
from backend.state import AppState, UnitOfWork
from backend.tenants.calendar import WorkingCalendar, load_calendar
from backend.tenants.schemas import Tenant


@dataclass(frozen=True, slots=True)
class Snapshot:
    people: dict[UUID, Person]  # the active ones
    keyed: tuple[Responsibility, ...]  # responsibilities by LeiKa key or prefix
    lines: dict[UUID, DepartmentLine]
    calendar: WorkingCalendar
    weekly: dict[UUID, tuple[dict[str, Any], ...]]
    dated: dict[UUID, tuple[dict[str, Any], ...]]

    def responsible_for(self, leika_key: str) -> list[Responsibility]:
        return [r for r in self.keyed if r.leika_key is not None and leika_key.startswith(r.leika_key)]

    def dated_at(self, person_id: UUID, at: datetime) -> dict[str, Any] | None:
        return next((d for d in self.dated.get(person_id, ()) if d["starts_at"] <= at < d["ends_at"]), None)


# One in-process copy per app instance (keyed by its Redis client, which lives as long as it).
_LOCAL: weakref.WeakKeyDictionary[Redis, dict[UUID, tuple[int, Snapshot]]] = weakref.WeakKeyDictionary()
compilations = 0  # how often a snapshot was compiled (tests, metrics)


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
    return Snapshot(
        people={p.id: p for p in people},
        keyed=tuple(r for r in await repository.list_responsibilities(conn, tenant.id) if r.leika_key is not None),
        lines=await repository.department_lines(conn, tenant.id),
        calendar=await load_calendar(conn, tenant),
        weekly={k: tuple(v) for k, v in weekly.items()},
        dated={k: tuple(v) for k, v in dated.items()},
    )


async def tenant_changed(app: AppState) -> None:
    """A town's calendar, hours or departments changed (tenants domain)."""
    await generations.bump(app, "directory")


async def snapshot(
    uow: UnitOfWork,
    tenant: Tenant,
    read: generations.Generations | None,
    operation: Operation = Operation.FORWARDING_READ,
) -> Snapshot:
    """The town's snapshot at the generation the request read (at sign-in, else now), for a
    principal who may ask for the town's forwarding decision (or, with `operation`, read its
    directory: the knowledge search's directory entries, decision 038)."""
    if tenant.id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))
    read = read or await generations.read(uow.app)
    if read is None:
        return await _compile(uow, tenant)
    local = _LOCAL.get(uow.app.redis)
    if local is None:
        local = _LOCAL[uow.app.redis] = {}
    held = local.get(tenant.id)
    if held is not None and held[0] == read.directory:
        return held[1]
    compiled = await _compile(uow, tenant)
    held = local.get(tenant.id)
    if held is None or held[0] <= read.directory:  # never replace a newer one with an older
        local[tenant.id] = (read.directory, compiled)
    return compiled


@dataclass(frozen=True, slots=True)
class _Bump:
    uow: UnitOfWork

    async def __call__(self) -> None:
        await generations.bump(self.uow.app, "directory")


def changed(uow: UnitOfWork) -> None:
    """After this unit of work commits, every instance compiles the directory again (one bump
    however many changes: an import of a thousand lines is one)."""
    if not any(isinstance(hook, _Bump) for hook in uow._after_commit):
        uow.after_commit(_Bump(uow))
