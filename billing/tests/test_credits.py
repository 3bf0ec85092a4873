from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import StoreCreditEntry, Voucher, VoucherEntry
from billing.services.credits import store_credit_balance, voucher_balance, voucher_issue
from billing.services.refunds import refund_approve, refund_ceiling, refund_process, refund_request
from billing.tests.refund_support import APPROVER, REQUESTER, ensure_payment, finance_user, paid_order
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.errors import ValidationError
from oms.core.testing import run_together
from orders import services as orders
from orders.models import Order
from orders.tests.factories import make_user, order_payload

pytestmark = pytest.mark.django_db


def _processed(order, *, amount, method, reason="goodwill"):
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    refund = refund_request(order=order, actor=requester, amount=amount, reason=reason, method=method)
    refund_approve(refund=refund, actor=approver)
    return refund_process(refund=refund, actor=approver)


def test_a_refund_to_store_credit_adds_to_the_customers_ledger():
    order = paid_order()

    refund = _processed(order, amount="30", method="store_credit")

    entry = StoreCreditEntry.objects.get(refund=refund)
    assert (entry.customer, entry.amount, entry.currency, entry.order) == (order.customer, Decimal("30"), "EUR", order)
    assert store_credit_balance(order.customer, "EUR") == Decimal("30")
    assert store_credit_balance(order.customer, "USD") == 0
    order.refresh_from_db()
    assert order.amount_refunded == Decimal("30")
    assert order.payments.get().amount_refunded == 0  # nothing went back to the card


def test_a_refund_as_a_voucher_issues_a_code_with_its_balance():
    order = paid_order()

    refund = _processed(order, amount="12.5", method="voucher", reason="pricing_error")

    voucher = Voucher.objects.get(refund=refund)
    assert refund.provider_reference == voucher.code and voucher.code.startswith("V-")
    assert voucher_balance(voucher) == Decimal("12.50") and voucher.customer == order.customer
    assert voucher.expires_at is not None


def test_a_compensation_voucher_is_given_on_top_of_what_was_captured():
    order = paid_order()
    _processed(order, amount=order.total_gross, method="original", reason="goodwill")

    gift = _processed(order, amount="10", method="voucher", reason="compensation")

    assert gift.status == "processed" and voucher_balance(Voucher.objects.get(refund=gift)) == Decimal("10")
    order.refresh_from_db()
    assert order.amount_refunded == order.total_gross
    assert refund_ceiling(order)["available"] == 0


def test_store_credit_pays_a_later_order_at_intake():
    first = paid_order()
    _processed(first, amount="64.45", method="store_credit")
    email = first.email

    order, created = orders.order_create(
        actor=get_system_user(),
        **order_payload(
            customer={"email": email, "first_name": "Ann"}, payment={"status": "paid", "method": "store_credit"}
        ),
    )

    assert created and order.status == "confirmed" and order.amount_paid == Decimal("64.45")
    assert store_credit_balance(first.customer, "EUR") == 0
    debit = StoreCreditEntry.objects.get(order=order)
    assert debit.amount == Decimal("-64.45")


def test_an_order_paid_with_more_store_credit_than_the_balance_is_refused_and_nothing_is_kept():
    first = paid_order()
    _processed(first, amount="20", method="store_credit")
    count = Order.objects.count()

    with pytest.raises(ValidationError) as refused:
        orders.order_create(
            actor=get_system_user(),
            **order_payload(customer={"email": first.email}, payment={"status": "paid", "method": "store_credit"}),
        )

    assert refused.value.extra["fields"]["payment.amount"] == ["Store credit available: 20.00 EUR."]
    assert Order.objects.count() == count
    assert store_credit_balance(first.customer, "EUR") == Decimal("20")


def test_a_voucher_pays_part_of_an_order_through_the_intake_api():
    first = paid_order()
    voucher = Voucher.objects.get(refund=_processed(first, amount="30", method="voucher"))
    client = APIClient()
    client.force_authenticate(make_user(roles.API_STORE_FRONT))

    response = client.post(
        reverse("order-list"),
        order_payload(
            customer={"email": first.email},
            payment={"status": "paid", "method": "voucher", "reference": voucher.code.lower(), "amount": "25.00"},
        ),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert voucher_balance(voucher) == Decimal("5.00")
    assert VoucherEntry.objects.filter(voucher=voucher, amount=Decimal("-25")).count() == 1


def test_a_voucher_of_another_customer_or_too_small_is_refused_at_intake():
    first = paid_order()
    voucher = voucher_issue(customer=first.customer, currency="EUR", amount="5", actor=get_system_user())
    payment = {"status": "paid", "method": "voucher", "reference": voucher.code, "amount": "10"}

    with pytest.raises(ValidationError) as stranger:
        orders.order_create(actor=get_system_user(), **order_payload(payment=payment))
    with pytest.raises(ValidationError) as short:
        orders.order_create(actor=get_system_user(), **order_payload(customer={"email": first.email}, payment=payment))
    with pytest.raises(ValidationError) as unknown:
        orders.order_create(actor=get_system_user(), **order_payload(payment={**payment, "reference": "V-NOPE"}))

    assert stranger.value.extra["fields"]["payment.reference"] == ["This voucher belongs to another customer."]
    assert short.value.extra["fields"]["payment.amount"] == ["Voucher balance: 5.00 EUR."]
    assert unknown.value.extra["fields"]["payment.reference"] == ["Unknown code."]
    assert voucher_balance(voucher) == Decimal("5")


def test_a_refund_to_the_original_method_of_an_order_paid_with_store_credit_goes_back_to_store_credit():
    first = paid_order()
    _processed(first, amount="64.45", method="store_credit")
    order, _ = orders.order_create(
        actor=get_system_user(),
        **order_payload(customer={"email": first.email}, payment={"status": "paid", "method": "store_credit"}),
    )
    payment = ensure_payment(order)
    assert payment.method == "store_credit"

    refund = _processed(order, amount="10", method="original")

    assert refund.provider_reference.startswith("store-credit:")
    assert store_credit_balance(order.customer, "EUR") == Decimal("10")
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("10")


@pytest.mark.django_db(transaction=True)
def test_two_orders_spending_the_same_store_credit_at_the_same_moment_only_one_gets_it():
    first = paid_order()
    _processed(first, amount="64.45", method="store_credit")
    payloads = [
        order_payload(customer={"email": first.email}, payment={"status": "paid", "method": "store_credit"})
        for _ in range(2)
    ]

    results = run_together(2, lambda i: orders.order_create(actor=get_system_user(), **payloads[i]))

    created = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(created) == 1 and len(refused) == 1, results
    assert store_credit_balance(first.customer, "EUR") == 0


def test_the_cockpit_lists_store_credit_and_vouchers_with_their_balances(client):
    order = paid_order()
    _processed(order, amount="7", method="store_credit")
    voucher = Voucher.objects.get(refund=_processed(order, amount="3", method="voucher"))
    client.force_login(finance_user("billing.view_storecreditentry", "billing.view_voucher"))

    credit_page = client.get(reverse("admin:billing_storecreditentry_changelist"))
    voucher_page = client.get(reverse("admin:billing_voucher_changelist"))

    assert credit_page.status_code == 200 and order.email in credit_page.content.decode()
    assert voucher_page.status_code == 200
    assert voucher.code in voucher_page.content.decode() and "3.00" in voucher_page.content.decode()
