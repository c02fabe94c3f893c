"""The service level as the 115 standard counts it ("75/30": 75 % of the offered calls answered
within 30 s), read from the calls themselves because its thresholds are settings.

    service level = answered within S seconds
                    ÷ (offered − hung up unanswered within G seconds − still waiting ≤ S seconds)

S (default 30) and G (default 5, "abandoned within the first few seconds": wrong numbers and
callers who hang up at the greeting) come per tenant from the figure settings. A call still
waiting longer than S seconds has already missed the level and counts in the denominator; one
waiting less is not decided yet and counts in neither (only the live view sees such calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from auth.permissions import Operation
from backend import clock
from backend.state import UnitOfWork
from backend.telephony import centre_repository
from backend.tenants import reach

SHARE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class ServiceLevelSettings:
    tenant_id: UUID
    within_seconds: int = 30
    grace_seconds: int = 5


@dataclass(frozen=True, slots=True)
class ServiceLevelCounts:
    offered: int = 0
    abandoned_short: int = 0
    answered_in_time: int = 0
    undecided: int = 0
    settled_first_contact: int = 0
    forwarded_as_ticket: int = 0
    transferred: int = 0
    transfers_taken: int = 0  # settled by qualified transfer (decision 038)
    transfers_not_taken: int = 0

    @property
    def counted(self) -> int:
        """The denominator: offered calls less the short abandons and the undecided."""
        return self.offered - self.abandoned_short - self.undecided

    @property
    def service_level(self) -> Decimal | None:
        return share(self.answered_in_time, self.counted)

    @property
    def first_contact_rate(self) -> Decimal | None:
        settled = self.settled_first_contact
        return share(settled, settled + self.forwarded_as_ticket + self.transferred)

    def __add__(self, other: ServiceLevelCounts) -> ServiceLevelCounts:
        return ServiceLevelCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


COUNTED = fields(ServiceLevelCounts)


def share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / whole).quantize(SHARE, rounding=ROUND_HALF_UP) if whole > 0 else None


async def service_level_counts(
    uow: UnitOfWork,
    settings: Sequence[ServiceLevelSettings],
    start: date,
    end: date,
    now: datetime | None = None,
) -> dict[tuple[UUID, bool], ServiceLevelCounts]:
    """Counts per (tenant, is 115) for the tenants' local days [start, end), each tenant with its
    own thresholds; tenants outside the principal's figures reach are left out."""
    visible = reach.reachable(uow, Operation.FIGURES_READ)
    wanted = [(s.tenant_id, s.within_seconds, s.grace_seconds) for s in settings if s.tenant_id in visible]
    if not wanted:
        return {}
    rows = await centre_repository.service_level_counts(uow.conn, wanted, start, end, now or clock.now())
    return {(r["tenant_id"], r["one_one_five"]): ServiceLevelCounts(*(int(r[f.name]) for f in COUNTED)) for r in rows}
