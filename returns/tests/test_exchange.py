"""An exchange adds the new line to the order on hold; the hold goes once the goods are back and resellable."""

import pytest

from inventory.models import StockItem
from orders.choices import HoldReason, OrderEventType
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
