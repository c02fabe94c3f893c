"""The itemised call list (Einzelverbindungsnachweis) of an invoice, pure: the caller's number as
the town wants it shown, each call's share of its line in cents, and the CSV rendering.

A line is rounded once (decision 008), so calls rounded one by one would not add up to it: each
call gets its exact amount rounded down to the cent, and the cents left go to the calls with the
largest remainders (the largest-remainder method, as seats are apportioned) — the calls of a line
then add up to the line exactly, and no call is off by a cent or more.
"""

from __future__ import annotations

import io
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from backend.billing.rating import CENT
from backend.billing.reports import cell, writer_for
from backend.billing.schemas import CsvDialect, ItemisedCaller, ItemisedCallList


def shown_caller(number: str | None, how: ItemisedCaller, hidden_digits: int) -> str | None:
    """`+4929214711` with 3 hidden → `+4929214xxx`; None when left out or not known (erased)."""
    if number is None or how is ItemisedCaller.OMITTED:
        return None
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    hide = set(digits[-hidden_digits:]) if hidden_digits else set()
    return "".join("x" if i in hide else ch for i, ch in enumerate(number))


def apportioned(exact: list[Decimal], total: Decimal) -> list[Decimal]:
    """Cents for each exact amount, adding up to `total` (the line's rounded amount)."""
    floors = [amount.quantize(CENT, rounding=ROUND_DOWN) for amount in exact]
    left = int((total - sum(floors, Decimal(0))) / CENT)
    if not 0 <= left <= len(exact):
        raise ValueError(f"{total} cannot be apportioned over {len(exact)} calls")
    # Largest remainders first; ties go to the earlier call.
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += CENT
    return floors


COLUMNS = ("line", "started_at", "caller", "purpose", "talk_seconds", "billed_seconds", "minimum_charge", "amount")


def itemised_csv(listing: ItemisedCallList, zone: ZoneInfo, dialect: CsvDialect = CsvDialect.RFC4180) -> str:
    """One row per call (local start time), then one per line with its sums, then the total; in
    the figures' dialects (`de`: semicolons, decimal comma, BOM)."""
    out = io.StringIO()
    writer = writer_for(out, dialect)
    writer.writerow(COLUMNS)
    for call in listing.calls:
        started = call.started_at.astimezone(zone).isoformat(timespec="seconds")
        writer.writerow(
            [
                cell(v, dialect)
                for v in (
                    call.line_no,
                    started,
                    call.caller,
                    call.purpose,
                    call.talk_seconds,
                    call.billed_seconds,
                    call.at_minimum,
                    call.amount,
                )
            ]
        )
    for line in listing.lines:
        writer.writerow(
            [
                cell(v, dialect)
                for v in (line.line_no, "", f"line: {line.description}", "", "", line.billable_seconds, "", line.amount)
            ]
        )
    writer.writerow(
        [
            cell(v, dialect)
            for v in (
                "",
                "",
                "total",
                "",
                listing.total_talk_seconds,
                listing.total_billed_seconds,
                "",
                listing.total_amount,
            )
        ]
    )
    return out.getvalue()
