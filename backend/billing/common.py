"""What the billing rule modules (tariffs, invoices, rates, figures) share: the client door for
requests that name a client by id, the operator check, amounts and day ranges."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from uuid import UUID

from auth.errors import Forbidden
from auth.permissions import Operation
from backend.billing.rating import TariffTerms
from backend.billing.schemas import Tariff
from backend.errors import ValidationFailed
from backend.i18n import N_, _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach, reach_id
from backend.tenants.schemas import Tenant

MAX_MONEY = Decimal("1000000000")


async def reach_client(uow: UnitOfWork, client: str | UUID, operation: Operation) -> Tenant:
    """The door for a client named by slug (GraphQL's `tenant`) or by id (REST bodies that carry
    `tenantId`, as invoice runs and true-ups do)."""
    if isinstance(client, UUID):
        return await reach_id(uow, client, operation)
    return await reach(uow, client, operation)


def require_operator(uow: UnitOfWork, operator_id: UUID) -> None:
    """Only the operator's own staff act as the operator (a town's finance cannot bill itself)."""
    if uow.principal.tenant_id != operator_id:
        raise Forbidden(N_("only the operator's finance may do this"))


def money(value: Decimal, field: str, places: int, *, positive: bool) -> Decimal:
    try:
        finite = value.is_finite() and value == value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        finite = False
    if not finite:
        raise ValidationFailed(_l("give an amount with at most {places} decimal places", places=places), field=field)
    if (positive and value <= 0) or value < 0 or value >= MAX_MONEY:
        raise ValidationFailed(
            _l("the amount must be positive") if positive else _l("the amount must not be negative"), field=field
        )
    return value


def exclusive(valid_to: date | None) -> date | None:
    """The day after an inclusive last day (None: open-ended)."""
    return valid_to + timedelta(days=1) if valid_to is not None else None


def tariff_terms(t: Tariff) -> TariffTerms:
    return TariffTerms(t.id, t.price_per_minute, t.increment_seconds, t.minimum_charge, t.first_period_seconds)
