"""The rules of billing: tariffs, invoice runs, issuing and cancelling, XRechnung, the yearly
cost-based rate, agreement terms and 115 figures.

Reads come from the daily rollups (maintained by triggers on calls), never from raw calls. The
operator's finance runs, issues and cancels invoices and records costs; a town's finance sees its
own tariffs and invoices only. Money is Decimal throughout.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.errors import Forbidden
from auth.permissions import Operation, reachable_tenants, require
from backend import clock
from backend.billing import rating, repository
from backend.billing.rating import TariffTerms, Usage, german_amount, german_range, intersect
from backend.billing.repository import LedgerEntry, NewLine
from backend.billing.schemas import (
    AgreementTerm,
    BillingProfile,
    BillingProfileInput,
    CancellationInput,
    ClientMinutes,
    CostBase,
    CostBaseInput,
    Figures,
    FigureScope,
    FiguresReport,
    FigureTargets,
    FigureTargetsInput,
    Invoice,
    InvoiceKind,
    InvoicePurpose,
    InvoiceRunInput,
    InvoiceStatus,
    LineKind,
    Party,
    RateAdoption,
    RateAdoptionInput,
    RateProposal,
    Tariff,
    TariffCreate,
    TariffInput,
    TrueUpInput,
)
from backend.billing.xrechnung import render
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from backend.i18n import N_, _l
from backend.state import UnitOfWork
from backend.tenants import repository as tenants_repository
from backend.tenants import service as tenants_service
from backend.tenants.schemas import Agreement, Tenant
from backend.tenants.validation import leitweg_id_is_valid
from backend.tickets import service as tickets_service

DEFAULT_FIRST_CONTACT_TARGET = Decimal("0.60")
DEFAULT_FIRST_CONTACT_TARGET_115 = Decimal("0.65")
MAX_MONEY = Decimal("1000000000")
MAX_FIGURE_DAYS = 3 * 366 + 1
SHARE = Decimal("0.0001")
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2998, 12, 31)


def _require_operator(uow: UnitOfWork, operator_id: UUID) -> None:
    """Only the operator's own staff act as the operator (a town's finance cannot bill itself)."""
    if uow.principal.tenant_id != operator_id:
        raise Forbidden(N_("only the operator's finance may do this"))


async def _home_operator(uow: UnitOfWork, operation: Operation) -> Tenant:
    require(uow.principal, operation)
    home = await tenants_repository.get_tenant(uow.conn, uow.principal.tenant_id)
    if not home.is_operator:
        raise Forbidden(N_("only an operator's finance may do this"))
    return home


def _reachable(uow: UnitOfWork, operation: Operation, tenant_id: UUID) -> None:
    if tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("tenant not found"))


def _money(value: Decimal, field: str, places: int, *, positive: bool) -> Decimal:
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


def _exclusive(valid_to: date | None) -> date | None:
    return valid_to + timedelta(days=1) if valid_to is not None else None


# --- tariffs --------------------------------------------------------------------------------------


async def list_tariffs(uow: UnitOfWork, tenant_id: UUID | None = None) -> list[Tariff]:
    reachable = require(uow.principal, Operation.TARIFF_READ)
    if tenant_id is not None and tenant_id not in reachable:
        raise NotFound(_l("tenant not found"))
    return await repository.list_tariffs(uow.conn, [tenant_id] if tenant_id else sorted(reachable))


async def tariff(uow: UnitOfWork, tariff_id: UUID) -> Tariff:
    reachable = require(uow.principal, Operation.TARIFF_READ)
    found = await repository.find_tariff(uow.conn, tariff_id, list(reachable))
    if found is None:
        raise NotFound(_l("tariff not found"))
    return found


def _check_terms(agreement: Agreement, data: TariffInput | TariffCreate) -> None:
    _money(data.price_per_minute, "pricePerMinute", 4, positive=True)
    if data.price_per_minute >= 1000:
        raise ValidationFailed(_l("a price per minute below 1000 EUR, please"), field="pricePerMinute")
    if data.minimum_charge is not None:
        _money(data.minimum_charge, "minimumCharge", 2, positive=True)
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise ValidationFailed(_l("a tariff ends on or after the day it starts"), field="validTo")
    if data.valid_from < agreement.starts_on:
        raise ValidationFailed(_l("a tariff starts within its agreement"), field="validFrom")
    if agreement.ends_on is not None and (data.valid_to is None or data.valid_to > agreement.ends_on):
        raise ValidationFailed(
            _l("the agreement ends on {ends_on}; end the tariff by then", ends_on=agreement.ends_on.isoformat()),
            field="validTo",
        )
    if not date(2000, 1, 1) <= data.valid_from <= date(2998, 12, 31) or (
        data.valid_to is not None and data.valid_to > date(2998, 12, 31)
    ):
        raise ValidationFailed(_l("tariff days lie between 2000 and 2998"), field="validFrom")


async def _agreement(uow: UnitOfWork, agreement_id: UUID, reachable: frozenset[UUID]) -> Agreement:
    agreement = await tenants_repository.find_agreement_by_id(uow.conn, agreement_id, list(reachable))
    if agreement is None:
        raise NotFound(_l("agreement not found"))
    return agreement


async def _insert_tariff(
    uow: UnitOfWork, agreement: Agreement, data: TariffCreate, cost_base_year: int | None = None
) -> Tariff:
    number = await repository.invoiced_days_overlap(
        uow.conn, agreement.tenant_id, [(data.valid_from, _exclusive(data.valid_to))], None
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
            )
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("the period overlaps another tariff of this client"), field="validFrom") from None
    except asyncpg.IntegrityConstraintViolationError:
        raise Conflict(_l("those days are already invoiced; a tariff cannot change them")) from None
    await repository.rebuild(uow.conn, created.tenant_id, created.valid_from, _exclusive(created.valid_to))
    # Drafts of those days were computed without this tariff: they are discarded (run them again).
    await repository.discard_drafts(uow.conn, created.tenant_id, created.valid_from, _exclusive(created.valid_to))
    return created


async def create_tariff(uow: UnitOfWork, data: TariffCreate) -> Tariff:
    """A new tariff period for an agreement (operator's finance or platform admin). Calls of its
    days are re-rated at once; days already invoiced cannot get a tariff."""
    reachable = require(uow.principal, Operation.TARIFF_WRITE)
    agreement = await _agreement(uow, data.agreement_id, reachable)
    _require_operator(uow, agreement.operator_tenant_id)
    _check_terms(agreement, data)
    return await _insert_tariff(uow, agreement, data)


def _changed_days(current: Tariff, data: TariffInput) -> list[tuple[date, date | None]]:
    """Days whose rating a change touches: all of both periods when the price terms change, else
    the days in exactly one of the two periods."""
    old = (current.valid_from, _exclusive(current.valid_to))
    new = (data.valid_from, _exclusive(data.valid_to))
    terms_changed = (current.price_per_minute, current.increment_seconds, current.minimum_charge) != (
        data.price_per_minute,
        data.increment_seconds,
        data.minimum_charge,
    )
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
                data.note,
                data.version,
            )
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("the period overlaps another tariff of this client"), field="validFrom") from None
    except asyncpg.IntegrityConstraintViolationError:
        raise Conflict(_l("the tariff's days are already invoiced; it cannot change there")) from None
    if updated is None:
        raise VersionConflict(_l("the tariff was changed by someone else; reload and try again"))
    if changed:
        start = min(r[0] for r in changed)
        end = None if any(r[1] is None for r in changed) else max(r[1] for r in changed if r[1] is not None)
        await repository.rebuild(uow.conn, current.tenant_id, start, end)
        await repository.discard_drafts(uow.conn, current.tenant_id, start, end)
    return updated


async def change_tariff(uow: UnitOfWork, tariff_id: UUID, data: TariffInput) -> Tariff:
    """Replace a tariff's terms and days; refused where its days are already invoiced."""
    reachable = require(uow.principal, Operation.TARIFF_WRITE)
    current = await repository.find_tariff(uow.conn, tariff_id, list(reachable), for_update=True)
    if current is None:
        raise NotFound(_l("tariff not found"))
    _require_operator(uow, current.operator_tenant_id)
    agreement = await _agreement(uow, current.agreement_id, reachable)
    _check_terms(agreement, data)
    return await _update_tariff(uow, current, data)


# --- invoice runs ---------------------------------------------------------------------------------


def _terms(t: Tariff) -> TariffTerms:
    return TariffTerms(t.id, t.price_per_minute, t.increment_seconds, t.minimum_charge)


def _billed(ledger: list[LedgerEntry], tariff_id: UUID, covers: tuple[date, date], kind: LineKind) -> rating.Billed:
    total = rating.Billed()
    for entry in ledger:
        if (
            entry.tariff_id == tariff_id
            and entry.kind == kind.value
            and covers[0] <= entry.covers[0]
            and entry.covers[1] <= covers[1]
        ):
            total = total + entry.billed
    return total


def _describe(
    draft: rating.LineDraft, tariff: Tariff, covers: tuple[date, date], corrects: tuple[UUID, str] | None
) -> str:
    days = german_range(*covers)
    if draft.kind is LineKind.MINIMUM_CHARGE:
        assert tariff.minimum_charge is not None or draft.calls == 0
        text = f"Mindestentgelt {days}: {draft.calls} Gespräche zu je {german_amount(draft.unit_price)} EUR"
    else:
        basis = "je angefangene Minute" if tariff.increment_seconds == 60 else "sekundengenau"
        spoken_minutes = german_amount(rating.minutes(draft.billable_seconds))
        text = (
            f"Gesprächsminuten {days}: {draft.calls} Gespräche, {spoken_minutes} "
            f"Min. zu {german_amount(tariff.price_per_minute)} EUR/Min. ({basis})"
        )
    if corrects is not None:
        text = f"Nachberechnung verspätet gemeldeter Gespräche zu Rechnung {corrects[1]} – {text}"
    return text


def _lines_for(
    tariff: Tariff,
    covers: tuple[date, date],
    usage: Usage,
    ledger: list[LedgerEntry],
    corrects: tuple[UUID, str] | None,
) -> list[NewLine]:
    drafts = rating.group_lines(
        _terms(tariff),
        usage,
        _billed(ledger, tariff.id, covers, LineKind.USAGE),
        _billed(ledger, tariff.id, covers, LineKind.MINIMUM_CHARGE),
    )
    return [
        NewLine(
            draft=d,
            correction=corrects is not None,
            corrects_invoice_id=corrects[0] if corrects else None,
            tariff_id=tariff.id,
            covers=covers,
            description=_describe(d, tariff, covers, corrects),
        )
        for d in drafts
    ]


async def _correction_lines(
    uow: UnitOfWork, client: UUID, before: date, tariffs: dict[UUID, Tariff], ledger: list[LedgerEntry]
) -> list[NewLine]:
    """Lines for calls that reached issued periods ending by `before` after those were issued:
    what they cost now minus what issued invoices (corrections included) already charged."""
    lines: list[NewLine] = []
    for earlier in await repository.usage_of_issued_periods(uow.conn, client, before):
        for row in sorted(earlier.rows, key=lambda r: tariffs[r.tariff_id].valid_from if r.tariff_id else date.min):
            if row.tariff_id is None:
                continue
            tariff = tariffs[row.tariff_id]
            covers = intersect(earlier.period, (tariff.valid_from, _exclusive(tariff.valid_to)))
            assert covers is not None
            lines += _lines_for(tariff, covers, row.usage, ledger, (earlier.invoice_id, earlier.number))
    return lines


async def _corrections_still_due(uow: UnitOfWork, draft: Invoice) -> bool:
    """Whether the draft's correction lines are what is due now. Two drafts made before either
    was issued both carry the same late calls, and a period cancelled and invoiced again
    already holds them: issuing such a draft would charge the calls twice."""
    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [draft.tenant_id])}
    ledger = await repository.billed_ledger(uow.conn, draft.tenant_id)
    due = await _correction_lines(uow, draft.tenant_id, draft.period_from, tariffs, ledger)
    drafted = [line for line in draft.lines if line.correction]
    return sorted(
        (str(n.corrects_invoice_id), str(n.tariff_id), n.covers, n.draft.kind.value, n.draft.calls, n.draft.amount)
        for n in due
    ) == sorted(
        (
            str(line.corrects_invoice_id),
            str(line.tariff_id),
            (line.covers_from, line.covers_to + timedelta(days=1)),
            line.kind.value,
            line.calls,
            line.amount,
        )
        for line in drafted
    )


