"""Cancellation: a parcel not yet handed over is canceled by hand, or with its canceled order."""

from django.db import transaction

from fulfillment.carriers.registry import get_carrier
from fulfillment.models import Shipment
from fulfillment.services._common import S, _lock_shipment, _publish, _run, _save
from oms.core.errors import ValidationError
from oms.core.locks import lock_many
from orders.models import Order


@transaction.atomic
def shipment_cancel(*, shipment, actor, reason: str) -> Shipment:
    """Cancel a parcel not yet handed over; its units stay reserved for the order (re-planned)."""
    if not (reason or "").strip():
        raise ValidationError("Say why.", fields={"reason": ["This field is required."]})
    shipment = _lock_shipment(shipment)
    _run(shipment, "cancel", actor=actor)
    if shipment.tracking_number and shipment.label:
        get_carrier(shipment.carrier).cancel_label(shipment.tracking_number)
    _save(shipment, actor=actor, reason=reason)
    _publish(shipment, "canceled", {"reason": reason})
    return shipment


def shipments_cancel_for_order(*, order: Order, actor, reason: str) -> int:
    """The order was canceled (hook `order.canceled`, under the order lock): its open parcels go too."""
    count = 0
    for shipment in lock_many(
        Shipment.objects.filter(order=order, status__in=[S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED])
    ):
        _run(shipment, "cancel", actor=actor, check_permission=False)
        _save(shipment, actor=actor, reason=reason)
        count += 1
    return count
