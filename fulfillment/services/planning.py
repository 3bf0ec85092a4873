"""Planning: an order's reserved units become parcels, one per location.

`shipments_plan` runs in the transaction of the order change that left units without a parcel
(orders emits `order.units_to_plan`; FulfillmentConfig.ready subscribes it), under that order's lock.
Units join the order's pending parcel at the location, a pending parcel of the same customer to the
same address (a consolidation rule), or a new parcel; units no longer reserved leave parcels not
yet packed.
"""

import datetime
from collections import defaultdict

from django.db.models import F, Q, Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from fulfillment.choices import OPEN_STATUSES, ShipmentKind
from fulfillment.models import ConsolidationRule, Shipment, ShipmentLine
from fulfillment.services._common import S, _new_line, _refresh_values, _run, _save
from inventory.models import Location, Reservation, ReservationState
from oms.core.history import stamp
from oms.core.locks import lock_ids, lock_many
from oms.core.numbering import format_number, next_unique
from orders.choices import OrderEventType
from orders.events import event_record, events_record
from orders.models import Order

EXPRESS_WORDS = ("express", "next day", "next-day", "priority", "24h")


def _open_shipment_units(order_ids) -> dict[tuple[int, int], int]:
    """(order line, location) → units on shipments not yet handed over."""
    rows = (
        ShipmentLine.objects.filter(order_line__order_id__in=list(order_ids), shipment__status__in=OPEN_STATUSES)
        .values("order_line_id", "shipment__location_id")
        .annotate(units=Sum("quantity"))
    )
    return {(row["order_line_id"], row["shipment__location_id"]): row["units"] for row in rows}


def _same_address(a: dict, b: dict) -> bool:
    keys = ("name", "line1", "line2", "postal_code", "city", "country")
    norm = lambda d: tuple(" ".join(str((d or {}).get(k) or "").casefold().split()) for k in keys)  # noqa: E731
    return norm(a) == norm(b)


def _consolidation_target(order: Order, location_id: int) -> Shipment | None:
    """A pending parcel of the same customer to the same address, from the same location, that a
    rule lets this order join. Locked, or None."""
    if order.is_test or order.pickup_location_id:
        return None
    rule = (
        ConsolidationRule.objects.filter(is_active=True)
        .filter(Q(channel=order.channel_id) | Q(channel__isnull=True))
        .order_by(F("channel_id").asc(nulls_last=True))
        .first()
    )
    if rule is None:
        return None
    window = datetime.timedelta(hours=rule.window_hours)
    candidates = (
        Shipment.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(
            status=S.PENDING,
            kind=ShipmentKind.DELIVERY,
            wave__isnull=True,
            location_id=location_id,
            is_test=False,
            order__customer_id=order.customer_id,
            order__placed_at__gte=order.placed_at - window,
            order__placed_at__lte=order.placed_at + window,
        )
        .exclude(order_id=order.pk)
        .select_related("order")
        .order_by("created_at")
    )
    if rule.channel_id:
        candidates = candidates.filter(order__channel_id=rule.channel_id)
    for candidate in candidates:
        if _same_address(candidate.ship_to, order.shipping_address):
            return candidate
    return None


def _ship_by(location) -> datetime.datetime:
    days = max(location.handling_days, 0)
    when = timezone.localtime() + datetime.timedelta(days=days)
    while when.weekday() >= 5:  # a warehouse day, not a weekend
        when += datetime.timedelta(days=1)
    cutoff = location.cutoff_time or datetime.time(17, 0)
    return when.replace(hour=cutoff.hour, minute=cutoff.minute, second=0, microsecond=0)