async def run_invoice(uow: UnitOfWork, data: InvoiceRunInput) -> Invoice:
    """Draft a client's invoice for a month or year: one line per tariff period (and one for
    calls charged the minimum), plus correction lines for calls that reached already invoiced
    periods after those were issued. Amounts come from the daily rollups, rounded per line."""
    operator = await _home_operator(uow, Operation.INVOICE_WRITE)
    _reachable(uow, Operation.INVOICE_WRITE, data.tenant_id)
    client = data.tenant_id
    if not 2000 <= int(data.period[:4]) <= 2998:
        raise ValidationFailed(_l("a period between 2000 and 2998"), field="period")
    start, end = rating.period_of(data.period)
    agreement = await repository.agreement_for_period(uow.conn, client, operator.id, start, end)
    if agreement is None:
        raise NotFound(_l("no agreement with this client in that period"), field="tenantId")
    issued = await repository.issued_usage_overlapping(uow.conn, client, start, end)
    if issued is not None:
        raise Conflict(
            _l("the period is already invoiced (invoice {issued}); cancel that invoice first", issued=issued)
        )
    await repository.discard_drafts(uow.conn, client, start, end)

    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [client])}
    ledger = await repository.billed_ledger(uow.conn, client)
    lines: list[NewLine] = []
    unrated = 0
    current = await repository.usage_by_tariff(uow.conn, client, start, end)
    for row in sorted(current, key=lambda r: tariffs[r.tariff_id].valid_from if r.tariff_id else date.min):
        unrated += row.unrated_calls
        if row.tariff_id is None:
            continue
        tariff = tariffs[row.tariff_id]
        covers = intersect((start, end), (tariff.valid_from, _exclusive(tariff.valid_to)))
        assert covers is not None
        lines += _lines_for(tariff, covers, row.usage, ledger, None)
    lines += await _correction_lines(uow, client, start, tariffs, ledger)

    invoice_id = uuid4()
    net = sum((line.draft.amount for line in lines), Decimal(0))
    try:
        async with uow.conn.transaction():
            await repository.insert_invoice(
                uow.conn,
                tenant_id=client,
                invoice_id=invoice_id,
                operator_id=operator.id,
                agreement_id=agreement["id"],
                kind=InvoiceKind.INVOICE.value,
                purpose=InvoicePurpose.USAGE.value,
                start=start,
                end=end,
                label=data.period,
                net=net,
                unrated_calls=unrated,
                created_by=uow.principal.log_id,
            )
            await repository.insert_lines(uow.conn, client, invoice_id, lines)
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("another run of this period is in progress or was just issued; try again")) from None
    return await repository.get_invoice(uow.conn, invoice_id, [client])


