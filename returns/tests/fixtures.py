"""A three-line order shipped from two warehouses and delivered, through the real services."""

import datetime

from django.utils import timezone

from billing.services.payments import payments_backfill_for_order
from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import prepared_order
from oms.core.actors import get_system_user


def ship(shipment, actor):
    fulfillment.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    fulfillment.shipment_pack(shipment=shipment, actor=actor)
    return fulfillment.shipment_dispatch(shipment=shipment, actor=actor)


def deliver(shipment, *, at=None):
    at = at or timezone.now()
    payload = {
        "events": [
            {
                "id": f"{shipment.tracking_number}-DELIVERED",
                "tracking_number": shipment.tracking_number,
                "status": "DELIVERED",
                "occurred_at": at.isoformat(),
            }
        ]
    }
    fulfillment.carrier_webhook_receive(carrier="sandbox", payload=payload, actor=get_system_user())


def delivered_order(world, *, deliver_parcels=True, **overrides):
    """MUG ×2 and BOOK ×1 from Paris, TEE ×1 from Lyon: shipped, and delivered (just now) by default."""
    order = prepared_order(**overrides)
    for shipment in Shipment.objects.filter(order=order).order_by("location__priority"):
        shipment = ship(shipment, world.warehouse)
        if deliver_parcels:
            deliver(shipment, at=timezone.now() - datetime.timedelta(minutes=1))
    _backfill_payment(order)
    order.refresh_from_db()
    return order


def _backfill_payment(order) -> None:
    # Billing refunds need a Payment row; an order reached without one gets it from its payment fields.
    payments_backfill_for_order(order=order, actor=get_system_user())


def lines_by_sku(order):
    return {line.sku: line for line in order.lines.all()}
