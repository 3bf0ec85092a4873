"""POST /api/v1/orders/{number}/{action}/: each action succeeds for its role and state, and is refused
otherwise without changing anything (409 for the state, 403 for the role, 400 for the body)."""

import datetime

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from oms.cockpit import roles
from orders.api.serializers import ACTIONS
from orders.choices import OrderEventType, OrderStatus
from orders.models import Customer, Order, OrderHold, OrderNote
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import error_of, order_state, order_url, post_action, token_client
from orders.tests.factories import make_user
from orders.tests.states import order_in_state

NEW_ADDRESS = {
    "name": "Ann Lee",
    "line1": "8 quai des Chartrons",
    "postal_code": "33000",
    "city": "Bordeaux",
    "country": "fr",
}


@pytest.fixture
def boss(admin_user_role):
    """Whoever brings orders into the state a test starts from (through the services)."""
    return admin_user_role


@pytest.fixture
def payer(channel):
    """The payment provider's API client: the one API role that records payments."""
    return token_client(make_user(roles.API_PAYMENT_PROVIDER, username="psp"))


@pytest.fixture
def role_client():
    """role_client(role) → (user, token client) for a new user in that role."""

    def _make(*role_names):
        user = make_user(*role_names)
        return user, token_client(user)

    return _make


def assert_refused(response, *, status: int, code: str, order: Order, before: dict) -> dict:
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code, error
    assert order_state(order) == before
    return error


def _order_on_hold(boss) -> Order:
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    post_action(token_client(boss), order, "hold", {"reason": "address_check"})
    return order


def last_event(order: Order):
    """The action's own event: the case events its detectors write follow it on the timeline."""
    return Order.objects.get(pk=order.pk).events.exclude(type__startswith="case_").order_by("id").last()


# --- submit -------------------------------------------------------------------------------------------


def test_submit_moves_a_draft_to_awaiting_payment(api_client, api_user, boss, channel):
    order = order_in_state(OrderStatus.DRAFT, actor=boss)

    response = post_action(api_client, order, "submit", {"reason": "Customer confirmed by phone"})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == OrderStatus.AWAITING_PAYMENT
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT
    event = last_event(order)
    assert (event.type, event.actor, event.reason) == (
        OrderEventType.SUBMITTED,
        api_user,
        "Customer confirmed by phone",
    )
    latest = order.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (api_user, "Customer confirmed by phone")


def test_submit_twice_is_409(api_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "submit")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_submit_by_the_warehouse_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.DRAFT, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "submit")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- approve ------------------------------------------------------------------------------------------


def test_approve_moves_an_order_to_awaiting_payment(role_client, boss, channel):
    order = order_in_state(OrderStatus.PENDING_APPROVAL, actor=boss)
    support, client = role_client(roles.SUPPORT_L2)

    response = post_action(client, order, "approve", {"reason": "Within the buyer's budget"})

    assert response.status_code == 200
    assert response.json()["status"] == OrderStatus.AWAITING_PAYMENT
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.APPROVED, support)


def test_approve_by_the_api_client_is_403(api_client, boss, channel):
    order = order_in_state(OrderStatus.PENDING_APPROVAL, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "approve")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_approve_an_order_that_needs_no_approval_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = post_action(client, order, "approve")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


# --- mark-paid ----------------------------------------------------------------------------------------


def test_mark_paid_in_full_confirms_the_order(payer, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)

    response = post_action(payer, order, "mark-paid", {"method": "transfer", "reference": "SEPA-1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payment_status"]) == (OrderStatus.CONFIRMED, "paid")
    assert body["totals"]["amount_paid"] == body["totals"]["gross"] == "64.45"
    assert (body["payment_method"], body["payment_reference"]) == ("transfer", "SEPA-1")
    assert [(e["type"], e["actor"]) for e in body["events"][-3:]] == [
        ("payment_recorded", "psp"),
        ("confirmed", "psp"),
        ("stock_allocated", "psp"),
    ]