async def list_invoices(
    uow: UnitOfWork, tenant_id: UUID | None = None, year: int | None = None, include_discarded: bool = False
) -> list[Invoice]:
    reachable = require(uow.principal, Operation.INVOICE_READ)
    if tenant_id is not None and tenant_id not in reachable:
        raise NotFound(_l("tenant not found"))
    if year is not None and not 2000 <= year <= 2999:
        raise ValidationFailed(_l("a year between 2000 and 2999"), field="year")
    return await repository.list_invoices(
        uow.conn, [tenant_id] if tenant_id else sorted(reachable), year, include_discarded
    )


async def invoice(uow: UnitOfWork, invoice_id: UUID) -> Invoice:
    reachable = require(uow.principal, Operation.INVOICE_READ)
    return await repository.get_invoice(uow.conn, invoice_id, list(reachable))


async def _party(uow: UnitOfWork, tenant_id: UUID, role: str) -> Party:
    tenant = await tenants_repository.get_tenant(uow.conn, tenant_id)
    profile = await repository.find_profile(uow.conn, tenant_id)
    if profile is None:
        # One sentence per role, so each reads whole in every language.
        message = (
            _l("record the operator's billing profile ({name}) first", name=tenant.name)
            if role == "operator"
            else _l("record the client's billing profile ({name}) first", name=tenant.name)
        )
        raise ValidationFailed(message, field="billingProfile")
    return Party(
        tenant_id=tenant.id,
        name=tenant.name,
        legal_name=profile.legal_name,
        street=profile.street,
        postal_code=profile.postal_code,
        city=profile.city,
        country_code=profile.country_code,
        email=profile.email,
        phone=profile.phone,
        contact_name=profile.contact_name,
        iban=profile.iban,
        bic=profile.bic,
        ags=tenant.ags,
        leitweg_id=tenant.leitweg_id,
        payment_days=profile.payment_days,
        tax_exemption_reason=profile.tax_exemption_reason,
    )


