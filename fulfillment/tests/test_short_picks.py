"""Must show: a short pick handled each of the three ways (substitute, delay, cancel the line),
with stock and events correct. Plus the rules around them."""

import datetime

import pytest
from django.utils import timezone

from fulfillment import services
from fulfillment.choices import ShipmentStatus, ShortPickResolution
from fulfillment.models import Shipment, ShortPick
from fulfillment.selectors import order_parcels
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from integrations.models import Notification
from inventory.models import Location, StockItem, StockMovement
from inventory.services import stock_receive
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, PermissionDeniedError, ValidationError
from orders.choices import OrderEventType, OrderStatus
from orders.services import order_reallocate

pytestmark = pytest.mark.django_db


def stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


def short_on_mugs(world, *, found: int = 1):
    """Paris parcel: 2 mugs wanted, `found` in the bin; the book is there."""
    order = prepared_order()
    shipment = Shipment.objects.get(order=order, location=world.paris)
    services.shipment_start_picking(shipment=shipment, actor=world.warehouse)
    mug = shipment.lines.get(order_line__sku="MUG-1")
    book = shipment.lines.get(order_line__sku="BOOK-1")
    services.shipment_confirm_picks(
        shipment=shipment, actor=world.warehouse, picked={mug.pk: found, book.pk: 1}, note="Bin A-10-1 empty"
    )
    shipment.refresh_from_db()
    return order, shipment, ShortPick.objects.get(shipment=shipment)


def test_reporting_a_short_pick_opens_an_exception_releases_and_writes_off_the_missing_units(two_locations):
    world = two_locations
    assert stock(world.mug, world.paris) == (20, 0)
    order, shipment, short = short_on_mugs(world)
    assert shipment.status == ShipmentStatus.SHORT_PICKED
    assert (short.quantity, short.is_open, short.note) == (1, True, "Bin A-10-1 empty")
    # Only what is in hand stays in the parcel.
    assert shipment.lines.get(order_line__sku="MUG-1").quantity == 1
    # 2 were reserved: 1 released and written off (not in the bin), 1 still reserved for the parcel.
    assert stock(world.mug, world.paris) == (19, 1)
    assert StockMovement.objects.filter(reason="short_pick", reference=shipment.number).get().on_hand_delta == -1
    event = order.events.get(type=OrderEventType.SHORT_PICKED)
    assert event.payload | {"missing": 1, "stock_released": 1, "stock_written_off": 1} == event.payload
    # Nothing is packed while the exception is open.
    with pytest.raises(services.ShipmentTransitionRefused):
        services.shipment_pack(shipment=shipment, actor=world.warehouse)


def test_substitute_with_consent_ships_another_sku_at_the_price_paid(two_locations):
    world = two_locations
    order, shipment, short = short_on_mugs(world)
    services.short_pick_substitute(
        short_pick=short,
        actor=world.support,
        product=world.cup,
        consent_channel="phone",
        consent_note="Customer agreed on the phone to a cup instead of the second mug.",
    )
    short.refresh_from_db()
    shipment.refresh_from_db()
    assert short.resolution == ShortPickResolution.SUBSTITUTE and short.consent_channel == "phone"
    assert shipment.status == ShipmentStatus.PICKING
    cup_line = order.lines.get(sku="CUP-1")
    mug_line = order.lines.get(sku="MUG-1")
    assert (cup_line.quantity, cup_line.unit_price, cup_line.substitute_for_id) == (1, mug_line.unit_price, mug_line.pk)
    assert mug_line.quantity_canceled == 1
    assert stock(world.cup, world.paris) == (20, 1)  # reserved at the parcel's location
    event = order.events.get(type=OrderEventType.LINE_SUBSTITUTED)
    assert event.payload["refund_due"] == "0" and event.payload["consent"]["channel"] == "phone"

    # Pick the cup, pack, ship: stock leaves for what shipped, nothing more.
    services.shipment_confirm_picks(
        shipment=shipment, actor=world.warehouse, picked={shipment.lines.get(order_line=cup_line).pk: 1}
    )
    services.shipment_pack(shipment=shipment, actor=world.warehouse)
    services.shipment_dispatch(shipment=shipment, actor=world.warehouse)
    assert stock(world.cup, world.paris) == (19, 0)
    assert stock(world.mug, world.paris) == (18, 0)  # 1 shipped, 1 written off
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED  # the Lyon T-shirt is still to come


