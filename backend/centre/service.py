"""The centre now (issue 17 §5): derived from what the service already receives — the call
events (waiting: offered, not answered or ended; talking: answered, not ended, by their agent
ids), the agent statuses each agent's client sets, today's calls for the service level and
first-contact rate (the telephony rule, with each town's thresholds), open tickets for the
callbacks. Read by query, pushed by subscription (`live`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from auth.permissions import Operation, require
from backend import clock
from backend.billing import figures as billing_figures
from backend.centre import events, repository
from backend.centre.schemas import AgentStatus, AgentStatusInput, AgentStatusView, CentreNow, CentreTown
from backend.state import UnitOfWork
from backend.telephony import service_level
from backend.telephony.service_level import ServiceLevelCounts, ServiceLevelSettings
from backend.tenants import reach
from backend.tenants import service as tenants_service
from backend.tickets import callbacks_due

BERLIN_ZONE = ZoneInfo("Europe/Berlin")  # "today" is the centre's day
# Calls offered before the start of the day (Berlin), or over 12 hours ago, are not waiting any
# more, whatever their record says: a call whose end never arrived must not wait for ever.
LOOK_BACK = timedelta(hours=12)


async def scope(uow: UnitOfWork, tenant_slug: str | None) -> frozenset[UUID]:
    """The tenants whose centre the principal watches: every one it may, or the one named."""
    visible = reach.reachable(uow, Operation.CENTRE_READ)
    one = await reach.reach_optional(uow, tenant_slug, Operation.CENTRE_READ)
    return frozenset({one.id}) if one else visible


async def centre_now(uow: UnitOfWork, tenant_slug: str | None = None, now: datetime | None = None) -> CentreNow:
    return await snapshot(uow, await scope(uow, tenant_slug), now)


def _day_start(moment: datetime) -> datetime:
    local = moment.astimezone(BERLIN_ZONE)
    return datetime.combine(local.date(), time(0), BERLIN_ZONE)


async def snapshot(uow: UnitOfWork, tenant_ids: frozenset[UUID], now: datetime | None = None) -> CentreNow:
    """The centre now for `tenant_ids` (those the principal may watch). Five statements."""
    visible = require(uow.principal, Operation.CENTRE_READ)
    moment = now or clock.now()
    ids = sorted(t for t in tenant_ids if t in visible)
    names = await tenants_service.tenants_by_ids(uow, ids)
    ids = [t for t in ids if t in names]
    since = max(_day_start(moment), moment - LOOK_BACK)
    open_calls = {r["tenant_id"]: r for r in await repository.open_calls(uow.conn, ids, since)}
    statuses = await repository.agent_statuses(uow.conn, ids)
    targets = await billing_figures.figure_targets(uow, ids)
    today = _day_start(moment).date()
    levels = await service_level.service_level_counts(
        uow,
        [ServiceLevelSettings(t, targets[t].service_level_seconds, targets[t].short_abandon_seconds) for t in targets],
        today,
        today + timedelta(days=1),
        moment,
    )
    callbacks = await callbacks_due.callbacks_due(uow, ids, moment)
    towns: list[CentreTown] = []
    talking: set[str] = set()
    total = ServiceLevelCounts()
    for tid in sorted(ids, key=lambda t: names[t].name):
        row = open_calls.get(tid)
        oldest = row["oldest_waiting_since"] if row else None
        talking.update(row["talking"] if row else ())
        counts = levels.get((tid, False), ServiceLevelCounts()) + levels.get((tid, True), ServiceLevelCounts())
        total = total + counts
        due, overdue = callbacks.get(tid, (0, 0))
        goals = targets[tid]
        towns.append(
            CentreTown(
                tenant_id=tid,
                tenant_name=names[tid].name,
                waiting=int(row["waiting"]) if row else 0,
                longest_wait_seconds=_seconds(moment, oldest),
                oldest_waiting_since=oldest,
                offered_today=counts.offered,
                service_level=counts.service_level,
                service_level_target=goals.service_level_target,
                first_contact_rate=counts.first_contact_rate,
                first_contact_target=goals.first_contact_target,
                callbacks_due_next_hour=due,
                callbacks_overdue=overdue,
            )
        )
    by_status = {s.agent: s.status for s in statuses if s.agent not in talking}
    return CentreNow(
        at=moment,
        waiting=sum(t.waiting for t in towns),
        longest_wait_seconds=max((t.longest_wait_seconds for t in towns), default=0),
        agents_talking=len(talking),
        agents_available=sum(1 for s in by_status.values() if s is AgentStatus.AVAILABLE),
        agents_in_wrap_up=sum(1 for s in by_status.values() if s is AgentStatus.WRAP_UP),
        agents_away=sum(1 for s in by_status.values() if s is AgentStatus.AWAY),
        service_level=total.service_level,
        first_contact_rate=total.first_contact_rate,
        callbacks_due_next_hour=sum(t.callbacks_due_next_hour for t in towns),
        callbacks_overdue=sum(t.callbacks_overdue for t in towns),
        towns=towns,
    )


def _seconds(moment: datetime, since: datetime | None) -> int:
    return max(0, int((moment - since).total_seconds())) if since is not None else 0


async def set_agent_status(uow: UnitOfWork, data: AgentStatusInput) -> AgentStatusView:
    """The agent's client says how its agent is (at the agent's home tenant, the operator)."""
    home = await reach.reach_home(uow, Operation.AGENT_STATUS_WRITE)
    status = await repository.upsert_agent_status(
        uow.conn, home.id, data.agent, data.status.value, clock.now(), uow.principal.log_id
    )
    uow.after_commit(lambda: events.publish_change(uow.app, home.id))
    return status