def test_mark_paid_in_part_leaves_the_order_awaiting_the_balance(payer, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)

    response = post_action(payer, order, "mark-paid", {"amount": "20.00"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payment_status"]) == (OrderStatus.AWAITING_PAYMENT, "partially_paid")
    assert body["totals"]["amount_paid"] == "20.00"
    assert body["customer_label"] == "Partially paid — awaiting the balance"


def test_mark_paid_with_an_authorization_confirms_the_order(payer, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)

    response = post_action(payer, order, "mark-paid", {"captured": False})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payment_status"]) == (OrderStatus.CONFIRMED, "authorized")
    assert body["totals"]["amount_authorized"] == "64.45"


@pytest.mark.parametrize(
    ("body", "code"),
    [({"amount": "64.46"}, "overpayment"), ({"amount": "ten"}, "invalid"), ({"amount": "-1"}, "invalid")],
)
def test_mark_paid_with_a_bad_amount_is_400(payer, boss, channel, body, code):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    before = order_state(order)

    response = post_action(payer, order, "mark-paid", body)

    error = assert_refused(response, status=400, code=code, order=order, before=before)
    assert "amount" in error["extra"]["fields"]


def test_mark_paid_by_the_warehouse_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "mark-paid")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_mark_paid_on_a_paid_order_is_409_nothing_due(payer, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    before = order_state(order)

    response = post_action(payer, order, "mark-paid")

    assert_refused(response, status=409, code="nothing_due", order=order, before=before)


def test_mark_paid_on_a_canceled_order_is_409(payer, boss, channel):
    order = order_in_state(OrderStatus.CANCELED, actor=boss)
    before = order_state(order)

    response = post_action(payer, order, "mark-paid")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


# --- accept-on-terms ----------------------------------------------------------------------------------


def test_accept_on_terms_confirms_an_order_of_a_customer_with_terms(role_client, boss, channel):
    Customer.objects.create(email="buyer@acme.example", company_name="ACME", payment_terms_days=30)
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss, customer={"email": "buyer@acme.example"})
    finance, client = role_client(roles.FINANCE)

    response = post_action(client, order, "accept-on-terms", {"reason": "Net 30 account"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payment_status"], body["on_payment_terms"]) == ("confirmed", "on_terms", True)
    assert body["customer_label"] == "Confirmed — invoice to follow"
    event = order.events.get(type=OrderEventType.ACCEPTED_ON_TERMS)
    assert (event.actor, event.payload["terms_days"]) == (finance, 30)
    assert last_event(order).type == OrderEventType.STOCK_ALLOCATED


def test_accept_on_terms_without_terms_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, client = role_client(roles.FINANCE)
    before = order_state(order)

    response = post_action(client, order, "accept-on-terms")

    error = assert_refused(response, status=409, code="transition_condition_failed", order=order, before=before)
    assert error["extra"]["conditions"] == ["customer_has_terms"]


def test_accept_on_terms_by_support_is_403(role_client, boss, channel):
    Customer.objects.create(email="buyer@acme.example", payment_terms_days=30)
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss, customer={"email": "buyer@acme.example"})
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "accept-on-terms")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- flag-for-review and accept -----------------------------------------------------------------------


def test_flag_for_review_puts_the_order_under_review_with_its_score(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    support, client = role_client(roles.SUPPORT_L2)

    response = post_action(client, order, "flag-for-review", {"reason": "Card country differs", "risk_score": 85})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["risk_score"]) == ("under_review", 85)
    assert response.json()["customer_label"] == "Being processed"
    event = last_event(order)
    assert (event.type, event.actor, event.reason) == (
        OrderEventType.FLAGGED_FOR_REVIEW,
        support,
        "Card country differs",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": "  "}, "reason"), ({"reason": "x", "risk_score": 101}, "risk_score")],
)
def test_flag_for_review_needs_a_reason_and_a_score_up_to_100(role_client, boss, channel, body, field):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = post_action(client, order, "flag-for-review", body)

    assert response.status_code == 400
    assert field in error_of(response)["extra"]["fields"]
    assert order_state(order) == before


def test_flag_for_review_by_the_api_client_is_403(api_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "flag-for-review", {"reason": "Looks odd"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_flag_a_draft_for_review_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.DRAFT, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = post_action(client, order, "flag-for-review", {"reason": "Looks odd"})

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_accept_a_review_of_an_unpaid_order_returns_it_to_awaiting_payment(role_client, boss, channel):
    order = order_in_state(OrderStatus.UNDER_REVIEW, actor=boss)
    support, client = role_client(roles.SUPPORT_L2)

    response = post_action(client, order, "accept", {"reason": "Customer called back"})

    assert response.status_code == 200
    assert response.json()["status"] == OrderStatus.AWAITING_PAYMENT
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.REVIEW_ACCEPTED, support)


def test_accept_a_review_of_a_paid_order_confirms_it(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    post_action(client, order, "flag-for-review", {"reason": "Second look"})

    response = post_action(client, order, "accept")

    assert response.status_code == 200
    assert response.json()["status"] == OrderStatus.CONFIRMED


def test_accept_an_order_not_under_review_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = post_action(client, order, "accept")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_accept_by_the_warehouse_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.UNDER_REVIEW, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "accept")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- start-preparation ---------------------------------------------------------------------------------


def test_start_preparation_by_the_warehouse(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    warehouse_user, warehouse = role_client(roles.WAREHOUSE)

    response = post_action(warehouse, order, "start-preparation")

    assert response.status_code == 200
    assert response.json()["status"] == OrderStatus.IN_PREPARATION
    assert "record-shipment" in response.json()["allowed_actions"]
    started = order.events.get(type=OrderEventType.PREPARATION_STARTED)
    assert started.actor == warehouse_user
    # Then the reserved units were given their parcel, by the same user.
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.SHIPMENT_PLANNED, warehouse_user)


def test_start_preparation_with_an_active_hold_is_409(role_client, boss, channel):
    order = _order_on_hold(boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "start-preparation")

    error = assert_refused(response, status=409, code="transition_condition_failed", order=order, before=before)
    assert error["extra"]["conditions"] == ["has_no_active_hold"]


def test_start_preparation_of_an_unpaid_order_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "start-preparation")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_start_preparation_by_support_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "start-preparation")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- record-shipment and mark-delivered ---------------------------------------------------------------


