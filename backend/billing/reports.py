"""The 115 figures as CSV, in two dialects: RFC 4180 (comma-separated, decimal point, UTF-8; the
default, for programs) and the one German spreadsheets open as they are (semicolon-separated,
decimal comma, UTF-8 with a byte order mark so Excel does not read it as Windows-1252, ja/nein)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from backend.billing.schemas import CsvDialect, Figures, FiguresReport

BOM = "\ufeff"

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
    "service_level_offered",
    "service_level_answered",
    "service_level",
    "service_level_target",
    "meets_service_level_target",
    "callback_on_time_rate",
    "callback_target",
    "meets_callback_target",
    "transfers_taken",
    "transfers_not_taken",
    "qualified_transfer_rate",
    "settled_rate",
)


def cell(value: object, dialect: CsvDialect = CsvDialect.RFC4180) -> str:
    """One CSV cell in `dialect`; also the itemised call list's."""
    german = dialect is CsvDialect.DE
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("ja" if value else "nein") if german else ("yes" if value else "no")
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.replace(".", ",") if german else text
    text = str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(f: Figures, dialect: CsvDialect) -> list[str]:
    return [
        cell(v, dialect)
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
            f.service_level_offered,
            f.service_level_answered,
            f.service_level,
            f.service_level_target,
            f.meets_service_level_target,
            f.callback_on_time_rate,
            f.callback_target,
            f.meets_callback_target,
            f.transfers_taken,
            f.transfers_not_taken,
            f.qualified_transfer_rate,
            f.settled_rate,
        )
    ]


def writer_for(out: io.StringIO, dialect: CsvDialect) -> Any:
    """A csv writer in `dialect`; the German one starts the text with the byte order mark."""
    if dialect is CsvDialect.DE:
        out.write(BOM)
        return csv.writer(out, delimiter=";", lineterminator="\r\n")
    return csv.writer(out, lineterminator="\r\n")


def figures_csv(report: FiguresReport, dialect: CsvDialect = CsvDialect.RFC4180) -> str:
    out = io.StringIO()
    writer = writer_for(out, dialect)
    writer.writerow(COLUMNS)
    for figures in (*report.rows, *report.total):
        writer.writerow(_row(figures, dialect))
    return out.getvalue()
