"""Returns (RMA): a customer's request to send shipped units back, their receipt and inspection.

Only the units inspected as resellable are restocked, credited and refunded (DESIGN, "Fulfillment,
returns, billing"). Transitions set this row's own fields; `returns.services` does the rest.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from oms.core.history import AuditHistory
from returns.choices import ReturnMethod, ReturnReason, ReturnStatus


class ReturnRequest(ConcurrentTransitionMixin, models.Model):
    number = models.CharField(max_length=32, unique=True, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="returns")
    customer = models.ForeignKey("orders.Customer", on_delete=models.PROTECT, related_name="returns")
    status = FSMField(
        max_length=16, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED, protected=True, db_index=True
    )
    reason = models.CharField(max_length=24, choices=ReturnReason.choices)
    customer_comment = models.TextField(blank=True)
    method = models.CharField(max_length=16, choices=ReturnMethod.choices, default=ReturnMethod.REFUND)
    restock_location = models.ForeignKey(
        "inventory.Location",
        on_delete=models.PROTECT,
        related_name="returns",
        help_text=_("Where the parcel goes back to and, by default, where resellable units are restocked."),
    )
    carrier = models.CharField(max_length=32, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True, db_index=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    label = models.FileField(upload_to="returns/labels/%Y/%m/", blank=True)
    # The manual hold on the order while an exchange waits for the goods to come back.
    exchange_hold = models.ForeignKey(
        "orders.OrderHold", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refusal_reason = models.TextField(blank=True)
    # What billing issued for the accepted units: {"credit_notes": [numbers], "refunds": [numbers]}.
    settlement = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    inspected_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "requested_at"], name="return_status_requested_idx")]
        permissions = [
            ("approve_returnrequest", "Can approve a return and issue its label"),
            ("receive_returnrequest", "Can record the receipt of a returned parcel"),
            ("inspect_returnrequest", "Can inspect returned items (restock, credit, refund)"),
            ("close_returnrequest", "Can close an inspected return"),
            ("refuse_returnrequest", "Can refuse a return"),
            ("cancel_returnrequest", "Can cancel a return"),
        ]

    def __str__(self) -> str:
        return self.number

    @transition(
        field=status,
        source=ReturnStatus.REQUESTED,
        target=ReturnStatus.APPROVED,
        permission="returns.approve_returnrequest",
    )
    def approve(self):
        self.approved_at = timezone.now()

    @transition(
        field=status,
        source=ReturnStatus.APPROVED,
        target=ReturnStatus.RECEIVED,
        permission="returns.receive_returnrequest",
    )
    def receive(self):
        self.received_at = timezone.now()

    @transition(
        field=status,
        source=ReturnStatus.RECEIVED,
        target=ReturnStatus.INSPECTED,
        permission="returns.inspect_returnrequest",
    )
    def inspect(self):
        self.inspected_at = timezone.now()

    @transition(
        field=status,
        source=ReturnStatus.INSPECTED,
        target=ReturnStatus.CLOSED,
        permission="returns.close_returnrequest",
    )
    def close(self):
        self.closed_at = timezone.now()

    @transition(
        field=status,
        source=[ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED],
        target=ReturnStatus.REFUSED,
        permission="returns.refuse_returnrequest",
    )
    def refuse(self, *, reason: str):
        self.refusal_reason = reason
        self.refused_at = timezone.now()

    @transition(
        field=status,
        source=[ReturnStatus.REQUESTED, ReturnStatus.APPROVED],
        target=ReturnStatus.CANCELED,
        permission="returns.cancel_returnrequest",
    )
    def cancel(self):
        self.canceled_at = timezone.now()


class ReturnLine(models.Model):
    request = models.ForeignKey(ReturnRequest, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField()
    reason_code = models.CharField(max_length=24, choices=ReturnReason.choices)
    exchange_for = models.ForeignKey(
        "inventory.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    exchange_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, null=True, blank=True, related_name="exchanged_from"
    )
    # Inspection, per unit: every returned unit is counted in exactly one of the three.
    quantity_resellable = models.PositiveIntegerField(default=0)
    quantity_damaged = models.PositiveIntegerField(default=0)
    quantity_missing = models.PositiveIntegerField(default=0)
    quantity_restocked = models.PositiveIntegerField(default=0)
    inspected_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["request", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "order_line"], name="uniq_return_line_order_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="return_line_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity_resellable__lte=F("quantity") - F("quantity_damaged") - F("quantity_missing")),
                name="return_line_inspected_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(quantity_restocked__lte=F("quantity_resellable")),
                name="return_line_restocked_lte_resellable",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: line {self.order_line_id} × {self.quantity}"

    @property
    def quantity_inspected(self) -> int:
        return self.quantity_resellable + self.quantity_damaged + self.quantity_missing
