"""What inventory is told by orders instead of reading their tables: which orders may give up their
stock to a higher-priority channel, and which shipped lines are stock-managed."""

import pytest

from inventory import services as inventory
from inventory.models import AllocationConflict, ChannelStockSettings, Reservation, ReservationState, StockItem
from inventory.selectors import stock_ledger_drift
from oms.core.errors import ConflictError
from orders import services as order_services
from orders.choices import HoldReason, OrderStatus
from orders.models import Channel

pytestmark = pytest.mark.django_db


def stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


def test_an_order_in_preparation_keeps_its_last_unit_against_a_higher_priority_channel(
    locations, web, product, receive, place_order, boss
):
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    ChannelStockSettings.objects.create(channel=store, priority=1)
    ChannelStockSettings.objects.create(channel=web, priority=50)
    mug = product("MUG")
    receive(mug, locations["paris"], 1)
    web_order = place_order({"MUG": 1})
    order_services.order_start_preparation(order=web_order, actor=boss)

    store_order = place_order({"MUG": 1}, channel="lyon-store")

    kept = Reservation.objects.get(order=web_order)
    assert (kept.state, kept.quantity_open) == (ReservationState.ACTIVE, 1)
    assert not Reservation.objects.filter(order=store_order, supply__isnull=True).exists()
    assert store_order.holds.get().reason == HoldReason.STOCK_SHORTAGE
    assert not AllocationConflict.objects.exists()
    assert stock(mug, locations["paris"]) == (1, 1)
    assert stock_ledger_drift() == []


def test_shipping_a_stock_line_that_holds_no_reservation_is_refused_and_names_the_line(
    locations, web, product, receive, place_order, boss
):
    mug = product("MUG")
    receive(mug, locations["paris"], 3)
    order = place_order({"MUG": 2})
    order_services.order_start_preparation(order=order, actor=boss)
    inventory.reservations_release(order=order, actor=boss, reason="test: reservation lost")

    with pytest.raises(ConflictError) as refused:
        order_services.order_record_shipment(order=order, actor=boss)

    assert refused.value.code == "not_reserved"
    assert refused.value.message == "Line 1 (MUG) has no reservation for 2 unit(s): allocate it first."
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PREPARATION
    assert order.lines.get().quantity_shipped == 0
    assert stock(mug, locations["paris"]) == (3, 0)
    assert stock_ledger_drift() == []
