"""Products, locations, stock and its ledger, reservations, incoming supply, channel rules,
sourcing decisions, cycle counts and coverage alerts.

Stock is right by construction: `StockItem.on_hand` and `reserved` are held by check constraints
and every change to either is an append-only `StockMovement` written in the same transaction, so
`on_hand == Σ on_hand_delta` and `reserved == Σ reserved_delta` can be checked at any time
(`manage.py check_stock_ledger`). Stock rows are locked by (product, location), in the project's
one lock order (`oms.core.locks`): after the order, its lines and its reservations.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from django_fsm import FSMField, FSMModelMixin, transition

from oms.core.history import AuditHistory

MONEY = {"max_digits": 14, "decimal_places": 4}


def validate_gtin(value: str) -> None:
    """EAN-8, UPC-A (12), EAN-13 or GTIN-14, with a right check digit."""
    if not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise ValidationError(_("A GTIN has 8, 12, 13 or 14 digits."), code="invalid_gtin")
    digits = [int(c) for c in value]
    weighted = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    if (10 - weighted % 10) % 10 != digits[-1]:
        raise ValidationError(_("The GTIN's check digit is wrong."), code="invalid_gtin")


class ReservationMode(models.TextChoices):
    SOFT = "soft", _("Soft: reserve at payment")
    HARD = "hard", _("Hard: reserve at picking")


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    barcode = models.CharField(
        max_length=14, blank=True, db_index=True, validators=[validate_gtin], help_text=_("EAN / GTIN")
    )
    hs_code = models.CharField(max_length=12, blank=True)
    country_of_origin = CountryField(blank=True)
    weight_grams = models.PositiveIntegerField(default=0)
    # Used by returns: what may be sent back, and why not.
    is_returnable = models.BooleanField(default=True)
    is_custom_made = models.BooleanField(default=False)
    is_perishable = models.BooleanField(default=False)
    is_hygiene_sealed = models.BooleanField(default=False)
    sellable_from = models.DateTimeField(null=True, blank=True)
    sellable_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text=_("Switched off when its sell window ends."))
    preorder_enabled = models.BooleanField(default=False)
    preorder_limit = models.PositiveIntegerField(default=0)
    preorder_promised_at = models.DateTimeField(null=True, blank=True)
    safety_stock = models.PositiveIntegerField(
        default=0, help_text=_("Units never promised, per location: the default for new stock rows.")
    )
    reservation_mode = models.CharField(
        max_length=8, choices=ReservationMode.choices, blank=True, help_text=_("Blank: the channel's setting.")
    )
    is_key = models.BooleanField(default=False, help_text=_("Watched by coverage alerts."))
    coverage_alert_days = models.PositiveSmallIntegerField(default=7)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sellable_until__isnull=True)
                | Q(sellable_from__isnull=True)
                | Q(sellable_until__gt=F("sellable_from")),
                name="product_sell_window_ordered",
            )
        ]
        permissions = [("adjust_stock", "Can adjust stock manually"), ("receive_stock", "Can receive stock")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def is_sellable_at(self, when) -> bool:
        if not self.is_active:
            return False
        if self.sellable_from and when < self.sellable_from:
            return False
        return not (self.sellable_until and when >= self.sellable_until)


class LocationKind(models.TextChoices):
    WAREHOUSE = "warehouse", _("Warehouse")
    STORE = "store", _("Store")
    THIRD_PARTY = "3pl", _("3PL hub")
    DROP_SHIP = "dropship", _("Drop-ship supplier")


class Location(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=LocationKind.choices)
    country = CountryField()
    city = models.CharField(max_length=100, blank=True)
    handling_days = models.PositiveSmallIntegerField(default=1, help_text=_("Working days to prepare an order."))
    cutoff_time = models.TimeField(null=True, blank=True, help_text=_("Orders after this time start next day."))
    cost_per_parcel = models.DecimalField(**MONEY, default=0)
    ships_from_store = models.BooleanField(default=False)
    store_pickup = models.BooleanField(default=False)
    is_franchise = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text=_("Lower is preferred on a tie."))
    history = AuditHistory()

    class Meta:
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return self.name

    @property
    def can_ship(self) -> bool:
        return self.kind != LocationKind.STORE or self.ships_from_store


class TransitTime(models.Model):
    """Carrier transit days from a location to a destination country."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="transit_times")
    country = CountryField()
    days = models.PositiveSmallIntegerField()
    cost_per_parcel = models.DecimalField(**MONEY, null=True, blank=True, help_text=_("Overrides the location's."))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "country"], name="uniq_transit_location_country")]

    def __str__(self) -> str:
        return f"{self.location} → {self.country}: {self.days} d"