def test_record_shipment_in_two_parcels(role_client, boss, channel):
    order = order_in_state(OrderStatus.IN_PREPARATION, actor=boss)
    warehouse_user, warehouse = role_client(roles.WAREHOUSE)
    mug = order.lines.get(line_number=1)

    first = post_action(warehouse, order, "record-shipment", {"quantities": {str(mug.pk): 1}, "reference": "PARCEL-1"})
    rest = post_action(warehouse, order, "record-shipment", {"reference": "PARCEL-2"})

    assert first.status_code == 200, first.content
    assert (first.json()["status"], first.json()["fulfillment_status"]) == ("partially_shipped", "partially_shipped")
    assert first.json()["lines"][0]["quantity_shipped"] == 1
    assert rest.status_code == 200
    assert (rest.json()["status"], rest.json()["fulfillment_status"]) == ("shipped", "shipped")
    assert all(line["quantity_open"] == 0 for line in rest.json()["lines"])
    events = list(order.events.filter(type=OrderEventType.SHIPMENT_RECORDED).values_list("payload", "actor"))
    assert [(payload["reference"], actor) for payload, actor in events] == [
        ("PARCEL-1", warehouse_user.pk),
        ("PARCEL-2", warehouse_user.pk),
    ]
    assert order.events.filter(type=OrderEventType.SHIPPED).count() == 1


@pytest.mark.parametrize(
    ("quantities", "field"),
    [({"LINE": 3}, "quantities.{mug}"), ({"999999": 1}, "quantities.999999"), ({"LINE": 0}, "quantities.{mug}")],
    ids=["more-than-ordered", "unknown-line", "zero"],
)
def test_record_shipment_of_bad_quantities_is_400(role_client, boss, channel, quantities, field):
    order = order_in_state(OrderStatus.IN_PREPARATION, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    mug = order.lines.get(line_number=1)
    body = {"quantities": {(str(mug.pk) if key == "LINE" else key): qty for key, qty in quantities.items()}}
    before = order_state(order)

    response = post_action(warehouse, order, "record-shipment", body)

    error = assert_refused(response, status=400, code="invalid_quantities", order=order, before=before)
    assert field.format(mug=mug.pk) in error["extra"]["fields"]


def test_record_shipment_of_an_order_not_in_preparation_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "record-shipment")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_record_shipment_of_an_order_on_hold_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.IN_PREPARATION, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    post_action(warehouse, order, "hold", {"reason": "stock_shortage"})
    before = order_state(order)

    response = post_action(warehouse, order, "record-shipment")

    assert_refused(response, status=409, code="order_on_hold", order=order, before=before)


