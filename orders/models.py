import datetime
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from oms.core.history import AuditHistory
from orders.choices import (
    CASE_TEAMS,
    ApiClientRole,
    CancelReason,
    CaseDecision,
    CaseKind,
    CaseLevel,
    CaseStatus,
    ChannelKind,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
    RuleTrigger,
)

MONEY = {"max_digits": 14, "decimal_places": 4}
RATE = {"max_digits": 7, "decimal_places": 6}


class Channel(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    commission_rate = models.DecimalField(
        **RATE, default=Decimal("0"), validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    default_currency = models.CharField(max_length=3, default="EUR")
    prices_include_tax = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_rate__gte=0) & Q(commission_rate__lte=1), name="channel_commission_0_1"
            )
        ]

    def __str__(self) -> str:
        return self.name


class ApiClient(models.Model):
    """An integration that calls the API with its user's token: its job and the channels it serves.

    It reaches the orders of its channels only, and what hangs off them (parcels, invoices, refunds,
    returns): orders.selectors.channel_scope. With no channel it reaches no order. Its permissions
    are those of its role's group (API_CLIENT_GROUPS), which orders.services.api_client_save keeps
    in line with `role`.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_client")
    role = models.CharField(max_length=32, choices=ApiClientRole.choices)
    channels = models.ManyToManyField(Channel, related_name="api_clients", blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory(m2m_fields=[channels])

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"


class Customer(models.Model):
    # One customer per e-mail address (case-insensitive), so concurrent imports of two orders from
    # a new customer cannot create two records. Near-duplicates (phone, address) are merged later.
    email = models.EmailField()
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    locale = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    # Room for B2B: an account allowed to order on payment terms (net N days).
    payment_terms_days = models.PositiveSmallIntegerField(null=True, blank=True)
    is_test = models.BooleanField(default=False)
    tags = models.ManyToManyField("Tag", blank=True, related_name="customers")
    # Keys the duplicate detector compares (orders.identity): digits of the phone in international
    # form, and the normalized street + postcode + country of the last shipping address.
    phone_key = models.CharField(max_length=32, blank=True, db_index=True)
    address_key = models.CharField(max_length=200, blank=True, db_index=True)
    # A record merged into another is kept (its history and external references) but points there.
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_records"
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="uniq_customer_email_ci"),
            models.CheckConstraint(condition=~Q(merged_into=models.F("pk")), name="customer_not_merged_into_self"),
        ]
        permissions = [("merge_customer", "Can merge duplicate customer records")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)
    color = models.CharField(max_length=7, default="#6b7280")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# States from which an order may still be canceled (after shipping: a return, then a refund).
CANCELABLE_STATES = [
    OrderStatus.DRAFT,
    OrderStatus.PENDING_APPROVAL,
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.UNDER_REVIEW,
    OrderStatus.CONFIRMED,
    OrderStatus.IN_PREPARATION,
]


def _can_cancel(order: "Order", user) -> bool:
    if not user.has_perm("orders.cancel_order"):
        return False
    # Canceling money already taken has its own permission: it triggers a refund.
    return not order.has_received_money or user.has_perm("orders.cancel_paid_order")


class Order(ConcurrentTransitionMixin, models.Model):
    number = models.CharField(max_length=32, unique=True, editable=False)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="orders")
    external_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    email = models.EmailField(help_text=_("The address the customer gave for this order (snapshot)."))
    locale = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    currency = models.CharField(max_length=3)
    prices_include_tax = models.BooleanField(default=True)

    status = FSMField(
        max_length=24, choices=OrderStatus.choices, default=OrderStatus.DRAFT, protected=True, db_index=True
    )
    payment_status = models.CharField(
        max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID, db_index=True
    )
    fulfillment_status = models.CharField(
        max_length=24, choices=FulfillmentStatus.choices, default=FulfillmentStatus.UNFULFILLED, db_index=True
    )
    requires_approval = models.BooleanField(default=False)
    on_payment_terms = models.BooleanField(default=False)

    billing_address = models.JSONField(default=dict)
    shipping_address = models.JSONField(default=dict)
    shipping_method = models.CharField(max_length=80, blank=True)
    pickup_location = models.ForeignKey(
        "inventory.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pickup_orders",
        help_text=_("The store where the customer collects the order (click and collect)."),
    )
    shipping_price = models.DecimalField(**MONEY, default=Decimal("0"))
    shipping_tax_rate = models.DecimalField(**RATE, default=Decimal("0"))
    shipping_net = models.DecimalField(**MONEY, default=Decimal("0"))
    shipping_tax = models.DecimalField(**MONEY, default=Decimal("0"))

    # Totals are recomputed from lines and shipping by one function, never typed in.
    discount_total = models.DecimalField(**MONEY, default=Decimal("0"))
    total_net = models.DecimalField(**MONEY, default=Decimal("0"))
    total_tax = models.DecimalField(**MONEY, default=Decimal("0"))
    total_gross = models.DecimalField(**MONEY, default=Decimal("0"))
    amount_authorized = models.DecimalField(**MONEY, default=Decimal("0"))
    amount_paid = models.DecimalField(**MONEY, default=Decimal("0"))
    amount_refunded = models.DecimalField(**MONEY, default=Decimal("0"))
    payment_method = models.CharField(max_length=40, blank=True)
    payment_reference = models.CharField(max_length=128, blank=True)

    is_test = models.BooleanField(default=False, db_index=True)
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    # Why the score is what it is: [{"source": "channel" | "rule:<name>", "fact": "..."}].
    risk_facts = models.JSONField(default=list, blank=True)
    purchase_order_number = models.CharField(max_length=64, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="orders")

    placed_at = models.DateTimeField(default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    promised_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Stage times the SLAs and KPIs read (payment → preparation → first dispatch).
    preparation_started_at = models.DateTimeField(null=True, blank=True)
    first_shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=32, choices=CancelReason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = AuditHistory(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=Q(external_id__isnull=False),
                name="uniq_order_channel_external_id",
            ),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="order_amount_paid_gte_0"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount_paid")),
                name="order_refunded_lte_paid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-placed_at"], name="order_status_placed_idx"),
            models.Index(fields=["channel", "-placed_at"], name="order_channel_placed_idx"),
            models.Index(Lower("email"), name="order_email_ci_idx"),
            # Support searches by a marketplace's id without knowing the channel.
            models.Index(fields=["external_id"], condition=Q(external_id__isnull=False), name="order_external_id_idx"),
        ]
        permissions = [
            ("import_order", "Can create or import orders"),
            ("submit_order", "Can submit a draft order"),
            ("approve_order", "Can approve an order pending approval"),
            ("record_payment_order", "Can record a payment on an order"),
            ("accept_on_terms_order", "Can accept an order on payment terms"),
            ("flag_order", "Can flag an order for review"),
            ("accept_review_order", "Can accept an order under review"),
            ("start_preparation_order", "Can start preparing an order"),
            ("ship_order", "Can record shipments of an order"),
            ("deliver_order", "Can mark an order delivered"),
            ("complete_order", "Can close a delivered order"),
            ("cancel_order", "Can cancel an unpaid order"),
            ("cancel_paid_order", "Can cancel an order after payment"),
            ("place_hold", "Can place a hold on an order"),
            ("release_hold", "Can release a hold"),
            ("add_note", "Can add an internal note"),
            ("tag_order", "Can tag and untag orders"),
            ("change_address_order", "Can change an order's addresses before shipping"),
            ("release_fraud_hold", "Can clear a fraud review (false positive)"),
        ]

    def __str__(self) -> str:
        return self.number

    # --- facts the transitions read -------------------------------------------------------
    @property
    def has_received_money(self) -> bool:
        return self.amount_paid > 0

    @property
    def is_settled(self) -> bool:
        """Paid or authorized in full, or accepted on payment terms."""
        return self.payment_status in {PaymentStatus.PAID, PaymentStatus.AUTHORIZED, PaymentStatus.ON_TERMS}

    def has_lines(self) -> bool:
        return self.lines.exists()

    def has_no_active_hold(self) -> bool:
        return not self.holds.filter(released_at__isnull=True).exists()

    def has_nothing_shipped(self) -> bool:
        return not self.lines.filter(quantity_shipped__gt=0).exists()

    def customer_has_terms(self) -> bool:
        return self.customer.payment_terms_days is not None

    def is_paid_or_authorized(self) -> bool:
        return self.payment_status in {PaymentStatus.PAID, PaymentStatus.AUTHORIZED}

    def is_fully_shipped(self) -> bool:
        return self.fulfillment_status in {
            FulfillmentStatus.SHIPPED,
            FulfillmentStatus.PARTIALLY_DELIVERED,
            FulfillmentStatus.DELIVERED,
        }

    def has_shipped_something(self) -> bool:
        return self.fulfillment_status != FulfillmentStatus.UNFULFILLED

    def is_fully_delivered(self) -> bool:
        return self.fulfillment_status == FulfillmentStatus.DELIVERED

    def return_window_elapsed(self) -> bool:
        if self.delivered_at is None:
            return False
        window = datetime.timedelta(days=settings.OMS_RETURN_WINDOW_DAYS)
        return timezone.now() >= self.delivered_at + window

    # --- transitions: set this row's own fields only; services do the rest ----------------
    @transition(
        field=status,
        source=OrderStatus.DRAFT,
        target=RETURN_VALUE(OrderStatus.PENDING_APPROVAL, OrderStatus.AWAITING_PAYMENT),
        conditions=[has_lines],
        permission="orders.submit_order",
    )
    def submit(self):
        return OrderStatus.PENDING_APPROVAL if self.requires_approval else OrderStatus.AWAITING_PAYMENT

    @transition(
        field=status,
        source=OrderStatus.PENDING_APPROVAL,
        target=OrderStatus.AWAITING_PAYMENT,
        permission="orders.approve_order",
    )
    def approve(self):
        pass

    @transition(
        field=status,
        source=OrderStatus.AWAITING_PAYMENT,
        target=OrderStatus.CONFIRMED,
        conditions=[is_paid_or_authorized],
        permission="orders.record_payment_order",
    )
    def pay(self):
        self.confirmed_at = timezone.now()

    @transition(
        field=status,
        source=OrderStatus.AWAITING_PAYMENT,
        target=OrderStatus.CONFIRMED,
        conditions=[customer_has_terms],
        permission="orders.accept_on_terms_order",
    )
    def accept_on_terms(self):
        self.on_payment_terms = True
        self.confirmed_at = timezone.now()

    @transition(
        field=status,
        source=[OrderStatus.AWAITING_PAYMENT, OrderStatus.CONFIRMED],
        target=OrderStatus.UNDER_REVIEW,
        permission="orders.flag_order",
    )
    def flag_for_review(self):
        pass

    @transition(
        field=status,
        source=OrderStatus.UNDER_REVIEW,
        target=RETURN_VALUE(OrderStatus.CONFIRMED, OrderStatus.AWAITING_PAYMENT),
        permission="orders.accept_review_order",
    )
    def accept(self):
        if self.is_settled:
            self.confirmed_at = self.confirmed_at or timezone.now()
            return OrderStatus.CONFIRMED
        return OrderStatus.AWAITING_PAYMENT

    @transition(
        field=status,
        source=OrderStatus.CONFIRMED,
        target=OrderStatus.IN_PREPARATION,
        conditions=[has_no_active_hold],
        permission="orders.start_preparation_order",
    )
    def start_preparation(self):
        pass

    @transition(
        field=status,
        source=[OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED],
        target=RETURN_VALUE(OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED),
        conditions=[has_shipped_something],
        permission="orders.ship_order",
    )
    def ship(self):
        return OrderStatus.SHIPPED if self.is_fully_shipped() else OrderStatus.PARTIALLY_SHIPPED

    @transition(
        field=status,
        source=[OrderStatus.SHIPPED, OrderStatus.DELIVERED],
        target=OrderStatus.PARTIALLY_SHIPPED,
        permission="orders.ship_order",
    )
    def reopen(self):
        """A line was added after everything shipped (an exchange): there is something to ship again."""

    @transition(
        field=status,
        source=OrderStatus.SHIPPED,
        target=OrderStatus.DELIVERED,
        conditions=[is_fully_delivered],
        permission="orders.deliver_order",
    )
    def deliver(self):
        self.delivered_at = timezone.now()

    @transition(
        field=status,
        source=OrderStatus.DELIVERED,
        target=OrderStatus.COMPLETED,
        conditions=[return_window_elapsed],
        permission="orders.complete_order",
    )
    def complete(self):
        self.completed_at = timezone.now()

    @transition(
        field=status,
        source=CANCELABLE_STATES,
        target=OrderStatus.CANCELED,
        conditions=[has_nothing_shipped],
        permission=_can_cancel,
    )
    def cancel(self, *, reason: str):
        self.cancel_reason = reason
        self.canceled_at = timezone.now()


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveSmallIntegerField()
    # Snapshot of what was sold: a later catalog or price change never rewrites it.
    sku = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255)
    # The stock-managed product sold (blank for what is not stock-managed: services, gift cards).
    product = models.ForeignKey(
        "inventory.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines"
    )
    attributes = models.JSONField(default=dict, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    discount_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    promotion = models.JSONField(default=dict, blank=True)
    tax_rate = models.DecimalField(**RATE, default=Decimal("0"))
    total_net = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    total_gross = models.DecimalField(**MONEY)
    quantity_canceled = models.PositiveIntegerField(default=0)
    quantity_shipped = models.PositiveIntegerField(default=0)
    quantity_delivered = models.PositiveIntegerField(default=0)
    promised_at = models.DateTimeField(null=True, blank=True)
    # A line added at picking, with the customer's consent, in place of units of another line.
    substitute_for = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="substitutes"
    )
    history = AuditHistory()

    class Meta:
        ordering = ["order", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_number"], name="uniq_order_line_number"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity_canceled__lte=models.F("quantity") - models.F("quantity_shipped")),
                name="order_line_canceled_plus_shipped_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(quantity_delivered__lte=models.F("quantity_shipped")),
                name="order_line_delivered_lte_shipped",
            ),
            models.CheckConstraint(condition=Q(discount_amount__gte=0), name="order_line_discount_gte_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_unit_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line_number} {self.sku} × {self.quantity}"

    @property
    def quantity_open(self) -> int:
        """Still to ship."""
        return self.quantity - self.quantity_canceled - self.quantity_shipped


class OrderHold(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="holds")
    reason = models.CharField(max_length=24, choices=HoldReason.choices)
    note = models.TextField(blank=True)
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField(default=timezone.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_note = models.TextField(blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "reason"], condition=Q(released_at__isnull=True), name="uniq_active_hold_per_reason"
            )
        ]
        indexes = [models.Index(fields=["reason"], condition=Q(released_at__isnull=True), name="order_hold_active_idx")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on {self.order_id}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class OrderNote(models.Model):
    """Internal notes: for staff only, never shown to the customer. Immutable once written."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Note on {self.order_id} by {self.author_id}"