class StockItem(models.Model):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_items")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    safety_stock = models.PositiveIntegerField(default=0)
    bin_location = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id", "location_id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="uniq_stock_product_location"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_gte_0"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_lte_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        """Physically free to promise here: on hand − reserved − safety stock."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)


class MovementReason(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    RESERVATION = "reservation", _("Sale reservation")
    RELEASE = "release", _("Release")
    SHIPMENT = "shipment", _("Shipment")
    ADJUSTMENT = "adjustment", _("Adjustment")
    RETURN = "return", _("Return")
    COUNT = "count", _("Cycle count")
    SHORT_PICK = "short_pick", _("Short pick (not found in the bin)")


class StockMovement(models.Model):
    """The append-only stock ledger. Never updated, never deleted."""

    # Indexed by (stock item, id) and by order only: the ledger is appended on the contended path.
    stock_item = models.ForeignKey(StockItem, on_delete=models.PROTECT, related_name="movements", db_index=False)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    reason = models.CharField(max_length=16, choices=MovementReason.choices)
    # What the movement was for. References of a log: no database constraint (checking them would
    # lock the order's rows in every reservation); orders and lines are never deleted (PROTECT).
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    order_line = models.ForeignKey(
        "orders.OrderLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    reference = models.CharField(max_length=128, blank=True, help_text=_("Shipment, count, receipt or document."))
    note = models.TextField(blank=True)
    # No database constraint: checking it would lock the (shared) user row in every reservation.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["stock_item", "id"], name="movement_stock_item_idx"),
            # A 3PL's receipt is applied once per document: looked up by its reference.
            models.Index(fields=["reference"], condition=Q(reason="receipt"), name="movement_receipt_ref_idx"),
            # created_at has a BRIN index on PostgreSQL (migration 0002): append-only and in time
            # order, it costs almost nothing to maintain.
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(on_hand_delta=0) | ~Q(reserved_delta=0), name="movement_changes_something"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.on_hand_delta:+d}/{self.reserved_delta:+d}"


class IncomingSupply(models.Model):
    """A purchase order or a transfer line expected at a location on a date."""

    class Kind(models.TextChoices):
        PURCHASE_ORDER = "purchase_order", _("Purchase order")
        TRANSFER = "transfer", _("Transfer")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RECEIVED = "received", _("Received")
        CANCELED = "canceled", _("Canceled")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="incoming")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="incoming")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PURCHASE_ORDER)
    reference = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    quantity_received = models.PositiveIntegerField(default=0)
    # Pre-orders and backorders promised against this supply.
    quantity_promised = models.PositiveIntegerField(default=0)
    expected_at = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditHistory()

    class Meta:
        ordering = ["expected_at", "id"]
        verbose_name_plural = "incoming supply"
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="supply_quantity_gt_0"),
            models.CheckConstraint(condition=Q(quantity_received__lte=F("quantity")), name="supply_received_lte_qty"),
            models.CheckConstraint(condition=Q(quantity_promised__lte=F("quantity")), name="supply_promised_lte_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.quantity} × {self.product_id} due {self.expected_at}"

    @property
    def quantity_open(self) -> int:
        return self.quantity - self.quantity_received

    @property
    def quantity_unpromised(self) -> int:
        return max(0, self.quantity - self.quantity_received - self.quantity_promised)


class ReservationState(models.TextChoices):
    ACTIVE = "active", _("Active")
    CONSUMED = "consumed", _("Consumed by a shipment")
    RELEASED = "released", _("Released")


class Reservation(models.Model):
    """Units of one order line held at one location (or promised against incoming supply)."""

    # Few indexes on purpose: this table is written on the contended path. Lookups go by order
    # (then line) and by (stock item, channel) for active rows; the rest is reached through those.
    # order_line and supply carry no database constraint either (orders' lines are never deleted).
    # channel, product and location are copies (from the order and the stock row, in the same
    # statement) and carry no database foreign key: checking one would lock those shared, hot parent
    # rows (FOR KEY SHARE) in every reserving transaction. Django still enforces PROTECT.
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="reservations")
    order_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, related_name="reservations", db_index=False, db_constraint=False
    )
    channel = models.ForeignKey(
        "orders.Channel", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="reservations", db_index=False, db_constraint=False
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="reservations", db_index=False, db_constraint=False
    )
    stock_item = models.ForeignKey(
        StockItem, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    supply = models.ForeignKey(
        IncomingSupply,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    quantity = models.PositiveIntegerField()
    quantity_consumed = models.PositiveIntegerField(default=0)
    quantity_released = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=8, choices=ReservationMode.choices, default=ReservationMode.SOFT)
    state = models.CharField(max_length=12, choices=ReservationState.choices, default=ReservationState.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # No simple-history here: like the stock counters, every change of a reservation's quantities
    # is a ledger row (reservation, release, shipment) naming the order line, in the same transaction.

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["stock_item", "channel"], condition=Q(state="active"), name="reservation_active_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity_consumed__lte=F("quantity") - F("quantity_released")),
                name="reservation_consumed_plus_released_lte_qty",
            ),
            # Either on stock at hand, or a promise against incoming supply.
            models.CheckConstraint(
                condition=Q(stock_item__isnull=False, supply__isnull=True)
                | Q(stock_item__isnull=True, supply__isnull=False),
                name="reservation_stock_xor_supply",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id} @ {self.location_id} for line {self.order_line_id}"

    @property
    def quantity_open(self) -> int:
        return self.quantity - self.quantity_consumed - self.quantity_released


class ChannelStockRule(models.Model):
    """How much of a product's stock a channel may sell, and from where.

    - exclude: the channel may not sell stock held at this location (or kind of location), e.g.
      store stock kept from the web;
    - share: the channel may hold at most `share` (0–1) of the sellable stock at a location;
    - ring_fence: `quantity` units at the location are kept for this channel only: other channels
      see that much less.
    Blank product: every product. Blank location and location kind: every location.
    """

    class Kind(models.TextChoices):
        EXCLUDE = "exclude", _("Exclude location")
        SHARE = "share", _("Share of stock")
        RING_FENCE = "ring_fence", _("Ring-fenced quantity")

    channel = models.ForeignKey("orders.Channel", on_delete=models.CASCADE, related_name="stock_rules")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    location_kind = models.CharField(max_length=16, choices=LocationKind.choices, blank=True)
    share = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    quantity = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    history = AuditHistory()

    class Meta:
        ordering = ["channel", "kind"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="share") | (Q(share__isnull=False) & Q(share__gte=0) & Q(share__lte=1)),
                name="channel_rule_share_0_1",
            ),
            models.CheckConstraint(
                condition=~Q(kind="ring_fence") | (Q(quantity__isnull=False) & Q(location__isnull=False)),
                name="channel_rule_ring_fence_needs_qty_and_location",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.get_kind_display()}"


