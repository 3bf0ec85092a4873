"""Parcels under concurrent hands, with real threads on their own PostgreSQL connections."""

import datetime

import pytest
from django.utils import timezone

from fulfillment import services
from fulfillment.choices import ShipmentStatus
from fulfillment.models import Shipment, TrackingUpdate
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from inventory.models import StockItem
from inventory.selectors import stock_ledger_drift
from oms.core.actors import get_system_user
from oms.core.errors import ApplicationError
from oms.core.testing import run_together
from orders.choices import OrderEventType, OrderStatus

pytestmark = pytest.mark.django_db(transaction=True)

ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]


def test_concurrent_waves_never_take_the_same_parcel():
    world = make_two_locations(mug=40)
    for _ in range(12):
        prepared_order(lines=ONE_MUG)

    def create(_i):
        return services.wave_create(location=world.paris, actor=world.warehouse, limit=4)

    results = run_together(4, create)
    waves = [r for r in results if not isinstance(r, Exception)]
    assert all(isinstance(r, ApplicationError) for r in results if isinstance(r, Exception))
    taken = [s.pk for wave in waves for s in wave.shipments.all()]
    assert len(taken) == len(set(taken))  # no parcel in two waves
    assert len(taken) + Shipment.objects.filter(status=ShipmentStatus.PENDING).count() == 12  # none lost
    assert len(waves) >= 1
    assert Shipment.objects.filter(status=ShipmentStatus.PICKING, wave__isnull=True).count() == 0


def test_a_parcel_dispatched_twice_at_once_ships_once():
    world = make_two_locations()
    order = prepared_order(lines=ONE_MUG)
    shipment = Shipment.objects.get(order=order)
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 1})
    services.shipment_pack(shipment=shipment, actor=world.warehouse)

    results = run_together(4, lambda _i: services.shipment_dispatch(shipment=shipment.pk, actor=world.warehouse))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ApplicationError) for r in results if isinstance(r, Exception))
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert order.events.filter(type=OrderEventType.SHIPMENT_RECORDED).count() == 1
    item = StockItem.objects.get(product=world.mug, location=world.paris)
    assert (item.on_hand, item.reserved) == (19, 0)
    assert stock_ledger_drift() == []


def test_the_same_carrier_event_delivered_concurrently_is_stored_and_applied_once():
    world = make_two_locations()
    order = prepared_order(lines=ONE_MUG)
    shipment = Shipment.objects.get(order=order)
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 1})
    services.shipment_pack(shipment=shipment, actor=world.warehouse)
    shipment = services.shipment_dispatch(shipment=shipment, actor=world.warehouse)
    at = (timezone.now() + datetime.timedelta(hours=3)).isoformat()
    payload = {
        "events": [
            {"id": "evt-1", "tracking_number": shipment.tracking_number, "status": "DELIVERED", "occurred_at": at}
        ]
    }
    system = get_system_user()
    results = run_together(
        6, lambda _i: services.carrier_webhook_receive(carrier="sandbox", payload=payload, actor=system)
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(len(r) for r in results) == 1
    assert TrackingUpdate.objects.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.events.filter(type=OrderEventType.DELIVERED).count() == 1
