"""Reads shared by the cockpit, the API and the customer view."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from fulfillment.choices import HANDED_OVER_STATUSES, ShipmentKind, ShipmentStatus
from fulfillment.models import Shipment, ShipmentLine, ShortPick, TrackingUpdate, Wave
from orders.models import Order
from orders.selectors import channel_scope, order_scope_q

S = ShipmentStatus

# What a customer reads for each parcel status: never our internal codes.
CUSTOMER_PARCEL_LABELS = {
    S.PENDING: pgettext_lazy("parcel", "Being prepared"),
    S.PICKING: pgettext_lazy("parcel", "Being prepared"),
    S.SHORT_PICKED: pgettext_lazy("parcel", "Being prepared"),
    S.PACKED: pgettext_lazy("parcel", "Packed, leaving soon"),
    S.SHIPPED: pgettext_lazy("parcel", "Shipped"),
    S.IN_TRANSIT: pgettext_lazy("parcel", "On its way"),
    S.DELIVERED: pgettext_lazy("parcel", "Delivered"),
    S.LOST: pgettext_lazy("parcel", "Delayed in transit: we are looking into it"),
    S.DAMAGED: pgettext_lazy("parcel", "Damaged in transit: we will contact you"),
    S.RETURNED_TO_SENDER: pgettext_lazy("parcel", "Returned to us"),
    S.CANCELED: pgettext_lazy("parcel", "Canceled"),
    S.READY_FOR_PICKUP: pgettext_lazy("parcel", "Ready for pickup"),
    S.PICKED_UP: pgettext_lazy("parcel", "Collected"),
    S.PICKUP_EXPIRED: pgettext_lazy("parcel", "Not collected in time"),
}


def shipments_visible(user) -> QuerySet[Shipment]:
    """The parcels `user` may reach: every one, or for an API client those whose orders are all of its
    channels (a consolidated parcel carries lines of other orders, maybe of another channel)."""
    if channel_scope(user) is None:
        return Shipment.objects.all()
    foreign_lines = ShipmentLine.objects.filter(shipment=OuterRef("pk")).exclude(
        order_scope_q(user, "order_line__order")
    )
    return Shipment.objects.filter(order_scope_q(user, "order")).exclude(Exists(foreign_lines))


def waves_visible(user) -> QuerySet[Wave]:
    """The waves `user` may reach: every one, or for an API client those with parcels, all of them
    its own."""
    if channel_scope(user) is None:
        return Wave.objects.all()
    parcels = Shipment.objects.filter(wave=OuterRef("pk"))
    foreign = parcels.exclude(pk__in=shipments_visible(user).values("pk"))
    return Wave.objects.filter(Exists(parcels)).exclude(Exists(foreign))


def short_picks_visible(user) -> QuerySet[ShortPick]:
    """The short picks of the parcels `user` may reach."""
    if channel_scope(user) is None:
        return ShortPick.objects.all()
    return ShortPick.objects.filter(order_scope_q(user, "order"), shipment__in=shipments_visible(user).values("pk"))


def shipment_list(*, user, location=None, status=None, carrier=None, late: bool | None = None, order=None) -> QuerySet:
    """The parcels `user` may reach, filtered."""
    return _filtered(shipments_visible(user), location=location, status=status, carrier=carrier, late=late, order=order)


def _filtered(qs, *, location=None, status=None, carrier=None, late: bool | None = None, order=None) -> QuerySet:
    qs = qs.select_related("order", "location", "wave")
    if location is not None:
        qs = qs.filter(location=location)
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else list(status))
    if carrier:
        qs = qs.filter(carrier=carrier)
    if order is not None:
        # A consolidated parcel carries another order's lines: find those parcels first (the lines'
        # order index), then one OR of two primary-key lookups. An OR across the join would make
        # PostgreSQL scan every shipment.
        consolidated = list(
            ShipmentLine.objects.filter(order_line__order=order).values_list("shipment_id", flat=True).distinct()
        )
        qs = qs.filter(Q(order=order) | Q(pk__in=consolidated))
    if late is not None:
        late_q = Q(status__in=[S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED], ship_by__lt=timezone.now())
        qs = qs.filter(late_q) if late else qs.exclude(late_q)
    return qs


def shipments_of_order(order: Order) -> list[Shipment]:
    """The order's parcels (consolidated ones included), oldest first, with their lines."""
    return list(
        _filtered(Shipment.objects.all(), order=order)
        .prefetch_related("lines__order_line", "tracking_updates")
        .order_by("created_at", "pk")
    )


def open_short_picks() -> QuerySet:
    return ShortPick.objects.filter(resolved_at__isnull=True).select_related("order", "order_line", "shipment")


def tracking_of(shipment: Shipment) -> list[TrackingUpdate]:
    """Oldest first; uses the prefetched rows when there are."""
    return sorted(shipment.tracking_updates.all(), key=lambda update: (update.occurred_at, update.pk))


@dataclass
class ParcelView:
    number: str
    status: str
    label: str
    kind: str
    carrier: str
    tracking_number: str
    tracking_url: str
    location: str
    shipped_at: object
    delivered_at: object
    pickup_expires_at: object
    items: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


@dataclass
class OrderParcels:
    order: Order
    parcels: list[ParcelView]
    remaining: list[dict]  # what is still to come: not in any parcel on its way

    @property
    def parcel_count(self) -> int:
        return len([p for p in self.parcels if p.status != S.CANCELED])


def order_parcels(order: Order) -> OrderParcels:
    """The customer's view: each parcel with its tracking and contents, and what is still to come."""
    parcels = []
    on_the_way = defaultdict(int)  # order line → units in parcels handed over or being prepared
    for shipment in shipments_of_order(order):
        if shipment.status == S.CANCELED:
            continue
        items = []
        for line in shipment.lines.all():
            if line.order_line.order_id != order.pk:
                continue
            items.append({"sku": line.order_line.sku, "name": line.order_line.name, "quantity": line.quantity})
            if shipment.status not in (S.PICKUP_EXPIRED,):
                on_the_way[line.order_line_id] += line.quantity
        parcels.append(
            ParcelView(
                number=shipment.number,
                status=shipment.status,
                label=str(CUSTOMER_PARCEL_LABELS[shipment.status]),
                kind=shipment.kind,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number if shipment.status in HANDED_OVER_STATUSES else "",
                tracking_url=shipment.tracking_url if shipment.status in HANDED_OVER_STATUSES else "",
                location=shipment.location.name if shipment.kind == ShipmentKind.PICKUP else "",
                shipped_at=shipment.shipped_at,
                delivered_at=shipment.delivered_at,
                pickup_expires_at=shipment.pickup_expires_at,
                items=items,
                events=[
                    {"at": u.occurred_at, "status": u.status, "description": u.description, "location": u.location}
                    for u in tracking_of(shipment)
                ],
            )
        )
    remaining = []
    for line in order.lines.order_by("line_number"):
        # Shipped outside any parcel counts as on its way too.
        accounted = max(on_the_way[line.pk], 0)
        outstanding = line.quantity - line.quantity_canceled - max(accounted, line.quantity_shipped)
        if outstanding > 0:
            remaining.append(
                {
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": outstanding,
                    "promised_at": line.promised_at or order.promised_at,
                }
            )
    return OrderParcels(order=order, parcels=parcels, remaining=remaining)
