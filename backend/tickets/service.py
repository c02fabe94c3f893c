"""The rules for tickets: creation with routing and deadline, the workflow, comments, callback
attempts, assignment, settings and routes (the citizen's data, every read audited: `personal`;
webhooks: `webhook_service`).

Every function takes the unit of work, passes the tenant door (`backend.tenants.reach`: one
tenant by slug, or every tenant an operation reaches), validates, and only then writes. A
ticket or tenant the principal may not reach is reported as not found. Messages name statuses
and fields, never a value the citizen gave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import phonenumbers

from auth.permissions import Operation
from auth.principal import Principal
from auth.roles import Role
from backend import clock, cursors, generations
from backend.errors import InvalidTransition, ValidationFailed, VersionConflict
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.telephony import calls as telephony_calls
from backend.tenants import reach
from backend.tenants.calendar import load_calendar
from backend.tenants.reach import reach_id
from backend.tenants.schemas import Tenant
from backend.tickets import assignees, personal, pubsub, repository
from backend.tickets.changes import Actor, record_change
from backend.tickets.deadline import CallbackRule, callback_deadline
from backend.tickets.schemas import (
    OPEN_STATUSES,
    TRANSITIONS,
    AssignmentInput,
    AuditWhat,
    CallbackAttempt,
    CallbackAttemptInput,
    Channel,
    Comment,
    CommentInput,
    DepartmentChange,
    EventKind,
    SlaState,
    Source,
    StatusChange,
    Ticket,
    TicketChange,
    TicketCreate,
    TicketEvent,
    TicketFilter,
    TicketRoute,
    TicketSettings,
    TicketSettingsInput,
    TicketStatus,
    allowed_targets,
)

MAX_PAGE_SIZE = 100
_PHONE_CHARACTERS = re.compile(r"[0-9+()/. -]{2,40}")
CLOCK_SKEW = timedelta(minutes=5)  # how far a given time may lie outside its allowed range


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Ticket]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    items: list[Ticket]
    cursor: str
    has_more: bool


def check_page(first: int) -> None:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )


def _publish_after_commit(uow: UnitOfWork, changes: list[TicketChange | None]) -> None:
    published = [c for c in changes if c is not None]
    if published:
        uow.after_commit(lambda: pubsub.publish(uow.redis, published))


def _source(principal: Principal) -> Source:
    if principal.is_machine:
        return Source.PARTNER
    if principal.roles & {Role.AGENT, Role.SUPERVISOR, Role.PLATFORM_ADMIN}:
        return Source.AGENT
    return Source.STAFF


# --- settings, routes ----------------------------------------------------------------------


async def settings(uow: UnitOfWork, tenant_slug: str) -> TicketSettings:
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_CONFIGURE)
    return await repository.get_settings(uow.conn, tenant.id)


async def update_settings(uow: UnitOfWork, tenant_slug: str, data: TicketSettingsInput) -> TicketSettings:
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_CONFIGURE)
    current = await repository.get_settings(uow.conn, tenant.id)
    wanted = TicketSettings(
        tenant_id=tenant.id,
        deadline_rule=data.deadline_rule or current.deadline_rule,
        retention_days=data.retention_days or current.retention_days,
        due_soon_minutes=data.due_soon_minutes or current.due_soon_minutes,
        version=current.version,
    )
    saved = await repository.save_settings(uow.conn, tenant.id, wanted, data.version)
    if saved is None:
        raise VersionConflict(_l("the ticket settings were changed by someone else; reload and try again"))
    _promise_changed(uow)
    return saved


async def routes(uow: UnitOfWork, tenant_slug: str) -> list[TicketRoute]:
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_READ)
    return await repository.list_routes(uow.conn, tenant.id)


async def replace_routes(
    uow: UnitOfWork, tenant_slug: str, default_department_id: UUID | None, entries: list[tuple[str, UUID]]
) -> list[TicketRoute]:
    """Replace the responsibility table: LeiKa key (or prefix) → department, plus a default."""
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_CONFIGURE)
    prefixes = [prefix for prefix, _ in entries]
    if len(prefixes) != len(set(prefixes)):
        raise ValidationFailed(_l("each key prefix may appear only once"), field="routes")
    wanted: list[tuple[str | None, UUID]] = [(p, d) for p, d in entries]
    if default_department_id is not None:
        wanted.append((None, default_department_id))
    for index, (_, department_id) in enumerate(wanted):
        if not await repository.active_department_exists(uow.conn, tenant.id, department_id):
            field = "defaultDepartmentId" if index == len(entries) else "routes"
            raise ValidationFailed(_l("no active department with this id in the town"), field=field)
    for route in await repository.list_routes(uow.conn, tenant.id):
        await repository.delete_route(uow.conn, tenant.id, route.key_prefix)
    for prefix, department_id in wanted:
        await repository.upsert_route(uow.conn, tenant.id, prefix, department_id)
    _promise_changed(uow)
    return await repository.list_routes(uow.conn, tenant.id)


async def import_route(uow: UnitOfWork, tenant_id: UUID, key_prefix: str, department_id: UUID) -> None:
    """One entry of the responsibility table from an import (XZuFi `zustaendigkeit`): the LeiKa
    key goes to the department; the town's other entries stay."""
    tenant = await reach_id(uow, tenant_id, Operation.TICKET_CONFIGURE)
    if not await repository.active_department_exists(uow.conn, tenant.id, department_id):
        raise ValidationFailed(_l("no active department with this id in the town"), field="departmentId")
    await repository.upsert_route(uow.conn, tenant.id, key_prefix, department_id)
    _promise_changed(uow)


