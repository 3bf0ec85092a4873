import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import Payment, Refund, RefundStatus
from billing.services.invoices import credit_note_issue
from billing.services.refunds import (
    RefundRefused,
    refund_approve,
    refund_process,
    refund_reject,
    refund_request,
    seller_cancel_lines,
)
from billing.tests.refund_support import (
    APPROVER,
    MANAGER,
    REQUESTER,
    delivered_order_with_invoice,
    finance_user,
    paid_order,
)
from integrations.models import Notification
from integrations.services import notification_render
from inventory.models import StockItem
from oms.core.actors import get_system_user
from oms.core.errors import PermissionDeniedError, ValidationError
from oms.core.testing import run_together
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("50.00")
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = False
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def _events(order, prefix="refund_"):
    return list(OrderEvent.objects.filter(order=order, type__startswith=prefix).values_list("type", flat=True))


# --- the whole path ------------------------------------------------------------------------------


def test_a_refund_is_requested_approved_by_another_person_and_paid_back_to_the_card():
    order = paid_order()
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)

    refund = refund_request(order=order, actor=requester, amount="20", reason="goodwill", note="late parcel")
    assert (refund.status, refund.amount, refund.currency, refund.method) == (
        "requested",
        Decimal("20.00"),
        "EUR",
        "original",
    )
    assert refund.number.startswith("RFD-") and refund.payment == order.payments.get()

    refund_approve(refund=refund, actor=approver)
    refund = refund_process(refund=refund.number, actor=approver)

    assert refund.status == RefundStatus.PROCESSED and refund.provider_reference.startswith("SBXR-")
    assert refund.approved_by == approver and refund.processed_at is not None
    payment = Payment.objects.get(order=order)
    assert (payment.amount_refunded, payment.status) == (Decimal("20.0000"), "partially_refunded")
    order.refresh_from_db()
    assert (order.amount_refunded, order.payment_status) == (Decimal("20.0000"), "partially_refunded")
    assert _events(order) == ["refund_requested", "refund_approved", "refund_processed"]
    assert [(h.status, h.history_user) for h in refund.history.order_by("history_id")] == [
        ("requested", requester),
        ("approved", approver),
        ("processed", approver),
    ]


def test_a_refund_above_what_was_captured_is_refused_and_nothing_is_kept():
    order = paid_order()
    requester = finance_user(*REQUESTER)
    refund_request(order=order, actor=requester, amount="60", reason="goodwill")

    with pytest.raises(ValidationError) as refused:
        refund_request(order=order, actor=requester, amount="4.46", reason="goodwill")

    assert refused.value.code == "refund_exceeds_captured"
    assert refused.value.extra["fields"]["amount"] == ["At most 4.45 EUR."]
    assert Refund.objects.filter(order=order).count() == 1


def test_a_rejected_refund_frees_its_amount():
    order = paid_order()
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    first = refund_request(order=order, actor=requester, amount="64.45", reason="goodwill")

    refund_reject(refund=first, actor=approver, reason="not justified")
    second = refund_request(order=order, actor=requester, amount="64.45", reason="pricing_error")

    assert Refund.objects.get(pk=first.pk).status == "rejected" and second.status == "requested"


def test_requesting_needs_the_permission_and_a_positive_amount():
    order = paid_order()
    with pytest.raises(PermissionDeniedError):
        refund_request(order=order, actor=finance_user(*APPROVER), amount="5", reason="goodwill")
    with pytest.raises(ValidationError) as invalid:
        refund_request(order=order, actor=finance_user(*REQUESTER), amount="0", reason="nope", method="cash")
    assert set(invalid.value.extra["fields"]) == {"amount", "reason", "method"}
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_refunds_of_60_percent_requested_at_the_same_moment_exactly_one_is_accepted():
    order = paid_order()
    sixty = (order.total_gross * Decimal("0.6")).quantize(Decimal("0.01"))
    users = [finance_user(*REQUESTER), finance_user(*REQUESTER)]

    results = run_together(2, lambda i: refund_request(order=order.pk, actor=users[i], amount=sixty, reason="goodwill"))

    accepted = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(accepted) == 1 and len(refused) == 1, results
    assert refused[0].code == "refund_exceeds_captured"
    assert list(Refund.objects.filter(order=order).values_list("amount", flat=True)) == [sixty]


