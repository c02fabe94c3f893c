"""The service's clock: "now" and "today" for every rule that needs them.

Rules take the moment as an argument (`now: datetime | None = None`, defaulting to `now()` here)
so tests and background work can pass one. SQL never asks PostgreSQL's `now()` or
`current_date` for a rule: the moment goes in as a parameter, so the database and the service
agree on it, also when tests move the clock with time-machine (which PostgreSQL does not see).
Only record stamps (`updated_at`, `issued_at` …) are left to PostgreSQL. Decision 018.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def now() -> datetime:
    """This moment, in UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Today's date where the service centre works (Europe/Berlin): agreements, validity of
    articles and invoice dates are by local date."""
    return datetime.now(BERLIN).date()
