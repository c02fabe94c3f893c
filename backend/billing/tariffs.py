"""Tariffs: a price per call minute for an agreement over a period of days. The operator's finance
(or a platform admin) adds and changes them; calls of the changed days are re-rated at once, and
days already invoiced cannot get another tariff."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg

from auth.permissions import Operation
from backend.billing import invoice_repository, repository
from backend.billing.common import exclusive, money, require_operator
from backend.billing.schemas import Tariff, TariffCreate, TariffInput, TariffPatch
from backend.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants import service as tenants_service
from backend.tenants.reach import reach_optional, reachable
from backend.tenants.schemas import Agreement

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2998, 12, 31)
MAX_PRICE_PER_MINUTE = Decimal(1000)  # exclusive; the table's CHECK says the same

# The table's CHECK constraints by the field they guard (PostgreSQL's default names), so a value
# that slipped past the checks in code still gets an answer naming its real cause.
_CHECKED_FIELDS = {
    "tariffs_price_per_minute_check": ("pricePerMinute", _l("a price per minute below 1000 EUR, please")),
    "tariffs_minimum_charge_check": ("minimumCharge", _l("the amount must be positive")),
    "tariffs_valid_check": ("validFrom", _l("a tariff ends on or after the day it starts")),
    "tariffs_first_period_seconds_check": (
        "firstPeriodSeconds",
        _l("the first period is a multiple of the increment, up to 600 seconds"),
    ),
}


def _check_violation(error: asyncpg.CheckViolationError) -> ValidationFailed:
    field, message = _CHECKED_FIELDS.get(
        error.constraint_name or "",
        ("", _l("a tariff value is out of range ({constraint})", constraint=error.constraint_name)),
    )
    return ValidationFailed(message, field=field or None)


async def list_tariffs(uow: UnitOfWork, tenant: str | None = None) -> list[Tariff]:
    """Tariffs of the tenants I may see, or of the one named by slug."""
    visible = reachable(uow, Operation.TARIFF_READ)
    one = await reach_optional(uow, tenant, Operation.TARIFF_READ)
    return await repository.list_tariffs(uow.conn, [one.id] if one else sorted(visible))


async def tariff(uow: UnitOfWork, tariff_id: UUID) -> Tariff:
    visible = reachable(uow, Operation.TARIFF_READ)
    found = await repository.find_tariff(uow.conn, tariff_id, list(visible))
    if found is None:
        raise NotFound(_l("tariff not found"))
    return found


def _check_terms(agreement: Agreement, data: TariffInput | TariffCreate) -> None:
    money(data.price_per_minute, "pricePerMinute", 4, positive=True)
    if data.price_per_minute >= MAX_PRICE_PER_MINUTE:
        raise ValidationFailed(_l("a price per minute below 1000 EUR, please"), field="pricePerMinute")
    if data.minimum_charge is not None:
        money(data.minimum_charge, "minimumCharge", 2, positive=True)
    if data.first_period_seconds is not None and data.first_period_seconds % data.increment_seconds:
        raise ValidationFailed(
            _l("the first period is a multiple of the increment, up to 600 seconds"), field="firstPeriodSeconds"
        )
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise ValidationFailed(_l("a tariff ends on or after the day it starts"), field="validTo")
    if data.valid_from < agreement.starts_on:
        raise ValidationFailed(_l("a tariff starts within its agreement"), field="validFrom")
    if agreement.ends_on is not None and (data.valid_to is None or data.valid_to > agreement.ends_on):
        raise ValidationFailed(
            _l("the agreement ends on {ends_on}; end the tariff by then", ends_on=agreement.ends_on.isoformat()),
            field="validTo",
        )
    if not EARLIEST_DAY <= data.valid_from <= LATEST_DAY or (data.valid_to is not None and data.valid_to > LATEST_DAY):
        raise ValidationFailed(_l("tariff days lie between 2000 and 2998"), field="validFrom")


async def _insert_tariff(
    uow: UnitOfWork, agreement: Agreement, data: TariffCreate, cost_base_year: int | None = None
) -> Tariff:
    # The client's invoicing lock, as issuing takes it: an invoice issued at this moment is seen
    # below (refused), where both were taken and invoiced days changed their tariff afterwards.
    await invoice_repository.lock_client_invoicing(uow.conn, agreement.tenant_id)
    number = await repository.invoiced_days_overlap(
        uow.conn, agreement.tenant_id, [(data.valid_from, exclusive(data.valid_to))], None
    )
    if number is not None:
        raise Conflict(
            _l("those days are already invoiced (invoice {number}); a tariff cannot change them", number=number)
        )
    try:
        async with uow.conn.transaction():
            created = await repository.insert_tariff(
                uow.conn,
                agreement.tenant_id,
                uuid4(),
                agreement.id,
                agreement.operator_tenant_id,
                data.valid_from,
                data.valid_to,
                data.price_per_minute,
                data.increment_seconds,
                data.minimum_charge,
                data.note,
                uow.principal.log_id,
                cost_base_year,
                data.first_period_seconds,
            )
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("the period overlaps another tariff of this client"), field="validFrom") from None
    except asyncpg.CheckViolationError as error:
        raise _check_violation(error) from None
    except asyncpg.IntegrityConstraintViolationError:  # the trigger guarding invoiced days
        raise Conflict(_l("those days are already invoiced; a tariff cannot change them")) from None
    await repository.rebuild(uow.conn, created.tenant_id, created.valid_from, exclusive(created.valid_to))
    # Drafts of those days were computed without this tariff: they are discarded (run them again).
    await invoice_repository.discard_drafts(
        uow.conn, created.tenant_id, created.valid_from, exclusive(created.valid_to)
    )
    return created


async def create_tariff(uow: UnitOfWork, data: TariffCreate) -> Tariff:
    """A new tariff period for an agreement (operator's finance or platform admin). Calls of its
    days are re-rated at once; days already invoiced cannot get a tariff."""
    agreement = await tenants_service.agreement(uow, data.agreement_id, Operation.TARIFF_WRITE)
    require_operator(uow, agreement.operator_tenant_id)
    _check_terms(agreement, data)
    return await _insert_tariff(uow, agreement, data)


def _changed_days(current: Tariff, data: TariffInput) -> list[tuple[date, date | None]]:
    """Days whose rating a change touches: all of both periods when the price terms change, else
    the days in exactly one of the two periods."""
    old = (current.valid_from, exclusive(current.valid_to))
    new = (data.valid_from, exclusive(data.valid_to))
    first_period = data.first_period_seconds or data.increment_seconds
    terms_changed = (
        current.price_per_minute,
        current.first_period_seconds,
        current.increment_seconds,
        current.minimum_charge,
    ) != (data.price_per_minute, first_period, data.increment_seconds, data.minimum_charge)
    if terms_changed:
        return [old, new]
    if old == new:
        return []
    far = date(9999, 12, 31)
    lowers = sorted([old[0], new[0]])
    uppers = sorted([old[1] or far, new[1] or far])
    ranges: list[tuple[date, date | None]] = []
    if lowers[0] != lowers[1]:
        ranges.append((lowers[0], lowers[1]))
    if uppers[0] != uppers[1]:
        ranges.append((uppers[0], None if uppers[1] == far else uppers[1]))
    return ranges


async def _update_tariff(uow: UnitOfWork, current: Tariff, data: TariffInput) -> Tariff:
    changed = _changed_days(current, data)
    await invoice_repository.lock_client_invoicing(uow.conn, current.tenant_id)  # as `_insert_tariff`
    if changed:
        number = await repository.invoiced_days_overlap(uow.conn, current.tenant_id, changed, current.id)
        if number is not None:
            raise Conflict(
                _l("the tariff's days are already invoiced (invoice {number}); it cannot change there", number=number)
            )
    try:
        async with uow.conn.transaction():
            updated = await repository.update_tariff(
                uow.conn,
                current.tenant_id,
                current.id,
                data.valid_from,
                data.valid_to,
                data.price_per_minute,
                data.increment_seconds,
                data.minimum_charge,
                current.note if data.note is None else data.note,
                data.version,
                data.first_period_seconds,
            )
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("the period overlaps another tariff of this client"), field="validFrom") from None
    except asyncpg.CheckViolationError as error:
        raise _check_violation(error) from None
    except asyncpg.IntegrityConstraintViolationError:  # the trigger guarding invoiced days
        raise Conflict(_l("the tariff's days are already invoiced; it cannot change there")) from None
    if updated is None:
        raise VersionConflict(_l("the tariff was changed by someone else; reload and try again"))
    if changed:
        start = min(r[0] for r in changed)
        end = None if any(r[1] is None for r in changed) else max(r[1] for r in changed if r[1] is not None)
        await repository.rebuild(uow.conn, current.tenant_id, start, end)
        await invoice_repository.discard_drafts(uow.conn, current.tenant_id, start, end)
    return updated


async def change_tariff(uow: UnitOfWork, tariff_id: UUID, data: TariffInput) -> Tariff:
    """Replace a tariff's terms and days (its note is kept unless given); refused where its days
    are already invoiced."""
    visible = reachable(uow, Operation.TARIFF_WRITE)
    current = await repository.find_tariff(uow.conn, tariff_id, list(visible), for_update=True)
    if current is None:
        raise NotFound(_l("tariff not found"))
    require_operator(uow, current.operator_tenant_id)
    agreement = await tenants_service.agreement(uow, current.agreement_id, Operation.TARIFF_WRITE)
    _check_terms(agreement, data)
    return await _update_tariff(uow, current, data)


async def amend_tariff(uow: UnitOfWork, tariff_id: UUID, patch: TariffPatch) -> Tariff:
    """Change only the terms sent (PATCH); the result is checked and guarded as a full change."""
    visible = reachable(uow, Operation.TARIFF_WRITE)
    current = await repository.find_tariff(uow.conn, tariff_id, list(visible), for_update=True)
    if current is None:
        raise NotFound(_l("tariff not found"))
    require_operator(uow, current.operator_tenant_id)
    agreement = await tenants_service.agreement(uow, current.agreement_id, Operation.TARIFF_WRITE)
    data = patch.merged(current)
    _check_terms(agreement, data)
    return await _update_tariff(uow, current, data)
