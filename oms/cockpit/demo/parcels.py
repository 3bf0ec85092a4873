"""The parcels of the planned orders: picked, packed and handed over by the warehouse (or a 3PL
through the API), then tracked by the sandbox carrier's webhook, up to each order's planned status."""

import datetime

from django.test.utils import override_settings
from django.utils import timezone

from fulfillment import services as fulfillment
from fulfillment.choices import ShipmentStatus
from fulfillment.models import Shipment
from inventory.models import IncomingSupply, LocationKind, Reservation
from inventory.services import stock_receive
from oms.cockpit.demo.context import Demo
from orders import services
from orders.choices import OrderStatus
from orders.models import Order

# What the sandbox carrier says at each step (its webhook payload's status, description, place).
CARRIER_STEPS = {
    "PICKED_UP": ("Parcel picked up", "Paris Bercy depot"),
    "IN_TRANSIT": ("At the sorting hub", "Chilly-Mazarin hub"),
    "DELIVERED": ("Delivered to the recipient", ""),
    "LOST": ("Parcel cannot be located; investigation opened", "Chilly-Mazarin hub"),
    "DAMAGED": ("Parcel damaged in the sorting machine", "Chilly-Mazarin hub"),
    "RETURNED": ("Address incomplete: returned to sender", "Paris Bercy depot"),
}


def order_ship(demo: Demo, order: Order, target: str) -> Order:
    """From preparation to the planned status, parcel by parcel (each planned at the start)."""
    u = demo.users
    parcels = parcels_pending(order)
    # Demo shortcut: a label costs a WeasyPrint pass (~0.25 s). Parcels of the last week get the
    # sandbox carrier's label; older ones went out with a tracking number from the carrier's
    # pickup manifest (no label file), so that `make run` stays quick.
    label = order.placed_at >= demo.now - datetime.timedelta(days=7)
    if target == OrderStatus.PARTIALLY_SHIPPED:
        if len(parcels) > 1:
            # Sourced from two places: the first parcel has left, the other is still being prepared.
            parcel_dispatch(demo, parcels[0], label=label)
            services.order_add_note(order=order, actor=u["warehouse"], body="Second parcel leaves from the other site.")
            return order
        # One parcel: the first line went ahead on its own, recorded by hand outside any parcel;
        # the parcel gives those units up and keeps the rest.
        first = order.lines.order_by("line_number").first()
        services.order_record_shipment(
            order=order, actor=u["warehouse"], quantities={first.pk: first.quantity}, reference=_tracking(demo)
        )
        services.order_add_note(
            order=order, actor=u["warehouse"], body="Rest of the order waits for the supplier delivery."
        )
        return order
    for parcel in parcels:
        parcel_dispatch(demo, parcel, label=label)
    order.refresh_from_db()
    if order.status != OrderStatus.SHIPPED:
        # A test order takes no stock and has no parcel: the warehouse records it by hand.
        services.order_record_shipment(order=order, actor=u["warehouse"], reference=_tracking(demo))
    if target == OrderStatus.SHIPPED:
        for parcel in parcels:
            if demo.parcel_rng.random() < 0.6:
                carrier_events_post(demo, parcel, "PICKED_UP", "IN_TRANSIT")
        return order
    for parcel in parcels:
        carrier_events_post(demo, parcel, "PICKED_UP", "IN_TRANSIT", "DELIVERED")
    order.refresh_from_db()
    if order.status != OrderStatus.DELIVERED:
        services.order_mark_delivered(order=order, actor=u["warehouse"], reason="Carrier: delivered.")
    if target == OrderStatus.DELIVERED:
        return order
    # Demo data only: the orders were "delivered" a second ago, so the return window is set to 0
    # days for the close step (the real rule, OMS_RETURN_WINDOW_DAYS after delivery, is unchanged).
    with override_settings(OMS_RETURN_WINDOW_DAYS=0):
        services.order_complete(order=order, actor=u["finance"], reason="Return window elapsed.")
    return order


