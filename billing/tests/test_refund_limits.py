"""The second-approver limit counts what was requested together, not each refund alone.

Above settings.OMS_REFUND_SECOND_APPROVER_ABOVE (50.00 here) a finance manager approves: the amount
that counts is the sum of the order's refunds requested within the window (30 days either side)
and, separately, the sum of the customer's refunds requested that calendar day in the shop's time
zone. Rejected refunds do not count; every other one does, whatever its method (store credit and
compensation vouchers included), so the limit does not depend on the order of the approvals.
"""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Refund
from billing.services.refunds import (
    refund_approve,
    refund_can_approve,
    refund_process,
    refund_reject,
    refund_request,
    seller_cancel_lines,
)
from billing.tests.refund_support import APPROVER, MANAGER, REQUESTER, finance_user, paid_order
from oms.core.errors import PermissionDeniedError
from oms.core.testing import run_together
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.TIME_ZONE = "Europe/Paris"
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("50.00")
    settings.OMS_REFUND_SECOND_APPROVER_WINDOW_DAYS = 30
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = False
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def _status(refund) -> str:
    return Refund.objects.get(pk=refund.pk).status


def _split(order, requester, *amounts, **kwargs) -> list[Refund]:
    return [
        refund_request(order=order, actor=requester, amount=amount, reason="goodwill", **kwargs) for amount in amounts
    ]


# --- one order -----------------------------------------------------------------------------------


def test_three_small_refunds_on_one_order_need_a_finance_manager_together():
    order = paid_order()  # 64.45 EUR captured
    support, finance, manager = finance_user(*REQUESTER), finance_user(*APPROVER), finance_user(*MANAGER)
    refunds = _split(order, support, "20", "20", "20")

    for refund in refunds:
        with pytest.raises(PermissionDeniedError) as refused:
            refund_approve(refund=refund, actor=finance)
        assert refused.value.code == "second_approver_required"
        others = [r.number for r in refunds if r != refund]
        assert all(number in refused.value.message for number in others), refused.value.message
        assert "60.00 EUR within 30 days" in refused.value.message and "above 50.00 EUR" in refused.value.message
        assert refused.value.extra["order_total"] == "60.00"
        assert _status(refund) == "requested"
    assert not OrderEvent.objects.filter(order=order, type="refund_approved").exists()

    approved = [refund_approve(refund=refund, actor=manager) for refund in refunds]

    assert [(r.status, r.approved_by) for r in approved] == [("approved", manager)] * 3


def test_the_cockpit_reason_and_the_service_give_the_same_answer():
    order = paid_order()
    support, finance, manager = finance_user(*REQUESTER), finance_user(*APPROVER), finance_user(*MANAGER)
    first, second = _split(order, support, "30", "30")

    allowed, why = refund_can_approve(second, finance)
    with pytest.raises(PermissionDeniedError) as refused:
        refund_approve(refund=second, actor=finance)

    assert not allowed and why == refused.value.message
    assert f"together with {first.number} on this order" in why
    assert "60.00 EUR within 30 days, above 50.00 EUR" in why
    assert refund_can_approve(second, manager) == (True, "")


def test_a_rejected_refund_no_longer_counts_and_one_alone_below_the_limit_is_approved_by_finance():
    order = paid_order()
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    first, second = _split(order, support, "30", "30")

    refund_reject(refund=first, actor=finance, reason="duplicate")
    approved = refund_approve(refund=second, actor=finance)

    assert (approved.status, approved.approved_by) == ("approved", finance)


def test_a_processed_and_a_failed_refund_still_count(settings):
    order = paid_order()
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    paid, failed, pending = _split(order, support, "20", "20", "20")
    # Approved one by one while each was alone (rejected ones set aside), as a clumsy split would be.
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("100.00")
    refund_process(refund=refund_approve(refund=paid, actor=finance), actor=finance)
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = True
    assert refund_process(refund=refund_approve(refund=failed, actor=finance), actor=finance).status == "failed"
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("50.00")

    with pytest.raises(PermissionDeniedError) as refused:
        refund_approve(refund=pending, actor=finance)

    assert refused.value.code == "second_approver_required"
    assert paid.number in refused.value.message and failed.number in refused.value.message


