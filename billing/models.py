"""Money after the sale: payments, invoices and credit notes (immutable once issued), refunds with
their approvals, store credit and vouchers (ledgers), disputes, and background exports.

Amounts are Decimal in the order's currency, rounded half-up to its minor unit (oms.core.money).
Documents keep snapshots (seller, buyer, lines, tax breakdown): a later change of the order, the
catalogue or the seller's details never rewrites an issued document.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oms.core.history import AuditHistory

MONEY = {"max_digits": 14, "decimal_places": 4}
RATE = {"max_digits": 6, "decimal_places": 4}
ZERO = Decimal("0")


# --- payments -------------------------------------------------------------------------------------


class PaymentStatus(models.TextChoices):
    AUTHORIZED = "authorized", _("Authorized")
    CAPTURED = "captured", _("Captured")
    FAILED = "failed", _("Failed")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    VOIDED = "voided", _("Voided")


class Payment(models.Model):
    """One payment of an order at a provider (card, PayPal, bank transfer…), or store credit / voucher."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=40)
    provider = models.CharField(max_length=40, default="sandbox")
    provider_reference = models.CharField(max_length=128)
    currency = models.CharField(max_length=3)
    amount_authorized = models.DecimalField(**MONEY, default=ZERO)
    amount_captured = models.DecimalField(**MONEY, default=ZERO)
    amount_refunded = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=24, choices=PaymentStatus.choices, db_index=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    captured_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_reference"], name="uniq_payment_provider_ref"),
            models.CheckConstraint(condition=Q(amount_captured__gte=0), name="payment_captured_gte_0"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0), name="payment_refunded_gte_0"),
            # The database itself refuses a refund above what was captured.
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_captured")), name="payment_refunded_lte_captured"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_reference}"

    @property
    def refundable(self) -> Decimal:
        return self.amount_captured - self.amount_refunded


class PaymentEvent(models.Model):
    """A provider's notification, stored once per (provider, event id): a replay is a no-op."""

    provider = models.CharField(max_length=40)
    event_id = models.CharField(max_length=128)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, null=True, blank=True, related_name="events")
    kind = models.CharField(max_length=40)
    amount = models.DecimalField(**MONEY, default=ZERO)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="uniq_payment_event")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.kind}"


# --- billing policy ----------------------------------------------------------------------------


class InvoiceTrigger(models.TextChoices):
    ORDER = "order", _("Per order, when it is confirmed")
    SHIPMENT = "shipment", _("Per shipment, when it ships")


class PaymentTerms(models.TextChoices):
    IMMEDIATE = "immediate", _("Paid at order")
    NET_15 = "net_15", _("Net 15 days")
    NET_30 = "net_30", _("Net 30 days")
    NET_45_EOM = "net_45_eom", _("45 days end of month")
    EOM_30 = "eom_30", _("End of month + 30 days")


class BillingPolicy(models.Model):
    """How a channel (or one customer, which wins) is invoiced."""

    channel = models.OneToOneField(
        "orders.Channel", on_delete=models.CASCADE, null=True, blank=True, related_name="billing_policy"
    )
    customer = models.OneToOneField(
        "orders.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="billing_policy"
    )
    trigger = models.CharField(max_length=12, choices=InvoiceTrigger.choices, default=InvoiceTrigger.SHIPMENT)
    payment_terms = models.CharField(max_length=16, choices=PaymentTerms.choices, default=PaymentTerms.IMMEDIATE)
    history = AuditHistory()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__isnull=False) | Q(customer__isnull=False), name="billing_policy_has_owner"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer or self.channel}: {self.get_trigger_display()}"


# --- invoices and credit notes --------------------------------------------------------------------


class Invoice(models.Model):
    """Immutable once issued (no update path exists; corrections are credit notes)."""

    number = models.CharField(max_length=32, unique=True, editable=False)
    series = models.CharField(max_length=16, default="INV")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="invoices")
    shipment = models.ForeignKey(
        "fulfillment.Shipment", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    currency = models.CharField(max_length=3)
    issued_at = models.DateTimeField(default=timezone.now, db_index=True)
    due_at = models.DateField()
    payment_terms = models.CharField(max_length=16, choices=PaymentTerms.choices)
    seller = models.JSONField(default=dict, help_text=_("Seller legal details at issue."))
    buyer = models.JSONField(default=dict, help_text=_("Buyer name, address, VAT number at issue."))
    total_net = models.DecimalField(**MONEY)
    total_tax = models.DecimalField(**MONEY)
    total_gross = models.DecimalField(**MONEY)
    locale = models.CharField(max_length=8, default="en")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [("issue_invoice", "Can issue invoices"), ("export_invoice", "Can export invoices")]
        indexes = [models.Index(fields=["order", "issued_at"], name="invoice_order_issued")]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, null=True, blank=True)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(**MONEY)
    discount = models.DecimalField(**MONEY, default=ZERO)
    tax_rate = models.DecimalField(**RATE)
    net = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="uniq_invoice_line_position")]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position} {self.description}"


