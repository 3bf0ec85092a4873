"""Printed invoices and credit notes (WeasyPrint), in the document's language (the order's locale).

Everything printed comes from the document's own snapshot (seller, buyer, lines, taxes, totals):
a later change of the order, the catalogue or the seller never changes a reprint.
"""

from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_countries import countries

from billing.models import CreditNote, Invoice, PaymentTerms, RefundReason
from oms.core.documents import page_counter_css, render_pdf

INVOICE_TEMPLATE = "billing/invoices/invoice.html"
CREDIT_NOTE_TEMPLATE = "billing/invoices/credit_note.html"


class _Format:
    def __init__(self, language: str, currency: str):
        self.locale = translation.to_locale(language)
        self.currency = currency

    def money(self, amount) -> str:
        return format_currency(amount, self.currency, locale=self.locale)

    def rate(self, rate) -> str:
        # The locale's own pattern ("12 %" in French), with up to two decimals (5.5 %).
        pattern = Locale.parse(self.locale).percent_formats[None].pattern.replace("0", "0.##", 1)
        return format_percent(Decimal(rate), locale=self.locale, format=pattern)

    def date(self, value) -> str:
        if hasattr(value, "hour"):
            value = timezone.localtime(value).date()
        return format_date(value, format="long", locale=self.locale)

    @staticmethod
    def quantity(value) -> str:
        value = Decimal(value)
        return f"{value:f}" if value != value.to_integral() else str(int(value))


def _party(party: dict) -> dict:
    country = party.get("country") or ""
    return {**party, "country_name": str(countries.name(country)) if country else ""}


def _lines(rows, fmt: _Format) -> list[dict]:
    return [
        {
            "position": row.position,
            "sku": row.sku,
            "description": row.description,
            "quantity": fmt.quantity(row.quantity),
            "unit_price": fmt.money(row.unit_price),
            "discount": fmt.money(row.discount) if getattr(row, "discount", 0) else "",
            "tax_rate": fmt.rate(row.tax_rate),
            "net": fmt.money(row.net),
            "tax": fmt.money(row.tax),
            "gross": fmt.money(row.gross),
        }
        for row in rows
    ]


def _tax_rows(pairs, fmt: _Format) -> list[dict]:
    return [{"rate": fmt.rate(rate), "base": fmt.money(base), "tax": fmt.money(tax)} for rate, base, tax in pairs]


def _document_context(document, fmt: _Format) -> dict:
    return {
        "seller": _party(document.seller),
        "buyer": _party(document.buyer),
        "number": document.number,
        "issued_on": fmt.date(document.issued_at),
        "order_number": document.order.number,
        "total_net": fmt.money(document.total_net),
        "total_tax": fmt.money(document.total_tax),
        "total_gross": fmt.money(document.total_gross),
        "currency": document.currency,
        "page_counter": page_counter_css(),
    }


def invoice_context(invoice: Invoice) -> dict:
    fmt = _Format(invoice.locale, invoice.currency)
    taxes = [(tax.rate, tax.base, tax.tax) for tax in invoice.taxes.order_by("rate")]
    return {
        **_document_context(invoice, fmt),
        "kind": "invoice",
        "lines": _lines(invoice.lines.order_by("position"), fmt),
        "show_discount": invoice.lines.filter(discount__gt=0).exists(),
        "taxes": _tax_rows(taxes, fmt),
        "due_on": fmt.date(invoice.due_at),
        "terms": PaymentTerms(invoice.payment_terms).label if invoice.payment_terms in PaymentTerms.values else "",
        "shipment_number": invoice.shipment.number if invoice.shipment_id else "",
        "prices_include_tax": invoice.order.prices_include_tax,
    }


def credit_note_context(credit_note: CreditNote) -> dict:
    fmt = _Format(credit_note.locale, credit_note.currency)
    rows = list(credit_note.lines.order_by("position"))
    taxes: dict[Decimal, list[Decimal]] = {}
    for row in rows:
        base_tax = taxes.setdefault(row.tax_rate, [Decimal(0), Decimal(0)])
        base_tax[0] += row.net
        base_tax[1] += row.tax
    reasons = dict(RefundReason.choices)
    return {
        **_document_context(credit_note, fmt),
        "kind": "credit_note",
        "lines": _lines(rows, fmt),
        "show_discount": False,
        "taxes": _tax_rows([(rate, b, t) for rate, (b, t) in sorted(taxes.items())], fmt),
        "invoice_number": credit_note.invoice.number,
        "invoice_issued_on": fmt.date(credit_note.invoice.issued_at),
        "invoice_total": fmt.money(credit_note.invoice.total_gross),
        "reason": reasons.get(credit_note.reason, credit_note.reason),
        "note": credit_note.note,
    }


def invoice_html(invoice: Invoice) -> str:
    with translation.override(invoice.locale):
        return render_to_string(INVOICE_TEMPLATE, invoice_context(invoice))


def credit_note_html(credit_note: CreditNote) -> str:
    with translation.override(credit_note.locale):
        return render_to_string(CREDIT_NOTE_TEMPLATE, credit_note_context(credit_note))


def invoice_pdf(invoice: Invoice) -> bytes:
    return render_pdf(invoice_html(invoice))


def credit_note_pdf(credit_note: CreditNote) -> bytes:
    return render_pdf(credit_note_html(credit_note))