async def _number_and_issue(
    uow: UnitOfWork, invoice: Invoice, seller: Party, buyer: Party, buyer_reference: str, due_days: int
) -> None:
    issued_on = clock.today()
    seq = await repository.next_invoice_number(uow.conn, invoice.operator_tenant_id, issued_on.year)
    await repository.mark_issued(
        uow.conn,
        invoice.tenant_id,
        invoice.id,
        number=f"{issued_on.year}-{seq:05d}",
        year=issued_on.year,
        seq=seq,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=due_days),
        issued_by=uow.principal.log_id,
        seller=msgspec.to_builtins(seller),
        buyer=msgspec.to_builtins(buyer),
        buyer_reference=buyer_reference,
    )


async def issue_invoice(uow: UnitOfWork, invoice_id: UUID) -> Invoice:
    """Number a draft (gap-free per operator and year) and freeze it with the parties' data."""
    reachable = require(uow.principal, Operation.INVOICE_WRITE)
    invoice = await repository.find_invoice(uow.conn, invoice_id, list(reachable), for_update=True)
    if invoice is None:
        raise NotFound(_l("invoice not found"))
    _require_operator(uow, invoice.operator_tenant_id)
    if invoice.status is not InvoiceStatus.DRAFT:
        raise InvalidTransition(_l("only drafts are issued; this one is {status}", status=invoice.status.value))
    if not invoice.lines:
        raise ValidationFailed(_l("nothing to invoice: the draft has no lines"))
    if invoice.gross_amount < 0:
        raise ValidationFailed(_l("the total is negative; a credit note is needed instead"))
    await repository.lock_client_invoicing(uow.conn, invoice.tenant_id)
    if invoice.purpose is InvoicePurpose.USAGE:
        issued = await repository.issued_usage_overlapping(
            uow.conn, invoice.tenant_id, invoice.period_from, invoice.period_to + timedelta(days=1)
        )
        if issued is not None:
            raise Conflict(_l("the period was invoiced meanwhile (invoice {issued})", issued=issued))
        if not await _corrections_still_due(uow, invoice):
            raise Conflict(
                _l(
                    "the draft's corrections of earlier invoices are out of date (another invoice or a "
                    "cancellation changed what is due); run the period again"
                )
            )
    seller = await _party(uow, invoice.operator_tenant_id, "operator")
    buyer = await _party(uow, invoice.tenant_id, "client")
    if buyer.leitweg_id is None:
        raise ValidationFailed(
            _l("{name} has no Leitweg-ID (BT-10); record it first", name=buyer.name), field="leitwegId"
        )
    if not leitweg_id_is_valid(buyer.leitweg_id):
        raise ValidationFailed(
            _l("the Leitweg-ID of {name} is not valid (check digits)", name=buyer.name), field="leitwegId"
        )
    try:
        async with uow.conn.transaction():
            await _number_and_issue(uow, invoice, seller, buyer, buyer.leitweg_id, seller.payment_days)
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("the period was invoiced meanwhile; run it again")) from None
    return await repository.get_invoice(uow.conn, invoice.id, [invoice.tenant_id])


async def cancel_invoice(uow: UnitOfWork, invoice_id: UUID, data: CancellationInput) -> Invoice:
    """Cancel an issued invoice by a credit note (itself numbered); returns the credit note."""
    reachable = require(uow.principal, Operation.INVOICE_WRITE)
    original = await repository.find_invoice(uow.conn, invoice_id, list(reachable), for_update=True)
    if original is None:
        raise NotFound(_l("invoice not found"))
    _require_operator(uow, original.operator_tenant_id)
    if original.kind is not InvoiceKind.INVOICE or original.status is not InvoiceStatus.ISSUED:
        raise InvalidTransition(
            _l(
                "only issued invoices are cancelled; this {kind} is {status}",
                kind=original.kind.value,
                status=original.status.value,
            )
        )
    await repository.lock_client_invoicing(uow.conn, original.tenant_id)
    credit_id = uuid4()
    await repository.insert_invoice(
        uow.conn,
        tenant_id=original.tenant_id,
        invoice_id=credit_id,
        operator_id=original.operator_tenant_id,
        agreement_id=original.agreement_id,
        kind=InvoiceKind.CREDIT_NOTE.value,
        purpose=InvoicePurpose.CANCELLATION.value,
        start=original.period_from,
        end=original.period_to + timedelta(days=1),
        label=original.period_label,
        net=original.net_amount,
        unrated_calls=0,
        created_by=uow.principal.log_id,
        cancels_id=original.id,
        reason=data.reason.strip(),
    )
    await repository.copy_lines(uow.conn, original.tenant_id, original.id, credit_id)
    seller_raw, buyer_raw = await repository.invoice_parties(uow.conn, original.tenant_id, original.id)
    seller = msgspec.convert(seller_raw, Party)
    buyer = msgspec.convert(buyer_raw, Party)
    credit = await repository.get_invoice(uow.conn, credit_id, [original.tenant_id])
    assert original.buyer_reference is not None
    await _number_and_issue(uow, credit, seller, buyer, original.buyer_reference, 0)
    await repository.mark_cancelled(uow.conn, original.tenant_id, original.id, credit_id)
    return await repository.get_invoice(uow.conn, credit_id, [original.tenant_id])