async def propose_department(uow: UnitOfWork, tenant_slug: str, leika_key: str | None) -> UUID | None:
    tenant = await reach.reach(uow, tenant_slug, Operation.TICKET_READ)
    return await repository.propose_department(uow.conn, tenant.id, leika_key)


async def department_accepts_tickets(
    uow: UnitOfWork, tenant_id: UUID, department_id: UUID, operation: Operation
) -> bool:
    """Whether tickets may be handed to this department of the town (it exists and is active),
    for another domain's configuration; the door is asked with the caller's `operation`."""
    tenant = await reach_id(uow, tenant_id, operation)
    return await repository.active_department_exists(uow.conn, tenant.id, department_id)


def _promise_changed(uow: UnitOfWork) -> None:
    """The forwarding decision holds each town's callback rule compiled under the directory's
    generation (decision 039): after commit, every instance compiles it again."""
    uow.after_commit(lambda: generations.bump(uow.app, "directory"))


async def callback_rule(uow: UnitOfWork, tenant_id: UUID, operation: Operation) -> CallbackRule:
    """For messages taken instead of a transfer (the directory's forwarding decision, which holds
    it compiled): the town's deadline rule and responsibility table. A change of either bumps
    the directory's generation; a department closed or reopened is a tenant change, which does
    too. The door is asked with the caller's `operation`."""
    tenant = await reach_id(uow, tenant_id, operation)
    ticket_settings = await repository.get_settings(uow.conn, tenant.id)
    routes = await repository.routes_to_active_departments(uow.conn, tenant.id)
    return CallbackRule(ticket_settings.deadline_rule, tuple((r["key_prefix"], r["department_id"]) for r in routes))


# --- creating and reading ------------------------------------------------------------------