def shipments_plan(*, order: Order, actor) -> list[Shipment]:
    """Give the order's reserved, not yet planned units a shipment per location (under the order lock).

    Units join the order's own pending shipment at that location, or a consolidation target, or a
    new shipment. Returns the shipments created or extended.
    """
    if order.is_test:
        return []  # test orders take no stock and never reach carriers
    reserved = (
        Reservation.objects.filter(order_id=order.pk, state=ReservationState.ACTIVE, stock_item__isnull=False)
        .values("order_line_id", "location_id")
        .annotate(units=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))
    )
    planned = _open_shipment_units([order.pk])
    missing: dict[int, dict[int, int]] = defaultdict(dict)
    held = {}
    for row in reserved:
        key = (row["order_line_id"], row["location_id"])
        held[key] = row["units"] or 0
        units = held[key] - planned.get(key, 0)
        if units > 0:
            missing[row["location_id"]][row["order_line_id"]] = units
    excess = {key: units - held.get(key, 0) for key, units in planned.items() if units > held.get(key, 0)}
    if excess:
        _trim(order, excess, actor=actor)
    if not missing:
        return []
    # The order's own pending parcels are locked before any document counter (oms.core.locks).
    lock_ids(Shipment.objects.filter(order=order, location_id__in=list(missing), status=S.PENDING, wave__isnull=True))
    lines = {line.pk: line for line in order.lines.select_related("product")}
    touched = []
    events = []
    for location_id, quantities in sorted(missing.items()):
        shipment = (
            Shipment.objects.select_for_update(of=("self",))
            .filter(order=order, location_id=location_id, status=S.PENDING, wave__isnull=True)
            .select_related("location")
            .first()
        )
        consolidated_with = None
        if shipment is None:
            shipment = _consolidation_target(order, location_id)
            consolidated_with = shipment.order if shipment is not None else None
        if shipment is None:
            shipment = _create_shipment(order=order, location_id=location_id, actor=actor)
        existing = {line.order_line_id: line for line in shipment.lines.select_for_update()}
        new_rows, changed = [], []
        for line_id, units in sorted(quantities.items()):
            if line_id in existing:
                existing[line_id].quantity += units
                changed.append(existing[line_id])
            else:
                new_rows.append(_new_line(shipment, lines[line_id], units))
        if new_rows:
            bulk_create_with_history(new_rows, ShipmentLine, default_user=actor, default_change_reason="Planned")
        for row in changed:
            stamp(row, actor=actor, reason="Planned")
            row.save(update_fields=["quantity"])
        _refresh_values(shipment, actor=actor, reason="Planned")
        touched.append(shipment)
        summary = {
            "shipment": shipment.number,
            "location": shipment.location.code,
            "kind": shipment.kind,
            "lines": [
                {"line": lines[pk].line_number, "sku": lines[pk].sku, "quantity": q} for pk, q in quantities.items()
            ],
        }
        events.append((OrderEventType.SHIPMENT_PLANNED, "", summary))
        if consolidated_with is not None:
            events.append(
                (OrderEventType.CONSOLIDATED, "", {"shipment": shipment.number, "with_order": consolidated_with.number})
            )
            event_record(
                order=consolidated_with,
                actor=actor,
                type=OrderEventType.CONSOLIDATED,
                payload={"shipment": shipment.number, "with_order": order.number},
            )
    events_record(order=order, actor=actor, events=events)
    return touched


def _trim(order: Order, excess: dict[tuple[int, int], int], *, actor) -> None:
    """Units no longer reserved (shipped or canceled outside the shipment) leave parcels not yet packed."""
    unpacked = [S.PENDING, S.PICKING]
    lock_ids(  # the parcels before their lines (oms.core.locks)
        Shipment.objects.filter(
            status__in=unpacked, pk__in=ShipmentLine.objects.filter(order_line__order=order).values("shipment_id")
        )
    )
    lines = (
        ShipmentLine.objects.select_for_update(of=("self",))
        .filter(order_line__order=order, shipment__status__in=unpacked)
        .select_related("shipment")
        .order_by("-shipment__created_at", "-pk")
    )
    emptied = set()
    for line in lines:
        key = (line.order_line_id, line.shipment.location_id)
        take = min(excess.get(key, 0), line.quantity - line.quantity_picked)
        if take <= 0:
            continue
        excess[key] -= take
        stamp(line, actor=actor, reason="Shipped or canceled outside this parcel")
        if take == line.quantity:
            line.delete()
            emptied.add(line.shipment_id)
        else:
            line.quantity -= take
            line.save(update_fields=["quantity"])
    for shipment in lock_many(Shipment.objects.filter(pk__in=emptied)):
        if not shipment.lines.exists():
            _run(shipment, "cancel", actor=actor, check_permission=False)
            _save(shipment, actor=actor, reason="Nothing left to ship")


def _create_shipment(*, order: Order, location_id: int, actor) -> Shipment:
    location = Location.objects.get(pk=location_id)
    year = timezone.localdate().year
    pickup = order.pickup_location_id == location_id
    method = (order.shipping_method or "").casefold()
    gift = any(isinstance(line.attributes, dict) and line.attributes.get("gift") for line in order.lines.all())
    shipment = Shipment(
        number=format_number("SHP", year, next_unique("shipment", year)),
        order=order,
        location=location,
        kind=ShipmentKind.PICKUP if pickup else ShipmentKind.DELIVERY,
        priority=10 if any(word in method for word in EXPRESS_WORDS) else 100,
        ship_by=_ship_by(location),
        ship_to=dict(order.shipping_address or {}),
        currency=order.currency,
        is_gift=gift,
        is_test=order.is_test,
    )
    stamp(shipment, actor=actor, reason="Planned")
    shipment.save(force_insert=True)
    return shipment
