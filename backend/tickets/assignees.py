"""Tickets assigned to people of the town's directory (issue 16, decision 027): who an
assignment names, and giving a deprovisioned person's open tickets back to their department's
queue, each with an event."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from auth.permissions import Operation, require
from auth.principal import Principal
from auth.roles import Role
from backend import clock
from backend.errors import NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tickets import assignee_repository, pubsub
from backend.tickets.changes import Actor, record_change
from backend.tickets.schemas import EventKind, Ticket


async def resolve(
    conn: asyncpg.Connection, tenant_id: UUID, assignee: str | None, person_id: UUID | None
) -> dict[str, Any]:
    """The columns an assignment sets. A person id must be an active person of the town; a name
    must name exactly one (userName, full name or family name). Only a town with no directory
    yet keeps free text, as before."""
    if person_id is not None:
        found = await assignee_repository.directory_person(conn, tenant_id, person_id)
        if found is None:
            raise ValidationFailed(_l("no active person with this id in the town's directory"), field="personId")
        return {"assignee": found["name"], "assignee_person_id": found["id"]}
    if assignee is None:
        return {"assignee": None, "assignee_person_id": None}
    named = await assignee_repository.directory_people_named(conn, tenant_id, assignee.strip())
    if len(named) == 1:
        return {"assignee": named[0]["name"], "assignee_person_id": named[0]["id"]}
    if len(named) > 1:
        raise ValidationFailed(_l("several people of the directory have this name; give personId"), field="assignee")
    if await assignee_repository.has_directory(conn, tenant_id):
        raise ValidationFailed(_l("no person of the town's directory has this name"), field="assignee")
    return {"assignee": assignee, "assignee_person_id": None}


# Roles whose work spans the town (or more): their ticket lists are not narrowed to a department.
_TOWN_WIDE = frozenset(Role) - {Role.DEPARTMENT}


async def home_departments(conn: asyncpg.Connection, principal: Principal) -> tuple[UUID, ...]:
    """The departments a member of department staff works in: theirs in the town's directory (by
    the subject they sign in with) and those the town maps the groups of their token to
    (decision 037). Empty for everyone else, and for staff in neither."""
    if Role.DEPARTMENT not in principal.roles or principal.roles & _TOWN_WIDE:
        return ()
    found = []
    if (listed := await assignee_repository.department_of(conn, principal.tenant_id, principal.subject)) is not None:
        found.append(listed)
    if principal.groups:
        found += await assignee_repository.group_departments(conn, principal.tenant_id, sorted(principal.groups))
    return tuple(dict.fromkeys(found))


def event_details(changes: dict[str, Any], ticket: Ticket | None) -> dict[str, Any]:
    """`ticket`: as it was before (None: assigned as it is created)."""
    person = changes["assignee_person_id"]
    return {
        "assignee": changes["assignee"],
        "assigneePersonId": str(person) if person else None,
        "previousAssignee": ticket.assignee if ticket is not None else None,
    }


async def hold_open_tickets(uow: UnitOfWork, tenant_id: UUID, person_id: UUID, operation: Operation) -> None:
    """The person's open tickets locked until the transaction ends, before a deprovisioning
    locks the person: an assignment locks its ticket and then the person, so this order cannot
    deadlock with it, and no change number is taken yet (a message assigned to the person at
    that moment takes its number after reading them)."""
    if tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))
    await assignee_repository.lock_open_tickets_of(uow.conn, tenant_id, person_id)


async def return_to_queue(
    uow: UnitOfWork, tenant_id: UUID, person_id: UUID, operation: Operation, now: datetime | None = None
) -> int:
    """A person leaves the directory: their open tickets go back to their department's queue
    (unassigned), each with an `ticket.assigned` event saying why. Returns how many."""
    if tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))
    now = now or clock.now()
    changes = []
    for ticket_id in await assignee_repository.lock_open_tickets_of(uow.conn, tenant_id, person_id):
        changes.append(
            await record_change(
                uow.conn,
                [tenant_id],
                ticket_id,
                EventKind.ASSIGNED,
                Actor.of(uow.principal),
                now,
                changes={"assignee": None, "assignee_person_id": None},
                details={
                    "assignee": None,
                    "assigneePersonId": None,
                    "previousAssigneePersonId": str(person_id),
                    "reason": "the person left the directory; back to the department's queue",
                },
            )
        )
    published = [c for c in changes if c is not None]
    if published:
        uow.after_commit(lambda: pubsub.publish(uow.redis, published))
    return len(published)