class SourcingStrategy(models.TextChoices):
    FEWEST_SPLITS = "fewest_splits", _("Fewest parcels, then fastest, then cheapest")
    FASTEST = "fastest", _("Fastest delivery, splits allowed")
    CHEAPEST = "cheapest", _("Lowest cost per parcel, then fewest parcels")


class ChannelStockSettings(models.Model):
    """A channel's stock behaviour: priority on the last unit, when to reserve, how to source."""

    channel = models.OneToOneField("orders.Channel", on_delete=models.CASCADE, related_name="stock_settings")
    # When two channels want the last unit, the higher priority (lower number) wins.
    priority = models.PositiveSmallIntegerField(default=100)
    reservation_mode = models.CharField(max_length=8, choices=ReservationMode.choices, default=ReservationMode.SOFT)
    sourcing_strategy = models.CharField(
        max_length=16, choices=SourcingStrategy.choices, default=SourcingStrategy.FEWEST_SPLITS
    )
    history = AuditHistory()

    class Meta:
        ordering = ["priority"]
        verbose_name_plural = "channel stock settings"

    def __str__(self) -> str:
        return f"{self.channel}: priority {self.priority}"


class AllocationConflict(models.Model):
    """A last-unit conflict between channels, and who got the unit."""

    stock_item = models.ForeignKey(StockItem, on_delete=models.PROTECT, related_name="+")
    winner_order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    loser_order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.winner_order_id} over {self.loser_order_id}: {self.quantity}"