def _normalise_phone(value: str | None) -> str | None:
    if value is None:
        return None
    number = None
    if _PHONE_CHARACTERS.fullmatch(value):
        try:
            number = phonenumbers.parse(value, "DE")
        except phonenumbers.NumberParseException:
            number = None
    if number is None or not phonenumbers.is_valid_number(number):
        # Never echo the number: it is personal data.
        raise ValidationFailed(_l("the callback number is not a valid phone number"), field="citizen.callbackNumber")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_citizen(data: TicketCreate) -> str | None:
    citizen = data.citizen
    gives_contact = any(v is not None for v in (citizen.name, citizen.callback_number, citizen.email))
    if gives_contact and not citizen.consent:
        raise ValidationFailed(
            _l("contact data may only be stored with the citizen's consent"), field="citizen.consent"
        )
    if citizen.preferred_channel is Channel.PHONE and citizen.callback_number is None:
        raise ValidationFailed(_l("a callback by phone needs a callback number"), field="citizen.callbackNumber")
    if citizen.preferred_channel is Channel.EMAIL and citizen.email is None:
        raise ValidationFailed(_l("an answer by e-mail needs an e-mail address"), field="citizen.email")
    if citizen.preferred_channel is Channel.LETTER and citizen.name is None:
        raise ValidationFailed(_l("an answer by letter needs the citizen's name"), field="citizen.name")
    return _normalise_phone(citizen.callback_number)


async def _deadline_for(uow: UnitOfWork, tenant: Tenant, start: datetime) -> tuple[datetime, datetime, str, str]:
    ticket_settings = await repository.get_settings(uow.conn, tenant.id)
    calendar = await load_calendar(uow.conn, tenant)
    deadline = callback_deadline(calendar, start, ticket_settings.deadline_rule)
    return deadline.started_at, deadline.due_at, deadline.rule.value, deadline.calendar_version


@dataclass(frozen=True, slots=True)
class MessagePromise:
    """A message taken from the forwarding decision's option (decision 038): the ticket is
    assigned to the option's person (None: the department's queue) and its callback deadline
    runs from the moment the option announced it, so the citizen is called back when promised."""

    person_id: UUID | None
    promised_at: datetime


async def create_ticket(
    uow: UnitOfWork, data: TicketCreate, now: datetime | None = None, message: MessagePromise | None = None
) -> Ticket:
    now = now or clock.now()
    tenant = await reach.reach(uow, data.tenant_slug, Operation.TICKET_CREATE)
    if not data.subject.strip():
        raise ValidationFailed(_l("the subject must not be blank"), field="subject")
    callback_number = _check_citizen(data)
    department_id = data.department_id
    if department_id is None:
        department_id = await repository.propose_department(uow.conn, tenant.id, data.leika_key)
        if department_id is None:
            raise ValidationFailed(
                _l("no department given and the town's responsibility table has no default"), field="departmentId"
            )
    elif not await repository.active_department_exists(uow.conn, tenant.id, department_id):
        raise ValidationFailed(_l("no active department with this id in the town"), field="departmentId")
    assignment = None
    if message is not None and message.person_id is not None:
        assignment = await assignees.resolve(uow.conn, tenant.id, None, message.person_id)
    deadline_from = message.promised_at if message is not None else now
    started_at, due_at, rule, calendar_version = await _deadline_for(uow, tenant, deadline_from)
    ticket_id = uuid4()
    principal = uow.principal
    if data.call_id is not None:  # forwarded from a call: the call records it, in this transaction
        # before the counter: the call's lock comes first, as in a message's retry check (which
        # locks the call and then creates), so the two orders cannot deadlock
        await telephony_calls.link_ticket(uow, tenant.id, data.call_id, ticket_id)
    number, seq = await repository.next_number_and_change_seq(uow.conn, tenant.id)
    await repository.insert_ticket(
        uow.conn,
        tenant_id=tenant.id,
        ticket_id=ticket_id,
        number=number,
        department_id=department_id,
        priority=data.priority.value,
        subject=data.subject.strip(),
        leika_key=data.leika_key,
        article_id=data.article_id,
        call_id=data.call_id,
        source=_source(principal).value,
        created_by=principal.subject,
        created_by_tenant_id=principal.tenant_id,
        created_at=now,
        deadline_started_at=started_at,
        due_at=due_at,
        deadline_rule=rule,
        calendar_version=calendar_version,
        change_seq=seq,
    )
    citizen = data.citizen
    await repository.insert_personal_data(
        uow.conn,
        tenant.id,
        ticket_id,
        concern=data.concern,
        name=citizen.name,
        callback_number=callback_number,
        email=citizen.email,
        preferred_channel=citizen.preferred_channel.value,
        consent=citizen.consent,
        consent_at=now if citizen.consent else None,
    )
    actor = Actor.of(principal)
    tenants = [tenant.id]
    published = [
        await record_change(
            uow.conn,
            tenants,
            ticket_id,
            EventKind.CREATED,
            actor,
            now,
            to_status=TicketStatus.NEW,
            details={"departmentId": str(department_id), "source": _source(principal).value},
            change_seq=seq,
        )
    ]
    if assignment is not None:  # already assigned when the department first sees it
        published.append(
            await record_change(
                uow.conn,
                tenants,
                ticket_id,
                EventKind.ASSIGNED,
                actor,
                now,
                changes=assignment,
                details=assignees.event_details(assignment, None),
            )
        )
    if data.forward:
        published.append(await _transition(uow, tenants, ticket_id, TicketStatus.FORWARDED, None, now))
    _publish_after_commit(uow, published)
    return await repository.get_ticket(uow.conn, tenants, ticket_id, now)


