"""Real threads, each with its own PostgreSQL connection, started together on a barrier."""

import pytest

from oms.cockpit import roles
from oms.core.errors import ApplicationError
from oms.core.testing import run_together
from orders import services
from orders.choices import OrderEventType, OrderStatus
from orders.models import Customer, Order, OrderEvent
from orders.tests.factories import ChannelFactory, make_catalog, make_user, order_payload
from orders.tests.states import order_in_state


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_imports_of_one_order_create_exactly_one():
    ChannelFactory()
    make_catalog()
    api = make_user(roles.API_STORE_FRONT)
    payload = order_payload(external_id="shop-1001")

    results = run_together(20, lambda i: services.order_create(actor=api, **payload))

    assert all(isinstance(result, tuple) for result in results), results
    assert sum(1 for _, created in results if created) == 1
    assert len({order.number for order, _ in results}) == 1
    assert Order.objects.count() == 1
    assert Customer.objects.count() == 1
    order = Order.objects.get()
    assert order.lines.count() == 3
    assert OrderEvent.objects.filter(order=order, type=OrderEventType.IMPORTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_different_orders_get_distinct_numbers():
    ChannelFactory()
    make_catalog()
    api = make_user(roles.API_STORE_FRONT)
    payloads = [order_payload(customer={"email": "same@example.com"}) for _ in range(20)]

    results = run_together(20, lambda i: services.order_create(actor=api, **payloads[i]))

    assert all(isinstance(result, tuple) and result[1] for result in results), results
    assert len({order.number for order, _ in results}) == 20
    assert Customer.objects.count() == 1  # one customer per e-mail, also under concurrency


@pytest.mark.django_db(transaction=True)
def test_cancel_racing_start_preparation_has_one_winner():
    ChannelFactory()
    make_catalog()
    boss = make_user(roles.ADMINISTRATOR)
    for _ in range(5):
        order = order_in_state(OrderStatus.CONFIRMED, actor=boss)

        def work(i, order=order):
            if i == 0:
                return services.order_cancel(order=order.pk, actor=boss, reason_code="customer_request")
            return services.order_start_preparation(order=order.pk, actor=boss)

        cancel, preparation = run_together(2, work)

        final = Order.objects.get(pk=order.pk)
        transitions = {
            event.type: event.payload["from"]
            for event in final.events.filter(type__in=[OrderEventType.CANCELED, OrderEventType.PREPARATION_STARTED])
        }
        # The order lock serializes the two: exactly one of them takes the order out of "confirmed".
        winners = [kind for kind, source in transitions.items() if source == OrderStatus.CONFIRMED]
        assert len(winners) == 1, transitions
        # Nothing shipped, so a cancel is allowed after the preparation started too: canceled either way.
        assert final.status == OrderStatus.CANCELED
        assert final.events.filter(type=OrderEventType.CANCELED).count() == 1
        if winners == [OrderEventType.CANCELED]:
            assert isinstance(cancel, Order)
            assert isinstance(preparation, ApplicationError) and preparation.code == "transition_not_allowed"
            assert OrderEventType.PREPARATION_STARTED not in transitions
        else:
            # The preparation won; the cancel then ran on the prepared order, one after the other.
            assert isinstance(preparation, Order) and isinstance(cancel, Order)
            assert transitions[OrderEventType.CANCELED] == OrderStatus.IN_PREPARATION
            assert final.events.filter(type=OrderEventType.PREPARATION_STARTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_full_payments_record_only_one():
    ChannelFactory()
    make_catalog()
    finance = make_user(roles.FINANCE)
    boss = make_user(roles.ADMINISTRATOR)
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)

    results = run_together(
        2, lambda i: services.order_mark_paid(order=order.pk, actor=finance, amount=str(order.total_gross))
    )

    assert sum(isinstance(r, Order) for r in results) == 1
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(refused) == 1
    assert refused[0].code in {"overpayment", "transition_not_allowed"}
    final = Order.objects.get(pk=order.pk)
    assert final.amount_paid == final.total_gross
    assert final.status == OrderStatus.CONFIRMED
    assert final.events.filter(type=OrderEventType.PAYMENT_RECORDED).count() == 1