class InvoiceTax(models.Model):
    """The tax breakdown per rate."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes")
    rate = models.DecimalField(**RATE)
    base = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["invoice", "rate"]
        constraints = [models.UniqueConstraint(fields=["invoice", "rate"], name="uniq_invoice_tax_rate")]

    def __str__(self) -> str:
        return f"{self.rate}: {self.tax}"


class CreditNote(models.Model):
    """Always against an invoice, never above what is left of it; immutable once issued."""

    number = models.CharField(max_length=32, unique=True, editable=False)
    series = models.CharField(max_length=16, default="CRN")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=24)
    note = models.TextField(blank=True)
    issued_at = models.DateTimeField(default=timezone.now, db_index=True)
    seller = models.JSONField(default=dict)
    buyer = models.JSONField(default=dict)
    total_net = models.DecimalField(**MONEY)
    total_tax = models.DecimalField(**MONEY)
    total_gross = models.DecimalField(**MONEY)
    locale = models.CharField(max_length=8, default="en")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [("issue_creditnote", "Can issue credit notes")]
        constraints = [models.CheckConstraint(condition=Q(total_gross__gt=0), name="credit_note_gross_gt_0")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, null=True, blank=True)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(**RATE)
    net = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["credit_note", "position"]

    def __str__(self) -> str:
        return f"{self.credit_note_id}/{self.position} {self.description}"


# --- refunds, store credit, vouchers --------------------------------------------------------------


class RefundReason(models.TextChoices):
    RETURN = "return", _("Return")
    GOODWILL = "goodwill", _("Goodwill")
    PRICING_ERROR = "pricing_error", _("Pricing error")
    SELLER_CANCELLATION = "seller_cancellation", _("Seller cancellation")
    SHIPPING_FEE = "shipping_fee", _("Shipping fee")
    COMPENSATION = "compensation", _("Compensation")


class RefundMethod(models.TextChoices):
    ORIGINAL = "original", _("Original payment method")
    STORE_CREDIT = "store_credit", _("Store credit")
    VOUCHER = "voucher", _("Voucher")


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    PROCESSED = "processed", _("Processed")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")


class Refund(models.Model):
    number = models.CharField(max_length=32, unique=True, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=16, choices=RefundMethod.choices, default=RefundMethod.ORIGINAL)
    reason = models.CharField(max_length=24, choices=RefundReason.choices)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    provider_reference = models.CharField(max_length=128, blank=True)
    failure_reason = models.TextField(blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [
            ("request_refund", "Can request refunds"),
            ("approve_refund", "Can approve refunds"),
            ("approve_large_refund", "Can approve refunds above the second-approver threshold"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
            # Nobody approves their own refund (the services also enforce the threshold rule).
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="refund_approver_is_not_requester",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class StoreCreditEntry(models.Model):
    """The customer's store-credit ledger: the balance is the sum of the entries."""

    customer = models.ForeignKey("orders.Customer", on_delete=models.PROTECT, related_name="store_credit")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(**MONEY, help_text=_("Positive: credit given; negative: credit used."))
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["customer", "currency"], name="store_credit_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.amount} {self.currency}"


class Voucher(models.Model):
    code = models.CharField(max_length=32, unique=True)
    customer = models.ForeignKey(
        "orders.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="vouchers"
    )
    currency = models.CharField(max_length=3)
    expires_at = models.DateTimeField(null=True, blank=True)
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    history = AuditHistory()

    def __str__(self) -> str:
        return self.code


class VoucherEntry(models.Model):
    """The voucher's ledger: issued (+), redeemed (−); the balance is the sum."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(**MONEY)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.voucher_id}: {self.amount}"


# --- disputes and exports ---------------------------------------------------------------------------


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    EVIDENCE_SUBMITTED = "evidence_submitted", _("Evidence submitted")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Dispute(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="disputes")
    provider_reference = models.CharField(max_length=128)
    reason = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=DisputeStatus.choices, default=DisputeStatus.OPEN)
    respond_by = models.DateTimeField()
    opened_at = models.DateTimeField(default=timezone.now)
    evidence = models.FileField(upload_to="disputes/%Y/%m/", blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["respond_by"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "provider_reference"], name="uniq_dispute_provider_ref")
        ]

    def __str__(self) -> str:
        return f"Dispute {self.provider_reference}"


class ExportKind(models.TextChoices):
    INVOICES_CSV = "invoices_csv", _("Invoices and credit notes (CSV)")
    INVOICES_XLSX = "invoices_xlsx", _("Invoices and credit notes (XLSX)")
    FEC = "fec", _("Accounting journal (FEC)")
    RECONCILIATION = "reconciliation", _("Reconciliation report")


class Export(models.Model):
    """A background export: the cockpit shows its progress, then the file."""

    kind = models.CharField(max_length=20, choices=ExportKind.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    channel = models.ForeignKey("orders.Channel", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=12, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_start}–{self.period_end}"
