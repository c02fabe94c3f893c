"""Rounding per increment and minimum charge: the brief's example, in Python and in the database
(the triggers rate with billing_billable_seconds / billing_at_minimum; both must agree)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.billing import rating
from backend.billing.rating import Billed, TariffTerms, Usage
from backend.billing.schemas import LineKind

PRICE = Decimal("0.95")


def usage_of(talks: list[int], increment: int, minimum: Decimal | None = None, price: Decimal = PRICE) -> Usage:
    seconds = [rating.billable_seconds(t, increment) for t in talks if t > 0]
    at_min = [s for s in seconds if rating.at_minimum(s, price, minimum)]
    return Usage(len(seconds), sum(seconds), len(at_min), sum(at_min))


def test_the_briefs_example_per_started_minute() -> None:
    """61 s + 59 s at 0.95 EUR per started minute → 3 minutes → 2.85 EUR."""
    assert [rating.billable_seconds(s, 60) for s in (61, 59)] == [120, 60]
    lines = rating.group_lines(TariffTerms("t", PRICE, 60, None), usage_of([61, 59], 60), Billed(), Billed())
    assert len(lines) == 1
    assert lines[0].quantity == Decimal(3) and lines[0].unit_code == "MIN"
    assert lines[0].amount == Decimal("2.85")


def test_the_briefs_example_per_second() -> None:
    """Per second → 120 s = 2 minutes → 1.90 EUR."""
    assert [rating.billable_seconds(s, 1) for s in (61, 59)] == [61, 59]
    lines = rating.group_lines(TariffTerms("t", PRICE, 1, None), usage_of([61, 59], 1), Billed(), Billed())
    assert lines[0].quantity == Decimal(120) and lines[0].unit_code == "SEC" and lines[0].base_quantity == 60
    assert rating.minutes(lines[0].billable_seconds) == Decimal(2)
    assert lines[0].amount == Decimal("1.90")


def test_rounding_is_half_up_once_per_line_not_per_call() -> None:
    # 3 calls of 1 s each at 0.95/min per second: 3 × 0.0158333… = 0.0475 → 0.05 (per call it would be 0.06).
    lines = rating.group_lines(TariffTerms("t", PRICE, 1, None), usage_of([1, 1, 1], 1), Billed(), Billed())
    assert lines[0].amount == Decimal("0.05")
    # Exactly half a cent rounds up: 0.9 EUR/min for 1 s = 0.015 → 0.02.
    assert rating.cents(rating.minute_amount(Decimal("0.9"), 1)) == Decimal("0.02")
    assert rating.cents(Decimal("0.125")) == Decimal("0.13") and rating.cents(Decimal("-0.125")) == Decimal("-0.13")


def test_zero_and_missing_talk_is_not_billed() -> None:
    assert rating.billable_seconds(0, 60) == 0 and rating.billable_seconds(-5, 1) == 0
    assert rating.call_charge(0, PRICE, 60, Decimal("0.50")) == 0


def test_minimum_charge_per_call() -> None:
    """Minimum 0.50 EUR: a call of 10 s per started minute costs 0.95 (above the minimum), per
    second 10/60 × 0.95 = 0.158… → the minimum 0.50; lines split minutes and minimum calls."""
    minimum = Decimal("0.50")
    assert rating.call_charge(10, PRICE, 60, minimum) == PRICE
    assert rating.call_charge(10, PRICE, 1, minimum) == minimum
    assert rating.call_charge(40, PRICE, 1, minimum) == PRICE * 40 / 60  # 0.6333 > 0.50
    usage = usage_of([10, 20, 40, 61], 1, minimum)
    assert usage == Usage(calls=4, billable_seconds=131, minimum_calls=2, minimum_billable_seconds=30)
    lines = rating.group_lines(TariffTerms("t", PRICE, 1, minimum), usage, Billed(), Billed())
    by_kind = {line.kind: line for line in lines}
    assert by_kind[LineKind.USAGE].calls == 2 and by_kind[LineKind.USAGE].billable_seconds == 101
    assert by_kind[LineKind.USAGE].amount == Decimal("1.60")  # 101/60 × 0.95 = 1.5991… → 1.60
    assert by_kind[LineKind.MINIMUM_CHARGE].quantity == 2 and by_kind[LineKind.MINIMUM_CHARGE].unit_code == "C62"
    assert by_kind[LineKind.MINIMUM_CHARGE].amount == Decimal("1.00")


def test_a_line_bills_only_what_was_not_billed_yet() -> None:
    terms = TariffTerms("t", PRICE, 60, None)
    first = rating.group_lines(terms, usage_of([61, 59], 60), Billed(), Billed())[0]
    later = rating.group_lines(
        terms, usage_of([61, 59, 30], 60), Billed(first.calls, first.billable_seconds, first.amount), Billed()
    )
    assert [(line.calls, line.billable_seconds, line.amount) for line in later] == [(1, 60, Decimal("0.95"))]
    assert rating.group_lines(terms, usage_of([61, 59], 60), Billed(2, 180, Decimal("2.85")), Billed()) == []


def test_yearly_rate_is_rounded_up_to_the_cent() -> None:
    assert rating.rate_rounded_up(Decimal("95000.00"), 100_000 * 60) == Decimal("0.95")  # exact
    assert rating.rate_rounded_up(Decimal("95000.01"), 100_000 * 60) == Decimal("0.96")  # a hair above
    assert rating.rate_rounded_up(Decimal("100.00"), 7 * 60) == Decimal("14.29")  # 14.2857… up


def test_periods() -> None:
    from datetime import date

    assert rating.period_of("2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
    assert rating.period_of("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))
    assert rating.period_of("2026") == (date(2026, 1, 1), date(2027, 1, 1))


@settings(max_examples=200, deadline=None)
@given(talk=st.integers(min_value=-10, max_value=100_000), increment=st.sampled_from([1, 60]))
def test_billable_seconds_round_up_to_the_increment(talk: int, increment: int) -> None:
    billed = rating.billable_seconds(talk, increment)
    if talk <= 0:
        assert billed == 0
    else:
        assert billed % increment == 0 and talk <= billed < talk + increment


# The trade's billing increments (first period / increment), at the minute edges.
EDGES = {
    (60, 60): {0: 0, 1: 60, 29: 60, 30: 60, 31: 60, 59: 60, 60: 60, 61: 120, 119: 120, 120: 120, 121: 180},
    (60, 1): {0: 0, 1: 60, 29: 60, 30: 60, 31: 60, 59: 60, 60: 60, 61: 61, 119: 119, 120: 120, 121: 121},
    (30, 1): {0: 0, 1: 30, 29: 30, 30: 30, 31: 31, 59: 59, 60: 60, 61: 61},
    (1, 1): {0: 0, 1: 1, 29: 29, 30: 30, 31: 31, 59: 59, 60: 60, 61: 61},
    (60, 30): {0: 0, 1: 60, 59: 60, 60: 60, 61: 90, 90: 90, 91: 120},
}


@pytest.mark.parametrize(("first", "increment"), list(EDGES), ids=[f"{f}/{i}" for f, i in EDGES])
def test_first_period_then_increment_at_the_minute_edges(first: int, increment: int) -> None:
    assert {t: rating.billable_seconds(t, increment, first) for t in EDGES[first, increment]} == EDGES[first, increment]


def test_a_60_1_tariff_bills_a_short_call_a_minute_and_a_long_one_to_the_second() -> None:
    """60/1 at 0.95 EUR: 20 s → 60 s, 61 s → 61 s, 59 s → 60 s: 181 s = 2.8658… → 2.87 EUR
    (per second it would be 140 s = 2.22 EUR, per started minute 240 s = 3.80 EUR)."""
    terms = TariffTerms("t", PRICE, 1, None, 60)
    seconds = [rating.billable_seconds(t, 1, 60) for t in (20, 61, 59)]
    lines = rating.group_lines(terms, Usage(3, sum(seconds)), Billed(), Billed())
    assert (lines[0].billable_seconds, lines[0].unit_code, lines[0].amount) == (181, "SEC", Decimal("2.87"))
    assert rating.call_charge(20, PRICE, 1, None, 60) == PRICE


@settings(max_examples=200, deadline=None)
@given(
    talk=st.integers(min_value=-10, max_value=100_000),
    terms=st.sampled_from([(60, 60), (60, 1), (30, 1), (1, 1), (60, 10), (30, 30)]),
)
def test_billed_seconds_cover_the_talk_by_less_than_an_increment_after_the_first_period(
    talk: int, terms: tuple[int, int]
) -> None:
    first, increment = terms
    billed = rating.billable_seconds(talk, increment, first)
    if talk <= 0:
        assert billed == 0
    elif talk <= first:
        assert billed == first
    else:
        assert billed % increment == 0 and talk <= billed < talk + increment


@pytest.mark.parametrize(("first", "increment"), [(60, 60), (1, 1), *EDGES])
async def test_the_database_rates_like_the_code(db: asyncpg.Pool, first: int, increment: int) -> None:
    talks = [0, 1, 29, 30, 31, 59, 60, 61, 89, 90, 91, 119, 120, 121, 3599, 3600, 3601]
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT t, billing_billable_seconds(t, $2, $3) AS s, "
            "billing_at_minimum(billing_billable_seconds(t, $2, $3), 0.95, 0.50) AS m FROM unnest($1::int[]) AS t",
            talks,
            first,
            increment,
        )
    for row in rows:
        expected = rating.billable_seconds(row["t"], increment, first)
        assert (row["s"] or 0) == expected
        assert bool(row["m"]) == (expected > 0 and rating.at_minimum(expected, PRICE, Decimal("0.50")))