def test_refunds_of_one_order_more_than_the_window_apart_do_not_add_up():
    order = paid_order()
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=31)):
        old = refund_request(order=order, actor=support, amount="30", reason="goodwill")
    new = refund_request(order=order, actor=support, amount="25", reason="goodwill")

    assert refund_approve(refund=new, actor=finance).status == "approved"
    assert refund_approve(refund=old, actor=finance).status == "approved"


def test_refunds_of_one_order_within_the_window_add_up_whichever_is_approved_first():
    order = paid_order()
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=29)):
        early = refund_request(order=order, actor=support, amount="30", reason="goodwill")
    late = refund_request(order=order, actor=support, amount="30", reason="goodwill")

    # The early one is refused too, although it was alone when it was requested.
    for refund in (early, late):
        with pytest.raises(PermissionDeniedError) as refused:
            refund_approve(refund=refund, actor=finance)
        assert refused.value.code == "second_approver_required"


# --- one customer, one day ----------------------------------------------------------------------


def _customer(n: int) -> dict:
    return {"email": f"split{n}@example.com", "first_name": "Sam", "last_name": "Split"}


def test_refunds_of_one_customer_on_several_orders_the_same_day_add_up():
    customer = _customer(1)
    one, two = paid_order(customer=customer), paid_order(customer=customer)
    other = paid_order()
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    first = refund_request(order=one, actor=support, amount="30", reason="goodwill")
    second = refund_request(order=two, actor=support, amount="30", reason="goodwill")
    unrelated = refund_request(order=other, actor=support, amount="30", reason="goodwill")

    with pytest.raises(PermissionDeniedError) as refused:
        refund_approve(refund=second, actor=finance)

    assert refused.value.code == "second_approver_required"
    assert first.number in refused.value.message and "the same customer" in refused.value.message
    assert refused.value.extra["customer_total"] == "60.00"
    assert refund_approve(refund=unrelated, actor=finance).status == "approved"


def test_the_customer_day_is_the_shops_calendar_day():
    customer = _customer(2)
    one, two, three = (paid_order(customer=customer) for _ in range(3))
    support, finance = finance_user(*REQUESTER), finance_user(*APPROVER)
    # 22:30 and 23:30 UTC on 10 January are the 10th and the 11th in Paris (UTC+1).
    with time_machine.travel(datetime.datetime(2026, 1, 10, 23, 30, tzinfo=PARIS)):
        late_evening = refund_request(order=one, actor=support, amount="30", reason="goodwill")
    with time_machine.travel(datetime.datetime(2026, 1, 11, 0, 30, tzinfo=PARIS)):
        after_midnight = refund_request(order=two, actor=support, amount="30", reason="goodwill")
    with time_machine.travel(datetime.datetime(2026, 1, 11, 23, 50, tzinfo=PARIS)):
        same_day = refund_request(order=three, actor=support, amount="30", reason="goodwill")

    assert refund_approve(refund=late_evening, actor=finance).status == "approved"
    with pytest.raises(PermissionDeniedError) as refused:
        refund_approve(refund=after_midnight, actor=finance)
    assert same_day.number in refused.value.message and "2026-01-11" in refused.value.message


# --- every kind of refund counts ------------------------------------------------------------------


def test_store_credit_and_compensation_vouchers_count_towards_the_limit():
    order = paid_order()
    seller = finance_user(*REQUESTER, "orders.cancel_order", "orders.cancel_paid_order")
    finance = finance_user(*APPROVER)
    mug = order.lines.get(sku="MUG-1")

    cancellation = seller_cancel_lines(order=order, actor=seller, quantities={mug.pk: 1}, compensation=Decimal("20"))
    credit = refund_request(order=order, actor=seller, amount="15", reason="goodwill", method="store_credit")

    # 12.00 back to the card, a 20.00 voucher on top and 15.00 of store credit: 47.00, not above 50.
    assert refund_approve(refund=cancellation.refund, actor=finance).status == "approved"
    extra = refund_request(order=order, actor=seller, amount="10", reason="compensation", method="voucher")
    for refund in (cancellation.compensation, credit, extra):
        with pytest.raises(PermissionDeniedError) as refused:
            refund_approve(refund=refund, actor=finance)
        assert "57.00 EUR within 30 days" in refused.value.message


# --- every entry point ---------------------------------------------------------------------------


def test_the_request_event_says_when_the_split_needs_a_second_approver():
    order = paid_order()
    support = finance_user(*REQUESTER)

    _split(order, support, "20", "20", "20")

    flags = list(
        OrderEvent.objects.filter(order=order, type="refund_requested")
        .order_by("pk")
        .values_list("payload__second_approver", flat=True)
    )
    assert flags == [False, False, True]


