"""An exchange adds the new line to the order on hold; the hold goes once the goods are back and resellable."""

import datetime

import pytest
from django.utils import timezone

from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from inventory.models import StockItem
from oms.core.actors import get_system_user
from oms.core.errors import ValidationError
from orders.choices import HoldReason, OrderEventType, OrderStatus
from orders.models import OrderHold
from returns import services
from returns.tests.fixtures import delivered_order, lines_by_sku

pytestmark = pytest.mark.django_db


def _exchange(world, manager):
    order = delivered_order(world)
    tee = lines_by_sku(order)["TEE-1"]
    request = services.return_request(
        order=order,
        actor=manager,
        reason="wrong_size",
        method="exchange",
        lines=[{"line": tee.pk, "quantity": 1, "exchange_for": world.cup.sku}],
    )
    return order, tee, request


def test_exchange_line_is_held_then_released_when_the_return_is_resellable(world, manager):
    order, tee, request = _exchange(world, manager)
    line = request.lines.get()
    new_line = line.exchange_line
    assert (new_line.sku, new_line.quantity, new_line.unit_price, new_line.quantity_shipped) == (
        "CUP-1",
        1,
        tee.unit_price,
        0,
    )
    assert new_line.attributes == {"exchange_for": {"line": tee.line_number, "sku": "TEE-1"}}
    hold = request.exchange_hold
    assert (hold.reason, hold.note, hold.is_active) == (
        HoldReason.MANUAL,
        f"exchange: waiting for return {request.number}",
        True,
    )
    cup = StockItem.objects.get(product=world.cup, location=world.paris)
    assert (cup.on_hand, cup.reserved) == (20, 1)  # kept for the customer while the T-shirt comes back
    placed = order.events.get(type=OrderEventType.HOLD_PLACED)
    assert placed.payload["exchange_line"] == new_line.line_number and placed.actor == manager

    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    hold.refresh_from_db()
    assert hold.is_active  # received, not inspected yet
    services.return_inspect(request=request, actor=manager, results={line.pk: {"resellable": 1}})
    hold.refresh_from_db()
    assert not hold.is_active and request.number in hold.release_note
    assert order.events.filter(type=OrderEventType.HOLD_RELEASED).count() == 1
    request.refresh_from_db()
    assert request.settlement == {}  # an exchange is paid by the returned goods: no credit, no refund


def test_damaged_exchange_keeps_the_hold(world, manager):
    _order, _tee, request = _exchange(world, manager)
    line = request.lines.get()
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    services.return_inspect(request=request, actor=manager, results={line.pk: {"damaged": 1}})
    assert OrderHold.objects.get(pk=request.exchange_hold_id).is_active


def test_exchange_needs_a_product(world, manager):
    order = delivered_order(world)
    tee = lines_by_sku(order)["TEE-1"]
    with pytest.raises(services.ValidationError) as caught:
        services.return_request(
            order=order,
            actor=manager,
            reason="wrong_size",
            method="exchange",
            lines=[{"line": tee.pk, "quantity": 1, "exchange_for": "NOPE"}],
        )
    assert list(caught.value.extra["fields"]) == ["lines.0.exchange_for"]
    assert not order.lines.filter(sku="CUP-1").exists() and not order.holds.exists()


def test_the_exchanged_item_ships_in_its_own_parcel_once_the_return_is_in(world, manager):
    order, tee, request = _exchange(world, manager)
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED  # reopened: the cup is still to ship
    assert order.events.get(type=OrderEventType.EXCHANGE_LINE_ADDED).payload["from"] == OrderStatus.DELIVERED
    parcel = Shipment.objects.get(order=order, status="pending")
    assert [(line.order_line.sku, line.quantity) for line in parcel.lines.all()] == [("CUP-1", 1)]
    system = get_system_user()
    # Held until the T-shirt is back: no wave takes the parcel.
    with pytest.raises(ValidationError, match="No pending shipment") as refused:
        fulfillment.wave_create(location=parcel.location, actor=system)
    assert refused.value.code == "empty_wave"
    line = request.lines.get()
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    services.return_inspect(request=request, actor=manager, results={line.pk: {"resellable": 1}})

    fulfillment.shipment_confirm_picks(shipment=parcel, actor=system, picked={parcel.lines.get().pk: 1})
    fulfillment.shipment_pack(shipment=parcel, actor=system)
    parcel = fulfillment.shipment_dispatch(shipment=parcel, actor=system)
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    at = (timezone.now() + datetime.timedelta(hours=5)).isoformat()
    event = {"id": "x-1", "tracking_number": parcel.tracking_number, "status": "DELIVERED", "occurred_at": at}
    fulfillment.carrier_webhook_receive(carrier="sandbox", payload={"events": [event]}, actor=system)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    cup = StockItem.objects.get(product=world.cup, location=parcel.location)
    assert cup.reserved == 0