async def list_tickets(
    uow: UnitOfWork,
    *,
    tenant_slug: str | None = None,
    status: TicketStatus | None = None,
    sla_state: SlaState | None = None,
    department_id: UUID | None = None,
    assignee: str | None = None,
    first: int = 50,
    after: str | None = None,
    now: datetime | None = None,
    all_departments: bool = False,
) -> Page:
    """Tickets without personal data, the most urgent first; department staff see their own
    department's unless they ask for all of their town's."""
    check_page(first)
    reachable = reach.reachable(uow, Operation.TICKET_READ)
    if assignee is not None and ("\x00" in assignee or len(assignee) > 255):
        raise ValidationFailed(_l("not a valid assignee"), field="assignee")
    tenant_ids = sorted(reachable)
    if tenant_slug is not None:
        tenant_ids = [(await reach.reach(uow, tenant_slug, Operation.TICKET_READ)).id]
    own: tuple[UUID, ...] = ()
    if department_id is None and not all_departments:
        own = await assignees.home_departments(uow.conn, uow.principal)
    where = TicketFilter(
        tenant_ids=tuple(tenant_ids),
        status=status,
        sla_state=sla_state,
        department_id=department_id,
        assignee=assignee,
        department_ids=own,
    )
    rows = await repository.list_tickets(uow.conn, where, now or clock.now(), cursors.decode(after), first + 1)
    items = rows[:first]
    more = len(rows) > first
    return Page(items=items, next_cursor=cursors.encode(items[-1].due_at, items[-1].id) if more else None)


async def get_ticket(uow: UnitOfWork, ticket_id: UUID, now: datetime | None = None) -> Ticket:
    reachable = reach.reachable(uow, Operation.TICKET_READ)
    return await repository.get_ticket(uow.conn, list(reachable), ticket_id, now or clock.now())


async def tickets_by_ids(uow: UnitOfWork, ticket_ids: list[UUID], now: datetime | None = None) -> dict[UUID, Ticket]:
    reachable = reach.reachable(uow, Operation.TICKET_READ)
    found = await repository.tickets_by_ids(uow.conn, list(reachable), ticket_ids, now or clock.now())
    return {t.id: t for t in found}


async def events(uow: UnitOfWork, ticket_id: UUID) -> list[TicketEvent]:
    ticket = await get_ticket(uow, ticket_id)
    return await repository.list_events(uow.conn, [ticket.tenant_id], [ticket.id])