def test_the_api_refuses_the_split_and_shows_which_refunds_need_a_second_approver():
    order = paid_order()
    support = finance_user(*REQUESTER)
    finance = finance_user(*APPROVER, "orders.view_order")
    first, second = _split(order, support, "30", "30")
    api = APIClient()
    api.force_authenticate(finance)

    response = api.post(reverse("billing-refund-approve", args=[second.number]), {}, format="json")
    listed = api.get(reverse("billing-refund-list"), {"order": order.number})

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "second_approver_required"
    assert first.number in response.json()["message"]
    assert {row["number"]: row["needs_second_approver"] for row in listed.json()["results"]} == {
        first.number: True,
        second.number: True,
    }
    assert _status(second) == "requested"


def test_the_cockpit_action_refuses_the_split_with_the_reason(client):
    order = paid_order()
    support = finance_user(*REQUESTER)
    finance = finance_user(*APPROVER, "orders.view_order")
    refunds = _split(order, support, "30", "30")
    client.force_login(finance)
    url = reverse("admin:billing_refund_changelist")

    page = client.get(url)
    response = client.post(
        url, {"action": "approve_selected", "_selected_action": [r.pk for r in refunds]}, follow=True
    )

    assert page.content.decode().count("second approver") >= 2
    shown = [str(m) for m in response.context["messages"]]
    for refund in refunds:
        assert any(m.startswith(refund.number) and "60.00 EUR within 30 days" in m for m in shown), shown
        assert _status(refund) == "requested"


def test_the_refund_page_offers_the_approval_only_to_whom_the_rule_allows_and_says_why(client):
    order = paid_order()
    support = finance_user(*REQUESTER)
    finance, manager = finance_user(*APPROVER), finance_user(*MANAGER)
    first, second = _split(order, support, "30", "30")
    page_url = reverse("admin:billing_refund_change", args=[second.pk])
    approve_url = reverse("admin:billing_refund_approve", args=[second.pk])

    client.force_login(finance)
    page = client.get(page_url).content.decode()
    refused = client.post(approve_url, {"note": "looks fine"}, follow=True)

    assert approve_url not in page
    assert f"together with {first.number} on this order makes 60.00 EUR within 30 days, above 50.00 EUR" in page
    assert any("60.00 EUR within 30 days" in str(m) for m in refused.context["messages"])
    assert _status(second) == "requested"

    client.force_login(manager)
    assert approve_url in client.get(page_url).content.decode()
    client.post(approve_url, {"note": "checked"})
    assert (_status(second), Refund.objects.get(pk=second.pk).approved_by) == ("approved", manager)


# --- at the same moment --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_finance_users_approving_the_two_halves_at_the_same_moment_are_both_refused():
    order = paid_order()
    support = finance_user(*REQUESTER)
    approvers = [finance_user(*APPROVER), finance_user(*APPROVER)]
    halves = _split(order, support, "30", "30")

    results = run_together(2, lambda i: refund_approve(refund=halves[i].pk, actor=approvers[i]))

    assert all(isinstance(r, PermissionDeniedError) for r in results), results
    assert {r.code for r in results} == {"second_approver_required"}
    assert [_status(r) for r in halves] == ["requested", "requested"]


@pytest.mark.django_db(transaction=True)
def test_a_second_half_requested_while_the_first_is_approved_needs_the_manager():
    order = paid_order()
    support = finance_user(*REQUESTER)
    finance = finance_user(*APPROVER)
    first = refund_request(order=order, actor=support, amount="30", reason="goodwill")

    def work(i):
        if i == 0:
            return refund_approve(refund=first.pk, actor=finance)
        return refund_request(order=order.pk, actor=support, amount="30", reason="goodwill")

    approval, second = run_together(2, work)

    # The first half is approved when it was alone at that moment, refused when the second half
    # was already there; the second half always needs the manager.
    assert isinstance(second, Refund), second
    assert isinstance(approval, Refund) or getattr(approval, "code", None) == "second_approver_required", approval
    with pytest.raises(PermissionDeniedError):
        refund_approve(refund=second.pk, actor=finance)
    approved = Refund.objects.filter(order=order, status="approved")
    assert sum(r.amount for r in approved) <= Decimal("50.00")