async def xrechnung(uow: UnitOfWork, invoice_id: UUID) -> tuple[str, bytes]:
    """The XRechnung (UBL) of an issued invoice or credit note, with the parties as issued."""
    reachable = require(uow.principal, Operation.INVOICE_READ)
    document = await repository.get_invoice(uow.conn, invoice_id, list(reachable))
    if document.status not in (InvoiceStatus.ISSUED, InvoiceStatus.CANCELLED) or document.number is None:
        raise InvalidTransition(_l("only issued invoices and credit notes are exported; issue the draft first"))
    seller_raw, buyer_raw = await repository.invoice_parties(uow.conn, document.tenant_id, document.id)
    preceding = None
    if document.cancels_id is not None:
        original = await repository.get_invoice(uow.conn, document.cancels_id, [document.tenant_id])
        assert original.number is not None and original.issued_on is not None
        preceding = (original.number, original.issued_on)
    xml = render(document, msgspec.convert(seller_raw, Party), msgspec.convert(buyer_raw, Party), preceding=preceding)
    return f"{document.number}.xml", xml


# --- party data and figure targets ----------------------------------------------------------------


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: country, check digits, BBAN; the rearranged number mod 97 is 1."""
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged.upper())) % 97 == 1


async def billing_profile(uow: UnitOfWork, tenant_id: UUID) -> BillingProfile | None:
    _reachable(uow, Operation.BILLING_PROFILE_READ, tenant_id)
    return await repository.find_profile(uow.conn, tenant_id)


async def set_billing_profile(uow: UnitOfWork, tenant_id: UUID, data: BillingProfileInput) -> BillingProfile:
    _reachable(uow, Operation.BILLING_PROFILE_WRITE, tenant_id)
    if data.iban is not None and not iban_is_valid(data.iban):
        raise ValidationFailed(_l("not a valid IBAN (format or check digits)"), field="iban")
    try:
        async with uow.conn.transaction():
            return await repository.upsert_profile(uow.conn, tenant_id, data)
    except asyncpg.CheckViolationError:
        raise ValidationFailed(_l("the billing profile has a field in an invalid form")) from None


async def set_figure_targets(uow: UnitOfWork, tenant_id: UUID, data: FigureTargetsInput) -> FigureTargets:
    _reachable(uow, Operation.FIGURES_CONFIGURE, tenant_id)
    for value, field in (
        (data.first_contact_target, "firstContactTarget"),
        (data.first_contact_target_115, "firstContactTarget115"),
    ):
        if not (value.is_finite() and 0 <= value <= 1 and value == value.quantize(SHARE)):
            raise ValidationFailed(_l("a share between 0 and 1 with at most 4 places"), field=field)
    return await repository.upsert_targets(
        uow.conn, tenant_id, data.first_contact_target, data.first_contact_target_115
    )


# --- yearly rate from costs -----------------------------------------------------------------------


async def record_cost_base(uow: UnitOfWork, data: CostBaseInput) -> CostBase:
    """The operator's costs of a year; fixed once a rate was adopted from them."""
    operator = await _home_operator(uow, Operation.COST_BASE_WRITE)
    for value, field in ((data.staff, "staff"), (data.it, "it"), (data.overheads, "overheads"), (data.other, "other")):
        _money(value, field, 2, positive=False)
    if data.staff + data.it + data.overheads + data.other <= 0:
        raise ValidationFailed(_l("a cost base has costs"), field="staff")
    recorded = await repository.upsert_cost_base(uow.conn, operator.id, data, uow.principal.log_id)
    if recorded is None:
        raise InvalidTransition(
            _l("a rate was adopted from the {year} cost base; it no longer changes", year=data.year)
        )
    return recorded


async def cost_bases(uow: UnitOfWork) -> list[CostBase]:
    operator = await _home_operator(uow, Operation.COST_BASE_READ)
    return await repository.list_cost_bases(uow.conn, operator.id)


