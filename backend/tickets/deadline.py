"""The callback deadline, on the town's WorkingCalendar (backend.tenants.calendar).

- `working_days_24h` (the paper's promise, the default): 24 hours that count only on working
  days of the town calling back (Mon–Fri minus public holidays of its state minus its closing
  days). Created on a working day → due at the same local time on the next working day; created
  on a weekend, holiday or closing day → the clock starts at the next working day's service start
  (its midnight when that day has no service hours). Service hours a town keeps on Saturday or
  Sunday do not make those days working days.
- `service_hours_24h` (selectable per tenant): 24 hours counted only inside service hours. A
  tenant without any service hours cannot have such a deadline: its tickets get the working-days
  rule instead, and the ticket records that rule (never an error that stops the agent).

The result carries the rule and the calendar's version so a later calendar edit stays visible
and never silently moves a deadline computed before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from backend.tenants.calendar import WorkingCalendar
from backend.tickets.schemas import DeadlineRule, SlaState, TicketStatus

CALLBACK_PROMISE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Deadline:
    started_at: datetime
    due_at: datetime
    rule: DeadlineRule
    calendar_version: str


def callback_deadline(calendar: WorkingCalendar, created_at: datetime, rule: DeadlineRule) -> Deadline:
    if rule is DeadlineRule.SERVICE_HOURS_24H and calendar.service_hours:
        start = calendar.next_service_start(created_at)
        due = calendar.add_service_time(start, CALLBACK_PROMISE)
    else:
        rule = DeadlineRule.WORKING_DAYS_24H
        start = calendar.working_clock_start(created_at)
        due = calendar.add_working_days(start, 1)
    return Deadline(
        started_at=start.astimezone(UTC),
        due_at=due.astimezone(UTC),
        rule=rule,
        calendar_version=calendar.version,
    )


@dataclass(frozen=True, slots=True)
class CallbackRule:
    """What the promise of a message taken instead of a transfer depends on: the town's deadline
    rule and its responsibility table (key prefix → active department; None: the default
    route), held compiled by the forwarding decision. The same choice as
    `repository.propose_department` and the same deadline as `create_ticket`."""

    deadline_rule: DeadlineRule
    routes: tuple[tuple[str | None, UUID], ...]

    def department_for(self, leika_key: str | None) -> UUID | None:
        """The longest key prefix that matches wins; the default route matches anything."""
        best: tuple[int, UUID] | None = None
        for prefix, department_id in self.routes:
            if prefix is not None and (leika_key is None or not leika_key.startswith(prefix)):
                continue
            length = len(prefix or "")
            if best is None or length > best[0]:
                best = (length, department_id)
        return best[1] if best else None

    def due_at(self, calendar: WorkingCalendar, at: datetime, local: datetime | None = None) -> datetime:
        """`callback_deadline(calendar, at, rule).due_at` (`local`: `at` in the calendar's zone,
        when the caller has it). Made per forwarding decision, so the working-days arm skips
        what only a ticket keeps (its start, its record): it was ~6 µs of the decision's ~26
        over the floor in process (decision 040, 2026-12-07)."""
        if self.deadline_rule is DeadlineRule.SERVICE_HOURS_24H and calendar.service_hours:
            return callback_deadline(calendar, at, self.deadline_rule).due_at
        return calendar.working_days_due(local or calendar.local(at)).astimezone(UTC)


def sla_state(
    status: TicketStatus,
    due_at: datetime,
    answered_at: datetime | None,
    now: datetime,
    due_soon: timedelta,
) -> SlaState:
    """Open tickets: against now; answered or closed ones: was the callback in time?
    (The SQL in repository.SLA_STATE_SQL is the same rule, for filtering.)"""
    if status in (TicketStatus.ANSWERED, TicketStatus.CLOSED):
        return SlaState.ON_TIME if answered_at is not None and answered_at <= due_at else SlaState.OVERDUE
    if now >= due_at:
        return SlaState.OVERDUE
    if now >= due_at - due_soon:
        return SlaState.DUE_SOON
    return SlaState.ON_TIME
