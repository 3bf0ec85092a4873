"""A stateful property test: whatever the order of receive / reserve / release / ship / adjust /
count / return, stock equals the ledger, every constraint holds, and the counters match a model
kept by the test itself."""

import itertools

import pytest
from django.db.models import F, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inventory.models import Location, Product, Reservation, ReservationState, StockItem
from inventory.selectors import stock_ledger_drift
from inventory.services import count_apply, count_open, count_record, stock_adjust, stock_receive, stock_return
from oms.cockpit import roles
from oms.core.errors import ApplicationError
from orders import services as order_services
from orders.choices import OrderStatus
from orders.models import Channel, Order
from orders.tests.factories import make_user, order_payload

_run = itertools.count()


class StockMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        run = next(_run)
        Channel.objects.get_or_create(code="web", defaults={"name": "Web", "kind": "web"})
        self.boss = make_user(roles.ADMINISTRATOR)
        self.products = [Product.objects.create(sku=f"P{run}-{i}", name=f"P{i}") for i in range(2)]
        self.locations = [
            Location.objects.create(code=f"l{run}-{i}", name=f"L{i}", kind="warehouse", country="FR", priority=i)
            for i in range(2)
        ]
        # The model: what on hand should be, per (product, location).
        self.on_hand = {(p.pk, loc.pk): 0 for p in self.products for loc in self.locations}
        self.orders: list[int] = []

    def _pick(self, data_index, seq):
        return seq[data_index % len(seq)]

    @rule(p=st.integers(0, 1), loc=st.integers(0, 1), qty=st.integers(1, 8))
    def receive(self, p, loc, qty):
        product, location = self.products[p], self.locations[loc]
        stock_receive(product=product, location=location, quantity=qty, actor=self.boss)
        self.on_hand[(product.pk, location.pk)] += qty

    @rule(p=st.integers(0, 1), qty=st.integers(1, 6))
    def place_order(self, p, qty):
        sku = self.products[p].sku
        payload = order_payload(lines=[{"sku": sku, "name": sku, "quantity": qty, "unit_price": "1.00"}], shipping=None)
        order, _ = order_services.order_create(actor=self.boss, **payload)
        self.orders.append(order.pk)

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 1000))
    def cancel(self, i):
        order = Order.objects.get(pk=self._pick(i, self.orders))
        try:
            order_services.order_cancel(order=order, actor=self.boss, reason_code="customer_request")
        except ApplicationError:
            assert order.status not in {OrderStatus.CONFIRMED, OrderStatus.IN_PREPARATION}

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 1000))
    def ship(self, i):
        order = Order.objects.get(pk=self._pick(i, self.orders))
        if order.status != OrderStatus.CONFIRMED or order.holds.filter(released_at__isnull=True).exists():
            return
        order_services.order_start_preparation(order=order, actor=self.boss)
        for r in Reservation.objects.filter(order=order, state=ReservationState.ACTIVE):
            self.on_hand[(r.product_id, r.location_id)] -= r.quantity_open
        order_services.order_record_shipment(order=order, actor=self.boss)

    @rule(p=st.integers(0, 1), loc=st.integers(0, 1), delta=st.integers(-5, 5).filter(bool))
    def adjust(self, p, loc, delta):
        product, location = self.products[p], self.locations[loc]
        try:
            stock_adjust(product=product, location=location, delta=delta, actor=self.boss, note="property test")
            self.on_hand[(product.pk, location.pk)] += delta
        except ApplicationError:
            item = StockItem.objects.filter(product=product, location=location).first()
            assert item is None or item.on_hand + delta < item.reserved or item.on_hand + delta < 0

    @rule(p=st.integers(0, 1), loc=st.integers(0, 1), counted=st.integers(0, 12))
    def count(self, p, loc, counted):
        product, location = self.products[p], self.locations[loc]
        cycle = count_open(location=location, products=[product], actor=self.boss)
        count_record(count=cycle, counted={product.pk: counted}, actor=self.boss)
        try:
            count_apply(count=cycle, actor=self.boss)
            self.on_hand[(product.pk, location.pk)] = counted
        except ApplicationError:
            item = StockItem.objects.get(product=product, location=location)
            assert counted < item.reserved

    @rule(p=st.integers(0, 1), loc=st.integers(0, 1), qty=st.integers(1, 3))
    def customer_return(self, p, loc, qty):
        product, location = self.products[p], self.locations[loc]
        stock_return(product=product, location=location, quantity=qty, actor=self.boss, reference="RMA")
        self.on_hand[(product.pk, location.pk)] += qty

    @invariant()
    def stock_matches_ledger_model_and_reservations(self):
        if not hasattr(self, "products"):
            return
        items = StockItem.objects.filter(product__in=self.products)
        for item in items:
            assert 0 <= item.reserved <= item.on_hand
            assert item.on_hand == self.on_hand[(item.product_id, item.location_id)]
            open_units = (
                Reservation.objects.filter(stock_item=item, state=ReservationState.ACTIVE).aggregate(
                    n=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released"))
                )["n"]
                or 0
            )
            assert item.reserved == open_units
        assert [d for d in stock_ledger_drift() if d["sku"].startswith(self.products[0].sku[:-2])] == []


@pytest.mark.django_db
def test_stock_stays_equal_to_the_ledger_whatever_happens():
    StockMachine.TestCase.settings = settings(
        max_examples=30,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

    run_state_machine_as_test(StockMachine, settings=StockMachine.TestCase.settings)