async def _proposal(uow: UnitOfWork, operator_id: UUID, base: CostBase) -> RateProposal:
    start, end = date(base.year, 1, 1), date(base.year + 1, 1, 1)
    # Every client of the year, former ones too (finance settles with them: Reach.SETTLED).
    settled = reachable_tenants(uow.principal, Operation.INVOICE_READ)
    agreements = await repository.agreements_of_operator(uow.conn, operator_id, sorted(settled), start, end)
    names = {a["tenant_id"]: a["name"] for a in agreements}
    seconds = await repository.billable_seconds_by_client(uow.conn, list(names), start, end)
    billed = await repository.billed_by_client(uow.conn, list(names), start, end)
    clients = [
        ClientMinutes(
            tenant_id=tenant_id,
            name=name,
            billable_seconds=seconds.get(tenant_id, 0),
            billable_minutes=rating.minutes(seconds.get(tenant_id, 0)),
            billed_amount=billed.get(tenant_id, Decimal("0.00")),
        )
        for tenant_id, name in names.items()
    ]
    total_seconds = sum(c.billable_seconds for c in clients)
    total_minutes = rating.minutes(total_seconds)
    calculation = [
        f"cost base {base.year}: staff {base.staff} + IT {base.it} + overheads {base.overheads} "
        f"+ other {base.other} = {base.total} EUR",
        *(
            f"billable minutes {base.year}, {c.name}: {c.billable_seconds} s = {c.billable_minutes} min"
            for c in clients
        ),
        f"billable minutes {base.year}, all clients: {total_seconds} s ÷ 60 = {total_minutes} min",
    ]
    exact = proposed = None
    if total_seconds > 0:
        exact = (base.total * 60 / total_seconds).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        proposed = rating.rate_rounded_up(base.total, total_seconds)
        calculation += [
            f"{base.total} EUR ÷ {total_minutes} min = {exact} EUR/min",
            f"rounded up to the cent: {proposed} EUR/min, from {end.isoformat()}",
        ]
    else:
        calculation.append("no billable minutes in the year: no rate can be derived")
    return RateProposal(
        year=base.year,
        applies_from=end,
        cost_base=base,
        clients=clients,
        billable_seconds=total_seconds,
        billable_minutes=total_minutes,
        exact_rate=exact,
        proposed_rate=proposed,
        calculation=calculation,
        adopted=base.adopted_rate is not None,
    )


async def rate_proposal(uow: UnitOfWork, year: int) -> RateProposal:
    """Next year's cost-covering rate from a year's cost base and billable minutes, explained."""
    operator = await _home_operator(uow, Operation.COST_BASE_READ)
    if not 2000 <= year <= 2998:
        raise ValidationFailed(_l("a year between 2000 and 2998"), field="year")
    base = await repository.find_cost_base(uow.conn, operator.id, year)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=year))
    return await _proposal(uow, operator.id, base)


async def adopt_rate(uow: UnitOfWork, data: RateAdoptionInput) -> RateAdoption:
    """Adopt the proposed rate as every client's tariff from 1 January of the next year (open-ended;
    a running tariff ends on 31 December). Increment and minimum carry over."""
    operator = await _home_operator(uow, Operation.COST_BASE_WRITE)
    base = await repository.find_cost_base(uow.conn, operator.id, data.year, for_update=True)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=data.year))
    if base.adopted_rate is not None:
        raise InvalidTransition(
            _l(
                "the rate from the {year} cost base was adopted already ({adopted_rate} EUR/min)",
                year=data.year,
                adopted_rate=base.adopted_rate,
            )
        )
    proposal = await _proposal(uow, operator.id, base)
    if proposal.proposed_rate is None:
        raise ValidationFailed(
            _l("no billable minutes in {year}: no rate can be derived", year=data.year), field="year"
        )
    applies_from = proposal.applies_from
    agreements = await repository.agreements_of_operator(
        uow.conn, operator.id, sorted(uow.principal.acting_tenant_ids), applies_from, applies_from + timedelta(days=1)
    )
    created: list[Tariff] = []
    for row in agreements:
        agreement = await _agreement(uow, row["id"], uow.principal.acting_tenant_ids)
        running = await repository.tariff_in_force(uow.conn, agreement.tenant_id, applies_from)
        previous = running or await repository.tariff_in_force(
            uow.conn, agreement.tenant_id, applies_from - timedelta(days=1)
        )
        if running is not None:
            if running.valid_from >= applies_from:
                raise Conflict(
                    _l(
                        "{name} already has a tariff from {applies_from}",
                        name=row["name"],
                        applies_from=applies_from.isoformat(),
                    )
                )
            await _update_tariff(
                uow,
                running,
                TariffInput(
                    valid_from=running.valid_from,
                    valid_to=applies_from - timedelta(days=1),
                    price_per_minute=running.price_per_minute,
                    increment_seconds=60 if running.increment_seconds == 60 else 1,
                    minimum_charge=running.minimum_charge,
                    note=running.note,
                ),
            )
        terms = TariffCreate(
            agreement_id=agreement.id,
            valid_from=applies_from,
            valid_to=agreement.ends_on,
            price_per_minute=proposal.proposed_rate,
            increment_seconds=60 if previous is None or previous.increment_seconds == 60 else 1,
            minimum_charge=previous.minimum_charge if previous else None,
            note=f"cost-covering rate from the {data.year} cost base",
        )
        created.append(await _insert_tariff(uow, agreement, terms, cost_base_year=data.year))
    await repository.mark_adopted(uow.conn, operator.id, data.year, proposal.proposed_rate, uow.principal.log_id)
    adopted = await repository.find_cost_base(uow.conn, operator.id, data.year)
    assert adopted is not None
    return RateAdoption(proposal=msgspec.structs.replace(proposal, cost_base=adopted, adopted=True), tariffs=created)