def parcels_pending(order: Order) -> list[Shipment]:
    return list(
        Shipment.objects.filter(order=order, status=ShipmentStatus.PENDING)
        .select_related("location")
        .order_by("location__priority", "pk")
    )


def parcel_pick(parcel: Shipment, actor, *, short: dict[str, int] | None = None, note: str = "") -> None:
    """Confirm every unit still to pick, or for the SKUs in `short` the units found (a short pick)."""
    short = short or {}
    picked = {
        line.pk: short.get(line.order_line.sku, line.quantity)
        for line in parcel.lines.select_related("order_line")
        if line.quantity_picked < line.quantity
    }
    if picked:
        fulfillment.shipment_confirm_picks(shipment=parcel, actor=actor, picked=picked, note=note)


def parcel_dispatch(demo: Demo, parcel: Shipment, *, label: bool) -> Shipment:
    """Pick, pack and hand the parcel over. A 3PL does it through the API with its own carrier
    account (it sends the tracking number); our sites print the sandbox carrier's label, or give
    the manifest's tracking number (`label=False`)."""
    parcel.refresh_from_db()
    third_party = parcel.location.kind == LocationKind.THIRD_PARTY
    actor = demo.third_party if third_party else demo.users["warehouse"]
    if parcel.status in (ShipmentStatus.PENDING, ShipmentStatus.PICKING):
        parcel_pick(parcel, actor)
        fulfillment.shipment_pack(shipment=parcel, actor=actor)
    if label and not third_party:
        return fulfillment.shipment_dispatch(shipment=parcel, actor=actor)
    # Outside the range the label counter draws from (SBX<yy>…): never the same number twice.
    demo.manifest_parcels += 1
    return fulfillment.shipment_dispatch(
        shipment=parcel,
        actor=actor,
        carrier="sandbox",
        service="standard",
        tracking_number=f"SBX9{demo.manifest_parcels:09d}",
    )


def carrier_events_post(demo: Demo, parcel: Shipment, *codes: str) -> None:
    """The sandbox carrier's tracking webhook, as it posts it (received as the system user)."""
    parcel.refresh_from_db(fields=["tracking_number", "carrier"])
    started = timezone.now()
    events = []
    for step, code in enumerate(codes, start=1):
        description, place = CARRIER_STEPS[code]
        events.append(
            {
                "id": f"{parcel.tracking_number}-{code}",
                "tracking_number": parcel.tracking_number,
                "status": code,
                "occurred_at": (started + datetime.timedelta(seconds=step)).isoformat(),
                "description": description,
                "location": place,
            }
        )
    fulfillment.carrier_webhook_receive(carrier=parcel.carrier, payload={"events": events}, actor=demo.system)


def promised_supply_receive(demo: Demo, order: Order) -> None:
    """A back-ordered line ships once its purchase order arrives: receive what it waits for."""
    supply_ids = set(
        Reservation.objects.filter(order=order, state="active", supply__isnull=False).values_list("supply", flat=True)
    )
    if not supply_ids:
        return
    # Every order waiting on these purchase orders, this one included (the receipt fills them all).
    waiting = set(Reservation.objects.filter(supply__in=supply_ids, state="active").values_list("order_id", flat=True))
    for supply in IncomingSupply.objects.filter(pk__in=supply_ids, status=IncomingSupply.Status.OPEN):
        stock_receive(
            product=supply.product,
            location=supply.location,
            quantity=supply.quantity_open,
            actor=demo.users["warehouse"],
            supply=supply,
        )
    # The promises are now reservations on the shelf: sourcing again gives them a parcel.
    preparing = (OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED)
    for waiting_order in Order.objects.filter(pk__in=waiting, status__in=preparing).order_by("pk"):
        services.order_reallocate(
            order=waiting_order, actor=demo.users["warehouse"], reason="Supplier delivery received"
        )


def _tracking(demo: Demo) -> str:
    return f"6A{demo.rng.randint(10**9, 10**10 - 1)}"
