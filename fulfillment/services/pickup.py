"""Store pickup: the parcel waits on the store's shelf, is handed to the customer, or expires.

A handed-over parcel is shipped and delivered at once and emits `shipment.shipped` (billing
invoices it after commit); one not collected in time gives its units back and cancels them on the
order.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fulfillment.hooks import SHIPMENT_SHIPPED
from fulfillment.models import Shipment
from fulfillment.services._common import (
    S,
    _lines,
    _lock_shipment,
    _notify,
    _publish,
    _quantities_by_order,
    _record_handover,
    _run,
    _save,
    parcel_summary,
)
from orders import services as orders
from orders.choices import CancelReason, OrderEventType
from orders.events import event_record


@transaction.atomic
def shipment_ready_for_pickup(*, shipment, actor, reason: str = "") -> Shipment:
    """On the pickup shelf: the customer is told, and the holding period starts."""
    shipment = _lock_shipment(shipment)
    if shipment.status == S.PICKING:
        _run(shipment, "pack", actor=actor)
    expires = timezone.now() + datetime.timedelta(days=settings.OMS_PICKUP_HOLD_DAYS)
    _run(shipment, "make_ready_for_pickup", actor=actor, expires_at=expires)
    _save(shipment, actor=actor, reason=reason or "Ready for pickup")
    lines = _lines(shipment)
    for order in _quantities_by_order(lines):
        event_record(
            order=order,
            actor=actor,
            type=OrderEventType.READY_FOR_PICKUP,
            payload={"shipment": shipment.number, "store": shipment.location.name, "expires_at": expires.isoformat()},
        )
        _notify(
            order,
            kind="ready_for_pickup",
            group="pickup",
            data={
                "store": shipment.location.name,
                "expires_at": expires.isoformat(),
                "parcels": [parcel_summary(shipment, lines)],
            },
        )
    _publish(shipment, "ready_for_pickup", {"expires_at": expires.isoformat()})
    return shipment


@transaction.atomic
def shipment_hand_over(*, shipment, actor, reason: str = "") -> Shipment:
    """The customer collected the parcel: shipped and delivered at once."""
    shipment = _lock_shipment(shipment)
    _run(shipment, "hand_over", actor=actor)
    _save(shipment, actor=actor, reason=reason or "Picked up")
    _record_handover(shipment, _lines(shipment), actor=actor, delivered=True)
    _publish(shipment, "picked_up")
    SHIPMENT_SHIPPED.emit(shipment=shipment, actor=actor)
    return shipment


@transaction.atomic
def pickup_expire(*, shipment, actor, reason: str = "") -> Shipment:
    """Not collected in time: the units go back to available stock and are canceled on the order."""
    shipment = _lock_shipment(shipment)
    _run(shipment, "expire_pickup", actor=actor)
    _save(shipment, actor=actor, reason=reason or "Pickup expired")
    for order, quantities in _quantities_by_order(_lines(shipment)).items():
        event_record(
            order=order, actor=actor, type=OrderEventType.PICKUP_EXPIRED, payload={"shipment": shipment.number}
        )
        orders.order_cancel_lines(
            order=order,
            actor=actor,
            quantities=quantities,
            reason_code=CancelReason.PICKUP_EXPIRED,
            reason=f"Not collected ({shipment.number})",
            payload={"shipment": shipment.number},
        )
    _publish(shipment, "pickup_expired")
    return shipment


def pickups_remind_and_expire(*, actor, now=None) -> tuple[int, int]:
    """Remind once before the end of the holding period; expire what is past it. (reminded, expired)"""
    now = now or timezone.now()
    reminded = expired = 0
    due = now + datetime.timedelta(days=settings.OMS_PICKUP_REMINDER_DAYS)
    for pk in Shipment.objects.filter(
        status=S.READY_FOR_PICKUP,
        pickup_reminded_at__isnull=True,
        pickup_expires_at__lte=due,
        pickup_expires_at__gt=now,
    ).values_list("pk", flat=True):
        with transaction.atomic():
            shipment = _lock_shipment(pk)
            if shipment.status != S.READY_FOR_PICKUP or shipment.pickup_reminded_at:
                continue
            shipment.pickup_reminded_at = now
            _save(shipment, actor=actor, reason="Pickup reminder")
            for order in _quantities_by_order(_lines(shipment)):
                event_record(
                    order=order, actor=actor, type=OrderEventType.PICKUP_REMINDED, payload={"shipment": shipment.number}
                )
                _notify(
                    order,
                    kind="pickup_reminder",
                    group="pickup",
                    data={"store": shipment.location.name, "expires_at": shipment.pickup_expires_at.isoformat()},
                )
            reminded += 1
    for pk in Shipment.objects.filter(status=S.READY_FOR_PICKUP, pickup_expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        pickup_expire(shipment=pk, actor=actor, reason="Holding period over")
        expired += 1
    return reminded, expired
