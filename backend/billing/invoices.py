"""Invoices: runs that draft a client's invoice for a month or a year from the daily rollups,
issuing (numbered without gaps per operator and year) and cancelling by credit note, the XRechnung
of an issued document, and the billing profiles whose party data an issued invoice freezes.

Amounts are what the current totals cost per tariff group minus what issued invoices already
charged for those days (decision 008), so late calls become correction lines, never changes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.permissions import Operation
from backend import clock
from backend.billing import invoice_repository, rating, repository
from backend.billing.common import exclusive, reach_client, require_operator, tariff_terms
from backend.billing.invoice_repository import LedgerEntry, NewLine
from backend.billing.itemised import apportioned as itemised_share
from backend.billing.itemised import shown_caller
from backend.billing.rating import Usage, german_amount, german_range, intersect
from backend.billing.schemas import (
    BillingProfile,
    BillingProfileInput,
    CancellationInput,
    Invoice,
    InvoiceKind,
    InvoicePurpose,
    InvoiceStatus,
    ItemisedCall,
    ItemisedCaller,
    ItemisedCallList,
    ItemisedLine,
    LineKind,
    Party,
    Tariff,
)
from backend.billing.xrechnung import render
from backend.errors import Conflict, Duplicate, InvalidTransition, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach, reach_home, reach_id, reach_optional, reachable
from backend.tenants.validation import leitweg_id_is_valid

# --- invoice runs ---------------------------------------------------------------------------------


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


def _basis(tariff: Tariff) -> str:
    """The billing increment in the words of a German invoice."""
    first, step = tariff.first_period_seconds, tariff.increment_seconds
    if (first, step) == (60, 60):
        return "je angefangene Minute"
    if (first, step) == (1, 1):
        return "sekundengenau"
    then = "sekundengenau" if step == 1 else f"je angefangene {step} Sekunden"
    return f"Taktung {tariff.billing_increment}: die ersten {first} Sekunden, dann {then}"


def _describe(
    draft: rating.LineDraft, tariff: Tariff, covers: tuple[date, date], corrects: tuple[UUID, str] | None
) -> str:
    days = german_range(*covers)
    if draft.kind is LineKind.MINIMUM_CHARGE:
        assert tariff.minimum_charge is not None or draft.calls == 0
        text = f"Mindestentgelt {days}: {draft.calls} Gespräche zu je {german_amount(draft.unit_price)} EUR"
    else:
        basis = _basis(tariff)
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
        tariff_terms(tariff),
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
    for earlier in await invoice_repository.usage_of_issued_periods(uow.conn, client, before):
        for row in sorted(earlier.rows, key=lambda r: tariffs[r.tariff_id].valid_from if r.tariff_id else date.min):
            if row.tariff_id is None:
                continue
            tariff = tariffs[row.tariff_id]
            covers = intersect(earlier.period, (tariff.valid_from, exclusive(tariff.valid_to)))
            assert covers is not None
            lines += _lines_for(tariff, covers, row.usage, ledger, (earlier.invoice_id, earlier.number))
    return lines


async def _corrections_still_due(uow: UnitOfWork, draft: Invoice) -> bool:
    """Whether the draft's correction lines are what is due now. Two drafts made before either
    was issued both carry the same late calls, and a period cancelled and invoiced again
    already holds them: issuing such a draft would charge the calls twice."""
    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [draft.tenant_id])}
    ledger = await invoice_repository.billed_ledger(uow.conn, draft.tenant_id)
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


async def run_invoice(uow: UnitOfWork, tenant: str | UUID, period: str) -> Invoice:
    """Draft a client's invoice for a month or year (`period`, a valid `PeriodText`): one line per
    tariff period (and one for calls charged the minimum), plus correction lines for calls that
    reached already invoiced periods after those were issued. Amounts come from the daily
    rollups, rounded per line."""
    operator = await reach_home(uow, Operation.INVOICE_WRITE, operator=True)
    client = (await reach_client(uow, tenant, Operation.INVOICE_WRITE)).id
    if not 2000 <= int(period[:4]) <= 2998:
        raise ValidationFailed(_l("a period between 2000 and 2998"), field="period")
    start, end = rating.period_of(period)
    agreement = await repository.agreement_for_period(uow.conn, client, operator.id, start, end)
    if agreement is None:
        raise NotFound(_l("no agreement with this client in that period"), field="tenantId")
    # Simultaneous runs of a client take turns: each then sees what the one before issued or
    # drafted (and replaces the draft), where racing they met on the one-draft constraint (409)
    # or, three at once, deadlocked; a run beside an issue left a draft of an issued period.
    await invoice_repository.lock_client_invoicing(uow.conn, client)
    issued = await invoice_repository.issued_usage_overlapping(uow.conn, client, start, end)
    if issued is not None:
        raise Conflict(
            _l("the period is already invoiced (invoice {issued}); cancel that invoice first", issued=issued)
        )
    await invoice_repository.discard_drafts(uow.conn, client, start, end)

    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [client])}
    ledger = await invoice_repository.billed_ledger(uow.conn, client)
    lines: list[NewLine] = []
    unrated = 0
    current = await invoice_repository.usage_by_tariff(uow.conn, client, start, end)
    for row in sorted(current, key=lambda r: tariffs[r.tariff_id].valid_from if r.tariff_id else date.min):
        unrated += row.unrated_calls
        if row.tariff_id is None:
            continue
        tariff = tariffs[row.tariff_id]
        covers = intersect((start, end), (tariff.valid_from, exclusive(tariff.valid_to)))
        assert covers is not None
        lines += _lines_for(tariff, covers, row.usage, ledger, None)
    lines += await _correction_lines(uow, client, start, tariffs, ledger)

    invoice_id = uuid4()
    net = sum((line.draft.amount for line in lines), Decimal(0))
    try:
        async with uow.conn.transaction():
            await invoice_repository.insert_invoice(
                uow.conn,
                tenant_id=client,
                invoice_id=invoice_id,
                operator_id=operator.id,
                agreement_id=agreement["id"],
                kind=InvoiceKind.INVOICE.value,
                purpose=InvoicePurpose.USAGE.value,
                start=start,
                end=end,
                label=period,
                net=net,
                unrated_calls=unrated,
                created_by=uow.principal.log_id,
            )
            await invoice_repository.insert_lines(uow.conn, client, invoice_id, lines)
    except asyncpg.ExclusionViolationError:
        raise Conflict(_l("another run of this period is in progress or was just issued; try again")) from None
    return await invoice_repository.get_invoice(uow.conn, invoice_id, [client])


async def list_invoices(
    uow: UnitOfWork, tenant: str | None = None, year: int | None = None, include_discarded: bool = False
) -> list[Invoice]:
    """Invoices and credit notes of the tenants I may see, or of the one named by slug."""
    visible = reachable(uow, Operation.INVOICE_READ)
    one = await reach_optional(uow, tenant, Operation.INVOICE_READ)
    if year is not None and not 2000 <= year <= 2999:
        raise ValidationFailed(_l("a year between 2000 and 2999"), field="year")
    return await invoice_repository.list_invoices(
        uow.conn, [one.id] if one else sorted(visible), year, include_discarded
    )


async def invoice(uow: UnitOfWork, invoice_id: UUID) -> Invoice:
    visible = reachable(uow, Operation.INVOICE_READ)
    return await invoice_repository.get_invoice(uow.conn, invoice_id, list(visible))


async def _party(uow: UnitOfWork, tenant_id: UUID, role: str) -> Party:
    # Seller and buyer of an invoice the principal may issue: both within its reach.
    tenant = await reach_id(uow, tenant_id, Operation.INVOICE_WRITE)
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
    seq = await invoice_repository.next_invoice_number(uow.conn, invoice.operator_tenant_id, issued_on.year)
    await invoice_repository.mark_issued(
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


async def _locked(uow: UnitOfWork, invoice_id: UUID) -> Invoice:
    """The invoice, read after its client's invoicing lock and then locked itself: the lock order
    every invoicing change keeps (client, then invoice row)."""
    visible = list(reachable(uow, Operation.INVOICE_WRITE))
    client = await invoice_repository.find_invoice_client(uow.conn, invoice_id, visible)
    if client is None:
        raise NotFound(_l("invoice not found"))
    await invoice_repository.lock_client_invoicing(uow.conn, client)
    invoice = await invoice_repository.find_invoice(uow.conn, invoice_id, visible, for_update=True)
    assert invoice is not None  # invoices are never deleted
    require_operator(uow, invoice.operator_tenant_id)
    return invoice


async def issue_invoice(uow: UnitOfWork, invoice_id: UUID) -> Invoice:
    """Number a draft (gap-free per operator and year) and freeze it with the parties' data."""
    invoice = await _locked(uow, invoice_id)
    if invoice.status is not InvoiceStatus.DRAFT:
        raise InvalidTransition(_l("only drafts are issued; this one is {status}", status=invoice.status.value))
    if not invoice.lines:
        raise ValidationFailed(_l("nothing to invoice: the draft has no lines"))
    if invoice.gross_amount < 0:
        raise ValidationFailed(_l("the total is negative; a credit note is needed instead"))
    if invoice.purpose is InvoicePurpose.TRUE_UP:
        done = await invoice_repository.issued_true_up(
            uow.conn, invoice.tenant_id, invoice.period_from, invoice.period_to + timedelta(days=1)
        )
        if done is not None:
            raise Duplicate(_l("{year} was trued up already (invoice {done})", year=invoice.period_label, done=done))
    if invoice.purpose is InvoicePurpose.USAGE:
        issued = await invoice_repository.issued_usage_overlapping(
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
    return await invoice_repository.get_invoice(uow.conn, invoice.id, [invoice.tenant_id])


async def cancel_invoice(uow: UnitOfWork, invoice_id: UUID, data: CancellationInput) -> Invoice:
    """Cancel an issued invoice by a credit note (itself numbered); returns the credit note."""
    original = await _locked(uow, invoice_id)
    if original.kind is not InvoiceKind.INVOICE or original.status is not InvoiceStatus.ISSUED:
        raise InvalidTransition(
            _l(
                "only issued invoices are cancelled; this {kind} is {status}",
                kind=original.kind.value,
                status=original.status.value,
            )
        )
    credit_id = uuid4()
    await invoice_repository.insert_invoice(
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
    await invoice_repository.copy_lines(uow.conn, original.tenant_id, original.id, credit_id)
    seller_raw, buyer_raw = await invoice_repository.invoice_parties(uow.conn, original.tenant_id, original.id)
    seller = msgspec.convert(seller_raw, Party)
    buyer = msgspec.convert(buyer_raw, Party)
    credit = await invoice_repository.get_invoice(uow.conn, credit_id, [original.tenant_id])
    assert original.buyer_reference is not None
    await _number_and_issue(uow, credit, seller, buyer, original.buyer_reference, 0)
    await invoice_repository.mark_cancelled(uow.conn, original.tenant_id, original.id, credit_id)
    return await invoice_repository.get_invoice(uow.conn, credit_id, [original.tenant_id])


async def xrechnung(uow: UnitOfWork, invoice_id: UUID) -> tuple[str, bytes]:
    """The XRechnung (UBL) of an issued invoice or credit note, with the parties as issued."""
    visible = reachable(uow, Operation.INVOICE_READ)
    document = await invoice_repository.get_invoice(uow.conn, invoice_id, list(visible))
    if document.status not in (InvoiceStatus.ISSUED, InvoiceStatus.CANCELLED) or document.number is None:
        raise InvalidTransition(_l("only issued invoices and credit notes are exported; issue the draft first"))
    seller_raw, buyer_raw = await invoice_repository.invoice_parties(uow.conn, document.tenant_id, document.id)
    preceding = None
    if document.cancels_id is not None:
        original = await invoice_repository.get_invoice(uow.conn, document.cancels_id, [document.tenant_id])
        assert original.number is not None and original.issued_on is not None
        preceding = (original.number, original.issued_on)
    xml = render(document, msgspec.convert(seller_raw, Party), msgspec.convert(buyer_raw, Party), preceding=preceding)
    return f"{document.number}.xml", xml


# --- itemised call list (Einzelverbindungsnachweis) ----------------------------------------------


async def itemised_calls(uow: UnitOfWork, invoice_id: UUID) -> ItemisedCallList:
    """Every call behind an invoice's lines: start, talk and billed seconds, its share of the line
    (the calls of a line add up to it exactly), the caller's number as the town's billing profile
    says. Correction lines (late calls of earlier invoices) and true-ups are listed as lines only."""
    visible = reachable(uow, Operation.INVOICE_READ)
    invoice = await invoice_repository.get_invoice(uow.conn, invoice_id, list(visible))
    profile = await repository.find_profile(uow.conn, invoice.tenant_id)
    how = profile.itemised_caller if profile else ItemisedCaller.SHORTENED
    hidden = profile.itemised_hidden_digits if profile else 3
    # The calls a run counted are those recorded by then; a credit note repeats its invoice's.
    counted = invoice
    if invoice.cancels_id is not None:
        counted = await invoice_repository.get_invoice(uow.conn, invoice.cancels_id, [invoice.tenant_id])
    charged = (
        await invoice_repository.charged_calls(
            uow.conn, invoice.tenant_id, invoice.period_from, invoice.period_to + timedelta(days=1), counted.created_at
        )
        if counted.purpose is InvoicePurpose.USAGE
        else []
    )
    tariffs = {t.id: t for t in await repository.list_tariffs(uow.conn, [invoice.tenant_id])}
    lines: list[ItemisedLine] = []
    calls: list[ItemisedCall] = []
    for line in invoice.lines:
        minimum = line.kind is LineKind.MINIMUM_CHARGE
        group = [
            c
            for c in charged
            if not line.correction
            and c.tariff_id == line.tariff_id
            and c.at_minimum == minimum
            and line.covers_from <= c.day <= line.covers_to
        ]
        itemised = (
            line.tariff_id in tariffs
            and line.kind is not LineKind.TRUE_UP
            and len(group) == line.calls
            and sum(c.billed_seconds for c in group) == line.billable_seconds
        )
        if itemised:
            tariff = tariffs[line.tariff_id]  # type: ignore[index]
            exact = [
                tariff.minimum_charge or Decimal(0)
                if minimum
                else rating.minute_amount(tariff.price_per_minute, c.billed_seconds)
                for c in group
            ]
            shares = itemised_share(exact, line.amount)
            calls += [
                ItemisedCall(
                    line_no=line.line_no,
                    started_at=c.started_at,
                    caller=shown_caller(c.caller, how, hidden),
                    purpose=c.purpose,
                    talk_seconds=c.talk_seconds,
                    billed_seconds=c.billed_seconds,
                    at_minimum=c.at_minimum,
                    amount=share,
                )
                for c, share in zip(group, shares, strict=True)
            ]
        lines.append(
            ItemisedLine(
                line_no=line.line_no,
                kind=line.kind,
                correction=line.correction,
                description=line.description,
                calls=line.calls,
                billable_seconds=line.billable_seconds,
                amount=line.amount,
                itemised=itemised,
            )
        )
    calls.sort(key=lambda c: (c.started_at, c.line_no))
    return ItemisedCallList(
        invoice_id=invoice.id,
        tenant_id=invoice.tenant_id,
        number=invoice.number,
        period_from=invoice.period_from,
        period_to=invoice.period_to,
        caller_shown=how,
        lines=lines,
        calls=calls,
        total_talk_seconds=sum(c.talk_seconds for c in calls),
        total_billed_seconds=sum(c.billed_seconds for c in calls),
        total_amount=sum((c.amount for c in calls), Decimal("0.00")),
    )


# --- billing profiles (party data) ---------------------------------------------------------------


def normalised_iban(typed: str) -> str:
    """The electronic form of an IBAN as people type it from a letterhead: the print form's groups
    of four ("DE02 1203 …"), any whitespace, lower case."""
    return "".join(typed.split()).upper()


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: country, check digits, BBAN; the rearranged number mod 97 is 1."""
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged.upper())) % 97 == 1


async def billing_profile(uow: UnitOfWork, tenant: str) -> BillingProfile | None:
    """A tenant's invoice address and contact (None: none recorded yet)."""
    found = await reach(uow, tenant, Operation.BILLING_PROFILE_READ)
    return await repository.find_profile(uow.conn, found.id)


async def set_billing_profile(uow: UnitOfWork, tenant: str, data: BillingProfileInput) -> BillingProfile:
    found = await reach(uow, tenant, Operation.BILLING_PROFILE_WRITE)
    if data.iban is not None:
        data = msgspec.structs.replace(data, iban=normalised_iban(data.iban))
    if data.iban is not None and not iban_is_valid(data.iban):
        raise ValidationFailed(_l("not a valid IBAN (format or check digits)"), field="iban")
    try:
        async with uow.conn.transaction():
            return await repository.upsert_profile(uow.conn, found.id, data)
    except asyncpg.CheckViolationError:
        raise ValidationFailed(_l("the billing profile has a field in an invalid form")) from None
