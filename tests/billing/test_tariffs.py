"""Tariffs: no overlapping periods (an EXCLUSION constraint), the tariff of a call's start day
applies (a change mid-month gives two lines), raw and billable seconds both kept, re-rating when
a tariff is added, and no change for days already invoiced (service and database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from backend.billing import invoices, tariffs
from backend.billing.schemas import TariffCreate, TariffInput
from backend.db.tenancy import tenant_transaction
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.state import unit_of_work
from tests.billing.support import Billing, CallSpec, add_calls, local, talks
from tests.support.world import World


async def test_overlapping_tariffs_are_refused(billing: Billing) -> None:
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", valid_to=date(2026, 12, 31))
    with pytest.raises(Conflict, match="overlaps"):
        await billing.add_tariff("soest", date(2026, 12, 31), "1.05")
    with pytest.raises(Conflict, match="overlaps"):
        await billing.add_tariff("soest", date(2025, 6, 1), "1.05")  # open-ended: reaches into 2026
    await billing.add_tariff("soest", date(2027, 1, 1), "1.05")  # adjacent is fine
    await billing.add_tariff("geseke", date(2026, 1, 1), "0.95")  # another client is independent


async def test_the_exclusion_constraint_refuses_overlaps_in_the_database(billing: Billing, admin_url: str) -> None:
    """Even a write that bypasses the service (as the owner) cannot make periods overlap."""
    first = await billing.add_tariff("soest", date(2026, 1, 1), "0.95", valid_to=date(2026, 6, 30))
    conn = await asyncpg.connect(admin_url)
    try:
        constraints = {
            r["conname"]
            for r in await conn.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'tariffs'::regclass AND contype = 'x'"
            )
        }
        assert {"tariffs_no_overlap_per_agreement", "tariffs_no_overlap_per_client"} <= constraints
        with pytest.raises(asyncpg.ExclusionViolationError):
            await conn.execute(
                """INSERT INTO tariffs (tenant_id, id, agreement_id, operator_tenant_id, valid, price_per_minute,
                                        created_by)
                   VALUES ($1, gen_random_uuid(), $2, $3, '[2026-06-30,2026-08-01)', 1.00, 'sql')""",
                first.tenant_id,
                first.agreement_id,
                billing.operator,
            )
    finally:
        await conn.close()


async def test_tariff_terms_are_validated(billing: Billing) -> None:
    with pytest.raises(ValidationFailed, match="decimal places"):
        await billing.add_tariff("soest", date(2026, 1, 1), "0.12345")
    with pytest.raises(ValidationFailed, match="positive"):
        await billing.add_tariff("soest", date(2026, 1, 1), "0")
    with pytest.raises(ValidationFailed, match="decimal places"):
        await billing.add_tariff("soest", date(2026, 1, 1), "NaN")
    with pytest.raises(ValidationFailed, match="within its agreement"):
        await billing.add_tariff("soest", date(2017, 1, 1), "0.95")
    with pytest.raises(ValidationFailed, match="ends on or after"):
        await billing.add_tariff("soest", date(2026, 2, 1), "0.95", valid_to=date(2026, 1, 31))


async def test_a_towns_finance_cannot_set_tariffs(billing: Billing) -> None:
    from auth.errors import Forbidden

    soest = billing.clients["soest"]
    async with unit_of_work(billing.state, billing.finance(soest)) as uow:
        with pytest.raises(Forbidden):
            await tariffs.create_tariff(
                uow,
                TariffCreate(
                    agreement_id=billing.agreements["soest"],
                    valid_from=date(2026, 1, 1),
                    price_per_minute=Decimal("0.01"),
                ),
            )
    geseke = billing.clients["geseke"]
    async with unit_of_work(billing.state, billing.finance(geseke)) as uow:
        with pytest.raises(NotFound):  # Soest's agreement is out of Geseke's reach
            await tariffs.create_tariff(
                uow,
                TariffCreate(
                    agreement_id=billing.agreements["soest"],
                    valid_from=date(2026, 1, 1),
                    price_per_minute=Decimal("0.01"),
                ),
            )


async def test_tariff_change_mid_month_gives_a_line_per_tariff(world: World, billing: Billing) -> None:
    """Until 14 March 0.95 per started minute; from 15 March 1.10 to the second. A call starting
    at 23:59:30 on the 14th (local) ends after midnight and still uses the old tariff."""
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", valid_to=date(2026, 3, 14))
    await billing.add_tariff("soest", date(2026, 3, 15), "1.10", increment=1)
    await add_calls(
        world.state.pool,
        soest,
        billing.operator,
        [
            *talks(date(2026, 3, 2), 61, 59),  # old: 120 + 60 = 180 s
            CallSpec(local(date(2026, 3, 14), 23, 59, 30), talk_seconds=90),  # old: 120 s
            *talks(date(2026, 3, 15), 61, 59),  # new: 120 s
            *talks(date(2026, 4, 1), 600),  # next month: not in this invoice
        ],
    )
    async with unit_of_work(world.state, billing.finance()) as uow:
        invoice = await invoices.run_invoice(uow, soest, "2026-03")
    assert [(line.covers_from, line.covers_to) for line in invoice.lines] == [
        (date(2026, 3, 1), date(2026, 3, 14)),
        (date(2026, 3, 15), date(2026, 3, 31)),
    ]
    old, new = invoice.lines
    assert (old.calls, old.billable_seconds, old.quantity, old.unit_code, old.amount) == (
        3,
        300,
        Decimal(5),
        "MIN",
        Decimal("4.75"),
    )
    assert (new.calls, new.billable_seconds, new.quantity, new.unit_code, new.amount) == (
        2,
        120,
        Decimal(120),
        "SEC",
        Decimal("2.20"),
    )
    assert new.unit_price == Decimal("1.10") and new.base_quantity == 60
    assert invoice.net_amount == Decimal("6.95") == invoice.gross_amount and invoice.tax_amount == 0


async def test_raw_and_billable_seconds_are_both_kept(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    ids = await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 5, 4), 61, 59, 0))
    async with tenant_transaction(world.state.pool, [soest], readonly=True) as conn:
        rows = await conn.fetch(
            """SELECT c.id, c.talk_seconds, ch.billable_seconds, ch.tariff_id FROM calls c
               LEFT JOIN call_charges ch ON ch.tenant_id = c.tenant_id AND ch.call_id = c.id
               WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])""",
            soest,
            ids,
        )
    kept = {r["talk_seconds"]: r["billable_seconds"] for r in rows}
    assert kept == {61: 120, 59: 60, 0: None}  # a call without talk is not billed


@pytest.mark.parametrize(
    ("first", "increment", "billed", "label", "amount"),
    [
        # 0 s is not billed; 29/30/31 s and 59/60/61 s at the edges; 0.95 EUR per minute.
        (60, 1, {0: None, 29: 60, 30: 60, 31: 60, 59: 60, 60: 60, 61: 61}, "60/1", "5.72"),  # 361 s: 5.7158…
        (30, 1, {0: None, 29: 30, 30: 30, 31: 31, 59: 59, 60: 60, 61: 61}, "30/1", "4.29"),  # 271 s: 4.2908…
        (60, 60, {0: None, 29: 60, 30: 60, 31: 60, 59: 60, 60: 60, 61: 120}, "60/60", "6.65"),  # 7 min
        (1, 1, {0: None, 29: 29, 30: 30, 31: 31, 59: 59, 60: 60, 61: 61}, "1/1", "4.28"),  # 270 s: 4.275, half up
    ],
)
async def test_a_first_period_then_increment_at_the_minute_edges(
    world: World, billing: Billing, first: int, increment: int, billed: dict[int, int | None], label: str, amount: str
) -> None:
    """The database rates each call as the trade's tariff says, keeps raw and billed seconds, and
    the invoice line is the billed seconds at the price, rounded once."""
    soest = billing.clients["soest"]
    tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95", increment=increment, first_period=first)
    assert (tariff.first_period_seconds, tariff.increment_seconds, tariff.billing_increment) == (
        first,
        increment,
        label,
    )
    ids = await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 5, 4), *billed))
    async with tenant_transaction(world.state.pool, [soest], readonly=True) as conn:
        rows = await conn.fetch(
            """SELECT c.talk_seconds, ch.talk_seconds AS raw, ch.billable_seconds FROM calls c
               LEFT JOIN call_charges ch ON ch.tenant_id = c.tenant_id AND ch.call_id = c.id
               WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])""",
            soest,
            ids,
        )
    assert {r["talk_seconds"]: r["billable_seconds"] for r in rows} == billed
    assert all(r["raw"] in (None, r["talk_seconds"]) for r in rows)
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-05")
    [line] = draft.lines
    assert line.calls == 6 and line.billable_seconds == sum(s or 0 for s in billed.values())
    assert line.amount == Decimal(amount)
    assert label in line.description or (first, increment) in ((60, 60), (1, 1))


async def test_a_first_period_must_be_a_multiple_of_the_increment(billing: Billing) -> None:
    with pytest.raises(ValidationFailed, match="multiple of the increment") as refused:
        await billing.add_tariff("soest", date(2026, 1, 1), "0.95", increment=60, first_period=30)
    assert refused.value.field == "firstPeriodSeconds"


async def test_a_tariff_change_of_the_first_period_re_rates(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95", increment=1)
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 5, 4), 20))
    async with unit_of_work(world.state, billing.finance()) as uow:
        changed = await tariffs.change_tariff(
            uow,
            tariff.id,
            TariffInput(
                valid_from=date(2026, 1, 1),
                price_per_minute=Decimal("0.95"),
                increment_seconds=1,
                first_period_seconds=60,
            ),
        )
        draft = await invoices.run_invoice(uow, soest, "2026-05")
    assert changed.billing_increment == "60/1"
    assert [(line.billable_seconds, line.amount) for line in draft.lines] == [(60, Decimal("0.95"))]


async def test_calls_before_their_tariff_are_rated_when_it_arrives(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 6, 1), 61, 59))
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-06")
    assert draft.lines == [] and draft.unrated_calls == 2
    await billing.add_tariff("soest", date(2026, 6, 1), "0.95")
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-06")
    assert draft.unrated_calls == 0 and [line.amount for line in draft.lines] == [Decimal("2.85")]


async def test_changing_a_tariff_for_an_invoiced_period_is_refused(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 10), 61, 59))
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-01")
        await invoices.issue_invoice(uow, draft.id)

    def change(**fields: object) -> TariffInput:
        values: dict[str, object] = {"valid_from": date(2026, 1, 1), "price_per_minute": Decimal("0.95"), **fields}
        return TariffInput(**values)  # type: ignore[arg-type]

    async with unit_of_work(world.state, billing.finance()) as uow:
        for refused in (
            change(price_per_minute=Decimal("1.00")),
            change(increment_seconds=1),
            change(minimum_charge=Decimal("0.10")),
            change(valid_from=date(2026, 1, 15)),
            change(valid_to=date(2026, 1, 20)),
        ):
            with pytest.raises(Conflict, match="already invoiced"):
                await tariffs.change_tariff(uow, tariff.id, refused)
    async with unit_of_work(world.state, billing.finance()) as uow:
        # Days after the invoiced month may still change: end the tariff in June, note only.
        ended = await tariffs.change_tariff(uow, tariff.id, change(valid_to=date(2026, 6, 30), note="bis Juni"))
        assert ended.valid_to == date(2026, 6, 30) and ended.version == 2
        with pytest.raises(Conflict, match="already invoiced"):  # a new tariff cannot reach into January
            await tariffs.create_tariff(
                uow,
                TariffCreate(
                    agreement_id=billing.agreements["soest"],
                    valid_from=date(2025, 12, 1),
                    valid_to=date(2026, 1, 5),
                    price_per_minute=Decimal("2"),
                ),
            )


async def test_the_database_refuses_tariff_changes_for_invoiced_days(
    world: World, billing: Billing, admin_url: str
) -> None:
    soest = billing.clients["soest"]
    tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 2, 10), 61))
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-02")
        await invoices.issue_invoice(uow, draft.id)
    conn = await asyncpg.connect(admin_url)
    try:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="already invoiced"):
            await conn.execute("UPDATE tariffs SET price_per_minute = 0.01 WHERE id = $1", tariff.id)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="already invoiced"):
            await conn.execute("DELETE FROM tariffs WHERE id = $1", tariff.id)
        await conn.execute("UPDATE tariffs SET note = 'fine' WHERE id = $1", tariff.id)
    finally:
        await conn.close()


async def test_a_tariff_change_discards_drafts_of_its_days(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    tariff = await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 8, 3), 61))
    async with unit_of_work(world.state, billing.finance()) as uow:
        july = await invoices.run_invoice(uow, soest, "2026-07")
        august = await invoices.run_invoice(uow, soest, "2026-08")
        assert august.net_amount == Decimal("1.90")
        # From August the price changes: the August draft is stale and discarded, July's is not.
        await tariffs.change_tariff(
            uow,
            tariff.id,
            TariffInput(valid_from=date(2026, 1, 1), valid_to=date(2026, 7, 31), price_per_minute=Decimal("0.95")),
        )
        await tariffs.create_tariff(
            uow,
            TariffCreate(
                agreement_id=billing.agreements["soest"], valid_from=date(2026, 8, 1), price_per_minute=Decimal("1.20")
            ),
        )
        assert (await invoices.invoice(uow, july.id)).status.value == "draft"
        assert (await invoices.invoice(uow, august.id)).status.value == "discarded"
        with pytest.raises(Conflict, match="only drafts"):
            await invoices.issue_invoice(uow, august.id)
        again = await invoices.run_invoice(uow, soest, "2026-08")
    assert again.net_amount == Decimal("2.40")
