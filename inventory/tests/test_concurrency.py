"""No oversell and no deadlock, with real threads and their own PostgreSQL connections."""

import random

import pytest
from django.db import connection
from django.db.models import F, Sum

from inventory.models import Location, Product, Reservation, ReservationState, StockItem
from inventory.selectors import stock_ledger_drift
from inventory.services import stock_receive
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.errors import ApplicationError
from oms.core.testing import run_together
from orders import services as order_services
from orders.choices import HoldReason
from orders.models import Channel, Order
from orders.tests.factories import make_user, order_payload

ALLOCATORS = 32
ATTEMPTS = 50


def _setup(units_per_location: dict[str, int], skus=("HOT",)):
    Channel.objects.get_or_create(code="web", defaults={"name": "Web", "kind": "web"})
    system = get_system_user()
    products = [Product.objects.create(sku=sku, name=sku) for sku in skus]
    for index, (code, units) in enumerate(units_per_location.items()):
        location = Location.objects.create(
            code=code,
            name=code.title(),
            kind="warehouse",
            country="FR",
            cost_per_parcel=f"{4 + index}.00",
            priority=index,
        )
        for product in products:
            stock_receive(product=product, location=location, quantity=units, actor=system)
    return products


def _line(sku, qty):
    return {"sku": sku, "name": sku, "quantity": qty, "unit_price": "5.00", "tax_rate": "0.2"}


def _assert_stock_sound():
    for item in StockItem.objects.all():
        assert 0 <= item.reserved <= item.on_hand, item
        open_units = (
            Reservation.objects.filter(stock_item=item, state=ReservationState.ACTIVE).aggregate(
                n=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released"))
            )["n"]
            or 0
        )
        assert item.reserved == open_units, (item, open_units)
    assert stock_ledger_drift() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", [1, 2])
def test_hot_sku_over_three_locations_never_oversells(round_):
    _setup({"paris": 40, "lyon": 40, "lille": 40})
    api = make_user(roles.API_STORE_FRONT)
    rng = random.Random(round_)
    quantities = [[rng.randint(1, 3) for _ in range(ATTEMPTS)] for _ in range(ALLOCATORS)]

    def allocator(i):
        outcomes = []
        for attempt, qty in enumerate(quantities[i]):
            payload = order_payload(external_id=f"r{round_}-t{i}-a{attempt}", lines=[_line("HOT", qty)], shipping=None)
            try:
                order, _ = order_services.order_create(actor=api, **payload)
                outcomes.append(order.pk)
            except ApplicationError as exc:  # a clear refusal is fine; a database error is not
                outcomes.append(exc)
            finally:
                connection.close()
        return outcomes

    results = run_together(ALLOCATORS, allocator)

    errors = [r for r in results if not isinstance(r, list)]
    assert errors == []  # no deadlock or other database error reached a caller
    refusals = [o for outcomes in results for o in outcomes if not isinstance(o, int)]
    assert refusals == []
    assert Order.objects.count() == ALLOCATORS * ATTEMPTS
    reserved = StockItem.objects.aggregate(n=Sum("reserved"))["n"]
    demand = sum(map(sum, quantities))
    assert demand > 120
    # Every unit is reserved once (the stock sells out) and never more than once.
    assert reserved <= 120
    assert reserved == 120  # a short order still takes what is left, so the stock sells out exactly
    held = Order.objects.filter(holds__reason=HoldReason.STOCK_SHORTAGE, holds__released_at__isnull=True)
    assert held.count() >= 1
    _assert_stock_sound()


@pytest.mark.django_db(transaction=True)
def test_multi_line_orders_in_opposite_line_order_do_not_deadlock():
    _setup({"paris": 200, "lyon": 200}, skus=("AAA", "BBB", "CCC"))
    api = make_user(roles.API_STORE_FRONT)

    def allocator(i):
        skus = ["AAA", "BBB", "CCC"]
        done = 0
        for attempt in range(15):
            ordered = skus if (i + attempt) % 2 else list(reversed(skus))
            payload = order_payload(
                external_id=f"ml-{i}-{attempt}", lines=[_line(s, 1) for s in ordered], shipping=None
            )
            order_services.order_create(actor=api, **payload)
            done += 1
        connection.close()
        return done

    results = run_together(16, allocator)

    assert results == [15] * 16, results
    assert StockItem.objects.aggregate(n=Sum("reserved"))["n"] == 16 * 15 * 3
    _assert_stock_sound()


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_and_shipments_keep_the_ledger_exact():
    _setup({"paris": 100}, skus=("MUG",))
    boss = make_user(roles.ADMINISTRATOR)
    orders = [
        order_services.order_create(actor=boss, **order_payload(lines=[_line("MUG", 2)], shipping=None))[0]
        for _ in range(20)
    ]
    for order in orders[10:]:
        order_services.order_start_preparation(order=order, actor=boss)

    def work(i):
        order = orders[i]
        if i < 10:
            return order_services.order_cancel(order=order.pk, actor=boss, reason_code="customer_request").status
        return order_services.order_record_shipment(order=order.pk, actor=boss).status

    results = run_together(20, work)

    assert results == ["canceled"] * 10 + ["shipped"] * 10
    item = StockItem.objects.get()
    assert (item.on_hand, item.reserved) == (80, 0)
    _assert_stock_sound()
