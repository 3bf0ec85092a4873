"""Must show: a 3-line order sourced from two locations ships as two parcels with two tracking
numbers; the customer view shows both and what remains; the order goes partially shipped →
shipped → delivered from carrier events; replaying a carrier event changes nothing."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from fulfillment import services
from fulfillment.choices import ShipmentStatus
from fulfillment.models import Shipment, TrackingUpdate
from fulfillment.selectors import order_parcels
from fulfillment.tests.fixtures import prepared_order
from integrations.models import Notification
from inventory.models import StockItem
from oms.core.actors import get_system_user
from orders.choices import FulfillmentStatus, OrderEventType, OrderStatus

pytestmark = pytest.mark.django_db


def _ship(shipment, actor):
    services.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    services.shipment_pack(shipment=shipment, actor=actor)
    return services.shipment_dispatch(shipment=shipment, actor=actor)


def _webhook(tracking_number, *events):
    return {
        "events": [
            {"id": f"{tracking_number}-{code}", "tracking_number": tracking_number, "status": code, "occurred_at": at}
            for code, at in events
        ]
    }


def test_three_lines_from_two_locations_ship_as_two_parcels_and_deliver_from_carrier_events(two_locations):
    world = two_locations
    actor = world.warehouse
    order = prepared_order()
    shipments = list(Shipment.objects.filter(order=order).order_by("location__priority"))
    assert [(s.location.code, s.status) for s in shipments] == [("paris-wh", "pending"), ("lyon-wh", "pending")]
    paris, lyon = shipments
    assert sorted((line.order_line.sku, line.quantity) for line in paris.lines.all()) == [("BOOK-1", 1), ("MUG-1", 2)]
    assert [(line.order_line.sku, line.quantity) for line in lyon.lines.all()] == [("TEE-1", 1)]
    # Customs data and declared value come from the catalogue and the prices paid.
    mug_line = paris.lines.get(order_line__sku="MUG-1")
    assert (mug_line.hs_code, mug_line.origin_country, str(mug_line.customs_value)) == ("691200", "PT", "12.0000")
    assert paris.declared_value == mug_line.customs_value * 2 + paris.lines.get(order_line__sku="BOOK-1").customs_value
    assert paris.weight_grams == 2 * 350 + 500

    # The first parcel leaves Paris.
    paris = _ship(paris, actor)
    order.refresh_from_db()
    assert paris.status == ShipmentStatus.SHIPPED and paris.tracking_number.startswith("SBX")
    assert paris.label.name.endswith(".pdf")
    assert (order.status, order.fulfillment_status) == (
        OrderStatus.PARTIALLY_SHIPPED,
        FulfillmentStatus.PARTIALLY_SHIPPED,
    )
    mug_stock = StockItem.objects.get(product=world.mug, location=world.paris)
    assert (mug_stock.on_hand, mug_stock.reserved) == (18, 0)

    view = order_parcels(order)
    assert [(p.number, p.tracking_number != "") for p in view.parcels] == [(paris.number, True), (lyon.number, False)]
    assert view.remaining == []  # the T-shirt is in the Lyon parcel, being prepared
    lyon_parcel = next(p for p in view.parcels if p.number == lyon.number)
    assert str(lyon_parcel.label) == "Being prepared" and lyon_parcel.items == [
        {"sku": "TEE-1", "name": "T-shirt", "quantity": 1}
    ]

    # The second parcel leaves Lyon: the order is shipped, with two different tracking numbers.
    lyon = _ship(lyon, actor)
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert paris.tracking_number != lyon.tracking_number
    tee_stock = StockItem.objects.get(product=world.tee, location=world.lyon)
    assert (tee_stock.on_hand, tee_stock.reserved) == (19, 0)
    view = order_parcels(order)
    assert {p.tracking_number for p in view.parcels} == {paris.tracking_number, lyon.tracking_number}
    assert view.remaining == []

    # Carrier events: "SHIPPED" on the carrier side is in transit, not delivered.
    system = get_system_user()
    now = timezone.now()
    at = lambda minutes: (now + datetime.timedelta(minutes=minutes)).isoformat()  # noqa: E731
    services.carrier_webhook_receive(
        carrier="sandbox", payload=_webhook(paris.tracking_number, ("SHIPPED", at(1))), actor=system
    )
    paris.refresh_from_db()
    order.refresh_from_db()
    assert paris.status == ShipmentStatus.IN_TRANSIT and order.status == OrderStatus.SHIPPED

    delivered_paris = _webhook(paris.tracking_number, ("SHIPPED", at(1)), ("DELIVERED", at(60)))
    services.carrier_webhook_receive(carrier="sandbox", payload=delivered_paris, actor=system)
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == (OrderStatus.SHIPPED, FulfillmentStatus.PARTIALLY_DELIVERED)

    services.carrier_webhook_receive(
        carrier="sandbox", payload=_webhook(lyon.tracking_number, ("DELIVERED", at(90))), actor=system
    )
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == (OrderStatus.DELIVERED, FulfillmentStatus.DELIVERED)

    # Replaying every event changes nothing: no new rows, no new order events, same states.
    counts = (TrackingUpdate.objects.count(), order.events.count(), order.history.count())
    stored = services.carrier_webhook_receive(carrier="sandbox", payload=delivered_paris, actor=system)
    stored += services.carrier_webhook_receive(
        carrier="sandbox", payload=_webhook(lyon.tracking_number, ("DELIVERED", at(90))), actor=system
    )
    order.refresh_from_db()
    assert stored == []
    assert (TrackingUpdate.objects.count(), order.events.count(), order.history.count()) == counts
    assert order.status == OrderStatus.DELIVERED

    types = list(order.events.values_list("type", flat=True))
    assert types.count(OrderEventType.SHIPMENT_RECORDED) == 2 and types.count(OrderEventType.SHIPMENT_PLANNED) == 2
    # Both hand-overs fell in one grouping window (nothing was sent in between): one message, two parcels.
    note = Notification.objects.get(order_number=order.number, kind="parcels_dispatched")
    assert {p["tracking_number"] for p in note.data["parcels"]} == {paris.tracking_number, lyon.tracking_number}


def test_parcels_dispatched_together_are_one_message(two_locations):
    actor = two_locations.warehouse
    order = prepared_order()
    shipments = list(Shipment.objects.filter(order=order))
    for shipment in shipments:
        services.shipment_confirm_picks(
            shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
        )
        services.shipment_pack(shipment=shipment, actor=actor)
    services.shipments_dispatch(shipments=shipments, actor=actor)
    note = Notification.objects.get(order_number=order.number, kind="parcels_dispatched")
    assert {p["shipment"] for p in note.data["parcels"]} == {s.number for s in shipments}
    assert len({p["tracking_number"] for p in note.data["parcels"]}) == 2
    assert mail.outbox == [] or len(mail.outbox) <= 1


def test_out_of_order_events_never_move_a_parcel_back(two_locations):
    actor = two_locations.warehouse
    order = prepared_order()
    shipment = Shipment.objects.get(order=order, location=two_locations.lyon)
    shipment = _ship(shipment, actor)
    now = timezone.now()
    system = get_system_user()
    services.carrier_webhook_receive(
        carrier="sandbox",
        payload=_webhook(shipment.tracking_number, ("DELIVERED", (now + datetime.timedelta(hours=5)).isoformat())),
        actor=system,
    )
    services.carrier_webhook_receive(
        carrier="sandbox",
        payload=_webhook(shipment.tracking_number, ("IN_TRANSIT", (now + datetime.timedelta(hours=1)).isoformat())),
        actor=system,
    )
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert TrackingUpdate.objects.filter(shipment=shipment).count() == 2
    assert TrackingUpdate.objects.get(shipment=shipment, status="in_transit").applied is False


def test_polling_the_sandbox_delivers_a_parcel_once(two_locations):
    actor = two_locations.warehouse
    order = prepared_order()
    shipment = _ship(Shipment.objects.get(order=order, location=two_locations.lyon), actor)
    Shipment.objects.filter(pk=shipment.pk).update(shipped_at=timezone.now() - datetime.timedelta(days=2))
    system = get_system_user()
    assert services.tracking_poll(actor=system) == 4
    assert services.tracking_poll(actor=system) == 0
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert order.lines.get(sku="TEE-1").quantity_delivered == 1
    assert TrackingUpdate.objects.filter(shipment=shipment, source="poll").count() == 4


def test_nothing_ships_that_was_not_picked(two_locations):
    actor = two_locations.warehouse
    order = prepared_order()
    shipment = Shipment.objects.get(order=order, location=two_locations.paris)
    services.shipment_start_picking(shipment=shipment, actor=actor)
    line = shipment.lines.get(order_line__sku="MUG-1")
    services.shipment_confirm_picks(shipment=shipment, actor=actor, picked={line.pk: 1}, final=False)
    with pytest.raises(services.ShipmentTransitionRefused, match="nothing ships that was not picked"):
        services.shipment_pack(shipment=shipment, actor=actor)
    with pytest.raises(services.ShipmentTransitionRefused):
        services.shipment_dispatch(shipment=shipment, actor=actor)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PREPARATION