async def true_up(uow: UnitOfWork, data: TrueUpInput) -> Invoice:
    """Draft the difference between a fully invoiced year's usage invoices and the cost-covering
    rate of that year (cost base ÷ billable minutes of all clients, rounded up to the cent)."""
    operator = await _home_operator(uow, Operation.INVOICE_WRITE)
    _reachable(uow, Operation.INVOICE_WRITE, data.tenant_id)
    client = data.tenant_id
    base = await repository.find_cost_base(uow.conn, operator.id, data.year)
    if base is None:
        raise NotFound(_l("no cost base for {year}", year=data.year), field="year")
    proposal = await _proposal(uow, operator.id, base)
    rate = proposal.proposed_rate
    if rate is None:
        raise ValidationFailed(
            _l("no billable minutes in {year}: no rate can be derived", year=data.year), field="year"
        )
    start, end = date(data.year, 1, 1), date(data.year + 1, 1, 1)
    agreement = await repository.agreement_for_period(uow.conn, client, operator.id, start, end)
    if agreement is None:
        raise NotFound(_l("no agreement with this client in that year"), field="tenantId")
    done = await repository.issued_true_up(uow.conn, client, start, end)
    if done is not None:
        raise Duplicate(_l("{year} was trued up already (invoice {done})", year=data.year, done=done))
    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [client])}
    at_tariffs, seconds = Decimal("0.00"), 0
    for row in await repository.usage_by_tariff(uow.conn, client, start, end):
        if row.tariff_id is None:
            continue
        seconds += row.usage.billable_seconds
        terms = _terms(tariffs[row.tariff_id])
        for line in rating.group_lines(terms, row.usage, rating.Billed(), rating.Billed()):
            at_tariffs += line.amount
    billed = (await repository.billed_by_client(uow.conn, [client], start, end)).get(client, Decimal("0.00"))
    if billed != at_tariffs:
        raise Conflict(
            _l(
                "invoice all of {year} first: {at_tariffs} EUR are due at the tariffs, {billed} EUR are invoiced",
                year=data.year,
                at_tariffs=at_tariffs,
                billed=billed,
            )
        )
    due = rating.cents(rating.minute_amount(rate, seconds))
    difference = due - billed
    if difference == 0:
        raise ValidationFailed(_l("nothing to true up: {year} was billed at cost", year=data.year))
    await repository.discard_true_up_drafts(uow.conn, client, start, end)
    amount = abs(difference)
    line = rating.LineDraft(LineKind.TRUE_UP, 0, seconds, Decimal(1), "C62", amount, 1, amount)
    description = (
        f"Ausgleich {data.year} auf den kostendeckenden Minutenpreis {german_amount(rate)} EUR/Min.: "
        f"{german_amount(rating.minutes(seconds))} Min. = {german_amount(due)} EUR, "
        f"abgerechnet {german_amount(billed)} EUR"
    )
    invoice_id = uuid4()
    await repository.insert_invoice(
        uow.conn,
        tenant_id=client,
        invoice_id=invoice_id,
        operator_id=operator.id,
        agreement_id=agreement["id"],
        kind=(InvoiceKind.INVOICE if difference > 0 else InvoiceKind.CREDIT_NOTE).value,
        purpose=InvoicePurpose.TRUE_UP.value,
        start=start,
        end=end,
        label=str(data.year),
        net=amount,
        unrated_calls=0,
        created_by=uow.principal.log_id,
        reason=f"Ausgleich {data.year} (kostendeckender Minutenpreis)",
    )
    await repository.insert_lines(
        uow.conn, client, invoice_id, [NewLine(line, False, None, None, (start, end), description)]
    )
    return await repository.get_invoice(uow.conn, invoice_id, [client])


# --- agreement terms ------------------------------------------------------------------------------


async def agreement_terms(
    uow: UnitOfWork, on: date | None = None, within_days: int | None = None
) -> list[AgreementTerm]:
    """Each agreement's current term end and last day to give notice (for the earliest end still
    reachable); with `within_days`, only those whose notice deadline falls in the next N days."""
    if within_days is not None and not 0 <= within_days <= 3660:
        raise ValidationFailed(_l("withinDays between 0 and 3660"), field="withinDays")
    views = await tenants_service.list_agreements(uow, on)
    day = on or clock.today()
    names = await tenants_service.tenants_by_ids(uow, sorted({v.agreement.tenant_id for v in views}))
    terms = []
    for view in views:
        a = view.agreement
        days = (view.notice_deadline - day).days if view.notice_deadline is not None else None
        if within_days is not None and (days is None or not 0 <= days <= within_days):
            continue
        terms.append(
            AgreementTerm(
                agreement_id=a.id,
                client_tenant_id=a.tenant_id,
                client_name=names[a.tenant_id].name if a.tenant_id in names else str(a.tenant_id),
                operator_tenant_id=a.operator_tenant_id,
                starts_on=a.starts_on,
                ends_on=a.ends_on,
                on=view.on,
                active=view.active,
                current_term_end=view.current_term_end,
                notice_deadline=view.notice_deadline,
                days_to_notice_deadline=days,
            )
        )
    terms.sort(key=lambda t: (t.notice_deadline or date.max, t.client_name))
    return terms


# --- 115 figures ----------------------------------------------------------------------------------


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / whole).quantize(SHARE, rounding=ROUND_HALF_UP) if whole else None


