"""XRechnung 3.0 in UBL 2.1 (Invoice 380, CreditNote 381) from an issued invoice.

Structure follows the official sample (../shared/data/xrechnung/01.01a-INVOICE_ubl.xml): the
buyer's Leitweg-ID is the BuyerReference (BT-10) and its electronic address (scheme 0204), the
seller is reached by e-mail; seller contact (BR-DE-2), payment instructions (BR-DE-1) and due
date are always present. Services under a public-law agreement between municipalities are not
subject to VAT (§ 2b UStG): VAT category O with an exemption reason and a 0 % rate in the
breakdown (BR-O-*, BR-DE-14). Amounts are written from Decimal with two places, never floats.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from backend.billing.schemas import Invoice, InvoiceKind, Party
from backend.structs import CONTROL_CHARACTERS

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
LEITWEG_SCHEME = "0204"  # Peppol/ISO 6523 ICD for the German Leitweg-ID


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS_CAC}}}{name}")


def _cbc(parent: etree._Element, name: str, text: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS_CBC}}}{name}", {k: _xml(v) for k, v in attributes.items()})
    element.text = _xml(text)
    return element


def _xml(text: str) -> str:
    """Text without what XML cannot hold. Input refuses control characters, but an invoice issued
    before that (its parties frozen, never changed) must still render: lxml refuses the whole
    document for one bell character in a name."""
    return CONTROL_CHARACTERS.sub("", text)


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def number(value: Decimal) -> str:
    """xs:decimal without exponent."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _address(parent: etree._Element, party: Party) -> None:
    address = _cac(parent, "PostalAddress")
    _cbc(address, "StreetName", party.street)
    _cbc(address, "CityName", party.city)
    _cbc(address, "PostalZone", party.postal_code)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country_code)


def _seller(root: etree._Element, seller: Party) -> None:
    party = _cac(_cac(root, "AccountingSupplierParty"), "Party")
    _cbc(party, "EndpointID", seller.email, schemeID="EM")
    if seller.ags:
        _cbc(_cac(party, "PartyIdentification"), "ID", seller.ags)
    _cbc(_cac(party, "PartyName"), "Name", seller.name)
    _address(party, seller)
    _cbc(_cac(party, "PartyLegalEntity"), "RegistrationName", seller.legal_name)
    contact = _cac(party, "Contact")
    _cbc(contact, "Name", seller.contact_name)
    _cbc(contact, "Telephone", seller.phone)
    _cbc(contact, "ElectronicMail", seller.email)


def _buyer(root: etree._Element, buyer: Party, buyer_reference: str) -> None:
    party = _cac(_cac(root, "AccountingCustomerParty"), "Party")
    _cbc(party, "EndpointID", buyer_reference, schemeID=LEITWEG_SCHEME)
    if buyer.ags:
        _cbc(_cac(party, "PartyIdentification"), "ID", buyer.ags)
    _cbc(_cac(party, "PartyName"), "Name", buyer.name)
    _address(party, buyer)
    _cbc(_cac(party, "PartyLegalEntity"), "RegistrationName", buyer.legal_name)
    contact = _cac(party, "Contact")
    _cbc(contact, "Name", buyer.contact_name)
    _cbc(contact, "Telephone", buyer.phone)
    _cbc(contact, "ElectronicMail", buyer.email)


def _tax_category(parent: etree._Element, name: str, reason: str | None) -> None:
    category = _cac(parent, name)
    _cbc(category, "ID", "O")
    if reason is not None:
        _cbc(category, "Percent", "0")
        _cbc(category, "TaxExemptionReason", reason)
    _cbc(_cac(category, "TaxScheme"), "ID", "VAT")