def test_substitute_needs_consent_and_free_stock_here(two_locations):
    world = two_locations
    order, shipment, short = short_on_mugs(world)
    with pytest.raises(ValidationError) as error:
        services.short_pick_substitute(
            short_pick=short, actor=world.support, product=world.cup, consent_channel="phone", consent_note=" "
        )
    assert "consent_note" in error.value.extra["fields"]
    with pytest.raises(ConflictError, match="has not 1 unit"):
        services.short_pick_substitute(  # the T-shirt is only in Lyon
            short_pick=short, actor=world.support, product=world.tee, consent_channel="email", consent_note="ok"
        )
    # Both refusals rolled back whole: no line added, nothing canceled, the exception still open.
    assert not order.lines.filter(sku="TEE-1", substitute_for__isnull=False).exists()
    assert order.lines.get(sku="MUG-1").quantity_canceled == 0
    short.refresh_from_db()
    assert short.is_open
    with pytest.raises(PermissionDeniedError):
        services.short_pick_substitute(
            short_pick=short, actor=world.warehouse, product=world.cup, consent_channel="email", consent_note="ok"
        )


def test_delay_keeps_the_units_open_with_a_new_promise_and_tells_the_customer(db):
    world = make_two_locations(mug=2)  # the system believes Paris has exactly the two mugs
    order, shipment, short = short_on_mugs(world)
    promised = timezone.now() + datetime.timedelta(days=10)
    services.short_pick_delay(short_pick=short, actor=world.support, promised_at=promised)
    short.refresh_from_db()
    shipment.refresh_from_db()
    assert short.resolution == ShortPickResolution.DELAY
    assert shipment.status == ShipmentStatus.PICKING  # the rest of the parcel goes on
    mug_line = order.lines.get(sku="MUG-1")
    assert (mug_line.quantity_canceled, mug_line.promised_at) == (0, promised)
    # No location has a free mug: nothing new reserved, the unit waits (no hold blocks the other parcels).
    assert stock(world.mug, world.paris) == (1, 1)
    order.refresh_from_db()
    assert not order.holds.filter(released_at__isnull=True).exists()
    assert order.events.filter(type=OrderEventType.DELIVERY_DELAYED).count() == 1
    notice = Notification.objects.get(order_number=order.number, kind="delivery_delayed")
    assert notice.data["items"] == [{"sku": "MUG-1", "name": "Mug", "quantity": 1}]
    # The customer view says what is still to come, and when.
    remaining = order_parcels(order).remaining
    assert [(item["sku"], item["quantity"], item["promised_at"]) for item in remaining] == [("MUG-1", 1, promised)]

    # Ship the rest of the parcel; the order stays partially shipped until the mug comes.
    services.shipment_pack(shipment=shipment, actor=world.warehouse)
    services.shipment_dispatch(shipment=shipment, actor=world.warehouse)
    lyon = Shipment.objects.get(order=order, location=world.lyon)
    services.shipment_confirm_picks(shipment=lyon, actor=world.warehouse, picked={lyon.lines.get().pk: 1})
    services.shipment_pack(shipment=lyon, actor=world.warehouse)
    services.shipment_dispatch(shipment=lyon, actor=world.warehouse)
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED

    # Mugs arrive in Lyon: re-sourcing reserves there and plans a third parcel.
    stock_receive(product=world.mug, location=world.lyon, quantity=5, actor=get_system_user())

    order_reallocate(order=order, actor=get_system_user())
    third = Shipment.objects.get(order=order, location=world.lyon, status=ShipmentStatus.PENDING)
    assert [(line.order_line.sku, line.quantity) for line in third.lines.all()] == [("MUG-1", 1)]


def test_cancel_the_line_releases_stock_and_records_the_refund_due(two_locations):
    world = two_locations
    order, shipment, short = short_on_mugs(world, found=0)
    assert not shipment.lines.filter(order_line__sku="MUG-1").exists()  # none in hand
    assert stock(world.mug, world.paris) == (18, 0)  # 2 released, 2 written off
    services.short_pick_cancel_line(
        short_pick=short, actor=world.support, consent_channel="email", consent_note="Cancel the mugs, thanks."
    )
    short.refresh_from_db()
    shipment.refresh_from_db()
    assert short.resolution == ShortPickResolution.CANCEL_LINE
    assert shipment.status == ShipmentStatus.PICKING
    assert order.lines.get(sku="MUG-1").quantity_canceled == 2
    event = order.events.get(type=OrderEventType.LINES_CANCELED)
    assert event.payload["refund_due"] == "24.00" and event.payload["reason_code"] == "out_of_stock"
    assert event.payload["consent"]["note"] == "Cancel the mugs, thanks."
    with pytest.raises(ConflictError, match="already resolved"):
        services.short_pick_cancel_line(
            short_pick=short, actor=world.support, consent_channel="email", consent_note="again"
        )


def test_canceling_the_only_line_of_a_parcel_cancels_it_and_the_order_when_nothing_else_is_left(two_locations):
    world = two_locations
    order = prepared_order(
        lines=[{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]
    )
    shipment = Shipment.objects.get(order=order)
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 0})
    short = ShortPick.objects.get(shipment=shipment)
    services.short_pick_cancel_line(
        short_pick=short, actor=world.support, consent_channel="email", consent_note="Refund me."
    )
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == ShipmentStatus.CANCELED
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELED, "out_of_stock")
    assert Location.objects.count() == 2
