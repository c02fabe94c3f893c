"""Term ends and notice deadlines of an agreement, counted as BGB § 188 counts periods of months.

The paper's agreement (from 1 January, two years, six months' notice) is the easy case; these are
the month ends where counting by day numbers goes wrong and a town that gives notice in time
would be held to another year."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from backend.tenants.schemas import Agreement, notice_deadline_before, period_end


def agreement(starts_on: date, *, initial: int = 24, renewal: int = 12, notice: int = 6) -> Agreement:
    return Agreement(
        tenant_id=uuid4(),
        id=uuid4(),
        operator_tenant_id=uuid4(),
        starts_on=starts_on,
        initial_term_months=initial,
        renewal_term_months=renewal,
        notice_period_months=notice,
        ends_on=None,
        scope_notes="",
        version=1,
    )


@pytest.mark.parametrize(
    ("starts_on", "months", "last_day"),
    [
        (date(2018, 1, 1), 24, date(2019, 12, 31)),  # the paper's Geseke agreement
        (date(2018, 3, 1), 24, date(2020, 2, 29)),  # ends on a leap day
        (date(2018, 3, 1), 12, date(2019, 2, 28)),
        (date(2016, 1, 31), 1, date(2016, 2, 29)),  # February has no 31st: its last day
        (date(2016, 1, 30), 1, date(2016, 2, 29)),
        (date(2016, 1, 31), 2, date(2016, 3, 30)),
        (date(2016, 2, 29), 24, date(2018, 2, 28)),
        (date(2016, 2, 29), 48, date(2020, 2, 28)),  # the day before the 29th, which exists
        (date(2018, 7, 15), 24, date(2020, 7, 14)),
    ],
)
def test_a_period_of_months_ends_as_the_civil_code_counts(starts_on: date, months: int, last_day: date) -> None:
    assert period_end(starts_on, months) == last_day


@pytest.mark.parametrize(
    ("term_end", "months", "deadline"),
    [
        (date(2019, 12, 31), 6, date(2019, 6, 30)),
        (date(2020, 6, 30), 6, date(2019, 12, 31)),  # not 30 December
        (date(2020, 9, 30), 6, date(2020, 3, 31)),
        (date(2020, 2, 29), 6, date(2019, 8, 31)),
        (date(2020, 2, 28), 6, date(2019, 8, 28)),  # a term that ends before the month does
        (date(2020, 6, 30), 0, date(2020, 6, 30)),
    ],
)
def test_notice_is_counted_back_from_the_day_after_the_term(term_end: date, months: int, deadline: date) -> None:
    assert notice_deadline_before(term_end, months) == deadline


def test_terms_of_an_agreement_from_29_february_keep_their_day() -> None:
    leap = agreement(date(2016, 2, 29))
    ends = [leap.term_end_on_or_after(date(year, 1, 1)) for year in (2018, 2019, 2020, 2021)]
    assert ends == [date(2018, 2, 28), date(2019, 2, 28), date(2020, 2, 28), date(2021, 2, 28)]


def test_notice_on_the_last_day_ends_the_running_term() -> None:
    summer = agreement(date(2018, 7, 1))
    assert summer.current_term_end(date(2019, 12, 31)) == date(2020, 6, 30)
    assert summer.notice_deadline(date(2020, 6, 30)) == date(2019, 12, 31)
    assert summer.earliest_end_if_noticed_on(date(2019, 12, 31)) == date(2020, 6, 30)
    # One day late: the agreement renews for a year.
    assert summer.earliest_end_if_noticed_on(date(2020, 1, 1)) == date(2021, 6, 30)
