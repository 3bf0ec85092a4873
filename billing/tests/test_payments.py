"""Payments: rows at intake, recorded once per provider reference, provider events applied once."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import Dispute, Payment, PaymentEvent, PaymentStatus
from billing.providers.base import ProviderError, get_provider
from billing.services import payments
from billing.tests.conftest import make_finance_user
from fulfillment.tests.fixtures import make_two_locations
from oms.core.actors import get_system_user
from oms.core.errors import NotFoundError, PermissionDeniedError, ValidationError
from oms.core.testing import run_together
from orders import services as orders
from orders.choices import OrderStatus
from orders.choices import PaymentStatus as OrderPaymentStatus
from orders.models import Order
from orders.tests.factories import make_user, order_payload


def _unpaid_order() -> Order:
    order, _ = orders.order_create(actor=get_system_user(), **order_payload(payment={"status": "unpaid"}))
    return order


def _event(event_id, kind, reference, amount=None, **extra):
    payload = {"id": event_id, "type": kind, "payment_reference": reference, **extra}
    if amount is not None:
        payload["amount"] = str(amount)
    return payload


@pytest.mark.django_db
def test_the_payment_an_order_arrives_with_becomes_a_payment_row_once(world):
    payload = order_payload()
    order, _ = orders.order_create(actor=get_system_user(), **payload)
    again, created = orders.order_create(actor=get_system_user(), **payload)  # the channel sends it twice

    assert not created and again.pk == order.pk
    payment = Payment.objects.get(order=order)
    assert (payment.provider, payment.provider_reference, payment.method) == (
        "sandbox",
        payload["payment"]["reference"],
        "card",
    )
    assert (payment.status, payment.amount_captured, payment.currency) == (
        PaymentStatus.CAPTURED,
        order.total_gross,
        "EUR",
    )
    assert payment.history.get().history_user.username == "system"
    # Counted once on the order (by order_create), not a second time by the row.
    order.refresh_from_db()
    assert order.amount_paid == order.total_gross
    # One checkout paying two orders (a marketplace split) is never refused: each order has its row.
    split, _ = orders.order_create(
        actor=get_system_user(),
        **order_payload(payment={"status": "paid", "reference": payload["payment"]["reference"]}),
    )
    assert Payment.objects.get(order=split).provider_reference == f"{payload['payment']['reference']}/{split.number}"


@pytest.mark.django_db
def test_recording_a_payment_is_idempotent_by_provider_reference(world, finance):
    order = _unpaid_order()
    assert order.status == OrderStatus.AWAITING_PAYMENT

    first = payments.payment_record(
        order=order,
        actor=finance,
        method="transfer",
        provider="sandbox",
        provider_reference="wire-1",
        amount=order.total_gross,
        captured=True,
    )
    second = payments.payment_record(
        order=order,
        actor=finance,
        method="transfer",
        provider="sandbox",
        provider_reference="wire-1",
        amount=order.total_gross,
        captured=True,
    )

    assert first.pk == second.pk and Payment.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert (order.status, order.payment_status, order.amount_paid) == (
        OrderStatus.CONFIRMED,
        OrderPaymentStatus.PAID,
        order.total_gross,
    )
    with pytest.raises(PermissionDeniedError):
        payments.payment_record(
            order=order,
            actor=make_user(),
            method="card",
            provider="sandbox",
            provider_reference="x",
            amount="1",
            captured=True,
        )
    with pytest.raises(ValidationError):
        payments.payment_record(
            order=order,
            actor=finance,
            method="card",
            provider="sandbox",
            provider_reference="wire-2",
            amount="-3",
            captured=True,
        )


@pytest.mark.django_db
def test_provider_events_authorize_then_capture_and_a_replay_is_a_no_op(world, finance):
    order = _unpaid_order()
    total = order.total_gross

    authorized, applied = payments.payment_event_receive(
        provider="sandbox",
        payload=_event("evt-1", "authorized", "pi_1", total, order=order.number, method="card", currency="EUR"),
        actor=finance,
    )
    assert applied and authorized.payment.status == PaymentStatus.AUTHORIZED
    order.refresh_from_db()
    assert (order.status, order.payment_status, order.amount_authorized) == (
        OrderStatus.CONFIRMED,
        OrderPaymentStatus.AUTHORIZED,
        total,
    )

    captured, applied = payments.payment_event_receive(
        provider="sandbox", payload=_event("evt-2", "captured", "pi_1", total), actor=finance
    )
    payment = Payment.objects.get(pk=captured.payment_id)
    assert applied and (payment.status, payment.amount_captured) == (PaymentStatus.CAPTURED, total)
    order.refresh_from_db()
    assert (order.payment_status, order.amount_paid) == (OrderPaymentStatus.PAID, total)
    events_before = order.events.count()

    replay, applied = payments.payment_event_receive(
        provider="sandbox", payload=_event("evt-2", "captured", "pi_1", total), actor=finance
    )

    assert not applied and replay.pk == captured.pk
    assert PaymentEvent.objects.filter(provider="sandbox").count() == 2
    order.refresh_from_db()
    assert order.amount_paid == total and order.events.count() == events_before
    payment.refresh_from_db()
    assert payment.amount_captured == total


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_is_applied_once():
    make_two_locations()
    finance = make_finance_user()
    order = _unpaid_order()
    payload = _event("evt-9", "captured", "pi_9", order.total_gross, order=order.number)

    results = run_together(
        4, lambda _i: payments.payment_event_receive(provider="sandbox", payload=payload, actor=finance)
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(applied for _event_row, applied in results) == [False, False, False, True]
    assert PaymentEvent.objects.count() == 1 and Payment.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.amount_paid == order.total_gross


@pytest.mark.django_db
def test_failed_refunded_and_disputed_events(world, finance):
    order = _unpaid_order()
    payments.payment_event_receive(
        provider="sandbox", payload=_event("e1", "authorized", "pi_2", "10.00", order=order.number), actor=finance
    )
    _row, applied = payments.payment_event_receive(
        provider="sandbox", payload=_event("e2", "failed", "pi_2", reason="card declined"), actor=finance
    )
    declined = Payment.objects.get(provider_reference="pi_2")
    assert applied and (declined.status, declined.failure_reason) == (PaymentStatus.FAILED, "card declined")
    assert order.events.filter(type=payments.EVENT_PAYMENT_FAILED).count() == 1

    paid = _unpaid_order()
    payments.payment_event_receive(
        provider="sandbox",
        payload=_event("e3", "captured", "pi_3", paid.total_gross, order=paid.number),
        actor=finance,
    )
    payments.payment_event_receive(
        provider="sandbox", payload=_event("e4", "refunded", "pi_3", "5.00", refund_reference="re_1"), actor=finance
    )
    refunded = Payment.objects.get(provider_reference="pi_3")
    assert (refunded.status, refunded.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("5.00"))
    with pytest.raises(ValidationError):  # more than was captured
        payments.payment_event_receive(
            provider="sandbox", payload=_event("e5", "refunded", "pi_3", "1000.00"), actor=finance
        )

    payments.payment_event_receive(
        provider="sandbox",
        payload=_event("e6", "dispute_opened", "pi_3", "20.00", dispute_reference="dp_1", reason="fraudulent"),
        actor=finance,
    )
    dispute = Dispute.objects.get(payment=refunded)
    assert (dispute.provider_reference, dispute.amount, dispute.reason) == ("dp_1", Decimal("20.00"), "fraudulent")


@pytest.mark.django_db
def test_webhook_input_is_checked(world, finance):
    with pytest.raises(PermissionDeniedError):
        payments.payment_event_receive(provider="sandbox", payload=_event("x", "captured", "pi"), actor=make_user())
    with pytest.raises(NotFoundError):
        payments.payment_event_receive(provider="nope", payload=_event("x", "captured", "pi"), actor=finance)
    with pytest.raises(ValidationError) as bad:
        payments.payment_event_receive(provider="sandbox", payload={"id": "x", "type": "paid"}, actor=finance)
    assert "type" in bad.value.extra["fields"]
    # An event about a payment nobody knows, with no order, is kept but applies nothing.
    row, applied = payments.payment_event_receive(
        provider="sandbox", payload=_event("x", "captured", "pi_unknown", "3"), actor=finance
    )
    assert not applied and row.payment is None and PaymentEvent.objects.count() == 1


@pytest.mark.django_db
def test_sandbox_refunds_are_deterministic_and_can_be_told_to_fail(world, settings):
    order, _ = orders.order_create(actor=get_system_user(), **order_payload())
    payment = Payment.objects.get(order=order)
    sandbox = get_provider("sandbox")
    first = sandbox.refund(payment, Decimal("5.00"), "RFD-1")
    assert first == sandbox.refund(payment, Decimal("5.00"), "RFD-1") and first.startswith("SBXR-")
    assert first != sandbox.refund(payment, Decimal("5.00"), "RFD-2")
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = True
    with pytest.raises(ProviderError):
        sandbox.refund(payment, Decimal("5.00"), "RFD-3")


@pytest.mark.django_db
def test_the_provider_webhook_endpoint_stores_once_and_answers_a_replay_with_applied_false(world, finance):
    order = _unpaid_order()
    client = APIClient()
    client.force_authenticate(finance)
    payload = _event("evt-api", "captured", "pi_api", order.total_gross, order=order.number)

    first = client.post("/api/v1/billing/payments/sandbox/events/", payload, format="json")
    replay = client.post("/api/v1/billing/payments/sandbox/events/", payload, format="json")

    assert first.status_code == 200 and first.json() == {
        "event": "evt-api",
        "kind": "captured",
        "payment": "sandbox:pi_api",
        "applied": True,
    }
    assert replay.status_code == 200 and replay.json()["applied"] is False
    order.refresh_from_db()
    assert order.amount_paid == order.total_gross and PaymentEvent.objects.count() == 1
    assert client.post("/api/v1/billing/payments/nope/events/", payload, format="json").status_code == 404
    bad = client.post("/api/v1/billing/payments/sandbox/events/", {"id": "1", "type": "x"}, format="json")
    assert bad.status_code == 400 and "type" in bad.json()["extra"]["fields"]
