"""The invoice, credit note and dispute evidence pack PDFs rendered from the demo data (`manage.py
seed_demo`) and read back with pypdf: number, seller and buyer, each line's description, quantity
and amounts as the database holds them, the tax breakdown per rate, totals, due date; the credit note
names the invoice it corrects; the evidence pack shows the invoices, tracking events and the proof
of delivery.

The demo is seeded once for the module, inside a transaction rolled back at the end; each test runs
in its own savepoint on top of it. Amounts and dates are formatted here with babel in the document's
own locale (the demo has French and English customers), independently of billing.documents."""

import io
import re
from decimal import Decimal
from io import StringIO

import pytest
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from django.core.management import call_command
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone, translation
from pypdf import PdfReader

from billing.documents import credit_note_pdf, invoice_pdf
from billing.models import CreditNote, Dispute, Invoice, InvoiceTax, PaymentTerms
from billing.services.invoices import invoice_is_overdue
from fulfillment.models import Shipment

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_media(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("demo-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield media
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _demo_files(_media, settings, demo_media):
    settings.MEDIA_ROOT = demo_media  # where the demo stored the evidence pack


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def compact(text: str) -> str:
    """Without any whitespace (non-breaking spaces of French amounts included): cells wrap anywhere."""
    return re.sub(r"\s+", "", text)


class Printed:
    """How the document's locale prints amounts, rates, dates and quantities (babel)."""

    def __init__(self, document):
        self.locale = translation.to_locale(document.locale)
        self.currency = document.currency

    def money(self, amount) -> str:
        return compact(format_currency(amount, self.currency, locale=self.locale))

    def rate(self, rate) -> str:
        pattern = Locale.parse(self.locale).percent_formats[None].pattern.replace("0", "0.##", 1)
        return compact(format_percent(Decimal(rate), locale=self.locale, format=pattern))

    def date(self, value) -> str:
        if hasattr(value, "hour"):
            value = timezone.localtime(value).date()
        return compact(format_date(value, format="long", locale=self.locale))

    @staticmethod
    def quantity(value) -> str:
        value = Decimal(value)
        return f"{value.normalize():f}"


def assert_parties(flat: str, document) -> None:
    seller, buyer = document.seller, document.buyer
    assert compact(seller["name"]) in flat
    assert all(compact(line) in flat for line in seller["address"])
    assert compact(seller["vat_number"]) in flat
    assert compact(buyer["name"]) in flat
    if buyer.get("company"):
        assert compact(buyer["company"]) in flat
    assert all(compact(line) in flat for line in buyer["address"])


def assert_rows(flat: str, rows, printed: Printed) -> None:
    """Each line reads description (and SKU), quantity, unit price, rate, net, VAT, total, in order."""
    position = 0
    for row in rows:
        cells = [
            compact(row.description) + compact(row.sku),
            printed.quantity(row.quantity),
            printed.money(row.unit_price),
            printed.rate(row.tax_rate),
            printed.money(row.net),
            printed.money(row.tax),
            printed.money(row.gross),
        ]
        found = flat.find("".join(cells), position)
        assert found >= 0, (row.position, "".join(cells))
        position = found


def assert_invoice(invoice: Invoice) -> str:
    printed = Printed(invoice)
    flat = compact(pdf_text(invoice_pdf(invoice)))
    assert invoice.number in flat
    assert invoice.order.number in flat
    assert_parties(flat, invoice)
    rows = list(invoice.lines.order_by("position"))
    assert rows
    assert_rows(flat, rows, printed)
    taxes = list(InvoiceTax.objects.filter(invoice=invoice).order_by("rate"))
    assert {tax.rate for tax in taxes} == {row.tax_rate for row in rows}
    for tax in taxes:
        # The breakdown per rate: the sums of the lines' own amounts, printed rate, base, VAT.
        assert tax.base == sum(row.net for row in rows if row.tax_rate == tax.rate)
        assert tax.tax == sum(row.tax for row in rows if row.tax_rate == tax.rate)
        assert printed.rate(tax.rate) + printed.money(tax.base) + printed.money(tax.tax) in flat
    assert invoice.total_gross == sum(row.gross for row in rows)
    assert re.search(
        re.escape(printed.money(invoice.total_net))
        + r"\D*"
        + re.escape(printed.money(invoice.total_tax))
        + r"\D*"
        + re.escape(printed.money(invoice.total_gross)),
        flat,
    )
    assert printed.date(invoice.issued_at) in flat
    assert printed.date(invoice.due_at) in flat
    return flat


def test_the_demos_overdue_account_invoice_prints_its_net_30_due_date_lines_and_totals():
    (invoice,) = [
        invoice for invoice in Invoice.objects.filter(payment_terms=PaymentTerms.NET_30) if invoice_is_overdue(invoice)
    ]
    assert invoice.order.channel.code == "edi-reseller" and invoice.buyer["company"]
    assert (invoice.due_at - timezone.localtime(invoice.issued_at).date()).days == 30
    assert invoice.due_at < timezone.localdate()
    flat = assert_invoice(invoice)
    assert compact(invoice.buyer["purchase_order_number"]) in flat
    assert compact(invoice.seller["iban"]) in flat  # how to pay by transfer


def test_a_demo_invoice_with_two_vat_rates_prints_the_breakdown_per_rate():
    invoice = next(
        invoice
        for invoice in Invoice.objects.filter(order__channel__code="web", shipment__isnull=False).order_by("pk")
        if InvoiceTax.objects.filter(invoice=invoice).count() >= 2
    )
    assert invoice.payment_terms == PaymentTerms.IMMEDIATE
    assert invoice.due_at == timezone.localtime(invoice.issued_at).date()
    flat = assert_invoice(invoice)
    assert invoice.shipment.number in flat  # the web store invoices each parcel


@pytest.mark.parametrize("reason", ["pricing_error", "goodwill", "return"])
def test_the_demos_credit_notes_name_the_invoice_they_correct_and_their_amounts(reason):
    credit_note = CreditNote.objects.select_related("invoice").get(reason=reason)
    invoice = credit_note.invoice
    printed = Printed(credit_note)
    flat = compact(pdf_text(credit_note_pdf(credit_note)))

    assert credit_note.number in flat and credit_note.order.number in flat
    # Corrects invoice <number> of <date> (<total>).
    assert invoice.number in flat
    assert printed.date(invoice.issued_at) + "(" + printed.money(invoice.total_gross) + ")" in flat
    assert_parties(flat, credit_note)
    rows = list(credit_note.lines.order_by("position"))
    assert rows
    assert_rows(flat, rows, printed)
    assert credit_note.total_gross == sum(row.gross for row in rows) <= invoice.total_gross
    for rate in {row.tax_rate for row in rows}:
        base = sum(row.net for row in rows if row.tax_rate == rate)
        tax = sum(row.tax for row in rows if row.tax_rate == rate)
        assert printed.rate(rate) + printed.money(base) + printed.money(tax) in flat
    assert re.search(
        re.escape(printed.money(credit_note.total_net))
        + r"\D*"
        + re.escape(printed.money(credit_note.total_tax))
        + r"\D*"
        + re.escape(printed.money(credit_note.total_gross)),
        flat,
    )
    if credit_note.note:
        assert compact(credit_note.note) in flat
    if reason == "pricing_error":  # by lines: one unit of the invoice's first line
        (row,) = rows
        assert row.invoice_line.invoice_id == invoice.pk and row.quantity == 1


def test_the_demos_dispute_evidence_pack_shows_the_invoices_tracking_and_proof_of_delivery():
    dispute = Dispute.objects.select_related("order", "payment").get()
    order = dispute.order
    with dispute.evidence.open("rb") as stored:  # the pack the demo generated and stored
        text = pdf_text(stored.read())
    flat = compact(text)

    assert dispute.provider_reference in flat and order.number in flat
    assert dispute.payment.provider_reference in flat
    invoices = list(Invoice.objects.filter(order=order))
    assert invoices
    for invoice in invoices:
        assert invoice.number in flat
        total = f"{invoice.total_gross:.2f}"
        assert f"{total}{invoice.currency}" in flat or f"{total.replace('.', ',')}{invoice.currency}" in flat
    for line in order.lines.all():
        assert compact(line.name) in flat
    parcels = list(Shipment.objects.filter(order=order, delivered_at__isnull=False))
    assert parcels
    for parcel in parcels:
        assert parcel.number in flat and parcel.tracking_number in flat
        updates = list(parcel.tracking_updates.order_by("occurred_at", "pk"))
        assert len(updates) >= 3  # picked up, at the hub, delivered
        for update in updates:
            assert compact(f"{timezone.localtime(update.occurred_at):%Y-%m-%d%H:%M}") in flat
            assert compact(update.description) in flat
        delivered = compact(f"{timezone.localtime(parcel.delivered_at):%Y-%m-%d%H:%M}")
        # Proof of delivery: when, and what the carrier said.
        assert re.search(re.escape(delivered) + r"\W*" + re.escape(compact("Delivered to the recipient")), flat)