def test_record_shipment_by_support_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.IN_PREPARATION, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = post_action(client, order, "record-shipment")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_mark_delivered_delivers_a_shipped_order(role_client, boss, channel):
    order = order_in_state(OrderStatus.SHIPPED, actor=boss)
    warehouse_user, warehouse = role_client(roles.WAREHOUSE)

    response = post_action(warehouse, order, "mark-delivered", {"reason": "Carrier scan"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["fulfillment_status"]) == ("delivered", "delivered")
    assert body["delivered_at"] is not None
    assert all(line["quantity_delivered"] == line["quantity"] for line in body["lines"])
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.DELIVERED, warehouse_user)


def test_mark_delivered_before_shipping_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.IN_PREPARATION, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "mark-delivered")

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


def test_mark_delivered_by_finance_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.SHIPPED, actor=boss)
    _, client = role_client(roles.FINANCE)
    before = order_state(order)

    response = post_action(client, order, "mark-delivered")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- complete ---------------------------------------------------------------------------------------------


def test_complete_after_the_return_window(role_client, boss, channel):
    order = order_in_state(OrderStatus.DELIVERED, actor=boss)
    finance, client = role_client(roles.FINANCE)

    with time_machine.travel(timezone.now() + datetime.timedelta(days=15)):
        response = post_action(client, order, "complete")

    assert response.status_code == 200
    assert response.json()["status"] == OrderStatus.COMPLETED
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.COMPLETED, finance)


def test_complete_within_the_return_window_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.DELIVERED, actor=boss)
    _, client = role_client(roles.FINANCE)
    before = order_state(order)

    response = post_action(client, order, "complete")

    error = assert_refused(response, status=409, code="transition_condition_failed", order=order, before=before)
    assert error["message"] == "The return window has not elapsed yet."


def test_complete_by_the_warehouse_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.DELIVERED, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    with time_machine.travel(timezone.now() + datetime.timedelta(days=15)):
        response = post_action(warehouse, order, "complete")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- cancel ------------------------------------------------------------------------------------------------