class SourcingDecision(models.Model):
    """Where an order ships from, with the candidates considered and why each lost."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="sourcing_decisions")
    strategy = models.CharField(max_length=32)
    summary = models.TextField()
    # [{"line": 1, "sku": …, "location": code, "quantity": n}] and backorders
    allocations = models.JSONField(default=list)
    # [{"location": code, "chosen": bool, "lead_days": n, "cost": "…", "covers": n, "rejected_because": "…"}]
    candidates = models.JSONField(default=list)
    backorders = models.JSONField(default=list)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"Sourcing of order {self.order_id}: {self.summary}"


class CycleCount(FSMModelMixin, models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        COUNTED = "counted", _("Counted")
        APPLIED = "applied", _("Applied")
        CANCELED = "canceled", _("Canceled")

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="cycle_counts")
    status = FSMField(max_length=12, choices=Status.choices, default=Status.OPEN, protected=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_cyclecount", "Can approve and apply a cycle count")]

    def __str__(self) -> str:
        return f"Count #{self.pk} at {self.location}"

    @transition(field=status, source=Status.OPEN, target=Status.COUNTED, permission="inventory.change_cyclecount")
    def submit(self):
        pass

    @transition(field=status, source=Status.COUNTED, target=Status.APPLIED, permission="inventory.approve_cyclecount")
    def apply(self):
        self.applied_at = timezone.now()

    @transition(
        field=status,
        source=[Status.OPEN, Status.COUNTED],
        target=Status.CANCELED,
        permission="inventory.change_cyclecount",
    )
    def cancel(self):
        pass


class CycleCountLine(models.Model):
    count = models.ForeignKey(CycleCount, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    expected = models.IntegerField(help_text=_("On hand when the count was opened."))
    counted = models.IntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    history = AuditHistory()

    class Meta:
        ordering = ["product__sku"]
        constraints = [
            models.UniqueConstraint(fields=["count", "product"], name="uniq_count_line_product"),
            models.CheckConstraint(condition=Q(counted__isnull=True) | Q(counted__gte=0), name="count_counted_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.expected} → {self.counted}"


class StockAlert(models.Model):
    class Kind(models.TextChoices):
        LOW_COVERAGE = "low_coverage", _("Low coverage")
        SELL_WINDOW_ENDED = "sell_window_ended", _("Sell window ended")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    message = models.TextField()
    days_of_cover = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "kind"], condition=Q(resolved_at__isnull=True), name="uniq_open_alert_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.product_id}"