# --- the approval rules, through every entry point -----------------------------------------------


def test_nobody_approves_their_own_refund_even_below_the_threshold():
    order = paid_order()
    everything = finance_user(*REQUESTER, *MANAGER)
    refund = refund_request(order=order, actor=everything, amount="10", reason="goodwill")

    with pytest.raises(PermissionDeniedError) as refused:
        refund_approve(refund=refund, actor=everything)

    assert refused.value.code == "approver_is_requester"
    assert Refund.objects.get(pk=refund.pk).status == "requested"


def test_above_the_threshold_only_a_finance_manager_other_than_the_requester_approves():
    order = paid_order()
    requester = finance_user(*REQUESTER, *MANAGER)
    approver, manager = finance_user(*APPROVER), finance_user(*MANAGER)
    refund = refund_request(order=order, actor=requester, amount="60", reason="goodwill")

    with pytest.raises(PermissionDeniedError) as own:
        refund_approve(refund=refund, actor=requester)
    with pytest.raises(PermissionDeniedError) as plain:
        refund_approve(refund=refund, actor=approver)
    approved = refund_approve(refund=refund, actor=manager)

    assert (own.value.code, plain.value.code) == ("approver_is_requester", "second_approver_required")
    assert (approved.status, approved.approved_by) == ("approved", manager)


def _large_refund_of_a_manager():
    order = paid_order()
    requester = finance_user(*REQUESTER, *MANAGER, "orders.view_order")
    return requester, refund_request(order=order, actor=requester, amount="60", reason="goodwill")


def test_the_api_refuses_the_requester_approving_their_own_refund():
    requester, refund = _large_refund_of_a_manager()
    client = APIClient()
    client.force_authenticate(requester)

    response = client.post(reverse("billing-refund-approve", args=[refund.number]), {}, format="json")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "approver_is_requester"
    assert Refund.objects.get(pk=refund.pk).status == "requested"