def test_the_store_front_may_not_cancel_a_paid_order(api_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "cancel", {"reason_code": "customer_request"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_cancel_a_paid_order_by_support_level_2(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    support2, client = role_client(roles.SUPPORT_L2)

    response = post_action(client, order, "cancel", {"reason_code": "out_of_stock", "reason": "Discontinued"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["fulfillment_status"], body["cancel_reason"]) == (
        "canceled",
        "canceled",
        "out_of_stock",
    )
    assert body["customer_label"] == "Canceled — refund in progress"
    assert body["allowed_actions"] == ["add-note", "add-tag", "remove-tag"]
    event = last_event(order)
    assert (event.type, event.actor, event.reason) == (OrderEventType.CANCELED, support2, "Discontinued")
    assert event.payload["refund_due"] == "64.4500"


def test_cancel_an_unpaid_order_by_support_level_1(role_client, boss, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)

    response = post_action(client, order, "cancel", {"reason_code": "customer_request"})

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"


@pytest.mark.parametrize("role", [roles.SUPPORT_L1, roles.WAREHOUSE, roles.FINANCE])
def test_cancel_a_paid_order_without_the_permission_is_403(role_client, boss, channel, role):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(role)
    before = order_state(order)

    response = post_action(client, order, "cancel", {"reason_code": "customer_request"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_cancel_a_shipped_order_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.SHIPPED, actor=boss)
    before = order_state(order)
    _, client = role_client(roles.SUPPORT_L2)

    response = post_action(client, order, "cancel", {"reason_code": "customer_request"})

    assert_refused(response, status=409, code="transition_not_allowed", order=order, before=before)


@pytest.mark.parametrize("body", [{}, {"reason_code": "changed_my_mind"}, {"reason_code": None}])
def test_cancel_needs_a_known_reason_code(api_client, boss, channel, body):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "cancel", body)

    error = assert_refused(response, status=400, code="invalid", order=order, before=before)
    assert "reason_code" in error["extra"]["fields"]


# --- holds ---------------------------------------------------------------------------------------------------


def test_hold_is_placed_with_201(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    support, client = role_client(roles.SUPPORT_L1)

    response = post_action(client, order, "hold", {"reason": "address_check", "note": "No street number"})

    assert response.status_code == 201
    [hold] = response.json()["holds"]
    assert (hold["reason"], hold["is_active"], hold["placed_by"], hold["note"]) == (
        "address_check",
        True,
        support.username,
        "No street number",
    )
    assert "start-preparation" not in response.json()["allowed_actions"]
    row = OrderHold.objects.get()
    assert (row.placed_by, row.released_at) == (support, None)
    assert row.history.latest().history_user == support
    assert (last_event(order).type, last_event(order).payload["hold"]) == (OrderEventType.HOLD_PLACED, row.pk)


def test_a_second_active_hold_for_the_same_reason_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    post_action(client, order, "hold", {"reason": "address_check"})
    before = order_state(order)

    response = post_action(client, order, "hold", {"reason": "address_check"})

    assert_refused(response, status=409, code="hold_exists", order=order, before=before)


def test_hold_a_shipped_order_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.SHIPPED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "hold", {"reason": "manual"})

    assert_refused(response, status=409, code="hold_not_allowed", order=order, before=before)


def test_hold_by_a_user_in_no_role_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client()
    before = order_state(order)

    response = post_action(client, order, "hold", {"reason": "manual"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_hold_with_an_unknown_reason_is_400(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "hold", {"reason": "bored"})

    error = assert_refused(response, status=400, code="invalid", order=order, before=before)
    assert "reason" in error["extra"]["fields"]


@pytest.fixture
def held_order(boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    post_action(token_client(boss), order, "hold", {"reason": "fraud_review", "note": "Card check"})
    return order, OrderHold.objects.get(order=order)


def _release_url(order: Order, hold_id: int) -> str:
    return order_url(order.number, f"holds/{hold_id}/release")


def test_release_a_hold(role_client, held_order):
    order, hold = held_order
    support, client = role_client(roles.SUPPORT_L2)

    response = client.post(_release_url(order, hold.pk), {"note": "Card owner confirmed"}, format="json")

    assert response.status_code == 200
    [shown] = response.json()["holds"]
    assert (shown["is_active"], shown["released_by"], shown["release_note"]) == (
        False,
        support.username,
        "Card owner confirmed",
    )
    assert "start-preparation" not in response.json()["allowed_actions"]  # support may not prepare
    hold.refresh_from_db()
    assert (hold.released_by, hold.release_note) == (support, "Card owner confirmed")
    assert hold.released_at is not None
    assert (last_event(order).type, last_event(order).actor) == (OrderEventType.HOLD_RELEASED, support)


def test_finance_may_not_release_a_hold(role_client, held_order):
    order, hold = held_order
    _, client = role_client(roles.FINANCE)
    before = order_state(order)

    response = client.post(_release_url(order, hold.pk), {"note": "Paid now"}, format="json")

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_release_a_released_hold_is_409(role_client, held_order):
    order, hold = held_order
    _, client = role_client(roles.SUPPORT_L2)
    client.post(_release_url(order, hold.pk), {"note": "OK"}, format="json")
    before = order_state(order)

    response = client.post(_release_url(order, hold.pk), {"note": "OK again"}, format="json")

    assert_refused(response, status=409, code="hold_already_released", order=order, before=before)


def test_release_needs_a_note(role_client, held_order):
    order, hold = held_order
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = client.post(_release_url(order, hold.pk), {}, format="json")

    # Refused by the API's input check (the schema says the note is required), before the service.
    error = assert_refused(response, status=400, code="invalid", order=order, before=before)
    assert error["extra"]["fields"] == {"note": ["This field is required."]}


def test_release_a_hold_of_another_order_is_404(role_client, held_order, boss):
    order, hold = held_order
    other = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L2)
    before = order_state(order)

    response = client.post(_release_url(other, hold.pk), {"note": "OK"}, format="json")
    unknown = client.post(_release_url(order, 999999), {"note": "OK"}, format="json")

    assert_refused(response, status=404, code="hold_not_found", order=order, before=before)
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "hold_not_found")


# --- notes and tags -------------------------------------------------------------------------------------------


def test_add_a_note(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    warehouse_user, warehouse = role_client(roles.WAREHOUSE)

    response = post_action(warehouse, order, "notes", {"body": "Fragile: double box"})

    assert response.status_code == 200
    note = OrderNote.objects.get(order=order)
    assert (note.author, note.body) == (warehouse_user, "Fragile: double box")
    event = last_event(order)
    assert (event.type, event.actor, event.payload["body"]) == (
        OrderEventType.NOTE_ADDED,
        warehouse_user,
        "Fragile: double box",
    )


@pytest.mark.parametrize("body", [{"body": "   "}, {"body": "x" * 5001}, {}, {"body": "ok", "reason": "extra"}])
def test_a_note_must_have_1_to_5000_characters_and_nothing_else(role_client, boss, channel, body):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, "notes", body)

    assert response.status_code == 400
    assert error_of(response)["extra"]["fields"]
    assert order_state(order) == before
    assert not OrderNote.objects.exists()


def test_a_note_by_a_user_in_no_role_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client()
    before = order_state(order)

    response = post_action(client, order, "notes", {"body": "Hello"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


def test_tag_and_untag(api_client, api_user, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)

    added = post_action(api_client, order, "tags/add", {"tag": " VIP ", "reason": "Big spender"})
    again = post_action(api_client, order, "tags/add", {"tag": "vip"})
    removed = post_action(api_client, order, "tags/remove", {"tag": "VIP"})
    removed_again = post_action(api_client, order, "tags/remove", {"tag": "VIP"})

    assert (added.status_code, again.status_code, removed.status_code, removed_again.status_code) == (200,) * 4
    assert added.json()["tags"] == again.json()["tags"] == ["vip"]
    assert removed.json()["tags"] == []
    events = list(
        order.events.filter(type__in=[OrderEventType.TAG_ADDED, OrderEventType.TAG_REMOVED]).values_list(
            "type", "actor", "reason"
        )
    )
    assert events == [
        (OrderEventType.TAG_ADDED, api_user.pk, "Big spender"),
        (OrderEventType.TAG_REMOVED, api_user.pk, ""),
    ]


@pytest.mark.parametrize("action", ["tags/add", "tags/remove"])
def test_tagging_by_the_warehouse_is_403(role_client, boss, channel, action):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss, tags=["vip"])
    _, warehouse = role_client(roles.WAREHOUSE)
    before = order_state(order)

    response = post_action(warehouse, order, action, {"tag": "vip"})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


@pytest.mark.parametrize("tag", ["", "   ", "x" * 41])
def test_a_tag_must_have_1_to_40_characters(api_client, boss, channel, tag):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    before = order_state(order)

    response = post_action(api_client, order, "tags/add", {"tag": tag})

    assert response.status_code == 400
    assert "tag" in error_of(response)["extra"]["fields"]
    assert order_state(order) == before


# --- change-address ---------------------------------------------------------------------------------------------


def test_change_the_shipping_address(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    support, client = role_client(roles.SUPPORT_L1)
    old_address = order.shipping_address

    response = post_action(
        client, order, "change-address", {"kind": "shipping", "address": NEW_ADDRESS, "reason": "Moved"}
    )

    assert response.status_code == 200
    assert response.json()["shipping_address"]["city"] == "Bordeaux"
    assert response.json()["shipping_address"]["country"] == "FR"
    assert response.json()["billing_address"] == old_address
    order.refresh_from_db()
    assert order.shipping_address["line1"] == "8 quai des Chartrons"
    assert order.history.latest().history_user == support
    event = last_event(order)
    assert (event.type, event.actor, event.reason) == (OrderEventType.ADDRESS_CHANGED, support, "Moved")
    assert (event.payload["before"], event.payload["after"]["city"]) == (old_address, "Bordeaux")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "shipping", "address": {**NEW_ADDRESS, "country": "XX"}}, "address.country"),
        ({"kind": "shipping", "address": {**NEW_ADDRESS, "line1": ""}}, "address.line1"),
        ({"kind": "delivery", "address": NEW_ADDRESS}, "kind"),
        ({"kind": "shipping"}, "address"),
        ({"kind": "shipping", "address": "Bordeaux"}, "address"),
    ],
)
def test_change_address_with_a_bad_address_is_400(role_client, boss, channel, body, field):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "change-address", body)

    assert response.status_code == 400
    assert field in error_of(response)["extra"]["fields"], error_of(response)
    assert order_state(order) == before


def test_change_the_address_of_a_shipped_order_is_409(role_client, boss, channel):
    order = order_in_state(OrderStatus.PARTIALLY_SHIPPED, actor=boss)
    _, client = role_client(roles.SUPPORT_L1)
    before = order_state(order)

    response = post_action(client, order, "change-address", {"kind": "shipping", "address": NEW_ADDRESS})

    assert_refused(response, status=409, code="address_change_not_allowed", order=order, before=before)


def test_change_address_by_finance_is_403(role_client, boss, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    _, client = role_client(roles.FINANCE)
    before = order_state(order)

    response = post_action(client, order, "change-address", {"kind": "shipping", "address": NEW_ADDRESS})

    assert_refused(response, status=403, code="permission_denied", order=order, before=before)


# --- every action ------------------------------------------------------------------------------------------------

ACTION_PATHS = [
    "submit",
    "approve",
    "mark-paid",
    "accept-on-terms",
    "flag-for-review",
    "accept",
    "start-preparation",
    "record-shipment",
    "mark-delivered",
    "complete",
    "cancel",
    "hold",
    "holds/{hold}/release",
    "notes",
    "tags/add",
    "tags/remove",
    "change-address",
]


@pytest.mark.parametrize("action", ACTION_PATHS)
def test_every_action_on_an_unknown_order_is_404(api_client, channel, action):
    response = post_action(api_client, "ORD-1999-000001", action.format(hold=1), {})

    assert response.status_code == 404
    assert error_of(response)["code"] == "order_not_found"


@pytest.mark.parametrize("action", ACTION_PATHS)
@pytest.mark.parametrize(
    "body",
    ['["a list"]', '"text"', "42", '{"reason": ', '{"unknown": 1}'],
    ids=["list", "text", "number", "cut", "field"],
)
def test_every_action_refuses_a_body_that_is_not_its_object_with_400(api_client, boss, channel, action, body):
    order = _order_on_hold(boss)
    hold = order.holds.get()
    before = order_state(order)

    response = api_client.post(
        order_url(order.number, action.format(hold=hold.pk)), body, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert error_of(response)["code"] in {"invalid", "parse_error"}
    assert order_state(order) == before


@pytest.mark.parametrize("action", ACTION_PATHS)
def test_every_action_needs_authentication_and_json(api_client, boss, channel, action):
    order = _order_on_hold(boss)
    url = order_url(order.number, action.format(hold=order.holds.get().pk))
    before = order_state(order)

    unauthenticated = APIClient().post(url, {}, format="json")
    form = api_client.post(url, {"reason": "x"}, format="multipart")

    assert (unauthenticated.status_code, error_of(unauthenticated)["code"]) == (401, "not_authenticated")
    assert (form.status_code, error_of(form)["code"]) == (415, "unsupported_media_type")
    assert order_state(order) == before


# --- allowed_actions tells the truth --------------------------------------------------------------------------


def _try_body(action: str, order: Order) -> tuple[str, dict]:
    """The URL suffix and a valid body for each action name of allowed_actions."""
    bodies = {
        "flag-for-review": {"reason": "Check"},
        "cancel": {"reason_code": "other"},
        "hold": {"reason": "manual"},
        "add-note": {"body": "Note"},
        "add-tag": {"tag": "probe"},
        "remove-tag": {"tag": "probe"},
        "change-address": {"kind": "shipping", "address": NEW_ADDRESS},
        "release-hold": {"note": "Done"},
    }
    paths = {"add-note": "notes", "add-tag": "tags/add", "remove-tag": "tags/remove"}
    if action == "release-hold":
        hold = order.holds.filter(released_at__isnull=True).first()
        paths["release-hold"] = f"holds/{hold.pk if hold else 1}/release"
    return paths.get(action, action), bodies.get(action, {})


STATES = [
    OrderStatus.DRAFT,
    OrderStatus.PENDING_APPROVAL,
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.UNDER_REVIEW,
    OrderStatus.CONFIRMED,
    "confirmed_on_hold",
    OrderStatus.IN_PREPARATION,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.CANCELED,
]
ROLES = [*roles.API_ROLES, roles.SUPPORT_L1, roles.SUPPORT_L2, roles.WAREHOUSE, roles.FINANCE_MANAGER]


@pytest.mark.parametrize("state", STATES)
def test_allowed_actions_are_exactly_the_actions_that_succeed(boss, channel, state):
    """For each role, every action the detail lists succeeds and every other one is refused.

    Each attempt runs in a savepoint rolled back afterwards, so all start from the same order.
    """
    order = _order_on_hold(boss) if state == "confirmed_on_hold" else order_in_state(state, actor=boss)
    mismatches = []
    for role in ROLES:
        client = token_client(make_user(role))
        allowed = client.get(order_url(order.number)).json()["allowed_actions"]
        for action in ACTIONS:
            path, body = _try_body(action, order)
            with transaction.atomic():
                response = post_action(client, order, path, body)
                transaction.set_rollback(True)
            succeeded = response.status_code in {200, 201}
            if succeeded != (action in allowed) or response.status_code >= 500:
                mismatches.append((role, action, action in allowed, response.status_code, response.json()))
    assert mismatches == []
