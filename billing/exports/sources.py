"""The rows of the exports, read in keyset order with server-side cursors (`.iterator()`).

Nothing here holds more than one chunk of rows: each function yields plain tuples as PostgreSQL
sends them. The period is a range of local dates, both ends included.
"""

import datetime
import heapq
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

from django.db.models import DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceTax, Payment, Refund, RefundMethod, RefundStatus
from orders.models import Order, OrderLine

CHUNK = 2000
ZERO = Decimal("0")


def period_bounds(
    period_start: datetime.date, period_end: datetime.date
) -> tuple[datetime.datetime, datetime.datetime]:
    """[start of the first day, start of the day after the last) in the project's time zone."""
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(period_start, datetime.time.min, tzinfo=tz)
    end = datetime.datetime.combine(period_end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
    return start, end


def buyer_name(buyer: dict | None) -> str:
    buyer = buyer or {}
    return str(buyer.get("company") or buyer.get("name") or buyer.get("email") or "")


def _issued_in(queryset, period_start, period_end, channel):
    start, end = period_bounds(period_start, period_end)
    queryset = queryset.filter(issued_at__gte=start, issued_at__lt=end)
    if channel is not None:
        queryset = queryset.filter(order__channel=channel)
    return queryset


def invoices_in(period_start, period_end, channel=None):
    return _issued_in(Invoice.objects.all(), period_start, period_end, channel)


def credit_notes_in(period_start, period_end, channel=None):
    return _issued_in(CreditNote.objects.all(), period_start, period_end, channel)


def document_count(period_start, period_end, channel=None) -> int:
    return (
        invoices_in(period_start, period_end, channel).count()
        + credit_notes_in(period_start, period_end, channel).count()
    )


# --- documents (CSV / XLSX) -------------------------------------------------------------------------


class DocumentRow(NamedTuple):
    """One invoice or credit note; a credit note's amounts are negative (it reverses its invoice)."""

    kind: str  # "invoice" | "credit_note"
    number: str
    issued_at: datetime.datetime
    invoice_number: str  # the credited invoice, for a credit note
    order_number: str
    channel: str
    customer: str
    currency: str
    net: Decimal
    tax: Decimal
    gross: Decimal
    due_on: datetime.date | None


def document_rows(period_start, period_end, channel=None) -> Iterator[DocumentRow]:
    """Invoices and credit notes of the period, in the order they were issued."""
    invoices = (
        invoices_in(period_start, period_end, channel)
        .order_by("issued_at", "id")
        .values_list(
            "number", "issued_at", "order__number", "order__channel__code", "buyer", "currency",
            "total_net", "total_tax", "total_gross", "due_at",
        )
        .iterator(chunk_size=CHUNK)
    )  # fmt: skip
    credit_notes = (
        credit_notes_in(period_start, period_end, channel)
        .order_by("issued_at", "id")
        .values_list(
            "number", "issued_at", "invoice__number", "order__number", "order__channel__code", "buyer",
            "currency", "total_net", "total_tax", "total_gross",
        )
        .iterator(chunk_size=CHUNK)
    )  # fmt: skip
    invoice_rows = (
        DocumentRow("invoice", n, at, "", order, ch, buyer_name(b), cur, net, tax, gross, due)
        for n, at, order, ch, b, cur, net, tax, gross, due in invoices
    )
    credit_rows = (
        DocumentRow("credit_note", n, at, inv, order, ch, buyer_name(b), cur, -net, -tax, -gross, None)
        for n, at, inv, order, ch, b, cur, net, tax, gross in credit_notes
    )
    return heapq.merge(invoice_rows, credit_rows, key=lambda row: row.issued_at)


# --- journal entries (FEC) --------------------------------------------------------------------------


class TaxAmounts(NamedTuple):
    rate: Decimal
    base: Decimal
    tax: Decimal


class JournalDocument(NamedTuple):
    """What one journal entry is written from: a document and its tax breakdown per rate."""

    kind: str  # "invoice" | "credit_note"
    number: str
    issued_at: datetime.datetime
    currency: str
    customer_id: int
    customer: str
    taxes: list[TaxAmounts]


def _grouped(rows, kind: str) -> Iterator[JournalDocument]:
    # Rows come sorted by document, one per tax rate: consecutive rows of one document make one entry.
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        rows_of_document = list(group)
        _id, number, issued_at, currency, customer_id, buyer = rows_of_document[0][:6]
        taxes = [TaxAmounts(*row[6:]) for row in rows_of_document]
        yield JournalDocument(kind, number, issued_at, currency, customer_id, buyer_name(buyer), taxes)


def journal_documents(period_start, period_end, channel=None) -> Iterator[JournalDocument]:
    """Invoices (their InvoiceTax rows) and credit notes (their lines summed per rate), by issue time."""
    start, end = period_bounds(period_start, period_end)
    invoice_taxes = InvoiceTax.objects.filter(invoice__issued_at__gte=start, invoice__issued_at__lt=end)
    credit_lines = CreditNoteLine.objects.filter(credit_note__issued_at__gte=start, credit_note__issued_at__lt=end)
    if channel is not None:
        invoice_taxes = invoice_taxes.filter(invoice__order__channel=channel)
        credit_lines = credit_lines.filter(credit_note__order__channel=channel)
    invoices = (
        invoice_taxes.order_by("invoice__issued_at", "invoice_id", "rate")
        .values_list(
            "invoice_id", "invoice__number", "invoice__issued_at", "invoice__currency",
            "invoice__order__customer_id", "invoice__buyer", "rate", "base", "tax",
        )
        .iterator(chunk_size=CHUNK)
    )  # fmt: skip
    credit_notes = (
        credit_lines.values(
            "credit_note_id", "credit_note__number", "credit_note__issued_at", "credit_note__currency",
            "credit_note__order__customer_id", "credit_note__buyer", "tax_rate",
        )
        .annotate(base=Sum("net"), tax_sum=Sum("tax"))
        .order_by("credit_note__issued_at", "credit_note_id", "tax_rate")
        .values_list(
            "credit_note_id", "credit_note__number", "credit_note__issued_at", "credit_note__currency",
            "credit_note__order__customer_id", "credit_note__buyer", "tax_rate", "base", "tax_sum",
        )
        .iterator(chunk_size=CHUNK)
    )  # fmt: skip
    return heapq.merge(
        _grouped(invoices, "invoice"), _grouped(credit_notes, "credit_note"), key=lambda doc: doc.issued_at
    )


# --- reconciliation -----------------------------------------------------------------------------------


class OrderFigures(NamedTuple):
    number: str
    placed_at: datetime.datetime
    channel: str
    currency: str
    captured: Decimal
    refunded: Decimal
    refunded_as_credit: Decimal  # refunds paid as store credit or a voucher (no money went back)
    shipped: Decimal
    invoiced: Decimal
    credited: Decimal


def _sum_of(queryset, expression) -> Subquery:
    total = queryset.filter(order=OuterRef("pk")).order_by().values("order").annotate(total=Sum(expression))
    return Coalesce(Subquery(total.values("total")), ZERO)


def orders_in(period_start, period_end, channel=None):
    """Orders placed in the period, or with an invoice or credit note issued in it."""
    start, end = period_bounds(period_start, period_end)
    orders = Order.objects.filter(
        Q(placed_at__gte=start, placed_at__lt=end)
        | Exists(Invoice.objects.filter(order=OuterRef("pk"), issued_at__gte=start, issued_at__lt=end))
        | Exists(CreditNote.objects.filter(order=OuterRef("pk"), issued_at__gte=start, issued_at__lt=end))
    )
    if channel is not None:
        orders = orders.filter(channel=channel)
    return orders


def order_figures(period_start, period_end, channel=None) -> Iterator[OrderFigures]:
    """Orders placed in the period, or with an invoice or credit note issued in it, with their sums.

    Captured and refunded come from the payments; an order without payment rows (paid before
    payments were recorded, or on terms) falls back to the order's own amount_paid / amount_refunded.
    The shipped value is each line's gross for the shipped quantity, plus shipping once a unit left.
    """
    orders = orders_in(period_start, period_end, channel)
    has_payments = Exists(Payment.objects.filter(order=OuterRef("pk")))
    shipped_lines = OrderLine.objects.filter(order=OuterRef("pk"), quantity_shipped__gt=0)
    rows = (
        orders.annotate(
            has_payments=has_payments,
            captured=_sum_of(Payment.objects, "amount_captured"),
            refunded=_sum_of(Payment.objects, "amount_refunded"),
            refunded_as_credit=_sum_of(
                Refund.objects.filter(status=RefundStatus.PROCESSED).exclude(method=RefundMethod.ORIGINAL), "amount"
            ),
            shipped_lines=_sum_of(
                OrderLine.objects,
                ExpressionWrapper(
                    F("total_gross") * F("quantity_shipped") / F("quantity"),
                    output_field=DecimalField(max_digits=20, decimal_places=6),
                ),
            ),
            any_shipped=Exists(shipped_lines),
            invoiced=_sum_of(Invoice.objects, "total_gross"),
            credited=_sum_of(CreditNote.objects, "total_gross"),
        )
        .order_by("placed_at", "id")
        .values_list(
            "number", "placed_at", "channel__code", "currency", "has_payments", "captured", "refunded",
            "amount_paid", "amount_refunded", "refunded_as_credit", "shipped_lines", "any_shipped",
            "shipping_net", "shipping_tax", "invoiced", "credited",
        )
        .iterator(chunk_size=CHUNK)
    )  # fmt: skip
    for (
        number, placed_at, channel_code, currency, has_pay, captured, refunded, order_paid, order_refunded,
        as_credit, shipped_lines_value, any_shipped, shipping_net, shipping_tax, invoiced, credited,
    ) in rows:  # fmt: skip
        if not has_pay:
            captured, refunded = order_paid, order_refunded
        shipped = shipped_lines_value + ((shipping_net + shipping_tax) if any_shipped else ZERO)
        yield OrderFigures(
            number, placed_at, channel_code, currency, captured, refunded, as_credit, shipped, invoiced, credited
        )