def render(invoice: Invoice, seller: Party, buyer: Party, *, preceding: tuple[str, date] | None = None) -> bytes:
    """The XRechnung document of an issued invoice or credit note (`preceding`: the number and
    issue date of the invoice a credit note cancels)."""
    if invoice.number is None or invoice.issued_on is None or invoice.buyer_reference is None:
        raise ValueError("only issued documents with a buyer reference are rendered")
    credit = invoice.kind is InvoiceKind.CREDIT_NOTE
    root_ns = NS_CREDIT_NOTE if credit else NS_INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
        nsmap={"ubl": root_ns, "cac": NS_CAC, "cbc": NS_CBC},
    )
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", invoice.number)
    _cbc(root, "IssueDate", invoice.issued_on.isoformat())
    if not credit and invoice.due_on is not None:
        _cbc(root, "DueDate", invoice.due_on.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    if invoice.reason:
        _cbc(root, "Note", invoice.reason)
    _cbc(root, "Note", f"Abrechnung Bürgerservice-Telefon (115), Zeitraum {invoice.period_label}")
    _cbc(root, "DocumentCurrencyCode", invoice.currency)
    _cbc(root, "BuyerReference", invoice.buyer_reference)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", invoice.period_from.isoformat())
    _cbc(period, "EndDate", invoice.period_to.isoformat())
    if preceding is not None:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", preceding[0])
        _cbc(reference, "IssueDate", preceding[1].isoformat())
    _seller(root, seller)
    _buyer(root, buyer, invoice.buyer_reference)

    means = _cac(root, "PaymentMeans")
    account = buyer.iban if credit else seller.iban
    _cbc(means, "PaymentMeansCode", "58" if account else "1")
    if credit and invoice.due_on is not None:
        _cbc(means, "PaymentDueDate", invoice.due_on.isoformat())
    _cbc(means, "PaymentID", invoice.number)
    if account:
        financial = _cac(means, "PayeeFinancialAccount")
        _cbc(financial, "ID", account)
        _cbc(financial, "Name", (buyer if credit else seller).legal_name)
    terms = _cac(root, "PaymentTerms")
    if credit:
        _cbc(terms, "Note", f"Gutschrift zu Rechnung {preceding[0]}" if preceding else "Gutschrift")
    else:
        _cbc(terms, "Note", f"Zahlbar innerhalb von {seller.payment_days} Tagen ohne Abzug.")

    currency = {"currencyID": invoice.currency}
    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", money(invoice.tax_amount), **currency)
    subtotal = _cac(tax_total, "TaxSubtotal")
    _cbc(subtotal, "TaxableAmount", money(invoice.net_amount), **currency)
    _cbc(subtotal, "TaxAmount", money(invoice.tax_amount), **currency)
    _tax_category(subtotal, "TaxCategory", seller.tax_exemption_reason)

    totals = _cac(root, "LegalMonetaryTotal")
    _cbc(totals, "LineExtensionAmount", money(sum((line.amount for line in invoice.lines), Decimal(0))), **currency)
    _cbc(totals, "TaxExclusiveAmount", money(invoice.net_amount), **currency)
    _cbc(totals, "TaxInclusiveAmount", money(invoice.gross_amount), **currency)
    _cbc(totals, "PayableAmount", money(invoice.gross_amount), **currency)

    for line in invoice.lines:
        element = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(element, "ID", str(line.line_no))
        days = f"{line.covers_from:%d.%m.%Y}–{line.covers_to:%d.%m.%Y}"
        if line.correction:
            # Late calls of an earlier, already invoiced period: a line period must lie within the
            # invoice period (PEPPOL-EN16931-R110), so the corrected days are named in a note.
            _cbc(element, "Note", f"Nachberechnung für den Leistungszeitraum {days}")
        _cbc(
            element,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            number(line.quantity),
            unitCode=line.unit_code,
        )
        _cbc(element, "LineExtensionAmount", money(line.amount), **currency)
        if not line.correction:
            line_period = _cac(element, "InvoicePeriod")
            _cbc(line_period, "StartDate", line.covers_from.isoformat())
            _cbc(line_period, "EndDate", line.covers_to.isoformat())
        item = _cac(element, "Item")
        _cbc(item, "Description", line.description)
        _cbc(item, "Name", _item_name(line.kind.value, line.correction))
        _tax_category(item, "ClassifiedTaxCategory", None)
        price = _cac(element, "Price")
        _cbc(price, "PriceAmount", number(line.unit_price), **currency)
        _cbc(price, "BaseQuantity", str(line.base_quantity), unitCode=line.unit_code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _item_name(kind: str, correction: bool) -> str:
    name = {
        "usage": "Gesprächsminuten Bürgerservice",
        "minimum_charge": "Mindestentgelt je Gespräch",
        "true_up": "Ausgleich kostendeckender Minutenpreis",
    }[kind]
    return f"Nachberechnung: {name}" if correction else name
