"""Invoices: draft → issued → cancelled by a credit note; numbers without gaps per operator and
year, even with concurrent runs on separate connections; late calls as correction lines in the
next invoice; issued documents never changed or deleted (also in the database)."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from auth.errors import Forbidden
from backend import clock
from backend.billing import invoice_repository, invoices
from backend.billing.schemas import (
    CancellationInput,
    Invoice,
    InvoiceKind,
    InvoicePurpose,
    InvoiceStatus,
)
from backend.db.roles import APP_ROLE
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.state import unit_of_work
from tests.billing.support import Billing, add_calls, make_billing, profile, talks
from tests.support.world import World

pytestmark = pytest.mark.clock  # invoices are issued on today's date and numbered by its year


async def run(billing: Billing, town: str, period: str) -> Invoice:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await invoices.run_invoice(uow, billing.clients[town], period)


async def issue(billing: Billing, invoice: Invoice) -> Invoice:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await invoices.issue_invoice(uow, invoice.id)


async def test_draft_issue_and_cancel_by_credit_note(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 7, 1), 61, 59))
    draft = await run(billing, "soest", "2026-07")
    assert draft.status is InvoiceStatus.DRAFT and draft.number is None
    assert draft.kind is InvoiceKind.INVOICE and draft.purpose is InvoicePurpose.USAGE
    assert (draft.period_from, draft.period_to, draft.net_amount) == (
        date(2026, 7, 1),
        date(2026, 7, 31),
        Decimal("2.85"),
    )
    # Running the period again replaces the draft (the old one is kept as discarded, never numbered).
    again = await run(billing, "soest", "2026-07")
    assert again.id != draft.id
    issued = await issue(billing, again)
    year = clock.today().year
    assert issued.status is InvoiceStatus.ISSUED and issued.number == f"{year}-00001"
    assert issued.issued_on == clock.today() and issued.due_on is not None
    assert issued.buyer_reference is not None and issued.buyer_reference.startswith("05974020-")
    with pytest.raises(Conflict, match="already invoiced"):
        await run(billing, "soest", "2026-07")
    with pytest.raises(Conflict, match="only drafts"):
        await issue(billing, issued)
    async with unit_of_work(billing.state, billing.finance()) as uow:
        listed = await invoices.list_invoices(uow, billing.slugs[soest], include_discarded=True)
        assert {i.status for i in listed} == {InvoiceStatus.ISSUED, InvoiceStatus.DISCARDED}
        credit = await invoices.cancel_invoice(uow, issued.id, CancellationInput(reason="Falscher Zeitraum"))
        with pytest.raises(Conflict, match="only issued invoices"):
            await invoices.cancel_invoice(uow, issued.id, CancellationInput(reason="twice"))
        cancelled = await invoices.invoice(uow, issued.id)
    assert credit.kind is InvoiceKind.CREDIT_NOTE and credit.purpose is InvoicePurpose.CANCELLATION
    assert credit.status is InvoiceStatus.ISSUED and credit.number == f"{year}-00002"  # numbered itself
    assert credit.cancels_id == issued.id and credit.reason == "Falscher Zeitraum"
    assert credit.net_amount == issued.net_amount and [line.amount for line in credit.lines] == [
        line.amount for line in issued.lines
    ]
    assert cancelled.status is InvoiceStatus.CANCELLED and cancelled.cancelled_by_id == credit.id
    assert cancelled.net_amount == issued.net_amount and cancelled.lines == issued.lines
    # The period is free again: a new invoice replaces the cancelled one.
    replacement = await issue(billing, await run(billing, "soest", "2026-07"))
    assert replacement.number == f"{year}-00003" and replacement.net_amount == Decimal("2.85")


async def test_an_empty_draft_is_not_issued(billing: Billing) -> None:
    draft = await run(billing, "geseke", "2026-08")
    assert draft.lines == [] and draft.net_amount == 0
    with pytest.raises(ValidationFailed, match="nothing to invoice"):
        await issue(billing, draft)


async def test_only_the_operators_finance_issues(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 9, 1), 61))
    draft = await run(billing, "soest", "2026-09")
    async with unit_of_work(billing.state, billing.finance(soest)) as uow:
        assert (await invoices.invoice(uow, draft.id)).id == draft.id  # the town sees it
        with pytest.raises(Forbidden):
            await invoices.issue_invoice(uow, draft.id)
        with pytest.raises(Forbidden):
            await invoices.run_invoice(uow, soest, "2026-10")


async def test_yearly_invoice_lines_per_tariff_period(world: World, billing: Billing) -> None:
    geseke = billing.clients["geseke"]
    await billing.add_tariff("geseke", date(2025, 1, 1), "0.95", valid_to=date(2025, 6, 30))
    await billing.add_tariff("geseke", date(2025, 7, 1), "0.90", minimum="0.50")
    await add_calls(
        world.state.pool,
        geseke,
        billing.operator,
        [*talks(date(2025, 2, 3), 61, 59), *talks(date(2025, 9, 1), 30, 125), *talks(date(2026, 1, 2), 60)],
    )
    invoice = await run(billing, "geseke", "2025")
    summary = [
        (line.kind.value, line.covers_from, line.covers_to, line.calls, line.billable_seconds, line.amount)
        for line in invoice.lines
    ]
    assert summary == [
        ("usage", date(2025, 1, 1), date(2025, 6, 30), 2, 180, Decimal("2.85")),
        # 30 s → 60 s at 0.90 = 0.90 ≥ 0.50; 125 s → 180 s = 2.70: no call at the minimum
        ("usage", date(2025, 7, 1), date(2025, 12, 31), 2, 240, Decimal("3.60")),
    ]
    assert invoice.net_amount == Decimal("6.45") and invoice.period_label == "2025"


async def test_late_calls_go_into_the_next_invoice_as_corrections(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", minimum="1.00")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 20), 61, 59))
    # 61 s → 120 s = 1.90 ≥ 1.00; 59 s → 60 s = 0.95 < 1.00 → the minimum.
    january = await issue(billing, await run(billing, "soest", "2026-01"))
    assert [(line.kind.value, line.calls, line.amount) for line in january.lines] == [
        ("usage", 1, Decimal("1.90")),
        ("minimum_charge", 1, Decimal("1.00")),
    ]
    # Records of two more January calls arrive after the January invoice was issued.
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 31), 185, 10, hour=23))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 2, 2), 120))
    async with unit_of_work(billing.state, billing.finance()) as uow:
        unchanged = await invoices.invoice(uow, january.id)
    assert unchanged.lines == january.lines and unchanged.net_amount == Decimal("2.90")  # never silently
    february = await run(billing, "soest", "2026-02")
    lines = [
        (line.correction, line.kind.value, line.covers_from, line.calls, line.billable_seconds, line.amount)
        for line in february.lines
    ]
    assert lines == [
        (False, "usage", date(2026, 2, 1), 1, 120, Decimal("1.90")),
        (True, "usage", date(2026, 1, 1), 1, 240, Decimal("3.80")),
        (True, "minimum_charge", date(2026, 1, 1), 1, 60, Decimal("1.00")),
    ]
    assert all(line.corrects_invoice_id == january.id for line in february.lines if line.correction)
    assert january.number is not None and january.number in february.lines[1].description
    issued = await issue(billing, february)
    assert issued.net_amount == Decimal("6.70")
    # Nothing is billed twice: the March run has no corrections left.
    march = await run(billing, "soest", "2026-03")
    assert march.lines == []


async def test_corrections_after_a_cancelled_invoice_are_not_billed_twice(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 4, 2), 60))
    april = await issue(billing, await run(billing, "soest", "2026-04"))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 4, 3), 60))  # late
    may = await issue(billing, await run(billing, "soest", "2026-05"))
    assert [(line.correction, line.calls) for line in may.lines] == [(True, 1)]
    async with unit_of_work(billing.state, billing.finance()) as uow:
        await invoices.cancel_invoice(uow, april.id, CancellationInput(reason="Neuberechnung"))
    # April again: both calls exist, one of them is already billed by May's correction line.
    again = await run(billing, "soest", "2026-04")
    assert [(line.correction, line.calls, line.amount) for line in again.lines] == [(False, 1, Decimal("0.95"))]


async def test_two_drafts_with_the_same_late_calls_are_not_both_issued(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 5), 60))
    await issue(billing, await run(billing, "soest", "2026-01"))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 6), 600))  # late: 9.50
    february, march = await run(billing, "soest", "2026-02"), await run(billing, "soest", "2026-03")
    assert [(line.correction, line.amount) for line in february.lines] == [(True, Decimal("9.50"))]
    assert [(line.correction, line.amount) for line in march.lines] == [(True, Decimal("9.50"))]
    # Issued one after the other, and (below) concurrently: the second is refused, unchanged.
    assert (await issue(billing, february)).net_amount == Decimal("9.50")
    with pytest.raises(Conflict, match="out of date"):
        await issue(billing, march)
    async with unit_of_work(billing.state, billing.finance()) as uow:
        assert (await invoices.invoice(uow, march.id)).status is InvoiceStatus.DRAFT
    # Running March again leaves nothing to correct.
    assert (await run(billing, "soest", "2026-03")).lines == []


async def test_concurrent_issues_with_the_same_corrections_charge_once(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 5), 60))
    await issue(billing, await run(billing, "soest", "2026-01"))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 1, 6), 120))  # late
    drafts = [await run(billing, "soest", period) for period in ("2026-02", "2026-03", "2026-04")]
    outcomes = await asyncio.gather(*(issue(billing, d) for d in drafts), return_exceptions=True)
    issued = [o for o in outcomes if isinstance(o, Invoice)]
    assert len(issued) == 1 and issued[0].net_amount == Decimal("1.90")
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, Invoice))


async def test_a_draft_correcting_a_cancelled_and_reissued_period_is_refused(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 6, 1), 60))
    june = await issue(billing, await run(billing, "soest", "2026-06"))
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 6, 2), 600))  # late
    july = await run(billing, "soest", "2026-07")  # carries the late call as a correction
    async with unit_of_work(billing.state, billing.finance()) as uow:
        await invoices.cancel_invoice(uow, june.id, CancellationInput(reason="Neuberechnung"))
    june_again = await issue(billing, await run(billing, "soest", "2026-06"))
    assert june_again.net_amount == Decimal("10.45")  # both calls
    with pytest.raises(Conflict, match="out of date"):
        await issue(billing, july)


async def test_invoice_numbers_have_no_gaps_under_concurrency(world: World) -> None:
    """Twelve invoices issued concurrently, each in its own transaction on its own connection,
    two of them rolled back after taking a number: the committed numbers are 1 … 10."""
    billing = await make_billing(world.state, towns=tuple(f"town{i}" for i in range(12)))
    for town, tenant_id in billing.clients.items():
        await billing.add_tariff(town, date(2026, 1, 1), "0.95")
        await add_calls(world.state.pool, tenant_id, billing.operator, talks(date(2026, 3, 3), 61))
    drafts = [await run(billing, town, "2026-03") for town in billing.clients]

    class Abort(Exception):
        pass

    async def issue_one(index: int, draft: Invoice) -> str | None:
        try:
            async with unit_of_work(billing.state, billing.finance()) as uow:
                pid = await uow.conn.fetchval("SELECT pg_backend_pid()")
                issued = await invoices.issue_invoice(uow, draft.id)
                await asyncio.sleep(0.01)  # hold the counter row a little while others queue
                if index in (3, 7):
                    raise Abort(pid)
                return issued.number
        except Abort:
            return None

    results = await asyncio.gather(*(issue_one(i, d) for i, d in enumerate(drafts)))
    numbers = sorted(int(n.split("-")[1]) for n in results if n)
    assert numbers == list(range(1, 11))
    async with unit_of_work(billing.state, billing.finance()) as uow:
        assert await invoice_repository.issued_numbers(uow.conn, billing.operator, clock.today().year) == list(
            range(1, 11)
        )
        # The two aborted drafts are still drafts and take the next numbers.
        for draft in (drafts[3], drafts[7]):
            await invoices.issue_invoice(uow, draft.id)
        assert await invoice_repository.issued_numbers(uow.conn, billing.operator, clock.today().year) == list(
            range(1, 13)
        )


async def test_issued_invoices_are_never_changed_or_deleted_in_the_database(
    world: World, billing: Billing, admin_url: str
) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 11, 2), 61))
    issued = await issue(billing, await run(billing, "soest", "2026-11"))
    conn = await asyncpg.connect(admin_url)  # a superuser: only the triggers stand in the way
    try:
        for statement in (
            "UPDATE invoices SET net_amount = 0, gross_amount = 0 WHERE id = $1",
            "UPDATE invoices SET number = number || 'x' WHERE id = $1",
            "UPDATE invoices SET status = 'draft' WHERE id = $1",
            "DELETE FROM invoices WHERE id = $1",
            "UPDATE invoice_lines SET amount = 0 WHERE invoice_id = $1",
            "DELETE FROM invoice_lines WHERE invoice_id = $1",
        ):
            with pytest.raises(asyncpg.IntegrityConstraintViolationError):
                await conn.execute(statement, issued.id)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="drafts only"):
            await conn.execute(
                """INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, kind, covers, description, calls,
                                              billable_seconds, quantity, unit_code, unit_price, amount)
                   VALUES ($1, $2, 99, 'usage', '[2026-11-01,2026-11-02)', 'x', 1, 60, 1, 'MIN', 1, 1)""",
                soest,
                issued.id,
            )
        privileges = await conn.fetch(
            """SELECT table_name, privilege_type FROM information_schema.role_table_grants
               WHERE grantee = $1 AND table_name IN ('invoices', 'invoice_lines', 'call_rollups', 'call_charges')""",
            APP_ROLE,
        )
    finally:
        await conn.close()
    granted = {(r["table_name"], r["privilege_type"]) for r in privileges}
    assert ("invoices", "DELETE") not in granted and ("invoice_lines", "DELETE") not in granted
    assert ("invoice_lines", "UPDATE") not in granted
    assert {p for t, p in granted if t in ("call_rollups", "call_charges")} == {"SELECT"}
    async with unit_of_work(billing.state, billing.finance()) as uow:
        assert (await invoices.invoice(uow, issued.id)).lines == issued.lines


async def test_an_iban_typed_with_spaces_is_normalised(billing: Billing) -> None:
    """The print form from a letterhead ("DE02 1203 …", lower case too) is stored in the electronic
    form XRechnung needs; a wrong check digit is still refused."""
    slug = billing.slugs[billing.operator]
    async with unit_of_work(billing.state, billing.finance()) as uow:
        saved = await invoices.set_billing_profile(
            uow, slug, profile("Kreis Soest", iban="de02 1203 0000 0000 2020 51")
        )
        assert saved.iban == "DE02120300000000202051"
        with pytest.raises(ValidationFailed, match="not a valid IBAN") as refused:
            await invoices.set_billing_profile(uow, slug, profile("Kreis Soest", iban="DE03 1203 0000 0000 2020 51"))
        assert refused.value.field == "iban"


async def test_the_operators_finance_maintains_its_clients_billing_profiles(billing: Billing) -> None:
    """Kreis finance sets Stadt Soest's invoice address (was 404); Soest's finance its own, never
    Geseke's (404: out of its reach)."""
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    async with unit_of_work(billing.state, billing.finance()) as uow:
        saved = await invoices.set_billing_profile(uow, billing.slugs[soest], profile("Stadt Soest – Kämmerei"))
        assert saved.tenant_id == soest and saved.legal_name == "Stadt Soest – Kämmerei"
    async with unit_of_work(billing.state, billing.finance(soest)) as uow:
        own = await invoices.set_billing_profile(uow, billing.slugs[soest], profile("Stadt Soest"))
        assert own.version == saved.version + 1
        with pytest.raises(NotFound):
            await invoices.set_billing_profile(uow, billing.slugs[geseke], profile("Stadt Geseke"))
