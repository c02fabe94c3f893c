"""A message taken from the forwarding decision becomes the ticket, already assigned (issue 16,
decision 038): the decision is asked again for the moment the agent saw it, and its "take a
message" option names the person (or only the department, whose queue gets it) and the callback
deadline announced to the citizen. The ticket is created by the tickets service, whose deadline
rule (working days, holidays, closing days) is the one the option's promise came from.

Retries are idempotent: with the call named, a second request for the same message answers the
ticket the first one created (REST also honours `Idempotency-Key`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from backend import clock
from backend.directory import service
from backend.directory.schemas import ForwardingOption, MessageInput, OptionKind
from backend.errors import Duplicate, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.telephony import calls
from backend.tickets import service as tickets
from backend.tickets.schemas import Ticket, TicketCreate

# How long after the decision its promise may still be taken up: a call and its wrap-up, not a
# later day (a later message asks for a new decision, with the deadline of its own moment).
PROMISE_KEPT_FOR = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=1)


async def take_message(uow: UnitOfWork, data: MessageInput, now: datetime | None = None) -> Ticket:
    """The ticket for the decision's "take a message" option; the decision reads the generations
    in force, with this unit of work's connection."""
    now = now or clock.now()
    if data.at.tzinfo is None:
        raise ValidationFailed(_l("give the time with its offset"), field="at")
    if not now - PROMISE_KEPT_FOR <= data.at <= now + CLOCK_SKEW:
        raise ValidationFailed(
            _l("take the message within {hours} hours of the decision", hours=PROMISE_KEPT_FOR.seconds // 3600),
            field="at",
        )
    decision = await service.forwarding_decision_within(
        uow, data.tenant, data.leika_key, data.surname, data.at, data.area
    )
    option = next(o for o in decision.options if o.kind is OptionKind.MESSAGE)  # always the last one
    if data.call_id is not None:
        earlier = await _earlier_ticket(uow, data, option)
        if earlier is not None:
            return earlier
    return await tickets.create_ticket(
        uow,
        TicketCreate(
            tenant_slug=data.tenant,
            subject=data.subject,
            concern=data.concern,
            citizen=data.citizen,
            department_id=option.department_id,
            leika_key=data.leika_key,
            article_id=data.article_id,
            call_id=data.call_id,
            priority=data.priority,
        ),
        now,
        tickets.MessagePromise(person_id=option.person_id, promised_at=decision.at),
    )


async def _earlier_ticket(uow: UnitOfWork, data: MessageInput, option: ForwardingOption) -> Ticket | None:
    """The ticket a first attempt at this message created from the call (a retry), if any; a
    different ticket from the same call is a conflict, as creating one twice always was."""
    assert data.call_id is not None
    # Locked: retries that arrive together wait for the first and answer its ticket (they were
    # a 409 DUPLICATE each, second sweep); the ticket then links the call under the same lock.
    call = await calls.call(uow, data.call_id, lock=True)
    if call.ticket_id is None:
        return None
    found = (await tickets.tickets_by_ids(uow, [call.ticket_id])).get(call.ticket_id)
    if (
        found is not None
        and found.subject == data.subject.strip()
        and found.assignee_person_id == option.person_id
        and (option.department_id is None or found.department_id == option.department_id)
    ):
        return found
    raise Duplicate(_l("a ticket was already created from this call"), field="callId")
