"""Dispatch and tracking: the parcel is handed to its carrier, and the carrier's events move it on.

A parcel that leaves counts as shipped on its orders (`orders.services.order_record_shipment`),
the customer is told, and `shipment.shipped` is emitted (billing invoices it after commit). Carrier
events are stored once per (carrier, event id) and never move a parcel back.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import F

from fulfillment.carriers.base import TrackingEvent
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.registry import get_carrier
from fulfillment.choices import ShipmentKind, TrackingSource
from fulfillment.hooks import SHIPMENT_SHIPPED
from fulfillment.models import Shipment, TrackingUpdate
from fulfillment.selectors import shipments_visible
from fulfillment.services._common import (
    CONDITION_MESSAGES,
    S,
    ShipmentTransitionRefused,
    _lines,
    _lock_shipment,
    _notify,
    _order_ids,
    _publish,
    _quantities_by_order,
    _record_handover,
    _resolve,
    _run,
    _save,
    parcel_summary,
)
from fulfillment.services.packing import shipment_create_label
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.permissions import require_perm
from orders import services as orders
from orders.choices import OrderEventType, OrderStatus
from orders.events import event_record
from orders.locks import orders_lock
from orders.selectors import channel_scope

logger = logging.getLogger(__name__)


@transaction.atomic
def shipment_dispatch(
    *, shipment, actor, carrier: str = "", service: str = "", tracking_number: str = "", tracking_url: str = ""
) -> Shipment:
    """Hand the parcel to the carrier: stock leaves, the orders count it shipped, the customer is told.

    A 3PL that labels parcels itself sends its carrier and tracking number; otherwise a label is
    made here (once)."""
    shipment = _lock_shipment(shipment)
    require_perm(actor, "fulfillment.dispatch_shipment", "dispatch shipments")
    if shipment.kind != ShipmentKind.DELIVERY:
        raise ShipmentTransitionRefused(CONDITION_MESSAGES["_is_delivery"], code="transition_condition_failed")
    if tracking_number:
        if not carrier and not shipment.carrier:
            raise ValidationError("Which carrier?", fields={"carrier": ["Required with a tracking number."]})
        if shipment.tracking_number and shipment.tracking_number != tracking_number:
            raise ConflictError(
                f"Shipment {shipment.number} already has tracking number {shipment.tracking_number}.",
                code="tracking_number_conflict",
            )
        adapter_code = carrier or shipment.carrier
        shipment.carrier = adapter_code[:32]
        shipment.service = (service or shipment.service)[:32]
        shipment.tracking_number = tracking_number[:64]
        if not tracking_url:
            try:
                tracking_url = get_carrier(adapter_code).tracking_url(tracking_number)
            except ValidationError:
                tracking_url = ""
        shipment.tracking_url = tracking_url
    elif not shipment.tracking_number and shipment.status == S.PACKED and not shipment.is_test:
        shipment_create_label(shipment=shipment, actor=actor, carrier=carrier, service=service)
        shipment.refresh_from_db()
    _run(shipment, "dispatch", actor=actor)
    _save(shipment, actor=actor, reason=f"Handed to {shipment.carrier or 'carrier'}")
    lines = _lines(shipment)
    _record_handover(shipment, lines, actor=actor)
    summary = parcel_summary(shipment, lines)
    for order in _quantities_by_order(lines):
        _notify(order, kind="parcels_dispatched", group="dispatch", data={"parcels": [summary]}, merge=("parcels",))
    _publish(shipment, "dispatched", {"items": summary["items"]})
    SHIPMENT_SHIPPED.emit(shipment=shipment, actor=actor)
    return shipment


@transaction.atomic
def shipments_dispatch(*, shipments, actor) -> list[Shipment]:
    """Dispatch several parcels at once (one transaction: one message per order, not per parcel)."""
    ids = sorted(_resolve(s) for s in shipments)
    orders_lock(_order_ids(ids))  # every parcel's orders first, in id order (oms.core.locks)
    return [shipment_dispatch(shipment=pk, actor=actor) for pk in ids]


# --- tracking -----------------------------------------------------------------------------------

# How far along each tracking status is: an older or lesser event never moves a parcel back.
RANK = {
    TrackingStatus.LABEL_CREATED: 0,
    TrackingStatus.IN_TRANSIT: 1,
    TrackingStatus.OUT_FOR_DELIVERY: 2,
    TrackingStatus.EXCEPTION: 2,
    TrackingStatus.DAMAGED: 3,
    TrackingStatus.LOST: 3,
    TrackingStatus.RETURNED_TO_SENDER: 4,
    TrackingStatus.DELIVERED: 5,
}
TRANSITIONS = {
    TrackingStatus.IN_TRANSIT: "mark_in_transit",
    TrackingStatus.OUT_FOR_DELIVERY: "mark_in_transit",
    TrackingStatus.DELIVERED: "mark_delivered",
    TrackingStatus.LOST: "mark_lost",
    TrackingStatus.DAMAGED: "mark_damaged",
    TrackingStatus.RETURNED_TO_SENDER: "mark_returned_to_sender",
}


@transaction.atomic
def tracking_ingest(
    *, carrier: str, events: list[TrackingEvent], actor, source: str = TrackingSource.WEBHOOK
) -> list[TrackingUpdate]:
    """Store each carrier event once per (carrier, event id), then apply the new ones in time order.

    A replay stores nothing and changes nothing. An event for an unknown tracking number is kept
    (unmatched) for support to look at. Returns the events stored now."""
    require_perm(actor, "fulfillment.track_shipment", "record tracking updates")
    stored = []
    for event in sorted(events, key=lambda e: e.occurred_at):
        try:
            with transaction.atomic():
                update = TrackingUpdate.objects.create(
                    carrier=carrier,
                    carrier_event_id=event.carrier_event_id[:128],
                    tracking_number=event.tracking_number[:64],
                    carrier_status_code=event.carrier_status_code[:64],
                    status=event.status,
                    occurred_at=event.occurred_at,
                    description=event.description,
                    location=event.location[:120],
                    source=source,
                )
        except IntegrityError:
            continue  # already stored: a replay
        stored.append(update)
    for update in stored:
        shipment_id = (
            Shipment.objects.filter(carrier=carrier, tracking_number=update.tracking_number)
            .values_list("pk", flat=True)
            .first()
        )
        if shipment_id is None:
            logger.warning("tracking for an unknown parcel", extra={"tracking_number": update.tracking_number})
            continue
        _apply_tracking(shipment_id, update, actor=actor)
    return stored


def _apply_tracking(shipment_id: int, update: TrackingUpdate, *, actor) -> None:
    shipment = _lock_shipment(shipment_id)
    update.shipment = shipment
    current = RANK.get(shipment.tracking_status, 0) if shipment.tracking_status else 0
    newer = shipment.tracking_updated_at is None or update.occurred_at >= shipment.tracking_updated_at
    name = TRANSITIONS.get(update.status)
    moved = False
    if RANK[update.status] >= current or update.status == TrackingStatus.DELIVERED:
        if name and getattr(shipment, name)._django_fsm.has_transition(shipment.status):
            kwargs = {"at": update.occurred_at} if name == "mark_delivered" else {}
            _run(shipment, name, actor=actor, check_permission=False, **kwargs)
            moved = True
        if newer or moved:
            shipment.tracking_status = update.status
            shipment.tracking_updated_at = max(update.occurred_at, shipment.tracking_updated_at or update.occurred_at)
            if update.status in (TrackingStatus.EXCEPTION, TrackingStatus.LOST, TrackingStatus.DAMAGED):
                shipment.exception_note = update.description or update.get_status_display()
            _save(shipment, actor=actor, reason=f"Carrier: {update.carrier_status_code}")
    update.applied = moved
    update.save(update_fields=["shipment", "applied"])
    if not moved:
        return
    lines = _lines(shipment)
    if shipment.status == S.DELIVERED:
        for order, quantities in _quantities_by_order(lines).items():
            if order.status in (OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED):
                orders.order_mark_delivered(
                    order=order, actor=actor, quantities=quantities, reason=f"Delivered ({shipment.number})"
                )
        _publish(shipment, "delivered")
        return
    kind = (
        OrderEventType.PARCEL_EXCEPTION
        if shipment.status in (S.LOST, S.DAMAGED, S.RETURNED_TO_SENDER)
        else OrderEventType.PARCEL_UPDATED
    )
    for order in _quantities_by_order(lines):
        event_record(
            order=order,
            actor=actor,
            type=kind,
            reason=update.description,
            payload={
                "shipment": shipment.number,
                "status": shipment.status,
                "carrier_status": update.carrier_status_code,
            },
        )
    _publish(shipment, shipment.status)


def carrier_webhook_receive(*, carrier: str, payload: dict, actor) -> list[TrackingUpdate]:
    """A carrier's batch of events. From an API client, a batch about a parcel it may not reach
    (another channel's) is refused whole, before anything is stored: 404, as for a parcel that does not
    exist."""
    adapter = get_carrier(carrier)
    events = adapter.parse_webhook(payload)
    numbers = {event.tracking_number[:64] for event in events}
    parcels = Shipment.objects.filter(carrier=adapter.code, tracking_number__in=numbers)
    if channel_scope(actor) is not None and parcels.exclude(pk__in=shipments_visible(actor).values("pk")).exists():
        raise NotFoundError("No such parcel.", code="shipment_not_found")
    return tracking_ingest(carrier=adapter.code, events=events, actor=actor)


def tracking_poll(*, actor, limit: int = 500) -> int:
    """Ask carriers that can be polled about parcels still on their way. Returns events stored."""
    stored = 0
    parcels = (
        Shipment.objects.filter(status__in=[S.SHIPPED, S.IN_TRANSIT], is_test=False)
        .exclude(tracking_number="")
        .order_by(F("tracking_updated_at").asc(nulls_first=True))[:limit]
    )
    for shipment in parcels:
        try:
            adapter = get_carrier(shipment.carrier)
        except ValidationError:
            continue
        fetch = getattr(adapter, "fetch_tracking", None)
        if fetch is None:
            continue
        events = fetch(shipment.tracking_number, shipped_at=shipment.shipped_at)
        if events:
            stored += len(tracking_ingest(carrier=adapter.code, events=events, actor=actor, source=TrackingSource.POLL))
    return stored
