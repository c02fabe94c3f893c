"""Rating and invoice arithmetic, pure and in Decimal.

The database rates each call the same way (billing_billable_seconds / billing_at_minimum in the
migration; tests keep both in step). Amounts are rounded half-up to cents once per invoice line,
never per call. A line's amount is the rounded amount of the group's current totals minus what
was already invoiced for that group, so corrections for late calls add up to exactly the amount
a single invoice over all calls would have had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from backend.billing.schemas import LineKind

CENT = Decimal("0.01")
SECONDS_PER_MINUTE = 60


def billable_seconds(talk_seconds: int, increment_seconds: int, first_period_seconds: int | None = None) -> int:
    """Talk seconds as the trade bills them: the first period whole, then each started increment
    ("60/1": a 61 s call is 61 s, a 20 s call 60 s; "60/60": per started minute; without a first
    period it is the increment). 0 for none. The database's twin is billing_billable_seconds."""
    first = increment_seconds if first_period_seconds is None else first_period_seconds
    if talk_seconds <= 0:
        return 0
    if talk_seconds <= first:
        return first
    return first + -(-(talk_seconds - first) // increment_seconds) * increment_seconds


def cents(amount: Decimal) -> Decimal:
    """Round half-up to cents (the one rounding an invoice line gets)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def minute_amount(price_per_minute: Decimal, seconds: int) -> Decimal:
    """Unrounded amount of `seconds` billable seconds at a price per minute."""
    return price_per_minute * seconds / SECONDS_PER_MINUTE


def at_minimum(seconds: int, price_per_minute: Decimal, minimum_charge: Decimal | None) -> bool:
    """Whether a call is charged the minimum instead of its minutes."""
    return minimum_charge is not None and price_per_minute * seconds < minimum_charge * SECONDS_PER_MINUTE


def call_charge(
    talk_seconds: int,
    price_per_minute: Decimal,
    increment_seconds: int,
    minimum_charge: Decimal | None,
    first_period_seconds: int | None = None,
) -> Decimal:
    """What one call costs, unrounded (for explanations; invoices round per line)."""
    seconds = billable_seconds(talk_seconds, increment_seconds, first_period_seconds)
    if seconds == 0:
        return Decimal(0)
    if minimum_charge is not None and at_minimum(seconds, price_per_minute, minimum_charge):
        return minimum_charge
    return minute_amount(price_per_minute, seconds)


def minutes(seconds: int) -> Decimal:
    """Seconds as minutes, to four places (exact for whole minutes)."""
    return (Decimal(seconds) / SECONDS_PER_MINUTE).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def rate_rounded_up(total_cost: Decimal, seconds: int) -> Decimal:
    """Cost ÷ minutes, rounded UP to the cent, in exact integer arithmetic."""
    if seconds <= 0:
        raise ValueError("no billable seconds")
    total_cents = int((total_cost * 100).to_integral_exact())
    rate_cents = -(-(total_cents * SECONDS_PER_MINUTE) // seconds)
    return (Decimal(rate_cents) / 100).quantize(CENT, rounding=ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class TariffTerms:
    id: object
    price_per_minute: Decimal
    increment_seconds: int
    minimum_charge: Decimal | None
    first_period_seconds: int = 0  # 0: the increment

    @property
    def per_minute(self) -> bool:
        """Billed in whole minutes (60/60): lines count minutes, else seconds."""
        first = self.first_period_seconds or self.increment_seconds
        return self.increment_seconds % SECONDS_PER_MINUTE == 0 and first % SECONDS_PER_MINUTE == 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Rolled-up billed calls of one tariff over some days."""

    calls: int = 0
    billable_seconds: int = 0
    minimum_calls: int = 0
    minimum_billable_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Billed:
    """What issued invoices already charged for a group (per line kind)."""

    calls: int = 0
    billable_seconds: int = 0
    amount: Decimal = Decimal(0)

    def __add__(self, other: Billed) -> Billed:
        return Billed(
            self.calls + other.calls, self.billable_seconds + other.billable_seconds, self.amount + other.amount
        )


@dataclass(frozen=True, slots=True)
class LineDraft:
    kind: LineKind
    calls: int
    billable_seconds: int
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    base_quantity: int
    amount: Decimal


def _minutes_line(tariff: TariffTerms, calls: int, seconds: int, amount: Decimal) -> LineDraft:
    if tariff.per_minute:
        quantity, unit, base = Decimal(seconds // SECONDS_PER_MINUTE), "MIN", 1
    else:  # exact seconds: the price is per 60 seconds
        quantity, unit, base = Decimal(seconds), "SEC", SECONDS_PER_MINUTE
    return LineDraft(LineKind.USAGE, calls, seconds, quantity, unit, tariff.price_per_minute, base, amount)


def group_lines(tariff: TariffTerms, usage: Usage, billed_usage: Billed, billed_minimum: Billed) -> list[LineDraft]:
    """Lines for one tariff over some days: calls by their minutes, and calls charged the
    minimum; each the current total minus what was already invoiced. Empty when nothing is due."""
    lines: list[LineDraft] = []
    usage_calls = usage.calls - usage.minimum_calls
    usage_seconds = usage.billable_seconds - usage.minimum_billable_seconds
    usage_total = cents(minute_amount(tariff.price_per_minute, usage_seconds))
    delta = Billed(usage_calls, usage_seconds, usage_total) + Billed(
        -billed_usage.calls, -billed_usage.billable_seconds, -billed_usage.amount
    )
    if delta.calls or delta.billable_seconds or delta.amount:
        lines.append(_minutes_line(tariff, delta.calls, delta.billable_seconds, delta.amount))
    if tariff.minimum_charge is not None or billed_minimum.calls:
        minimum = tariff.minimum_charge or Decimal(0)
        minimum_total = cents(minimum * usage.minimum_calls)
        calls = usage.minimum_calls - billed_minimum.calls
        seconds = usage.minimum_billable_seconds - billed_minimum.billable_seconds
        amount = minimum_total - billed_minimum.amount
        if calls or seconds or amount:
            lines.append(LineDraft(LineKind.MINIMUM_CHARGE, calls, seconds, Decimal(calls), "C62", minimum, 1, amount))
    return lines


def period_of(text: str) -> tuple[date, date]:
    """`2026-03` → [2026-03-01, 2026-04-01); `2026` → [2026-01-01, 2027-01-01)."""
    if len(text) == 4:
        year = int(text)
        return date(year, 1, 1), date(year + 1, 1, 1)
    year, month = int(text[:4]), int(text[5:7])
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return start, end


def intersect(a: tuple[date, date | None], b: tuple[date, date | None]) -> tuple[date, date] | None:
    """Intersection of two half-open day ranges (None upper: open-ended); None when empty."""
    lower = max(a[0], b[0])
    uppers = [u for u in (a[1], b[1]) if u is not None]
    upper = min(uppers) if uppers else None
    if upper is None or lower >= upper:
        return None
    return lower, upper


def german_range(start: date, end_exclusive: date) -> str:
    last = end_exclusive - timedelta(days=1)
    return f"{start:%d.%m.%Y}–{last:%d.%m.%Y}"


def german_amount(value: Decimal) -> str:
    text = f"{value:,.2f}" if value == value.quantize(CENT) else f"{value:,.4f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
