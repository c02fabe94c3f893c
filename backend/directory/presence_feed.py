"""Presence changes, pushed to agents' clients on any instance (decision 037).

A change of a person's presence — their own switch, their absence calendar, a telephone
system's event — is published through Redis pub/sub after its transaction commits, like the
screen pop's call events: whichever instance serves a subscription hears of a change made on
any other. Each message carries the new presence whole (state, reason, until, source) and the
German sentence for screen readers, so a subscriber needs no read of its own.

Timed sources end without anyone acting: a telephone event expires, an own switch runs out. The
background worker announces those (`announce_expiries`): each round marks the rows that ran
out since the last one as announced — once across all instances, by row locks — and publishes
the presence that is in force now. Absence calendar boundaries (a weekly 12:30–13:30) and the
department's hours are not announced: every presence says `until` when it knows it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import structlog
from redis.exceptions import RedisError

from backend.db.roles import database_name
from backend.db.tenancy import all_tenants_transaction
from backend.directory import repository, worker_repository
from backend.directory.presence import Sources, department_calendar, presence_of
from backend.directory.schemas import DepartmentLine, Person, Presence, PresenceCause, PresenceChange
from backend.directory.speakable import display_name, presence_phrase, spoken_name
from backend.state import AppState, UnitOfWork
from backend.tenants.calendar import WorkingCalendar, load_calendar_of

log = structlog.get_logger("directory.presence")

# How far back a worker round looks for expiries: after a longer outage of every instance the
# old ones are not announced any more (clients read presence when they connect).
EXPIRY_WINDOW = timedelta(hours=1)

_DECODER = msgspec.json.Decoder(PresenceChange)


def channel(app: AppState) -> str:
    return f"directory:{database_name(app.settings.application_database_url)}:presence"


async def presences(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    people: Sequence[Person],
    lines: dict[UUID, DepartmentLine],
    calendar: WorkingCalendar,
    at: datetime,
) -> dict[UUID, Presence]:
    """Every person's presence at `at`, from all their sources (four short queries)."""
    rows = await repository.presence_sources(conn, tenant_id, [p.id for p in people], at)
    phone = {r["person_id"]: r for r in rows["phone"]}
    switch = {r["person_id"]: r for r in rows["switch"]}
    dated = {r["person_id"]: r for r in rows["dated"]}
    weekly: dict[UUID, list[Any]] = {}
    for r in rows["weekly"]:
        weekly.setdefault(r["person_id"], []).append(r)
    answers = {}
    for p in people:
        line = lines.get(p.department_id) if p.department_id else None
        sources = Sources(
            phone=phone.get(p.id), switch=switch.get(p.id), dated=dated.get(p.id), weekly=tuple(weekly.get(p.id, ()))
        )
        answers[p.id] = presence_of(p.id, sources, department_calendar(calendar, line.hours if line else None), at)
    return answers


def change_of(
    person: Person,
    presence: Presence,
    lines: dict[UUID, DepartmentLine],
    calendar: WorkingCalendar,
    cause: PresenceCause,
) -> PresenceChange:
    line = lines.get(person.department_id) if person.department_id else None
    phrase = presence_phrase(presence, department_calendar(calendar, line.hours if line else None))
    return PresenceChange(
        tenant_id=person.tenant_id,
        person_id=person.id,
        person_name=display_name(person),
        presence=presence,
        speakable=f"{spoken_name(person)} {phrase}.",
        cause=cause,
    )


async def publish(app: AppState, changes: Sequence[PresenceChange]) -> None:
    try:
        for change in changes:
            await app.redis.publish(channel(app), msgspec.json.encode(change))
    except RedisError:
        log.warning("presence_change_unpublished")  # stored; clients see it on their next read


@dataclass(eq=False)
class _Publish:
    """One after-commit hook per unit of work, carrying every change it made."""

    app: AppState
    changes: list[PresenceChange] = field(default_factory=list)

    async def __call__(self) -> None:
        await publish(self.app, self.changes)


def announce(uow: UnitOfWork, change: PresenceChange) -> None:
    """Publish `change` once this unit of work has committed (never a change that rolled back)."""
    hook = uow.after_commit_once(_Publish, lambda: _Publish(uow.app))
    hook.changes = [c for c in hook.changes if c.person_id != change.person_id] + [change]


async def changes(app: AppState, tenant_ids: frozenset[UUID]) -> AsyncGenerator[PresenceChange, None]:
    """Presence changes of people of `tenant_ids`, from now on, until the subscriber goes away."""
    pubsub = app.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(app))
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                change = _DECODER.decode(message["data"])
            except msgspec.DecodeError:
                continue
            if change.tenant_id in tenant_ids:
                yield change
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def announce_expiries(app: AppState, now: datetime) -> int:
    """One worker round: the presence now of everyone whose telephone event or own switch ran
    out since the last round, published after commit. Returns how many were announced."""
    found: list[PresenceChange] = []
    async with all_tenants_transaction(app.pool) as conn:
        claimed = await worker_repository.claim_expired_presence(conn, now, now - EXPIRY_WINDOW)
        by_tenant: dict[UUID, list[UUID]] = {}
        for row in claimed:
            by_tenant.setdefault(row["tenant_id"], []).append(row["person_id"])
        for tenant_id, person_ids in by_tenant.items():
            people = [p for p in (await repository.people_by_ids(conn, tenant_id, person_ids)).values() if p.active]
            if not people:
                continue
            lines = await repository.department_lines(conn, tenant_id)
            calendar = await load_calendar_of(conn, tenant_id)
            now_in_force = await presences(conn, tenant_id, people, lines, calendar, now)
            found += [change_of(p, now_in_force[p.id], lines, calendar, PresenceCause.EXPIRED) for p in people]
    await publish(app, found)
    return len(found)
