"""The 115 figures as CSV (RFC 4180, comma-separated, decimal point, UTF-8)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from backend.billing.schemas import Figures, FiguresReport

COLUMNS = (
    "tenant",
    "scope",
    "from",
    "to",
    "offered",
    "answered",
    "abandoned",
    "answered_within_30s",
    "share_answered_within_30s",
    "settled_first_contact",
    "forwarded_as_ticket",
    "transferred_to_department",
    "first_contact_rate",
    "first_contact_target",
    "meets_first_contact_target",
    "talk_minutes",
    "billed_minutes",
    "unrated_calls",
    "tickets_forwarded",
    "callbacks_on_time",
    "callbacks_late",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(f: Figures) -> list[str]:
    return [
        _cell(v)
        for v in (
            f.tenant_name,
            f.scope.value,
            f.period_from.isoformat(),
            f.period_to.isoformat(),
            f.offered,
            f.answered,
            f.abandoned,
            f.answered_within_30s,
            f.share_answered_within_30s,
            f.settled_first_contact,
            f.forwarded_as_ticket,
            f.transferred_to_department,
            f.first_contact_rate,
            f.first_contact_target,
            f.meets_first_contact_target,
            f.talk_minutes,
            f.billed_minutes,
            f.unrated_calls,
            f.tickets_forwarded,
            f.callbacks_on_time,
            f.callbacks_late,
        )
    ]


def figures_csv(report: FiguresReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for figures in (*report.rows, *report.total):
        writer.writerow(_row(figures))
    return out.getvalue()