async def events_by_ticket(uow: UnitOfWork, ticket_ids: list[UUID]) -> dict[UUID, list[TicketEvent]]:
    """The history of several tickets (GraphQL batches); tickets not visible are left out."""
    tickets = await tickets_by_ids(uow, ticket_ids)
    grouped: dict[UUID, list[TicketEvent]] = {t: [] for t in tickets}
    if tickets:
        tenant_ids = list({t.tenant_id for t in tickets.values()})
        for event in await repository.list_events(uow.conn, tenant_ids, list(tickets)):
            grouped[event.ticket_id].append(event)
    return grouped


async def changes_since(
    uow: UnitOfWork, tenant_slug: str | None, cursor: str | None, first: int = 50, now: datetime | None = None
) -> Changes:
    """Tickets changed after `cursor` in change order (partner systems poll this). Change
    numbers follow commit order per tenant, so nothing committed later can slip behind a cursor."""
    check_page(first)
    slug = tenant_slug or uow.principal.tenant_slug
    tenant = await reach.reach(uow, slug, Operation.TICKET_READ)
    try:
        after = int(cursor) if cursor else 0
    except ValueError:
        after = -1
    if not 0 <= after < 2**63:
        raise ValidationFailed(_l("not a cursor this API handed out"), field="cursor")
    rows = await repository.changed_since(uow.conn, tenant.id, after, first + 1, now or clock.now())
    items = rows[:first]
    return Changes(items=items, cursor=str(items[-1].change_seq if items else after), has_more=len(rows) > first)


# --- the workflow --------------------------------------------------------------------------


async def _locked(uow: UnitOfWork, ticket_id: UUID, now: datetime, version: int | None = None) -> Ticket:
    reachable = reach.reachable(uow, Operation.TICKET_WORK)
    ticket = await repository.get_ticket(uow.conn, list(reachable), ticket_id, now, lock=True)
    if version is not None and version != ticket.version:
        raise VersionConflict(_l("the ticket was changed by someone else; reload and try again"), field="version")
    return ticket


async def _transition(
    uow: UnitOfWork, tenant_ids: list[UUID], ticket_id: UUID, target: TicketStatus, version: int | None, now: datetime
) -> TicketChange | None:
    ticket = await _locked(uow, ticket_id, now, version)
    action = TRANSITIONS.get((ticket.status, target))
    if action is None:
        allowed = ", ".join(s.value for s in allowed_targets(ticket.status)) or "none"
        raise InvalidTransition(
            _l(
                "a ticket in status '{status}' cannot move to '{target}'; allowed next: {allowed}",
                status=ticket.status.value,
                target=target.value,
                allowed=allowed,
            ),
            field="status",
        )
    changes: dict[str, Any] = {"status": target.value}
    if action == "answer":
        channel = await repository.preferred_channel(uow.conn, ticket.tenant_id, ticket.id)
        needs_callback = channel not in (None, Channel.NONE.value)
        _, reached_at = await repository.callback_window(uow.conn, ticket.tenant_id, ticket.id)
        if needs_callback and reached_at is None:
            raise InvalidTransition(
                _l("record a callback attempt that reached the citizen before marking the ticket answered"),
                field="status",
            )
        # Answered when the citizen was first reached (an attempt may be recorded later than it
        # happened), as the 115 figures count it; without any reached attempt (no callback
        # wanted), when it is marked answered. Who marked it and when stays in the event.
        changes["answered_at"] = reached_at or now
    elif action == "close":
        changes["closed_at"] = now
    elif action == "reopen":
        if ticket.personal_data_erased_at is not None:
            raise InvalidTransition(
                _l("the citizen's data of this ticket was erased after retention; create a new ticket")
            )
        # The citizen gets a new callback promise, computed as of now with today's calendar.
        tenant = await reach.reach_id(uow, ticket.tenant_id, Operation.TICKET_WORK)
        started_at, due_at, rule, calendar_version = await _deadline_for(uow, tenant, now)
        changes |= {
            "answered_at": None,
            "closed_at": None,
            "reopened_at": now,
            "deadline_started_at": started_at,
            "due_at": due_at,
            "deadline_rule": rule,
            "calendar_version": calendar_version,
            "deadline_seq": await repository.deadline_seq(uow.conn, ticket.tenant_id, ticket.id) + 1,
        }
    return await record_change(
        uow.conn,
        tenant_ids,
        ticket.id,
        EventKind.STATUS_CHANGED,
        Actor.of(uow.principal),
        now,
        changes=changes,
        from_status=ticket.status,
        to_status=target,
        details={"action": action, "fromStatus": ticket.status.value},
    )


