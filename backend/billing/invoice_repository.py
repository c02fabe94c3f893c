"""SQL for invoicing: usage from the daily rollups, the ledger of what issued invoices charged, and
invoices with their lines and numbers. Explicit columns, $n parameters, tenants always given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from backend.billing.rating import Billed, LineDraft, Usage, minutes
from backend.billing.schemas import Invoice, InvoiceLine
from backend.db.rows import row_to
from backend.errors import NotFound
from backend.i18n import _l

INVOICE_COLUMNS = """tenant_id, id, operator_tenant_id, agreement_id, kind, purpose, status,
    lower(period) AS period_from, upper(period) - 1 AS period_to, period_label, number, issued_on, due_on,
    cancels_id, cancelled_by_id, reason, net_amount, tax_amount, gross_amount, currency, unrated_calls,
    buyer_reference, created_at"""
LINE_COLUMNS = """invoice_id, line_no, kind, correction, corrects_invoice_id, tariff_id,
    lower(covers) AS covers_from, upper(covers) - 1 AS covers_to, description, calls, billable_seconds,
    quantity, unit_code, unit_price, base_quantity, amount"""


# --- rollups --------------------------------------------------------------------------------------

USAGE_SUMS = """sum(billed_calls)::bigint AS calls, sum(billable_seconds)::bigint AS billable_seconds,
    sum(minimum_calls)::bigint AS minimum_calls, sum(minimum_billable_seconds)::bigint AS minimum_billable_seconds,
    sum(unrated_calls)::bigint AS unrated_calls"""


@dataclass(frozen=True, slots=True)
class UsageRow:
    tariff_id: UUID | None
    usage: Usage
    unrated_calls: int


def _usage_row(row: asyncpg.Record) -> UsageRow:
    return UsageRow(
        tariff_id=row["tariff_id"],
        usage=Usage(row["calls"], row["billable_seconds"], row["minimum_calls"], row["minimum_billable_seconds"]),
        unrated_calls=row["unrated_calls"],
    )


async def usage_by_tariff(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date) -> list[UsageRow]:
    """Billed usage of a client's days [start, end) per tariff, from the daily rollups."""
    rows = await conn.fetch(
        f"""SELECT tariff_id, {USAGE_SUMS} FROM call_rollups
            WHERE tenant_id = $1 AND day >= $2 AND day < $3
            GROUP BY tariff_id""",
        tenant_id,
        start,
        end,
    )
    return [_usage_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class InvoicedUsage:
    invoice_id: UUID
    number: str
    period: tuple[date, date]
    rows: list[UsageRow]


async def usage_of_issued_periods(conn: asyncpg.Connection, tenant_id: UUID, before: date) -> list[InvoicedUsage]:
    """Current usage per tariff within each issued usage invoice's period ending by `before`."""
    rows = await conn.fetch(
        f"""SELECT i.id AS invoice_id, i.number, lower(i.period) AS lo, upper(i.period) AS hi, r.tariff_id,
                   {USAGE_SUMS.replace("sum(", "sum(r.")}
            FROM invoices i
            JOIN call_rollups r ON r.tenant_id = i.tenant_id AND r.day >= lower(i.period) AND r.day < upper(i.period)
            WHERE i.tenant_id = $1 AND i.kind = 'invoice' AND i.purpose = 'usage' AND i.status = 'issued'
              AND upper(i.period) <= $2
            GROUP BY i.id, i.number, i.period, r.tariff_id
            ORDER BY lower(i.period), r.tariff_id""",
        tenant_id,
        before,
    )
    found: dict[UUID, InvoicedUsage] = {}
    for r in rows:
        entry = found.setdefault(r["invoice_id"], InvoicedUsage(r["invoice_id"], r["number"], (r["lo"], r["hi"]), []))
        entry.rows.append(_usage_row(r))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    tariff_id: UUID
    covers: tuple[date, date]
    kind: str
    billed: Billed


async def billed_ledger(conn: asyncpg.Connection, tenant_id: UUID) -> list[LedgerEntry]:
    """Everything issued (not cancelled) invoices charged the client, per tariff, days and kind."""
    rows = await conn.fetch(
        """SELECT l.tariff_id, lower(l.covers) AS lo, upper(l.covers) AS hi, l.kind,
                  sum(l.calls)::bigint AS calls, sum(l.billable_seconds)::bigint AS seconds, sum(l.amount) AS amount
           FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
           WHERE l.tenant_id = $1 AND i.kind = 'invoice' AND i.status = 'issued' AND l.tariff_id IS NOT NULL
             AND l.kind IN ('usage', 'minimum_charge')
           GROUP BY l.tariff_id, l.covers, l.kind""",
        tenant_id,
    )
    return [
        LedgerEntry(r["tariff_id"], (r["lo"], r["hi"]), r["kind"], Billed(r["calls"], r["seconds"], r["amount"]))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ChargedCall:
    """A rated call as the database keeps it (call_charges joined with calls)."""

    tariff_id: UUID
    at_minimum: bool
    day: date
    started_at: datetime
    caller: str | None
    purpose: str
    talk_seconds: int
    billed_seconds: int


async def charged_calls(
    conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date, recorded_by: datetime
) -> list[ChargedCall]:
    """The client's rated calls of days [start, end) recorded by `recorded_by` (an invoice run's
    moment: calls that arrived later belong to a later invoice's corrections), by start time."""
    rows = await conn.fetch(
        """SELECT ch.tariff_id, ch.at_minimum, ch.day, c.offered_at, c.caller, c.purpose, ch.talk_seconds,
                  ch.billable_seconds
           FROM call_charges ch JOIN calls c ON c.tenant_id = ch.tenant_id AND c.id = ch.call_id
           WHERE ch.tenant_id = $1 AND ch.day >= $2 AND ch.day < $3 AND ch.tariff_id IS NOT NULL
             AND c.created_at <= $4
           ORDER BY c.offered_at, c.id""",
        tenant_id,
        start,
        end,
        recorded_by,
    )
    return [
        ChargedCall(
            r["tariff_id"],
            r["at_minimum"],
            r["day"],
            r["offered_at"],
            r["caller"],
            r["purpose"],
            r["talk_seconds"],
            r["billable_seconds"],
        )
        for r in rows
    ]


# --- invoices -------------------------------------------------------------------------------------


# pg_advisory_xact_lock(classid, objid): 'invc' and the client. Running, truing up, issuing and
# cancelling a client's invoices take it first (before any invoice row), and so does a tariff
# change before it checks for invoiced days (after its tariff row), so a draft's corrections
# are checked against a ledger nobody changes meanwhile, simultaneous runs of a period take turns,
# and a lock order of row-then-advisory against advisory-then-row cannot deadlock.
INVOICING_LOCK_CLASS = 0x696E7663


async def lock_client_invoicing(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1, billing_lock_key($2))", INVOICING_LOCK_CLASS, tenant_id)


async def find_invoice_client(conn: asyncpg.Connection, invoice_id: UUID, tenant_ids: Sequence[UUID]) -> UUID | None:
    """The client an invoice bills, to take its invoicing lock before the invoice's row."""
    client: UUID | None = await conn.fetchval(
        "SELECT tenant_id FROM invoices WHERE id = $1 AND tenant_id = ANY($2::uuid[])", invoice_id, list(tenant_ids)
    )
    return client


async def issued_usage_overlapping(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date) -> str | None:
    number: str | None = await conn.fetchval(
        """SELECT number FROM invoices WHERE tenant_id = $1 AND kind = 'invoice' AND purpose = 'usage'
             AND status = 'issued' AND period && daterange($2, $3, '[)') ORDER BY number LIMIT 1""",
        tenant_id,
        start,
        end,
    )
    return number


async def issued_true_up(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date) -> str | None:
    number: str | None = await conn.fetchval(
        """SELECT number FROM invoices WHERE tenant_id = $1 AND purpose = 'true_up' AND status = 'issued'
             AND period = daterange($2, $3, '[)') ORDER BY number LIMIT 1""",
        tenant_id,
        start,
        end,
    )
    return number


async def discard_true_up_drafts(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date) -> None:
    await conn.execute(
        """UPDATE invoices SET status = 'discarded' WHERE tenant_id = $1 AND purpose = 'true_up' AND status = 'draft'
             AND period = daterange($2, $3, '[)')""",
        tenant_id,
        start,
        end,
    )


async def discard_drafts(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date | None) -> int:
    """Drafts of usage invoices overlapping [start, end) (end None: open-ended) are discarded."""
    status = await conn.execute(
        """UPDATE invoices SET status = 'discarded' WHERE tenant_id = $1 AND kind = 'invoice' AND purpose = 'usage'
             AND status = 'draft' AND period && daterange($2, $3, '[)')""",
        tenant_id,
        start,
        end,
    )
    return int(status.split()[-1])


async def insert_invoice(
    conn: asyncpg.Connection,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    operator_id: UUID,
    agreement_id: UUID,
    kind: str,
    purpose: str,
    start: date,
    end: date,
    label: str,
    net: Decimal,
    unrated_calls: int,
    created_by: str,
    cancels_id: UUID | None = None,
    reason: str = "",
) -> None:
    await conn.execute(
        """INSERT INTO invoices (tenant_id, id, operator_tenant_id, agreement_id, kind, purpose, status, period,
                                 period_label, net_amount, tax_amount, gross_amount, unrated_calls, created_by,
                                 cancels_id, reason)
           VALUES ($1, $2, $3, $4, $5, $6, 'draft', daterange($7, $8, '[)'), $9, $10, 0, $10, $11, $12, $13, $14)""",
        tenant_id,
        invoice_id,
        operator_id,
        agreement_id,
        kind,
        purpose,
        start,
        end,
        label,
        net,
        unrated_calls,
        created_by,
        cancels_id,
        reason,
    )


@dataclass(frozen=True, slots=True)
class NewLine:
    draft: LineDraft
    correction: bool
    corrects_invoice_id: UUID | None
    tariff_id: UUID | None
    covers: tuple[date, date]
    description: str


async def insert_lines(conn: asyncpg.Connection, tenant_id: UUID, invoice_id: UUID, lines: Sequence[NewLine]) -> None:
    await conn.executemany(
        """INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, kind, correction, corrects_invoice_id,
                                      tariff_id, covers, description, calls, billable_seconds, quantity, unit_code,
                                      unit_price, base_quantity, amount)
           VALUES ($1, $2, $3, $4, $5, $6, $7, daterange($8, $9, '[)'), $10, $11, $12, $13, $14, $15, $16, $17)""",
        [
            (
                tenant_id,
                invoice_id,
                number,
                line.draft.kind.value,
                line.correction,
                line.corrects_invoice_id,
                line.tariff_id,
                line.covers[0],
                line.covers[1],
                line.description,
                line.draft.calls,
                line.draft.billable_seconds,
                line.draft.quantity,
                line.draft.unit_code,
                line.draft.unit_price,
                line.draft.base_quantity,
                line.draft.amount,
            )
            for number, line in enumerate(lines, start=1)
        ],
    )


async def copy_lines(conn: asyncpg.Connection, tenant_id: UUID, source_id: UUID, target_id: UUID) -> None:
    await conn.execute(
        """INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, kind, correction, corrects_invoice_id,
                                      tariff_id, covers, description, calls, billable_seconds, quantity, unit_code,
                                      unit_price, base_quantity, amount)
           SELECT tenant_id, $3, line_no, kind, correction, corrects_invoice_id, tariff_id, covers, description,
                  calls, billable_seconds, quantity, unit_code, unit_price, base_quantity, amount
           FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY line_no""",
        tenant_id,
        source_id,
        target_id,
    )


def _line(row: asyncpg.Record) -> InvoiceLine:
    values = dict(row)
    values.pop("invoice_id")
    values["minutes"] = minutes(values["billable_seconds"])
    return row_to(InvoiceLine, values)


async def _with_lines(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[Invoice]:
    if not rows:
        return []
    line_rows = await conn.fetch(
        f"""SELECT {LINE_COLUMNS} FROM invoice_lines
            WHERE tenant_id = ANY($1::uuid[]) AND invoice_id = ANY($2::uuid[]) ORDER BY invoice_id, line_no""",
        list({r["tenant_id"] for r in rows}),
        [r["id"] for r in rows],
    )
    lines: dict[UUID, list[InvoiceLine]] = {}
    for line in line_rows:
        lines.setdefault(line["invoice_id"], []).append(_line(line))
    return [row_to(Invoice, {**dict(r), "lines": lines.get(r["id"], [])}) for r in rows]


async def find_invoice(
    conn: asyncpg.Connection, invoice_id: UUID, tenant_ids: Sequence[UUID], *, for_update: bool = False
) -> Invoice | None:
    row = await conn.fetchrow(
        f"""SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1 AND tenant_id = ANY($2::uuid[])
            {"FOR UPDATE" if for_update else ""}""",
        invoice_id,
        list(tenant_ids),
    )
    if row is None:
        return None
    return (await _with_lines(conn, [row]))[0]


async def get_invoice(conn: asyncpg.Connection, invoice_id: UUID, tenant_ids: Sequence[UUID]) -> Invoice:
    invoice = await find_invoice(conn, invoice_id, tenant_ids)
    if invoice is None:
        raise NotFound(_l("invoice not found"))
    return invoice


async def list_invoices(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], year: int | None, include_discarded: bool
) -> list[Invoice]:
    rows = await conn.fetch(
        f"""SELECT {INVOICE_COLUMNS} FROM invoices
            WHERE tenant_id = ANY($1::uuid[])
              AND ($2::int IS NULL OR period && daterange(make_date($2, 1, 1), make_date($2 + 1, 1, 1), '[)'))
              AND ($3 OR status <> 'discarded')
            ORDER BY lower(period), created_at""",
        list(tenant_ids),
        year,
        include_discarded,
    )
    return await _with_lines(conn, rows)


async def invoice_parties(
    conn: asyncpg.Connection, tenant_id: UUID, invoice_id: UUID
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    row = await conn.fetchrow(
        "SELECT seller, buyer FROM invoices WHERE tenant_id = $1 AND id = $2", tenant_id, invoice_id
    )
    assert row is not None
    return row["seller"], row["buyer"]


async def next_invoice_number(conn: asyncpg.Connection, operator_id: UUID, year: int) -> int:
    """The next number of the operator's year. The counter row stays locked (as by SELECT … FOR
    UPDATE) until the transaction ends: concurrent issues queue, a rollback returns the number."""
    number: int = await conn.fetchval(
        """INSERT INTO invoice_counters AS c (tenant_id, year, last_number) VALUES ($1, $2, 1)
           ON CONFLICT (tenant_id, year) DO UPDATE SET last_number = c.last_number + 1
           RETURNING last_number""",
        operator_id,
        year,
    )
    return number


async def mark_issued(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    invoice_id: UUID,
    *,
    number: str,
    year: int,
    seq: int,
    issued_on: date,
    due_on: date,
    issued_by: str,
    seller: dict[str, Any],
    buyer: dict[str, Any],
    buyer_reference: str | None,
) -> None:
    await conn.execute(
        """UPDATE invoices SET status = 'issued', number = $3, number_year = $4, number_seq = $5, issued_on = $6,
                  due_on = $7, issued_at = now(), issued_by = $8, seller = $9, buyer = $10, buyer_reference = $11
           WHERE tenant_id = $1 AND id = $2 AND status = 'draft'""",
        tenant_id,
        invoice_id,
        number,
        year,
        seq,
        issued_on,
        due_on,
        issued_by,
        seller,
        buyer,
        buyer_reference,
    )


async def mark_cancelled(conn: asyncpg.Connection, tenant_id: UUID, invoice_id: UUID, credit_note_id: UUID) -> None:
    await conn.execute(
        """UPDATE invoices SET status = 'cancelled', cancelled_by_id = $3, cancelled_at = now()
           WHERE tenant_id = $1 AND id = $2 AND status = 'issued'""",
        tenant_id,
        invoice_id,
        credit_note_id,
    )


async def issued_numbers(conn: asyncpg.Connection, operator_id: UUID, year: int) -> list[int]:
    return [
        r["number_seq"]
        for r in await conn.fetch(
            """SELECT number_seq FROM invoices WHERE operator_tenant_id = $1 AND number_year = $2
               ORDER BY number_seq""",
            operator_id,
            year,
        )
    ]
