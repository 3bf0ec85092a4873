"""Seller cancellation (a stock-out after payment) from the order page of the cockpit and the API:
the same service (billing.services.refunds.seller_cancel_lines), its refusals shown, never a 500."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import Refund
from billing.tests.refund_support import REQUESTER, finance_user, paid_order
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db

SELLER = (*REQUESTER, "orders.view_order", "orders.cancel_order", "orders.cancel_paid_order")
LABEL = "Seller cancellation (stock-out)"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("50.00")
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def _action_url(order):
    return reverse("admin:orders_order_action", args=[order.pk, "seller_cancel"])


def _api_url(order):
    return reverse("billing-order-seller-cancellation", args=[order.number])


def _messages(response) -> list[str]:
    """The flash messages: on the page shown (200), or kept for the next one (redirect)."""
    if response.status_code == 200:
        return [response.content.decode()]
    return [str(m) for m in get_messages(response.wsgi_request)]


def _form(order, extra=None, **by_sku) -> dict:
    data = {f"line_{line.pk}": by_sku.get(line.sku.replace("-", "_"), 0) for line in order.lines.all()}
    return {**data, **(extra or {})}


# --- cockpit -------------------------------------------------------------------------------------


def test_the_order_page_offers_the_seller_cancellation_and_the_form_cancels_and_requests_the_refunds(client):
    order = paid_order()
    client.force_login(finance_user(*SELLER))
    mug = order.lines.get(sku="MUG-1")

    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200 and LABEL in page.content.decode() and _action_url(order) in page.content.decode()
    form = client.get(_action_url(order))
    assert form.status_code == 200
    assert f'name="line_{mug.pk}"' in form.content.decode() and 'name="compensation"' in form.content.decode()

    lines = {f"line_{line.pk}": 0 for line in order.lines.all()}
    response = client.post(_action_url(order), {**lines, f"line_{mug.pk}": 2, "compensation": "5", "reason": "broken"})

    assert response.status_code == 302
    mug.refresh_from_db()
    assert mug.quantity_canceled == 2
    refunds = {r.reason: (r.amount, r.method, r.status) for r in Refund.objects.filter(order=order)}
    assert refunds == {
        "seller_cancellation": (Decimal("24.00"), "original", "requested"),
        "compensation": (Decimal("5.00"), "voucher", "requested"),
    }
    assert any("refund awaits approval" in m for m in _messages(response))


def test_the_cockpit_hides_the_action_and_refuses_it_without_the_refund_permission(client):
    order = paid_order()
    client.force_login(finance_user("orders.view_order", "orders.cancel_order", "orders.cancel_paid_order"))
    mug = order.lines.get(sku="MUG-1")

    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200 and LABEL not in page.content.decode()
    assert client.get(_action_url(order)).status_code == 302  # not available: back to the order

    response = client.post(_action_url(order), _form(order, {"reason": "x"}, MUG_1=1))

    assert response.status_code == 200
    assert any("permission" in m for m in _messages(response))
    mug.refresh_from_db()
    assert mug.quantity_canceled == 0 and not Refund.objects.filter(order=order).exists()


def test_the_cockpit_hides_the_action_without_the_paid_cancel_permission(client):
    order = paid_order()
    client.force_login(finance_user(*REQUESTER, "orders.view_order", "orders.cancel_order"))

    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert page.status_code == 200 and LABEL not in page.content.decode()
    response = client.post(_action_url(order), _form(order, MUG_1=1))
    assert response.status_code == 200 and any("permission" in m for m in _messages(response))
    assert not Refund.objects.filter(order=order).exists()


def test_the_cockpit_form_shows_nothing_chosen_and_too_many_units_as_errors(client):
    order = paid_order()
    client.force_login(finance_user(*SELLER))
    nothing = client.post(_action_url(order), _form(order))
    too_many = client.post(_action_url(order), _form(order, MUG_1=3))
    bad_compensation = client.post(_action_url(order), _form(order, {"compensation": "-1"}, MUG_1=1))

    assert (nothing.status_code, too_many.status_code, bad_compensation.status_code) == (200, 200, 200)
    assert "errornote" in nothing.content.decode()
    assert "errors" in too_many.content.decode() and "errors" in bad_compensation.content.decode()
    assert not Refund.objects.filter(order=order).exists()


def test_the_action_is_not_offered_once_nothing_is_open(client):
    order = paid_order()
    user = finance_user(*SELLER)
    client.force_login(user)
    everything = {f"line_{line.pk}": line.quantity for line in order.lines.all()}
    assert client.post(_action_url(order), everything).status_code == 302

    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert page.status_code == 200 and LABEL not in page.content.decode()
    order.refresh_from_db()
    assert order.status == "canceled"
    assert Refund.objects.get(order=order, reason="seller_cancellation").amount == order.total_gross


# --- API -----------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_cancels_by_line_number_and_a_retry_with_the_same_key_changes_nothing():
    order = paid_order()
    api = _api(finance_user(*SELLER))
    mug = order.lines.get(sku="MUG-1")
    body = {"quantities": {str(mug.line_number): 1}, "compensation": "3.50", "reason": "stock-out"}

    first = api.post(_api_url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="sc-1")
    again = api.post(_api_url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="sc-1")

    assert first.status_code == 201, first.content
    assert again.status_code == 201 and again.json() == first.json()
    data = first.json()
    assert data["order"] == order.number
    assert (data["refund"]["amount"], data["refund"]["reason"], data["refund"]["status"]) == (
        "12.00",
        "seller_cancellation",
        "requested",
    )
    assert (data["compensation"]["amount"], data["compensation"]["method"]) == ("3.50", "voucher")
    mug.refresh_from_db()
    assert mug.quantity_canceled == 1
    assert Refund.objects.filter(order=order).count() == 2
    assert OrderEvent.objects.filter(order=order, type="lines_canceled").count() == 1


def test_the_api_refuses_without_permission_with_403():
    order = paid_order()
    mug = order.lines.get(sku="MUG-1")
    body = {"quantities": {str(mug.line_number): 1}}

    no_refund = _api(finance_user("orders.cancel_order", "orders.cancel_paid_order")).post(
        _api_url(order), body, format="json"
    )
    no_paid_cancel = _api(finance_user(*REQUESTER, "orders.cancel_order")).post(_api_url(order), body, format="json")

    assert (no_refund.status_code, no_paid_cancel.status_code) == (403, 403)
    mug.refresh_from_db()
    assert mug.quantity_canceled == 0 and not Refund.objects.filter(order=order).exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"quantities": {"99": 1}}, "quantities.99"),
        ({"quantities": {"x": 1}}, "quantities.x"),
        ({"quantities": {"1": 0}}, "quantities"),
        ({"quantities": {"1": 5}}, "quantities"),
        ({"quantities": {}}, "quantities"),
        ({"quantities": {"1": 1}, "compensation": "-2"}, "compensation"),
        ({"quantities": {"1": 1}, "compensation": "abc"}, "compensation"),
        ({"quantities": {"1": 1}, "extra": True}, "extra"),
        ({}, "quantities"),
    ],
)
def test_the_api_answers_bad_input_with_400_never_500(body, field):
    order = paid_order()

    response = _api(finance_user(*SELLER)).post(_api_url(order), body, format="json")

    assert response.status_code == 400, response.content
    assert any(key.startswith(field) for key in response.json()["extra"]["fields"]), response.json()
    assert not Refund.objects.filter(order=order).exists()


def test_the_api_answers_404_for_an_unknown_order_and_409_once_nothing_can_be_canceled():
    order = paid_order()
    api = _api(finance_user(*SELLER))
    everything = {str(line.line_number): line.quantity for line in order.lines.all()}

    assert (
        api.post(
            "/api/v1/billing/orders/NOPE-1/seller-cancellation/", {"quantities": {"1": 1}}, format="json"
        ).status_code
        == 404
    )
    assert api.post(_api_url(order), {"quantities": everything}, format="json").status_code == 201
    again = api.post(_api_url(order), {"quantities": {"1": 1}}, format="json")

    assert again.status_code in (400, 409), again.content