async def change_status(uow: UnitOfWork, ticket_id: UUID, data: StatusChange, now: datetime | None = None) -> Ticket:
    now = now or clock.now()
    reachable = sorted(reach.reachable(uow, Operation.TICKET_WORK))
    change = await _transition(uow, reachable, ticket_id, data.status, data.version, now)
    _publish_after_commit(uow, [change])
    return await repository.get_ticket(uow.conn, reachable, ticket_id, now)


async def assign(uow: UnitOfWork, ticket_id: UUID, data: AssignmentInput, now: datetime | None = None) -> Ticket:
    now = now or clock.now()
    ticket = await _locked(uow, ticket_id, now, data.version)
    if ticket.status is TicketStatus.CLOSED:
        raise InvalidTransition(_l("a closed ticket cannot be assigned; reopen it first"), field="assignee")
    reachable = [ticket.tenant_id]
    changes = await assignees.resolve(uow.conn, ticket.tenant_id, data.assignee, data.person_id)
    change = await record_change(
        uow.conn,
        reachable,
        ticket.id,
        EventKind.ASSIGNED,
        Actor.of(uow.principal),
        now,
        changes=changes,
        details=assignees.event_details(changes, ticket),
    )
    _publish_after_commit(uow, [change])
    return await repository.get_ticket(uow.conn, reachable, ticket.id, now)


async def change_department(
    uow: UnitOfWork, ticket_id: UUID, data: DepartmentChange, now: datetime | None = None
) -> Ticket:
    now = now or clock.now()
    ticket = await _locked(uow, ticket_id, now, data.version)
    if ticket.status not in OPEN_STATUSES:
        raise InvalidTransition(_l("only an open ticket can go to another department"), field="departmentId")
    if not await repository.active_department_exists(uow.conn, ticket.tenant_id, data.department_id):
        raise ValidationFailed(_l("no active department with this id in the town"), field="departmentId")
    reachable = [ticket.tenant_id]
    change = await record_change(
        uow.conn,
        reachable,
        ticket.id,
        EventKind.DEPARTMENT_CHANGED,
        Actor.of(uow.principal),
        now,
        changes={"department_id": data.department_id},
        details={"departmentId": str(data.department_id), "previousDepartmentId": str(ticket.department_id)},
    )
    _publish_after_commit(uow, [change])
    return await repository.get_ticket(uow.conn, reachable, ticket.id, now)


async def add_comment(uow: UnitOfWork, ticket_id: UUID, data: CommentInput, now: datetime | None = None) -> Comment:
    now = now or clock.now()
    ticket = await _locked(uow, ticket_id, now)
    if ticket.personal_data_erased_at is not None:
        raise InvalidTransition(_l("this ticket's data was erased after retention; no comments can be added"))
    principal = uow.principal
    comment = await repository.insert_comment(
        uow.conn, ticket.tenant_id, ticket.id, data.body, principal.subject, principal.tenant_id
    )
    change = await record_change(
        uow.conn,
        [ticket.tenant_id],
        ticket.id,
        EventKind.COMMENT_ADDED,
        Actor.of(principal),
        now,
        details={"commentId": str(comment.id)},
        bump_version=False,
    )
    _publish_after_commit(uow, [change])
    personal.disclosed([ticket], AuditWhat.COMMENTS)  # the answer repeats the body
    return comment


