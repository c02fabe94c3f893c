"""XRechnung 3.0 export: the buyer's Leitweg-ID (BT-10, check digits validated), seller and buyer
from the tenants; invoices and credit notes pass the UBL 2.1 XSD and the KoSIT EN 16931 and
XRechnung Schematron rules (no error-level finding)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from backend.billing import invoices
from backend.billing.schemas import CancellationInput
from backend.billing.xrechnung import NS_CAC, NS_CBC
from backend.errors import Conflict, ValidationFailed
from backend.state import unit_of_work
from backend.tenants.schemas import TenantUpdate
from backend.tenants.service import tenants_by_ids, update_tenant
from backend.tenants.validation import leitweg_id_is_valid, leitweg_id_with_check_digits
from tests.billing.support import Billing, add_calls, talks
from tests.billing.xrechnung_check import XRECHNUNG, Validator
from tests.support.world import World, system_principal

NS = {"cbc": NS_CBC, "cac": NS_CAC}


def test_leitweg_id_check_digits() -> None:
    # The official sample's Leitweg-ID (ISO 7064 MOD 97-10 over the digits of coarse + fine part).
    assert leitweg_id_is_valid("04011000-12345-03")
    assert not leitweg_id_is_valid("04011000-12345-04")  # wrong check digits
    assert not leitweg_id_is_valid("04011000-12345")  # no check digits
    assert not leitweg_id_is_valid("0401100012345-03-")
    made = leitweg_id_with_check_digits("05974040", "BUERGERSERVICE")
    assert leitweg_id_is_valid(made) and made.startswith("05974040-BUERGERSERVICE-")


def test_the_validator_accepts_the_official_sample_and_catches_a_missing_leitweg_id(validator: Validator) -> None:
    sample = (XRECHNUNG / "01.01a-INVOICE_ubl.xml").read_bytes()
    report = validator.validate(sample)
    assert report.accepted, (report.schema_errors, report.errors)
    broken = validator.validate(sample.replace(b"<cbc:BuyerReference>04011000-12345-03</cbc:BuyerReference>", b""))
    assert not broken.accepted and "BR-DE-15" in {f.rule for f in broken.errors}


async def _issued(world: World, billing: Billing, minimum: str | None = None) -> tuple[object, object]:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", valid_to=date(2026, 2, 14), minimum=minimum)
    await billing.add_tariff("soest", date(2026, 2, 15), "1.0250", increment=1, minimum=minimum)
    await add_calls(
        world.state.pool,
        soest,
        billing.operator,
        [*talks(date(2026, 2, 2), 61, 59, 5), *talks(date(2026, 2, 20), 61, 59, 3)],
    )
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-02")
        with pytest.raises(Conflict, match="issue the draft first"):
            await invoices.xrechnung(uow, draft.id)
        invoice = await invoices.issue_invoice(uow, draft.id)
        name, xml = await invoices.xrechnung(uow, invoice.id)
    return invoice, (name, xml)


@pytest.mark.parametrize("minimum", [None, "0.50"])
async def test_an_issued_invoice_is_valid_xrechnung(
    world: World, billing: Billing, validator: Validator, minimum: str | None
) -> None:
    invoice, (name, xml) = await _issued(world, billing, minimum)
    report = validator.validate(xml)
    assert report.scenario == "EN16931 XRechnung (UBL Invoice)"
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])
    document = etree.fromstring(xml)
    assert name == f"{invoice.number}.xml"  # type: ignore[attr-defined]
    assert document.findtext("cbc:ID", namespaces=NS) == invoice.number  # type: ignore[attr-defined]
    leitweg = document.findtext("cbc:BuyerReference", namespaces=NS)
    assert leitweg == invoice.buyer_reference and leitweg_id_is_valid(leitweg or "")  # type: ignore[attr-defined]
    assert document.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS).text == leitweg
    seller = document.findtext(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS
    )
    buyer = document.findtext("cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name", namespaces=NS)
    assert seller == "Kreis Soest – Der Landrat" and buyer == "Stadt Soest"
    amounts = [Decimal(e.text) for e in document.iterfind("cac:InvoiceLine/cbc:LineExtensionAmount", NS)]
    assert amounts == [line.amount for line in invoice.lines]  # type: ignore[attr-defined]
    total = Decimal(document.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) or "")
    assert total == invoice.gross_amount == sum(amounts)  # type: ignore[attr-defined]
    # Same skeleton as the official sample: every top-level element we write is one it has, in order.
    sample = etree.parse(str(XRECHNUNG / "01.01a-INVOICE_ubl.xml")).getroot()
    ours = [etree.QName(e).localname for e in document]
    theirs = [etree.QName(e).localname for e in sample]
    assert set(theirs) - {"Note"} <= set(ours)


async def test_a_credit_note_is_valid_xrechnung(world: World, billing: Billing, validator: Validator) -> None:
    invoice, _ = await _issued(world, billing)
    async with unit_of_work(world.state, billing.finance()) as uow:
        credit = await invoices.cancel_invoice(uow, invoice.id, CancellationInput(reason="Storno"))  # type: ignore[attr-defined]
        _, xml = await invoices.xrechnung(uow, credit.id)
        _, cancelled_xml = await invoices.xrechnung(uow, invoice.id)  # type: ignore[attr-defined]
    report = validator.validate(xml)
    assert report.scenario == "EN16931 XRechnung (UBL CreditNote)"
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])
    document = etree.fromstring(xml)
    assert document.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    reference = document.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS)
    assert reference == invoice.number  # type: ignore[attr-defined]
    assert validator.validate(cancelled_xml).accepted  # the cancelled invoice stays exportable, unchanged


async def test_issuing_needs_a_valid_leitweg_id_and_billing_profiles(world: World, billing: Billing) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 3, 2), 61))
    admin = system_principal(billing.operator, {billing.operator, soest})
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-03")
    async with unit_of_work(world.state, admin) as uow:
        slug = (await tenants_by_ids(uow, [soest]))[soest].slug
        with pytest.raises(ValidationFailed, match="Leitweg"):  # tenants refuse bad check digits
            await update_tenant(uow, slug, TenantUpdate(leitweg_id="05974020-BUERGERSERVICE-00"))
        await uow.conn.execute("SELECT 1")
    # A Leitweg-ID that was stored before validation existed (straight in the database) is caught at issue.
    async with unit_of_work(world.state, admin) as uow:
        await uow.conn.execute("UPDATE tenants SET leitweg_id = '05974020-BUERGERSERVICE-00' WHERE id = $1", soest)
    async with unit_of_work(world.state, billing.finance()) as uow:
        with pytest.raises(ValidationFailed, match="check digits"):
            await invoices.issue_invoice(uow, draft.id)
    async with unit_of_work(world.state, admin) as uow:
        await uow.conn.execute("UPDATE tenants SET leitweg_id = NULL WHERE id = $1", soest)
    async with unit_of_work(world.state, billing.finance()) as uow:
        with pytest.raises(ValidationFailed, match="no Leitweg-ID"):
            await invoices.issue_invoice(uow, draft.id)


async def test_an_invoice_with_correction_lines_is_valid_xrechnung(
    world: World, billing: Billing, validator: Validator
) -> None:
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95")
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 4, 2), 61))
    async with unit_of_work(world.state, billing.finance()) as uow:
        april = await invoices.run_invoice(uow, soest, "2026-04")
        await invoices.issue_invoice(uow, april.id)
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 4, 30), 30))  # late
    await add_calls(world.state.pool, soest, billing.operator, talks(date(2026, 5, 4), 59))
    async with unit_of_work(world.state, billing.finance()) as uow:
        may = await invoices.run_invoice(uow, soest, "2026-05")
        assert [line.correction for line in may.lines] == [False, True]
        may = await invoices.issue_invoice(uow, may.id)
        _, xml = await invoices.xrechnung(uow, may.id)
    report = validator.validate(xml)
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])
    notes = etree.fromstring(xml).xpath("cac:InvoiceLine[2]/cbc:Note/text()", namespaces=NS)
    assert notes == ["Nachberechnung für den Leistungszeitraum 01.04.2026–30.04.2026"]


async def test_an_invoice_frozen_with_a_control_character_still_exports(
    world: World, billing: Billing, validator: Validator
) -> None:
    """Before input refused control characters, a profile's `legalName` "Stadt Soest\\u0007" was
    stored, frozen into the invoices issued then (never changed again), and their XRechnung export
    was a 500 for good, also after the profile was fixed. Such stored text renders without them."""
    soest = billing.clients["soest"]
    admin = system_principal(billing.operator, {billing.operator, soest})
    async with unit_of_work(world.state, admin) as uow:  # as the old code stored it
        await uow.conn.execute(
            "UPDATE billing_profiles SET legal_name = legal_name || E'\\x07', city = E'So\\x1best' "
            "WHERE tenant_id = ANY($1::uuid[])",
            [billing.operator, soest],
        )
    invoice, (_, xml) = await _issued(world, billing)
    async with unit_of_work(world.state, admin) as uow:
        frozen = await uow.conn.fetchval(
            "SELECT seller->>'legalName' FROM invoices WHERE id = $1",
            invoice.id,  # type: ignore[attr-defined]
        )
    assert frozen == "Kreis Soest – Der Landrat\x07"  # the stored invoice keeps what it was issued with
    report = validator.validate(xml)  # type: ignore[arg-type]
    assert report.accepted, (report.schema_errors, [(f.rule, f.text) for f in report.errors])
    document = etree.fromstring(xml)  # type: ignore[arg-type]
    seller = document.findtext(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS
    )
    assert seller == "Kreis Soest – Der Landrat"
    assert document.findtext("cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cbc:CityName", namespaces=NS) == (
        "Soest"
    )
