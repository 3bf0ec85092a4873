"""Shipments (one location, their own lines and lifecycle), waves, short picks, tracking, consolidation.

A shipment's lines point at order lines; a consolidated shipment carries lines of several orders of
one customer. Order lines keep the shipped and delivered counts (`orders`), derived from here.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from fulfillment.carriers.choices import TrackingStatus
from fulfillment.choices import (
    ConsentChannel,
    ShipmentKind,
    ShipmentStatus,
    ShortPickResolution,
    TrackingSource,
    WaveRender,
)
from oms.core.history import AuditHistory

MONEY = {"max_digits": 14, "decimal_places": 4}
S = ShipmentStatus


class Wave(models.Model):
    """A batch of shipments of one location, picked together from one printed pick list."""

    number = models.CharField(max_length=32, unique=True, editable=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="waves")
    criteria = models.JSONField(default=dict, blank=True, help_text=_("The selection that built the wave."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    render_status = models.CharField(max_length=12, choices=WaveRender.choices, default=WaveRender.IDLE)
    render_progress = models.PositiveSmallIntegerField(default=0, help_text=_("Percent done."))
    render_error = models.TextField(blank=True)
    render_requested_at = models.DateTimeField(null=True, blank=True)
    pick_list = models.FileField(upload_to="picklists/%Y/%m/", blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory(excluded_fields=["render_progress", "render_requested_at"])

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("print_wave", "Can print pick lists")]

    def __str__(self) -> str:
        return self.number


def _all_picked(shipment: "Shipment") -> bool:
    lines = list(shipment.lines.all())
    return bool(lines) and all(line.quantity_picked == line.quantity for line in lines)


def _is_delivery(shipment: "Shipment") -> bool:
    return shipment.kind == ShipmentKind.DELIVERY


def _is_pickup(shipment: "Shipment") -> bool:
    return shipment.kind == ShipmentKind.PICKUP


def _has_no_open_short_pick(shipment: "Shipment") -> bool:
    return not shipment.short_picks.filter(resolved_at__isnull=True).exists()


class Shipment(ConcurrentTransitionMixin, models.Model):
    number = models.CharField(max_length=32, unique=True, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="shipments")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="shipments")
    wave = models.ForeignKey(Wave, on_delete=models.SET_NULL, null=True, blank=True, related_name="shipments")
    kind = models.CharField(max_length=12, choices=ShipmentKind.choices, default=ShipmentKind.DELIVERY)
    status = FSMField(max_length=24, choices=ShipmentStatus.choices, default=S.PENDING, protected=True, db_index=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text=_("Lower is picked first."))
    ship_by = models.DateTimeField(null=True, blank=True, help_text=_("Leaves by then to keep the promise."))

    carrier = models.CharField(max_length=32, blank=True)
    service = models.CharField(max_length=32, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True, db_index=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    label = models.FileField(upload_to="labels/%Y/%m/", blank=True)
    tracking_status = models.CharField(max_length=24, choices=TrackingStatus.choices, blank=True)
    tracking_updated_at = models.DateTimeField(null=True, blank=True)

    ship_to = models.JSONField(default=dict)
    weight_grams = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3)
    declared_value = models.DecimalField(**MONEY, default=Decimal("0"))
    insured = models.BooleanField(default=False)
    insurance_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    is_gift = models.BooleanField(default=False)
    gift_message = models.TextField(blank=True)
    is_test = models.BooleanField(default=False)
    exception_note = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    picking_started_at = models.DateTimeField(null=True, blank=True)
    packed_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    pickup_expires_at = models.DateTimeField(null=True, blank=True)
    pickup_reminded_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["location", "status", "priority"], name="shipment_location_status"),
            models.Index(fields=["carrier", "tracking_number"], name="shipment_carrier_tracking"),
            # The KPI "picking error rate" counts the parcels whose picking started in a period.
            models.Index(
                fields=["picking_started_at"],
                condition=Q(picking_started_at__isnull=False),
                name="shipment_picking_started_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(declared_value__gte=0), name="shipment_declared_value_gte_0"),
            models.CheckConstraint(condition=Q(insurance_amount__gte=0), name="shipment_insurance_gte_0"),
        ]
        permissions = [
            ("pick_shipment", "Can pick shipments and report short picks"),
            ("resolve_short_pick", "Can resolve short picks (substitute, delay, cancel)"),
            ("pack_shipment", "Can pack shipments"),
            ("dispatch_shipment", "Can hand shipments to carriers"),
            ("track_shipment", "Can record tracking updates"),
            ("hand_over_shipment", "Can hand store pickups to customers"),
            ("cancel_shipment", "Can cancel shipments"),
            ("consolidate_shipment", "Can consolidate orders into one shipment"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_late(self) -> bool:
        return self.status in (S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED) and bool(
            self.ship_by and self.ship_by < timezone.now()
        )

    # --- lifecycle ----------------------------------------------------------------------------

    @transition(field=status, source=S.PENDING, target=S.PICKING, permission="fulfillment.pick_shipment")
    def start_picking(self):
        self.picking_started_at = timezone.now()

    @transition(field=status, source=S.PICKING, target=S.SHORT_PICKED, permission="fulfillment.pick_shipment")
    def report_short(self):
        pass

    @transition(
        field=status,
        source=S.SHORT_PICKED,
        target=S.PICKING,
        conditions=[_has_no_open_short_pick],
        permission="fulfillment.resolve_short_pick",
    )
    def resume_picking(self):
        pass

    @transition(
        field=status,
        source=S.PICKING,
        target=S.PACKED,
        conditions=[_all_picked, _has_no_open_short_pick],
        permission="fulfillment.pack_shipment",
    )
    def pack(self):
        self.packed_at = timezone.now()

    @transition(
        field=status,
        source=S.PACKED,
        target=S.SHIPPED,
        conditions=[_is_delivery],
        permission="fulfillment.dispatch_shipment",
    )
    def dispatch(self):
        self.shipped_at = timezone.now()

    @transition(
        field=status,
        source=S.PACKED,
        target=S.READY_FOR_PICKUP,
        conditions=[_is_pickup],
        permission="fulfillment.pack_shipment",
    )
    def make_ready_for_pickup(self, *, expires_at):
        self.ready_at = timezone.now()
        self.pickup_expires_at = expires_at

    @transition(
        field=status, source=S.READY_FOR_PICKUP, target=S.PICKED_UP, permission="fulfillment.hand_over_shipment"
    )
    def hand_over(self):
        self.shipped_at = self.delivered_at = timezone.now()

    @transition(
        field=status, source=S.READY_FOR_PICKUP, target=S.PICKUP_EXPIRED, permission="fulfillment.cancel_shipment"
    )
    def expire_pickup(self):
        self.canceled_at = timezone.now()

    # Carrier-driven: tracking never moves a parcel backwards, and "delivered" only from the carrier's delivered.
    @transition(field=status, source=S.SHIPPED, target=S.IN_TRANSIT, permission="fulfillment.track_shipment")
    def mark_in_transit(self):
        pass

    @transition(
        field=status,
        source=[S.SHIPPED, S.IN_TRANSIT, S.LOST],
        target=S.DELIVERED,
        permission="fulfillment.track_shipment",
    )
    def mark_delivered(self, *, at=None):
        self.delivered_at = at or timezone.now()

    @transition(field=status, source=[S.SHIPPED, S.IN_TRANSIT], target=S.LOST, permission="fulfillment.track_shipment")
    def mark_lost(self):
        pass

    @transition(
        field=status, source=[S.SHIPPED, S.IN_TRANSIT], target=S.DAMAGED, permission="fulfillment.track_shipment"
    )
    def mark_damaged(self):
        pass

    @transition(
        field=status,
        source=[S.SHIPPED, S.IN_TRANSIT, S.LOST],
        target=S.RETURNED_TO_SENDER,
        permission="fulfillment.track_shipment",
    )
    def mark_returned_to_sender(self):
        pass

    @transition(
        field=status,
        source=[S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED],
        target=S.CANCELED,
        permission="fulfillment.cancel_shipment",
    )
    def cancel(self):
        self.canceled_at = timezone.now()


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="shipment_lines")
    quantity = models.PositiveIntegerField()
    quantity_picked = models.PositiveIntegerField(default=0)
    # Customs data, snapshot at creation (international parcels): HS code, origin, value per unit.
    hs_code = models.CharField(max_length=12, blank=True)
    origin_country = models.CharField(max_length=2, blank=True)
    customs_value = models.DecimalField(**MONEY, default=Decimal("0"))
    gift_wrap = models.BooleanField(default=False)
    gift_message = models.TextField(blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["shipment", "order_line__order_id", "order_line__line_number"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "order_line"], name="uniq_shipment_order_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="shipment_line_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity_picked__lte=F("quantity")), name="shipment_line_picked_lte_quantity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.order_line_id} × {self.quantity}"


class ShortPick(models.Model):
    """Units a picker could not find: an exception until support resolves it one of three ways."""

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="short_picks")
    shipment_line = models.ForeignKey(ShipmentLine, on_delete=models.SET_NULL, null=True, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="short_picks")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="short_picks")
    quantity = models.PositiveIntegerField()
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reported_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    resolution = models.CharField(max_length=16, choices=ShortPickResolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    substitute_product = models.ForeignKey(
        "inventory.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    substitute_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    promised_at = models.DateTimeField(null=True, blank=True)
    consent_channel = models.CharField(max_length=12, choices=ConsentChannel.choices, blank=True)
    consent_note = models.TextField(blank=True, help_text=_("What the customer agreed to, in their words."))
    consent_at = models.DateTimeField(null=True, blank=True)
    history = AuditHistory()

    class Meta:
        ordering = ["-reported_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="short_pick_quantity_gt_0")]
        indexes = [models.Index(fields=["resolved_at"], name="short_pick_open", condition=Q(resolved_at__isnull=True))]

    def __str__(self) -> str:
        return f"Short pick #{self.pk}: {self.quantity} × {self.order_line_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class TrackingUpdate(models.Model):
    """A carrier tracking event, stored once per (carrier, carrier event id): a replay is a no-op."""

    carrier = models.CharField(max_length=32)
    carrier_event_id = models.CharField(max_length=128)
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, null=True, blank=True, related_name="tracking_updates"
    )
    tracking_number = models.CharField(max_length=64)
    carrier_status_code = models.CharField(max_length=64)
    status = models.CharField(max_length=24, choices=TrackingStatus.choices)
    occurred_at = models.DateTimeField()
    description = models.TextField(blank=True)
    location = models.CharField(max_length=120, blank=True)
    source = models.CharField(max_length=12, choices=TrackingSource.choices, default=TrackingSource.WEBHOOK)
    received_at = models.DateTimeField(default=timezone.now)
    applied = models.BooleanField(default=False, help_text=_("Whether it moved the shipment."))

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["carrier", "carrier_event_id"], name="uniq_tracking_carrier_event")
        ]

    def __str__(self) -> str:
        return f"{self.carrier}:{self.carrier_event_id} {self.status}"


class ConsolidationRule(models.Model):
    """Successive orders of one customer to one address may ship together (per channel, or all)."""

    channel = models.ForeignKey(
        "orders.Channel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="consolidation_rules",
        help_text=_("Empty: every channel."),
    )
    window_hours = models.PositiveSmallIntegerField(
        default=24, help_text=_("The orders were placed at most this many hours apart.")
    )
    is_active = models.BooleanField(default=True)
    history = AuditHistory()

    class Meta:
        ordering = ["channel_id"]

    def __str__(self) -> str:
        return f"Consolidate {self.channel or 'all channels'} within {self.window_hours} h"
