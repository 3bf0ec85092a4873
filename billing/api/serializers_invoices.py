"""Shapes of the invoices and payments API: inputs check shape and types only, outputs only represent."""

from rest_framework import serializers

from billing.models import MONEY, PaymentTerms
from billing.services.invoices import CREDIT_NOTE_REASONS
from oms.core.api import MoneyField, PlainChoiceField, StrictInputSerializer, UsernameField

# --- inputs ---------------------------------------------------------------------------------------


class InvoiceListQuerySerializer(serializers.Serializer):
    series = serializers.CharField(required=False, max_length=16, help_text="`INV` by default.")
    period_start = serializers.DateField(required=False, help_text="Issued on or after this day.")
    period_end = serializers.DateField(required=False, help_text="Issued on or before this day.")
    channel = serializers.SlugField(required=False, help_text="A channel code.")
    order = serializers.CharField(required=False, max_length=32, help_text="An order number.")
    overdue = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: due date passed and not paid."
    )


class InvoiceIssueInputSerializer(StrictInputSerializer):
    shipment = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="A shipped parcel's number: invoice that parcel."
    )


class CreditNoteIssueInputSerializer(StrictInputSerializer):
    reason = PlainChoiceField(choices=CREDIT_NOTE_REASONS, help_text=f"One of: {', '.join(CREDIT_NOTE_REASONS)}.")
    lines = serializers.DictField(
        child=serializers.DecimalField(max_digits=12, decimal_places=3),
        required=False,
        help_text="{invoice line id: quantity}: credit these units.",
    )
    amount = serializers.DecimalField(
        **MONEY, required=False, allow_null=True, help_text="A gross amount, spread over the invoice's tax rates."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


# --- outputs -------------------------------------------------------------------------------------


class _LineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    sku = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=4)
    tax_rate = serializers.DecimalField(max_digits=6, decimal_places=4)
    net = MoneyField(currency_source="currency_code")
    tax = MoneyField(currency_source="currency_code")
    gross = MoneyField(currency_source="currency_code")


class InvoiceLineSerializer(_LineSerializer):
    order_line = serializers.IntegerField(source="order_line_id", allow_null=True)
    discount = MoneyField(currency_source="currency_code")


class CreditNoteLineSerializer(_LineSerializer):
    invoice_line = serializers.IntegerField(source="invoice_line_id", allow_null=True)


class InvoiceTaxSerializer(serializers.Serializer):
    rate = serializers.DecimalField(max_digits=6, decimal_places=4)
    base = MoneyField(currency_source="invoice.currency")
    tax = MoneyField(currency_source="invoice.currency")


class InvoiceListSerializer(serializers.Serializer):
    number = serializers.CharField()
    series = serializers.CharField()
    order = serializers.CharField(source="order.number")
    channel = serializers.CharField(source="order.channel.code")
    shipment = serializers.CharField(source="shipment.number", allow_null=True, default=None)
    currency = serializers.CharField()
    issued_at = serializers.DateTimeField()
    due_at = serializers.DateField()
    payment_terms = PlainChoiceField(choices=PaymentTerms.choices)
    total_net = MoneyField()
    total_tax = MoneyField()
    total_gross = MoneyField()
    credited = MoneyField(help_text="Gross of its credit notes.")
    buyer = serializers.CharField(source="buyer.name", default="")


class CreditNoteSerializer(serializers.Serializer):
    number = serializers.CharField()
    invoice = serializers.CharField(source="invoice.number")
    order = serializers.CharField(source="order.number")
    currency = serializers.CharField()
    reason = serializers.CharField()
    note = serializers.CharField()
    issued_at = serializers.DateTimeField()
    issued_by = UsernameField()
    total_net = MoneyField()
    total_tax = MoneyField()
    total_gross = MoneyField()
    lines = CreditNoteLineSerializer(many=True, source="line_rows")
    pdf_url = serializers.CharField()


class InvoiceDetailSerializer(InvoiceListSerializer):
    issued_by = UsernameField()
    locale = serializers.CharField()
    seller = serializers.DictField()
    buyer = serializers.DictField()
    lines = InvoiceLineSerializer(many=True, source="line_rows")
    taxes = InvoiceTaxSerializer(many=True, source="tax_rows")
    remaining = MoneyField(help_text="What credit notes may still take.")
    overdue = serializers.BooleanField()
    credit_notes = serializers.ListField(child=serializers.CharField(), source="credit_note_numbers")
    pdf_url = serializers.CharField()


class PaymentEventResultSerializer(serializers.Serializer):
    event = serializers.CharField(help_text="The provider's event id.")
    kind = serializers.CharField()
    payment = serializers.CharField(allow_null=True, help_text="provider:reference, when known.")
    applied = serializers.BooleanField(help_text="false for a replay, or an event about an unknown payment.")