def test_the_cockpit_action_refuses_the_requester_approving_their_own_refund(client):
    requester, refund = _large_refund_of_a_manager()
    client.force_login(requester)

    response = client.post(
        reverse("admin:billing_refund_changelist"),
        {"action": "approve_selected", "_selected_action": [refund.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any(refund.number in m and "another person must approve it" in m for m in shown), shown
    assert Refund.objects.get(pk=refund.pk).status == "requested"


def test_the_command_refuses_the_requester_approving_their_own_refund():
    requester, refund = _large_refund_of_a_manager()

    with pytest.raises(CommandError, match="approver_is_requester"):
        call_command("refund_approve", refund.number, "--as", requester.username, stdin=io.StringIO("pw\n"))

    assert Refund.objects.get(pk=refund.pk).status == "requested"


def test_the_command_approves_as_another_finance_manager(capsys):
    _requester, refund = _large_refund_of_a_manager()
    manager = finance_user(*MANAGER)

    call_command("refund_approve", refund.number, "--as", manager.username, stdin=io.StringIO("pw\n"))

    assert Refund.objects.get(pk=refund.pk).approved_by == manager
    assert f"Refund {refund.number} approved" in capsys.readouterr().out


def test_the_cockpit_queue_approves_another_persons_refund(client):
    _requester, refund = _large_refund_of_a_manager()
    manager = finance_user(*MANAGER)
    client.force_login(manager)

    page = client.get(reverse("admin:billing_refund_changelist"))
    assert page.status_code == 200 and refund.number in page.content.decode()
    client.post(
        reverse("admin:billing_refund_changelist"), {"action": "approve_selected", "_selected_action": [refund.pk]}
    )

    assert Refund.objects.get(pk=refund.pk).status == "approved"


# --- processing ----------------------------------------------------------------------------------


def test_processing_twice_pays_once():
    order = paid_order()
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    refund = refund_request(order=order, actor=requester, amount="30", reason="shipping_fee")
    refund_approve(refund=refund, actor=approver)

    first = refund_process(refund=refund, actor=approver)
    again = refund_process(refund=refund, actor=approver)

    assert again.status == "processed" and again.provider_reference == first.provider_reference
    assert Payment.objects.get(order=order).amount_refunded == Decimal("30")
    order.refresh_from_db()
    assert order.amount_refunded == Decimal("30")
    assert _events(order).count("refund_processed") == 1


def test_a_provider_failure_is_recorded_and_the_refund_can_be_processed_again(settings):
    order = paid_order()
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    refund = refund_approve(
        refund=refund_request(order=order, actor=requester, amount="15", reason="goodwill"), actor=approver
    )
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = True

    failed = refund_process(refund=refund, actor=approver)

    assert failed.status == "failed" and "refused" in failed.failure_reason
    assert Payment.objects.get(order=order).amount_refunded == 0
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = False
    retried = refund_process(refund=refund, actor=approver)
    assert (retried.status, retried.failure_reason) == ("processed", "")
    assert Payment.objects.get(order=order).amount_refunded == Decimal("15")
    assert _events(order) == ["refund_requested", "refund_approved", "refund_failed", "refund_processed"]


def test_an_unapproved_refund_is_not_processed():
    order = paid_order()
    refund = refund_request(order=order, actor=finance_user(*REQUESTER), amount="5", reason="goodwill")
    with pytest.raises(RefundRefused) as refused:
        refund_process(refund=refund, actor=finance_user(*APPROVER))
    assert refused.value.code == "refund_not_approved"


# --- API -----------------------------------------------------------------------------------------


def test_the_api_requests_approves_processes_and_lists_refunds():
    order = paid_order()
    requester = finance_user(*REQUESTER)
    approver = finance_user(*APPROVER)
    api = APIClient()
    api.force_authenticate(requester)

    created = api.post(
        reverse("billing-order-refund-request", args=[order.number]),
        {"amount": "12.50", "reason": "pricing_error", "method": "original", "note": "wrong price"},
        format="json",
    )
    assert created.status_code == 201, created.content
    number = created.json()["number"]
    assert created.json()["status"] == "requested" and created.json()["amount"] == "12.50"
    too_much = api.post(
        reverse("billing-order-refund-request", args=[order.number]),
        {"amount": "60", "reason": "goodwill"},
        format="json",
    )
    assert too_much.status_code == 400 and too_much.json()["code"] == "refund_exceeds_captured"

    api.force_authenticate(approver)
    assert api.post(reverse("billing-refund-approve", args=[number]), {}, format="json").status_code == 200
    processed = api.post(reverse("billing-refund-process", args=[number]), {}, format="json")
    assert processed.status_code == 200 and processed.json()["status"] == "processed"
    assert api.post(reverse("billing-refund-reject", args=[number]), {}, format="json").status_code == 409

    refund_request(order=order, actor=requester, amount="1", reason="goodwill")
    with CaptureQueriesContext(connection) as queries:
        listed = api.get(reverse("billing-refund-list"), {"status": "requested"})
    assert listed.status_code == 200
    assert [row["status"] for row in listed.json()["results"]] == ["requested"]
    assert len(queries) <= 6
    assert api.get(reverse("billing-refund-list"), {"status": "bogus"}).status_code == 400


# --- seller cancellation -------------------------------------------------------------------------


def test_a_seller_cancellation_cancels_the_lines_releases_stock_requests_refunds_and_tells_the_customer():
    order = paid_order()
    support = finance_user(*REQUESTER, "orders.cancel_order", "orders.cancel_paid_order")
    mug = order.lines.get(sku="MUG-1")
    reserved_before = StockItem.objects.get(product__sku="MUG-1").reserved

    result = seller_cancel_lines(
        order=order, actor=support, quantities={mug.pk: 2}, compensation=Decimal("5"), reason="broken in stock"
    )

    mug.refresh_from_db()
    assert mug.quantity_canceled == 2
    assert StockItem.objects.get(product__sku="MUG-1").reserved == reserved_before - 2
    assert (result.refund.amount, result.refund.reason, result.refund.status) == (
        Decimal("24.00"),
        "seller_cancellation",
        "requested",
    )
    assert (result.compensation.amount, result.compensation.method, result.compensation.reason) == (
        Decimal("5.00"),
        "voucher",
        "compensation",
    )
    message = Notification.objects.get(order_number=order.number, kind="seller_cancellation")
    assert message.data["items"] == [{"sku": "MUG-1", "name": "Mug", "quantity": 2}]

    subject, text, html = notification_render(message)
    assert "no longer available" in subject and "2 × Mug" in text and "24.00 EUR" in text and "5.00 EUR" in html


def test_a_seller_cancellation_of_everything_refunds_the_shipping_too():
    order = paid_order()
    support = finance_user(*REQUESTER, "orders.cancel_order", "orders.cancel_paid_order")

    result = seller_cancel_lines(
        order=order, actor=support, quantities={line.pk: line.quantity for line in order.lines.all()}
    )

    assert result.order.status == "canceled"
    assert result.refund.amount == order.total_gross and result.compensation is None


def test_a_processed_refund_of_an_invoiced_order_is_tied_to_a_credit_note():
    order, _payment, invoice = delivered_order_with_invoice()
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    refund = refund_request(order=order, actor=requester, amount="10", reason="goodwill")
    refund_approve(refund=refund, actor=approver)

    refund = refund_process(refund=refund, actor=approver)

    note = refund.credit_note
    assert note is not None and note.invoice == invoice and note.total_gross == Decimal("10")
    assert note.reason == "goodwill" and refund.number in note.note
    # A refund that pays out a credit note issued before (by a return) reuses it, up to its amount.

    returned = credit_note_issue(invoice=invoice, actor=get_system_user(), reason="return", amount="11")
    second = refund_request(order=order, actor=requester, amount="4", reason="return", credit_note=returned)
    with pytest.raises(ValidationError) as too_much:
        refund_request(order=order, actor=requester, amount="7.01", reason="return", credit_note=returned)
    assert too_much.value.code == "refund_exceeds_credit_note"
    refund_approve(refund=second, actor=approver)
    assert refund_process(refund=second, actor=approver).credit_note == returned


def test_the_cockpit_rejects_refunds_with_a_reason(client):
    _requester, refund = _large_refund_of_a_manager()
    client.force_login(finance_user(*APPROVER))
    url = reverse("admin:billing_refund_changelist")

    form = client.post(url, {"action": "reject_selected", "_selected_action": [refund.pk]})
    assert form.status_code == 200 and refund.number in form.content.decode()
    client.post(url, {"action": "reject_selected", "_selected_action": [refund.pk], "post": "yes", "reason": "dup"})

    refund.refresh_from_db()
    assert (refund.status, refund.failure_reason) == ("rejected", "dup")
    assert refund.history.latest().history_change_reason == "dup"


def test_the_refund_queue_runs_the_same_queries_for_few_or_many_refunds(client):
    manager = finance_user(*MANAGER, "orders.view_order")
    client.force_login(manager)
    url = reverse("admin:billing_refund_changelist")

    def queries_with(count):
        requester = finance_user(*REQUESTER)
        for _ in range(count):
            refund_request(order=paid_order(), actor=requester, amount="60", reason="goodwill")
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries_with(1) == queries_with(4)