class OrderEvent(models.Model):
    """The order's typed timeline. Append-only: written by services in their transaction."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32, choices=OrderEventType.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="order_event_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.order_id})"


# --- cases: the exception queues ---------------------------------------------------------------


class Case(ConcurrentTransitionMixin, models.Model):
    """One problem that needs a person, with one number, wherever it was detected.

    Opened and closed by the services that detect the problem (orders.cases); `source_key` names
    what it is about ("hold:12", "short_pick:7", "sla:dispatch:991") so that detecting it again
    finds the open case instead of opening another.
    """

    number = models.CharField(max_length=32, unique=True, editable=False)
    kind = models.CharField(max_length=24, choices=CaseKind.choices)
    level = models.CharField(max_length=2, choices=CaseLevel.choices, default=CaseLevel.L1)
    status = FSMField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.OPEN, protected=True)
    source_key = models.CharField(max_length=120)
    title = models.CharField(max_length=255)
    facts = models.JSONField(default=dict, blank=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    due_at = models.DateTimeField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision = models.CharField(max_length=24, choices=CaseDecision.choices, blank=True)
    resolution = models.TextField(blank=True)
    # What the decision rests on (the release note, the carrier's statement, the force-majeure notice).
    evidence = models.JSONField(default=dict, blank=True)
    is_test = models.BooleanField(default=False)
    history = AuditHistory()

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # Detecting the same problem twice finds the open case.
            models.UniqueConstraint(
                fields=["source_key"], condition=~Q(status="resolved"), name="uniq_open_case_per_source"
            ),
            models.CheckConstraint(
                condition=Q(status="resolved", resolved_at__isnull=False)
                | (~Q(status="resolved") & Q(resolved_at=None)),
                name="case_resolved_has_resolved_at",
            ),
        ]
        indexes = [
            # The queues: open cases of one kind and level, most urgent first.
            models.Index(fields=["kind", "level", "due_at"], condition=~Q(status="resolved"), name="case_queue_idx"),
            models.Index(fields=["assignee", "due_at"], condition=~Q(status="resolved"), name="case_mine_idx"),
            models.Index(fields=["resolved_at"], condition=Q(status="resolved"), name="case_resolved_idx"),
        ]
        permissions = [
            ("work_support_case", "Can work support cases"),
            ("work_fraud_case", "Can work fraud review cases"),
            ("work_warehouse_case", "Can work warehouse cases"),
            ("work_finance_case", "Can work finance cases"),
            ("work_integration_case", "Can work integration cases"),
            ("work_l2_case", "Can work level 2 cases"),
            ("open_case", "Can open a case by hand"),
            ("escalate_case", "Can escalate a case to level 2"),
            ("resolve_case", "Can resolve a case"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def team(self) -> str:
        return CASE_TEAMS[CaseKind(self.kind)]

    @property
    def is_open(self) -> bool:
        return self.status != CaseStatus.RESOLVED

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()

    @transition(
        field=status,
        source=[CaseStatus.OPEN, CaseStatus.ESCALATED, CaseStatus.IN_PROGRESS],
        target=CaseStatus.IN_PROGRESS,
    )
    def assign(self, *, assignee):
        self.assignee = assignee

    @transition(field=status, source=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS], target=CaseStatus.ESCALATED)
    def escalate(self, *, reason: str, due_at):
        self.level = CaseLevel.L2
        self.assignee = None
        self.escalated_at = timezone.now()
        self.escalation_reason = reason
        self.due_at = due_at

    @transition(
        field=status,
        source=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.ESCALATED],
        target=CaseStatus.RESOLVED,
    )
    def resolve(self, *, by, decision: str, resolution: str, evidence: dict):
        self.resolved_at = timezone.now()
        self.resolved_by = by
        self.decision = decision
        self.resolution = resolution
        self.evidence = evidence


class SlaPolicy(models.Model):
    """Internal service levels, per channel (a row without channel is the default)."""

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="sla")
    payment_to_preparation = models.DurationField(
        default=datetime.timedelta(hours=24), help_text=_("From payment (confirmation) to the start of preparation.")
    )
    preparation_to_dispatch = models.DurationField(
        default=datetime.timedelta(hours=48), help_text=_("From the start of preparation to the first parcel shipped.")
    )
    refund = models.DurationField(
        default=datetime.timedelta(hours=72), help_text=_("From a refund's request to its processing.")
    )
    history = AuditHistory()

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            # One default row (channel empty): the one-to-one already makes channels unique.
            models.UniqueConstraint(Coalesce("channel", models.Value(0)), name="uniq_sla_default"),
        ]

    def __str__(self) -> str:
        return f"SLA {self.channel or _('default')}"


class AutomationRule(models.Model):
    """When <trigger> happens and every condition set here holds, do every action set here.

    Data, edited in the cockpit and audited (history). Each firing is one RuleFiring row (unique per
    rule and order event, so a rule fires once per matching event) and one event on the order.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=24, choices=RuleTrigger.choices)
    priority = models.PositiveSmallIntegerField(default=100, help_text=_("Lower runs first."))
    # Conditions: each one left blank is not checked.
    channels = models.ManyToManyField(Channel, blank=True, related_name="+")
    min_total = models.DecimalField(**MONEY, null=True, blank=True)
    max_total = models.DecimalField(**MONEY, null=True, blank=True)
    countries = models.CharField(
        max_length=200, blank=True, help_text=_("Shipping countries, comma-separated (FR, BE).")
    )
    customer_tags = models.CharField(max_length=200, blank=True, help_text=_("Any of these customer tags."))
    skus = models.CharField(max_length=500, blank=True, help_text=_("Any of these SKUs on the order."))
    min_risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    include_test_orders = models.BooleanField(default=False)
    # Actions: each one set here is done.
    add_tag = models.CharField(max_length=40, blank=True)
    hold_reason = models.CharField(max_length=24, choices=HoldReason.choices, blank=True)
    case_kind = models.CharField(max_length=24, choices=CaseKind.choices, blank=True)
    case_level = models.CharField(max_length=2, choices=CaseLevel.choices, default=CaseLevel.L1)
    notify_emails = models.CharField(
        max_length=500, blank=True, help_text=_("Staff addresses to alert, comma-separated.")
    )
    risk_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Raise the order's risk score to at least this, with the rule as the fact.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory()

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_total__isnull=True)
                | Q(max_total__isnull=True)
                | Q(min_total__lte=models.F("max_total")),
                name="rule_min_total_lte_max",
            ),
            models.CheckConstraint(
                condition=Q(risk_score__isnull=True) | Q(risk_score__lte=100), name="rule_risk_score_lte_100"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_action(self) -> bool:
        return bool(self.add_tag or self.hold_reason or self.case_kind or self.notify_emails or self.risk_score)


class RuleFiring(models.Model):
    """A rule fired on one order event: what it did. Append-only."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.PROTECT, related_name="firings")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="rule_firings")
    event = models.ForeignKey(OrderEvent, on_delete=models.CASCADE, related_name="rule_firings")
    fired_at = models.DateTimeField(default=timezone.now)
    actions = models.JSONField(default=list)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "event"], name="uniq_rule_firing_per_event")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.order_id}"