def _figures(
    tenant_id: UUID | None,
    name: str,
    scope: FigureScope,
    start: date,
    last: date,
    sums: dict[str, int],
    target: Decimal,
    tickets: dict[str, int] | None,
) -> Figures:
    settled, forwarded, transferred = (sums["settled_first_contact"], sums["forwarded_as_ticket"], sums["transferred"])
    rate = _share(settled, settled + forwarded + transferred)
    return Figures(
        tenant_id=tenant_id,
        tenant_name=name,
        scope=scope,
        period_from=start,
        period_to=last,
        offered=sums["offered"],
        answered=sums["answered"],
        abandoned=sums["abandoned"],
        answered_within_30s=sums["answered_within_30s"],
        wait_reported=sums["wait_reported"],
        share_answered_within_30s=_share(sums["answered_within_30s"], sums["wait_reported"]),
        settled_first_contact=settled,
        forwarded_as_ticket=forwarded,
        transferred_to_department=transferred,
        first_contact_rate=rate,
        first_contact_target=target,
        meets_first_contact_target=None if rate is None else rate >= target,
        talk_seconds=sums["talk_seconds"],
        talk_minutes=rating.minutes(sums["talk_seconds"]),
        billable_seconds=sums["billable_seconds"],
        billed_minutes=rating.minutes(sums["billable_seconds"]),
        unrated_calls=sums["unrated_calls"],
        tickets_forwarded=tickets["tickets_forwarded"] if tickets is not None else None,
        callbacks_on_time=tickets["callbacks_on_time"] if tickets is not None else None,
        callbacks_late=tickets["callbacks_late"] if tickets is not None else None,
    )


FIGURE_KEYS = (
    "offered",
    "answered",
    "abandoned",
    "answered_within_30s",
    "wait_reported",
    "settled_first_contact",
    "forwarded_as_ticket",
    "transferred",
    "talk_seconds",
    "billable_seconds",
    "unrated_calls",
)
# From the tickets domain, on the all-calls rows only.
TICKET_KEYS = ("tickets_forwarded", "callbacks_on_time", "callbacks_late")


async def figures(
    uow: UnitOfWork, start: date, last: date, tenant_id: UUID | None = None, now: datetime | None = None
) -> FiguresReport:
    """115 figures per tenant for the days `start` … `last` (inclusive), for all calls and for 115
    calls (with their own first-contact target), and the total over the tenants in the report.
    Tickets forwarded and callbacks on time vs late come from the tickets domain (all-calls rows
    only: tickets are not split by the number dialled); `now` decides which open tickets are
    overdue."""
    reachable = require(uow.principal, Operation.FIGURES_READ)
    if tenant_id is not None and tenant_id not in reachable:
        raise NotFound(_l("tenant not found"))
    if not (EARLIEST_DAY <= start <= LATEST_DAY and EARLIEST_DAY <= last <= LATEST_DAY):
        raise ValidationFailed(
            _l(
                "days between {earliest_day} and {latest_day}, please",
                earliest_day=EARLIEST_DAY.isoformat(),
                latest_day=LATEST_DAY.isoformat(),
            ),
            field="from",
        )
    if last < start:
        raise ValidationFailed(_l("the period ends on or after its first day"), field="to")
    if (last - start).days > MAX_FIGURE_DAYS:
        raise ValidationFailed(_l("at most three years at once"), field="to")
    ids = [tenant_id] if tenant_id else sorted(reachable)
    names = await tenants_service.tenants_by_ids(uow, ids)
    targets = await repository.list_targets(uow.conn, ids)
    sums: dict[tuple[UUID, str], dict[str, int]] = {
        (r["tenant_id"], r["scope"]): {k: r[k] for k in FIGURE_KEYS}
        for r in await repository.figure_sums(uow.conn, ids, start, last + timedelta(days=1))
    }
    tickets: dict[UUID, dict[str, int]] = {
        t: {k: getattr(f, k) for k in TICKET_KEYS}
        for t, f in (await tickets_service.callback_figures(uow, list(names), start, last, now)).items()
    }
    zero = dict.fromkeys(FIGURE_KEYS, 0)
    no_tickets = dict.fromkeys(TICKET_KEYS, 0)
    rows: list[Figures] = []
    ticket_total = dict(no_tickets)
    totals = {FigureScope.ALL: dict(zero), FigureScope.ONE_ONE_FIVE: dict(zero)}
    for tid in sorted(ids, key=lambda t: names[t].name if t in names else str(t)):
        if tid not in names:
            continue
        target = targets.get(tid)
        for scope in FigureScope:
            values = sums.get((tid, scope.value), zero)
            goal = (
                (target.first_contact_target if target else DEFAULT_FIRST_CONTACT_TARGET)
                if scope is FigureScope.ALL
                else (target.first_contact_target_115 if target else DEFAULT_FIRST_CONTACT_TARGET_115)
            )
            ticket_values = tickets.get(tid, no_tickets) if scope is FigureScope.ALL else None
            rows.append(_figures(tid, names[tid].name, scope, start, last, values, goal, ticket_values))
            for key in FIGURE_KEYS:
                totals[scope][key] += values[key]
        for key in TICKET_KEYS:
            ticket_total[key] += tickets.get(tid, no_tickets)[key]
    total = [
        _figures(
            None,
            "total",
            FigureScope.ALL,
            start,
            last,
            totals[FigureScope.ALL],
            DEFAULT_FIRST_CONTACT_TARGET,
            ticket_total,
        ),
        _figures(
            None,
            "total",
            FigureScope.ONE_ONE_FIVE,
            start,
            last,
            totals[FigureScope.ONE_ONE_FIVE],
            DEFAULT_FIRST_CONTACT_TARGET_115,
            None,
        ),
    ]
    return FiguresReport(period_from=start, period_to=last, rows=rows, total=total)
