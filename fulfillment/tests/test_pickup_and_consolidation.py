"""Store pickup (ready notice, holding period, reminder, expiry back to stock), ship-from-store,
consolidation of successive orders, waves, cancellation and shipping outside a parcel."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from fulfillment import services
from fulfillment.choices import ShipmentKind, ShipmentStatus
from fulfillment.models import ConsolidationRule, Shipment, Wave
from fulfillment.tests.fixtures import prepared_order
from integrations.models import Notification
from inventory.models import Location, StockItem
from inventory.services import stock_receive
from oms.core.actors import get_system_user
from oms.core.errors import ValidationError
from orders import services as orders
from orders.choices import FulfillmentStatus, OrderEventType, OrderStatus
from orders.tests.factories import order_payload

pytestmark = pytest.mark.django_db

ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]


@pytest.fixture
def store(two_locations):
    store = Location.objects.create(
        code="lyon-store", name="Lyon store", kind="store", country="FR", city="Lyon", store_pickup=True, priority=5
    )
    stock_receive(product=two_locations.mug, location=store, quantity=3, actor=get_system_user())
    return store


def stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


def test_a_pickup_order_is_sourced_from_its_store_and_collected(two_locations, store):
    world = two_locations
    order = prepared_order(lines=ONE_MUG, shipping={"method": "click & collect", "pickup_location": "lyon-store"})
    shipment = Shipment.objects.get(order=order)
    assert (shipment.kind, shipment.location) == (ShipmentKind.PICKUP, store)
    assert stock(world.mug, store) == (3, 1)  # the store's own stock, not the warehouse's
    # A store associate picks from the store's stock and puts the parcel on the pickup shelf.
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 1})
    services.shipment_pack(shipment=shipment, actor=world.warehouse)
    with pytest.raises(services.ShipmentTransitionRefused, match="store pickup is handed to the customer"):
        services.shipment_dispatch(shipment=shipment, actor=world.warehouse)
    services.shipment_ready_for_pickup(shipment=shipment, actor=world.warehouse)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.READY_FOR_PICKUP
    assert shipment.pickup_expires_at.date() == (timezone.now() + datetime.timedelta(days=7)).date()
    notice = Notification.objects.get(order_number=order.number, kind="ready_for_pickup")
    assert notice.data["store"] == "Lyon store"

    services.shipment_hand_over(shipment=shipment, actor=world.warehouse)
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == (OrderStatus.DELIVERED, FulfillmentStatus.DELIVERED)
    assert stock(world.mug, store) == (2, 0)


def test_an_uncollected_pickup_is_reminded_then_expires_back_to_stock(two_locations, store):
    world = two_locations
    order = prepared_order(lines=ONE_MUG, shipping={"method": "click & collect", "pickup_location": "lyon-store"})
    shipment = Shipment.objects.get(order=order)
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 1})
    services.shipment_ready_for_pickup(shipment=shipment, actor=world.warehouse)
    system = get_system_user()
    assert services.pickups_remind_and_expire(actor=system) == (0, 0)  # too early for anything

    with time_machine.travel(timezone.now() + datetime.timedelta(days=5, hours=1), tick=False):
        assert services.pickups_remind_and_expire(actor=system) == (1, 0)
        assert services.pickups_remind_and_expire(actor=system) == (0, 0)  # reminded once
    assert Notification.objects.filter(order_number=order.number, kind="pickup_reminder").exists()
    assert order.events.filter(type=OrderEventType.PICKUP_REMINDED).count() == 1

    with time_machine.travel(timezone.now() + datetime.timedelta(days=7, hours=1), tick=False):
        assert services.pickups_remind_and_expire(actor=system) == (0, 1)
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.PICKUP_EXPIRED
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELED, "pickup_expired")
    assert stock(world.mug, store) == (3, 0)  # back on sale
    canceled = order.events.get(type=OrderEventType.LINES_CANCELED)
    assert canceled.payload["refund_due"] == "12.00"


def test_an_unknown_pickup_store_is_refused(two_locations):
    with pytest.raises(ValidationError) as error:
        orders.order_create(
            actor=get_system_user(), **order_payload(shipping={"method": "collect", "pickup_location": "paris-wh"})
        )
    assert "shipping.pickup_location" in error.value.extra["fields"]


def test_ship_from_store(two_locations, store):
    """A store that ships from its stock competes with the warehouses in sourcing."""
    world = two_locations
    Location.objects.filter(pk=store.pk).update(ships_from_store=True)
    order = prepared_order(lines=ONE_MUG)
    shipment = Shipment.objects.get(order=order)
    assert (shipment.kind, shipment.location) == (ShipmentKind.DELIVERY, store)
    assert stock(world.mug, store) == (3, 1)


def test_successive_orders_of_one_customer_to_one_address_ship_in_one_parcel(two_locations):
    world = two_locations
    ConsolidationRule.objects.create(window_hours=48)
    customer = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    first = prepared_order(customer=customer, lines=ONE_MUG)
    second = prepared_order(
        customer=customer,
        lines=[{"sku": "BOOK-1", "name": "Book", "quantity": 2, "unit_price": "10.00", "tax_rate": "0.055"}],
    )
    parcel = Shipment.objects.get(order=first)
    assert not Shipment.objects.filter(order=second).exists()
    assert sorted((line.order_line.order.number, line.order_line.sku) for line in parcel.lines.all()) == [
        (first.number, "MUG-1"),
        (second.number, "BOOK-1"),
    ]
    # Recorded on both orders.
    assert first.events.get(type=OrderEventType.CONSOLIDATED).payload["with_order"] == second.number
    assert second.events.get(type=OrderEventType.CONSOLIDATED).payload["with_order"] == first.number

    services.shipment_confirm_picks(
        shipment=parcel, actor=world.warehouse, picked={line.pk: line.quantity for line in parcel.lines.all()}
    )
    services.shipment_pack(shipment=parcel, actor=world.warehouse)
    services.shipment_dispatch(shipment=parcel, actor=world.warehouse)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == OrderStatus.SHIPPED
    assert stock(world.book, world.paris) == (18, 0)


def test_no_consolidation_without_a_rule_or_to_another_address(two_locations):
    customer = {"email": "bob@example.com"}
    first = prepared_order(customer=customer, lines=ONE_MUG)
    second = prepared_order(customer=customer, lines=ONE_MUG)
    assert Shipment.objects.filter(order__in=[first, second]).count() == 2
    ConsolidationRule.objects.create(window_hours=48)
    other = {"name": "Bob", "line1": "9 quai Voltaire", "postal_code": "75007", "city": "Paris", "country": "FR"}
    third = prepared_order(customer=customer, lines=ONE_MUG, shipping_address=other)
    assert Shipment.objects.filter(order=third).count() == 1


def test_a_wave_takes_pending_parcels_of_one_location_by_priority_and_skips_held_orders(two_locations):
    world = two_locations
    normal = prepared_order(lines=ONE_MUG)
    express = prepared_order(lines=ONE_MUG, shipping={"method": "express", "price": "9.90", "tax_rate": "0.2"})
    held = prepared_order(lines=ONE_MUG)
    orders.order_hold(order=held, actor=get_system_user(), reason="manual", note="Customer called")
    wave = services.wave_create(location=world.paris, actor=world.warehouse, limit=1)
    assert [s.order for s in wave.shipments.all()] == [express]  # express first
    wave2 = services.wave_create(location=world.paris, actor=world.warehouse)
    assert [s.order for s in wave2.shipments.all()] == [normal]
    assert set(wave2.shipments.values_list("status", flat=True)) == {ShipmentStatus.PICKING}
    with pytest.raises(ValidationError, match="No pending shipment"):
        services.wave_create(location=world.paris, actor=world.warehouse)
    assert Wave.objects.count() == 2


def test_canceling_the_order_cancels_its_open_parcels_and_shipping_outside_a_parcel_trims_them(two_locations):
    world = two_locations
    order = prepared_order()
    orders.order_cancel(order=order, actor=get_system_user(), reason_code="customer_request")
    assert set(Shipment.objects.filter(order=order).values_list("status", flat=True)) == {ShipmentStatus.CANCELED}

    other = prepared_order()
    tee = other.lines.get(sku="TEE-1")
    orders.order_record_shipment(order=other, actor=get_system_user(), quantities={tee.pk: 1})
    lyon = Shipment.objects.get(order=other, location=world.lyon)
    assert lyon.status == ShipmentStatus.CANCELED  # its only line went out another way
    assert Shipment.objects.get(order=other, location=world.paris).status == ShipmentStatus.PENDING