async def record_callback(
    uow: UnitOfWork, ticket_id: UUID, data: CallbackAttemptInput, now: datetime | None = None
) -> CallbackAttempt:
    """A callback attempt (channel, time, reached or not, note). `markAnswered` with a reached
    attempt also moves the ticket on to `answered` — through `in_progress` when it was only
    forwarded, each step checked and recorded.

    `attemptedAt` may lie in the past (staff record a call they made earlier): it must lie
    between the ticket's creation (or last reopen) and now, a few minutes of clock skew allowed
    and cut off. The ticket's answered_at is the first reached attempt's time (see `_transition`);
    who recorded it and when stay on the attempt and in the events."""
    now = now or clock.now()
    ticket = await _locked(uow, ticket_id, now)
    if ticket.status not in (TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS, TicketStatus.ANSWERED):
        raise InvalidTransition(
            _l(
                "callback attempts are recorded on forwarded, in-progress or answered tickets, not on '{status}' ones",
                status=ticket.status.value,
            ),
            field="status",
        )
    attempted_at = data.attempted_at or now
    if attempted_at.tzinfo is None:
        raise ValidationFailed(_l("give the time with its offset"), field="attemptedAt")
    since, first_reached = await repository.callback_window(uow.conn, ticket.tenant_id, ticket.id)
    if attempted_at > now + CLOCK_SKEW or attempted_at < since - CLOCK_SKEW:
        raise ValidationFailed(
            _l("the attempt must lie between the ticket's creation (or last reopen) and now"), field="attemptedAt"
        )
    attempted_at = min(max(attempted_at, since), now)
    if data.mark_answered and not data.reached:
        raise ValidationFailed(_l("only an attempt that reached the citizen answers the ticket"), field="markAnswered")
    principal = uow.principal
    attempt = await repository.insert_callback_attempt(
        uow.conn,
        ticket.tenant_id,
        ticket.id,
        channel=data.channel.value,
        attempted_at=attempted_at,
        reached=data.reached,
        note=data.note,
        recorded_by=principal.subject,
        recorded_by_tenant_id=principal.tenant_id,
        created_at=now,
    )
    tenants = [ticket.tenant_id]
    changes: dict[str, Any] = {}
    if ticket.status is TicketStatus.ANSWERED and data.reached:
        # A reach recorded after answering keeps answered_at the first reach (an earlier call
        # noted only now moves it back), so the ticket and the 115 figures still agree.
        reached_at = attempted_at if first_reached is None else min(first_reached, attempted_at)
        if ticket.answered_at is not None and reached_at < ticket.answered_at:
            changes["answered_at"] = reached_at
    published = [
        await record_change(
            uow.conn,
            tenants,
            ticket.id,
            EventKind.CALLBACK_RECORDED,
            Actor.of(principal),
            now,
            changes=changes,
            details={"attemptId": str(attempt.id), "channel": data.channel.value, "reached": data.reached},
            bump_version=bool(changes),
        )
    ]
    if data.mark_answered:
        if ticket.status is TicketStatus.FORWARDED:
            published.append(await _transition(uow, tenants, ticket.id, TicketStatus.IN_PROGRESS, None, now))
        if ticket.status is not TicketStatus.ANSWERED:
            published.append(await _transition(uow, tenants, ticket.id, TicketStatus.ANSWERED, None, now))
    _publish_after_commit(uow, published)
    if attempt.note:
        personal.disclosed([ticket], AuditWhat.CALLBACK_NOTES)  # the answer repeats the note
    return attempt


# --- subscriptions -------------------------------------------------------------------------


async def subscription_tenants(uow: UnitOfWork, tenant_slug: str | None) -> frozenset[UUID]:
    reachable = reach.reachable(uow, Operation.TICKET_READ)
    if tenant_slug is None:
        return reachable
    return frozenset({(await reach.reach(uow, tenant_slug, Operation.TICKET_READ)).id})
