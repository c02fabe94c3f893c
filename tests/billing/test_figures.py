"""115 figures on a small hand-checked data set: calls offered, answered, abandoned, answered
within 30 s, first-contact rate against the tenant's target (60 %, 115 calls 65 %, configurable),
calls forwarded as tickets, talk and billed minutes; from the tickets domain tickets forwarded and
callbacks on time vs late (open and overdue counts as late, open and not yet due in neither);
local-day boundaries; CSV; and the rollups kept by the triggers equal a rebuild from the raw calls."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from backend.billing import figures, reports
from backend.billing.schemas import FigureScope, FigureTargetsInput
from backend.state import unit_of_work
from backend.tenants import service as tenants_service
from backend.tenants.schemas import DepartmentInput
from backend.tickets import reports as tickets_reports
from backend.tickets import service as tickets_service
from backend.tickets.schemas import CallbackAttemptInput, CallbackChannel, Citizen, TicketCreate
from tests.billing.support import Billing, CallSpec, add_calls, answer_call, local, set_outcome
from tests.support.world import World, system_principal

MARCH_10 = date(2026, 3, 10)


async def load(world: World, billing: Billing) -> None:
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await billing.add_tariff("geseke", date(2026, 1, 1), "0.95", increment=1)
    async with unit_of_work(world.state, system_principal(billing.operator, {soest})) as uow:
        slug = (await tenants_service.tenants_by_ids(uow, [soest]))[soest].slug
        department = await tenants_service.add_department(uow, slug, DepartmentInput(name="Bauamt"))
    pool = world.state.pool
    await add_calls(
        pool,
        soest,
        billing.operator,
        [
            CallSpec(local(MARCH_10, 9, 0), talk_seconds=61, wait_seconds=10, outcome="settled_first_contact"),
            CallSpec(local(MARCH_10, 9, 5), talk_seconds=59, wait_seconds=45, outcome="forwarded_as_ticket"),
            CallSpec(
                local(MARCH_10, 9, 10),
                talk_seconds=200,
                wait_seconds=30,
                outcome="transferred_to_department",
                department_id=department.id,
            ),
            CallSpec(local(MARCH_10, 9, 15), wait_seconds=70),  # abandoned
            CallSpec(
                local(MARCH_10, 9, 20), talk_seconds=120, wait_seconds=5, outcome="settled_first_contact", purpose="115"
            ),
            CallSpec(local(MARCH_10, 9, 35), wait_seconds=20, purpose="115"),  # abandoned
            CallSpec(
                local(date(2026, 3, 31), 23, 30), talk_seconds=60, wait_seconds=10, outcome="settled_first_contact"
            ),  # 21:30 UTC: still March in Soest
            CallSpec(
                local(date(2026, 4, 1), 0, 30), talk_seconds=60, wait_seconds=10, outcome="settled_first_contact"
            ),  # 31 March 22:30 UTC, but April locally
        ],
    )
    # Two calls arrive as they happen: offered first, answered/ended (and the outcome) later.
    ringing = await add_calls(
        pool,
        soest,
        billing.operator,
        [CallSpec(local(MARCH_10, 9, 30), ringing=True, purpose="115"), CallSpec(local(MARCH_10, 9, 40), ringing=True)],
    )
    await answer_call(pool, soest, ringing[0], wait_seconds=31, talk_seconds=30, outcome=None)
    await set_outcome(pool, soest, ringing[0], "settled_first_contact")
    await answer_call(pool, soest, ringing[1], wait_seconds=12, talk_seconds=15, outcome=None)  # no outcome yet
    await add_calls(
        pool,
        geseke,
        billing.operator,
        [
            CallSpec(local(date(2026, 3, 11), 10), talk_seconds=100, wait_seconds=40, outcome="settled_first_contact"),
            CallSpec(local(date(2026, 3, 11), 11), talk_seconds=50, wait_seconds=20, outcome="forwarded_as_ticket"),
        ],
    )


async def ticket(
    world: World, billing: Billing, town: UUID, department: UUID, at: datetime, *, forward: bool = True
) -> UUID:
    """A ticket created (and forwarded) at `at`; due one working day later (Mon–Fri, no holidays here)."""
    async with unit_of_work(world.state, system_principal(billing.operator, {town})) as uow:
        slug = (await tenants_service.tenants_by_ids(uow, [town]))[town].slug
        data = TicketCreate(
            tenant_slug=slug,
            subject="Rückruf erbeten",
            concern="Frage zum Bauantrag",
            citizen=Citizen(consent=True, callback_number="02921 987654"),
            department_id=department,
            forward=forward,
        )
        created = await tickets_service.create_ticket(uow, data, now=at)
    return created.id


async def callback(world: World, billing: Billing, town: UUID, ticket_id: UUID, at: datetime, reached: bool) -> None:
    attempt = CallbackAttemptInput(
        channel=CallbackChannel.PHONE, reached=reached, attempted_at=at, mark_answered=reached
    )
    async with unit_of_work(world.state, system_principal(billing.operator, {town})) as uow:
        await tickets_service.record_callback(uow, ticket_id, attempt, now=at)


# The moments the figures are taken at: which open tickets are overdue by then.
MARCH_NOW = local(date(2026, 3, 31), 12, 0)
APRIL_NOW = local(date(2026, 4, 2), 12, 0)


async def load_tickets(world: World, billing: Billing) -> None:
    """Soest, due in March: A called back exactly at its due time (on time), B a minute after it
    (late), C and E still open and overdue (late; E was never forwarded), D open and not yet due by
    MARCH_NOW (neither). F is forwarded on 31 March but due in April; G is forwarded at 00:30 on
    1 April local time (still 31 March in UTC). Geseke: K called back the same day (on time)."""
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    async with unit_of_work(world.state, system_principal(billing.operator, {soest, geseke})) as uow:
        slugs = {t.id: t.slug for t in (await tenants_service.tenants_by_ids(uow, [soest, geseke])).values()}
        office = DepartmentInput(name="Bürgerbüro")
        soest_office = (await tenants_service.add_department(uow, slugs[soest], office)).id
        geseke_office = (await tenants_service.add_department(uow, slugs[geseke], office)).id
    a = await ticket(world, billing, soest, soest_office, local(MARCH_10, 9))  # due 11 March 09:00
    await callback(world, billing, soest, a, local(MARCH_10, 11), reached=False)
    await callback(world, billing, soest, a, local(date(2026, 3, 11), 9), reached=True)
    b = await ticket(world, billing, soest, soest_office, local(MARCH_10, 10))  # due 11 March 10:00
    await callback(world, billing, soest, b, local(date(2026, 3, 11), 9, 30), reached=False)
    await callback(world, billing, soest, b, local(date(2026, 3, 11), 10, 1), reached=True)
    c = await ticket(world, billing, soest, soest_office, local(date(2026, 3, 12), 10))  # due 13 March 10:00
    await callback(world, billing, soest, c, local(date(2026, 3, 13), 9), reached=False)
    await ticket(world, billing, soest, soest_office, local(MARCH_10, 11), forward=False)  # E, due 11 March
    await ticket(world, billing, soest, soest_office, local(date(2026, 3, 30), 14))  # D, due 31 March 14:00
    await ticket(world, billing, soest, soest_office, local(date(2026, 3, 31), 10))  # F, due 1 April 10:00
    await ticket(world, billing, soest, soest_office, local(date(2026, 4, 1), 0, 30))  # G, due 2 April 00:30
    k = await ticket(world, billing, geseke, geseke_office, local(date(2026, 3, 11), 10))
    await callback(world, billing, geseke, k, local(date(2026, 3, 11), 15), reached=True)


def pick(report, tenant_id, scope):  # type: ignore[no-untyped-def]
    return next(f for f in [*report.rows, *report.total] if f.tenant_id == tenant_id and f.scope is scope)


async def test_figures_on_a_hand_checked_data_set(world: World, billing: Billing) -> None:
    await load(world, billing)
    await load_tickets(world, billing)
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    async with unit_of_work(world.state, system_principal(billing.operator, {geseke})) as uow:
        await figures.set_figure_targets(
            uow,
            billing.slugs[geseke],
            FigureTargetsInput(first_contact_target=Decimal("0.45"), first_contact_target_115=Decimal("0.7")),
        )
    async with unit_of_work(world.state, billing.finance()) as uow:
        report = await figures.figures(uow, date(2026, 3, 1), date(2026, 3, 31), now=MARCH_NOW)

    s = pick(report, soest, FigureScope.ALL)
    assert (s.offered, s.answered, s.abandoned, s.wait_reported, s.answered_within_30s) == (9, 7, 2, 7, 5)
    assert s.share_answered_within_30s == Decimal("0.7143")  # waits 10, 45, 30, 5, 31, 12, 10: five ≤ 30
    assert (s.settled_first_contact, s.forwarded_as_ticket, s.transferred_to_department) == (4, 1, 1)
    assert s.first_contact_rate == Decimal("0.6667") and s.first_contact_target == Decimal("0.60")
    assert s.meets_first_contact_target is True
    # talk 61+59+200+120+30+15+60 = 545 s; per started minute 120+60+240+120+60+60+60 = 720 s
    assert (s.talk_seconds, s.talk_minutes, s.billable_seconds, s.billed_minutes) == (
        545,
        Decimal("9.0833"),
        720,
        Decimal("12.0000"),
    )
    # Forwarded in March: A, B, C, D, F (E never was, G is April locally). Due in March: A on time
    # (reached exactly at its due time), B late (a minute after), C and E open and overdue (late),
    # D not yet due at MARCH_NOW (neither).
    assert (s.tickets_forwarded, s.callbacks_on_time, s.callbacks_late) == (5, 1, 3)
    s115 = pick(report, soest, FigureScope.ONE_ONE_FIVE)
    assert (s115.offered, s115.answered, s115.abandoned, s115.answered_within_30s) == (3, 2, 1, 1)
    assert s115.share_answered_within_30s == Decimal("0.5000")
    assert s115.first_contact_rate == Decimal("1.0000") and s115.first_contact_target == Decimal("0.65")
    assert (s115.tickets_forwarded, s115.callbacks_on_time, s115.callbacks_late) == (None, None, None)
    assert (s115.talk_seconds, s115.billable_seconds) == (150, 180)

    g = pick(report, geseke, FigureScope.ALL)
    assert (g.offered, g.answered, g.abandoned, g.answered_within_30s, g.forwarded_as_ticket) == (2, 2, 0, 1, 1)
    assert g.first_contact_rate == Decimal("0.5000") and g.first_contact_target == Decimal("0.45")
    assert g.meets_first_contact_target is True
    assert (g.talk_seconds, g.billable_seconds, g.billed_minutes) == (150, 150, Decimal("2.5000"))  # per second
    assert (g.tickets_forwarded, g.callbacks_on_time, g.callbacks_late) == (1, 1, 0)
    g115 = pick(report, geseke, FigureScope.ONE_ONE_FIVE)
    assert g115.offered == 0 and g115.first_contact_rate is None and g115.meets_first_contact_target is None
    assert g115.first_contact_target == Decimal("0.7000")

    total = pick(report, None, FigureScope.ALL)
    assert (total.offered, total.answered, total.abandoned, total.answered_within_30s) == (11, 9, 2, 6)
    assert total.first_contact_rate == Decimal("0.6250")  # 5 ÷ (5 + 2 + 1)
    assert (total.talk_seconds, total.billable_seconds, total.billed_minutes) == (695, 870, Decimal("14.5000"))
    assert (total.tickets_forwarded, total.callbacks_on_time, total.callbacks_late) == (6, 2, 3)
    assert pick(report, None, FigureScope.ONE_ONE_FIVE).callbacks_late is None

    # Taken later, D's due time has passed with no callback: late as well.
    async with unit_of_work(world.state, billing.finance()) as uow:
        later = await figures.figures(uow, date(2026, 3, 1), date(2026, 3, 31), now=APRIL_NOW)
    taken_later = pick(later, soest, FigureScope.ALL)
    assert (taken_later.callbacks_on_time, taken_later.callbacks_late) == (1, 4)

    april = await _figures_of(world, billing, date(2026, 4, 1), date(2026, 4, 30))
    a = pick(april, soest, FigureScope.ALL)
    assert a.offered == 1
    # G forwarded in April (local); F and G due in April, both open and overdue at APRIL_NOW.
    assert (a.tickets_forwarded, a.callbacks_on_time, a.callbacks_late) == (1, 0, 2)

    rows = list(csv.DictReader(io.StringIO(reports.figures_csv(report))))
    soest_row = next(r for r in rows if r["tenant"] == "Stadt Soest" and r["scope"] == "all")
    assert soest_row["first_contact_rate"] == "0.6667" and soest_row["meets_first_contact_target"] == "yes"
    assert soest_row["billed_minutes"] == "12.0000" and soest_row["offered"] == "9"
    assert (soest_row["tickets_forwarded"], soest_row["callbacks_on_time"], soest_row["callbacks_late"]) == (
        "5",
        "1",
        "3",
    )
    soest_115 = next(r for r in rows if r["tenant"] == "Stadt Soest" and r["scope"] == "115")
    assert soest_115["callbacks_late"] == ""
    assert [r["tenant"] for r in rows][-2:] == ["total", "total"]


async def _figures_of(world: World, billing: Billing, start: date, last: date):  # type: ignore[no-untyped-def]
    async with unit_of_work(world.state, billing.finance()) as uow:
        return await figures.figures(uow, start, last, now=APRIL_NOW)


async def test_a_towns_figures_are_its_own(world: World, billing: Billing) -> None:
    await load(world, billing)
    await load_tickets(world, billing)
    geseke = billing.clients["geseke"]
    async with unit_of_work(world.state, billing.finance(geseke)) as uow:
        report = await figures.figures(uow, date(2026, 3, 1), date(2026, 3, 31), now=MARCH_NOW)
        own = await tickets_reports.callback_figures(uow, list(billing.clients.values()), MARCH_10, MARCH_10)
    assert {f.tenant_id for f in report.rows} == {geseke}
    total = pick(report, None, FigureScope.ALL)
    assert total.offered == 2
    assert (total.tickets_forwarded, total.callbacks_on_time, total.callbacks_late) == (1, 1, 0)
    assert set(own) == {geseke}  # Soest's tickets are out of reach, even when asked for


async def test_rollups_kept_by_the_triggers_equal_a_rebuild(world: World, billing: Billing, admin_url: str) -> None:
    await load(world, billing)
    soest = billing.clients["soest"]
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():
            before = await conn.fetch("SELECT * FROM call_rollups WHERE tenant_id = $1 ORDER BY day, purpose", soest)
            charges = await conn.fetch("SELECT * FROM call_charges WHERE tenant_id = $1 ORDER BY call_id", soest)
            await conn.execute("SELECT set_config('app.tenant_ids', $1, true)", "{" + str(soest) + "}")
            await conn.fetchval("SELECT billing_rebuild($1, '2026-01-01', NULL)", soest)
            after = await conn.fetch("SELECT * FROM call_rollups WHERE tenant_id = $1 ORDER BY day, purpose", soest)
            charges_after = await conn.fetch("SELECT * FROM call_charges WHERE tenant_id = $1 ORDER BY call_id", soest)
            raise asyncpg.PostgresError("roll the rebuild back")
    except asyncpg.PostgresError:
        pass
    finally:
        await conn.close()
    assert [dict(r) for r in before] == [dict(r) for r in after]
    assert [dict(r) for r in charges] == [dict(r) for r in charges_after]
    assert len(before) == 4  # (10 Mar, central), (10 Mar, 115), (31 Mar, central), (1 Apr, central)
