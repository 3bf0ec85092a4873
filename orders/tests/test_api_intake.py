"""POST /api/v1/orders/: intake by an integration authenticated with its API token."""

import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from inventory.models import Location
from oms.cockpit import roles
from oms.core.testing import run_together
from orders.choices import OrderEventType, OrderStatus, PaymentStatus
from orders.models import Customer, Order, OrderLine
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import (
    ORDERS_URL,
    error_of,
    row_counts,
    token_client,
)
from orders.tests.factories import make_user, order_payload


def test_a_valid_order_is_created_submitted_and_confirmed(api_client, api_user, channel):
    payload = order_payload(external_id="shop-1001", tags=["VIP"], note="Leave at the door")

    response = api_client.post(ORDERS_URL, payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get()
    assert body["number"] == order.number
    assert body["channel"] == "web"
    assert body["external_id"] == "shop-1001"
    assert body["status"] == OrderStatus.CONFIRMED
    assert body["payment_status"] == PaymentStatus.PAID
    assert body["fulfillment_status"] == "unfulfilled"
    assert body["customer_label"] == "Confirmed"
    assert body["customer"] == {"email": payload["customer"]["email"], "name": "Ann Lee"}
    assert body["tags"] == ["vip"]
    assert body["totals"] == {
        "net": "54.91",
        "tax": "9.54",
        "gross": "64.45",
        "discount": "0.00",
        "shipping": "4.90",
        "shipping_net": "4.08",
        "shipping_tax": "0.82",
        "amount_paid": "64.45",
        "amount_authorized": "0.00",
        "amount_refunded": "0.00",
    }
    assert [line["sku"] for line in body["lines"]] == ["MUG-1", "TEE-1", "BOOK-1"]
    # Tax-inclusive 2 × 12.00 at 20 %: 24.00 gross is 20.00 net + 4.00 tax.
    expected_line = {
        "line_number": 1,
        "quantity": 2,
        "unit_price": "12.00",
        "tax_rate": "0.200000",
        "total_net": "20.00",
        "tax_amount": "4.00",
        "total_gross": "24.00",
        "quantity_open": 2,
        "quantity_shipped": 0,
        "quantity_delivered": 0,
        "quantity_canceled": 0,
    }
    assert {key: body["lines"][0][key] for key in expected_line} == expected_line
    assert [(e["type"], e["actor"]) for e in body["events"]] == [
        ("imported", "api"),
        ("submitted", "api"),
        ("payment_recorded", "api"),
        ("confirmed", "api"),
        ("stock_allocated", "api"),
    ]
    # What is left to the store front that imported it: no preparation, no canceling a paid order.
    assert body["allowed_actions"] == ["add-note", "add-tag", "remove-tag", "change-address"]

    # The rows: one order, three lines, one customer, the events and history by the API user.
    assert order.status == OrderStatus.CONFIRMED
    assert (order.total_net, order.total_tax, order.total_gross) == (
        Decimal("54.91"),
        Decimal("9.54"),
        Decimal("64.45"),
    )
    assert order.amount_paid == Decimal("64.45")
    line = order.lines.get(line_number=1)
    assert (line.total_net, line.tax_amount, line.total_gross) == (Decimal("20.00"), Decimal("4.00"), Decimal("24.00"))
    assert OrderLine.objects.count() == 3
    assert Customer.objects.get().email == payload["customer"]["email"]
    assert list(order.events.values_list("type", "actor")) == [
        (OrderEventType.IMPORTED, api_user.pk),
        (OrderEventType.SUBMITTED, api_user.pk),
        (OrderEventType.PAYMENT_RECORDED, api_user.pk),
        (OrderEventType.CONFIRMED, api_user.pk),
        (OrderEventType.STOCK_ALLOCATED, api_user.pk),
    ]
    assert order.history.count() >= 1
    assert {row.history_user_id for row in order.history.all()} == {api_user.pk}
    assert {row.history_user_id for row in OrderLine.history.filter(order_id=order.pk)} == {api_user.pk}
    assert order.notes.get().author == api_user


def test_prices_without_tax_are_taxed_on_top(api_client, channel):
    payload = order_payload(
        prices_include_tax=False,
        shipping={"price": "0"},
        lines=[{"sku": "BOLT-8", "name": "Bolt", "quantity": 2, "unit_price": "10.00", "tax_rate": "0.20"}],
        payment={"status": "unpaid"},
    )

    response = api_client.post(ORDERS_URL, payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == OrderStatus.AWAITING_PAYMENT
    assert body["prices_include_tax"] is False
    assert (body["totals"]["net"], body["totals"]["tax"], body["totals"]["gross"]) == ("20.00", "4.00", "24.00")
    assert "cancel" in body["allowed_actions"]  # unpaid: the store front may cancel it
    assert "mark-paid" not in body["allowed_actions"]  # the payment provider records payments


def test_the_same_channel_and_external_id_again_returns_the_existing_order_with_200(api_client, channel):
    payload = order_payload(external_id="shop-2002")
    first = api_client.post(ORDERS_URL, payload, format="json")
    before = row_counts()

    again = api_client.post(ORDERS_URL, payload, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["number"] == first.json()["number"]
    assert again.json() == api_client.get(f"{ORDERS_URL}{first.json()['number']}/").json()
    assert row_counts() == before
    assert Order.objects.count() == 1


def _without(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


def _line(**changes) -> dict:
    return {"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20", **changes}


BAD_PAYLOADS = {
    "missing lines": (lambda p: _without(p, "lines"), "lines"),
    "no lines": (lambda p: {**p, "lines": []}, "lines"),
    "quantity 0": (lambda p: {**p, "lines": [_line(quantity=0)]}, "lines.0.quantity"),
    "quantity not a number": (lambda p: {**p, "lines": [_line(), _line(quantity="two")]}, "lines.1.quantity"),
    "fractional quantity": (lambda p: {**p, "lines": [_line(quantity=1.5)]}, "lines.0.quantity"),
    "negative price": (lambda p: {**p, "lines": [_line(unit_price="-1.00")]}, "lines.0.unit_price"),
    "price not a number": (lambda p: {**p, "lines": [_line(unit_price="12,00")]}, "lines.0.unit_price"),
    "line missing its sku": (lambda p: {**p, "lines": [_without(_line(), "sku")]}, "lines.0.sku"),
    "lines not a list": (lambda p: {**p, "lines": "MUG-1"}, "lines"),
    "line not an object": (lambda p: {**p, "lines": ["MUG-1"]}, "lines.0"),
    "tax rate above 100 %": (lambda p: {**p, "lines": [_line(tax_rate="1.5")]}, "lines.0.tax_rate"),
    "discount above the line": (lambda p: {**p, "lines": [_line(discount="13.00")]}, "lines.0.discount"),
    "bad country": (
        lambda p: {**p, "billing_address": {**p["billing_address"], "country": "XX"}},
        "billing_address.country",
    ),
    "address missing its city": (
        lambda p: {**p, "billing_address": _without(p["billing_address"], "city")},
        "billing_address.city",
    ),
    "address with an unknown field": (
        lambda p: {**p, "shipping_address": {**p["billing_address"], "street": "x"}},
        "shipping_address",
    ),
    "address not an object": (lambda p: {**p, "billing_address": "1 rue de la Paix"}, "billing_address"),
    "unknown channel": (lambda p: {**p, "channel": "nowhere"}, "channel"),
    "bad currency": (lambda p: {**p, "currency": "EUX"}, "currency"),
    "currency too long": (lambda p: {**p, "currency": "EURO"}, "currency"),
    "missing customer": (lambda p: _without(p, "customer"), "customer"),
    "customer not an object": (lambda p: {**p, "customer": "ann@example.com"}, "customer"),
    "bad email": (lambda p: {**p, "customer": {"email": "not-an-email"}}, "customer.email"),
    "is_test not a boolean": (lambda p: {**p, "is_test": "maybe"}, "is_test"),
    "placed_at not a date": (lambda p: {**p, "placed_at": "yesterday"}, "placed_at"),
    "tags not a list": (lambda p: {**p, "tags": "vip"}, "tags"),
    "bad payment status": (lambda p: {**p, "payment": {"status": "free"}}, "payment.status"),
    "payment above the total": (lambda p: {**p, "payment": {"status": "paid", "amount": "1000"}}, "payment.amount"),
    "misspelt field": (lambda p: {**p, "shiping_address": p["billing_address"]}, "shiping_address"),
    "unknown line field": (lambda p: {**p, "lines": [_line(price="12.00")]}, "lines.0.price"),
    "body not an object": (lambda p: [p], "non_field_errors"),
}


@pytest.mark.parametrize("case", BAD_PAYLOADS, ids=list(BAD_PAYLOADS))
def test_bad_input_is_refused_with_its_field_named_and_nothing_written(api_client, channel, case):
    mutate, field = BAD_PAYLOADS[case]
    before = row_counts()

    response = api_client.post(ORDERS_URL, mutate(order_payload()), format="json")

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] in {"invalid", "invalid_order", "unknown_channel", "invalid_currency"}
    assert field in error["extra"]["fields"], error
    assert row_counts() == before


def test_several_errors_are_reported_together(api_client, channel):
    payload = order_payload(lines=[_line(quantity=0), _line(unit_price="-2")], currency="EUX")

    response = api_client.post(ORDERS_URL, payload, format="json")

    assert response.status_code == 400
    assert set(error_of(response)["extra"]["fields"]) == {"lines.0.quantity", "lines.1.unit_price", "currency"}
    assert Order.objects.count() == 0


def test_malformed_json_is_refused_and_nothing_written(api_client, channel):
    before = row_counts()

    response = api_client.post(ORDERS_URL, '{"channel": "web", "lines": [', content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
    assert row_counts() == before


def test_a_body_that_is_not_json_is_refused(api_client, channel):
    response = api_client.post(ORDERS_URL, {"channel": "web"}, format="multipart")

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert Order.objects.count() == 0


@pytest.mark.parametrize("role", [roles.WAREHOUSE, roles.FINANCE])
def test_a_user_without_the_import_permission_is_refused_and_nothing_written(channel, role):
    client = token_client(make_user(role))
    before = row_counts()

    response = client.post(ORDERS_URL, order_payload(), format="json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization", [None, "Token 0000000000000000000000000000000000000000", "Bearer abc"], ids=str
)
def test_an_unauthenticated_request_is_refused_with_401(channel, authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.post(ORDERS_URL, order_payload(), format="json")

    assert response.status_code == 401
    assert error_of(response)["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"] == "Token"
    assert Order.objects.count() == 0


def test_other_methods_on_the_collection_get_405_in_the_error_shape(api_client, channel):
    response = api_client.put(ORDERS_URL, {}, format="json")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "POST" in response["Allow"] and "GET" in response["Allow"]


# --- the same order delivered 20 times at once -----------------------------------------------------


def _deliver_concurrently(user, payload: dict, keys: list[str | None]) -> list:
    body = json.dumps(payload)

    def deliver(i):
        headers = {"HTTP_IDEMPOTENCY_KEY": keys[i]} if keys[i] else {}
        response = token_client(user).post(ORDERS_URL, body, content_type="application/json", **headers)
        return response.status_code, response.json()

    return run_together(len(keys), deliver)


def _assert_one_order_created_once(results: list) -> None:
    assert all(isinstance(result, tuple) for result in results), results
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 201}, results
    assert statuses.count(201) == 1
    assert len({body["number"] for _, body in results}) == 1
    assert Order.objects.count() == 1
    assert Customer.objects.count() == 1
    order = Order.objects.get()
    assert order.lines.count() == 3
    assert order.events.filter(type=OrderEventType.IMPORTED).count() == 1
    assert order.events.filter(type=OrderEventType.CONFIRMED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_order_create_it_exactly_once(api_user, channel):
    payload = order_payload(external_id="shop-3003")

    results = _deliver_concurrently(api_user, payload, keys=[None] * 20)

    _assert_one_order_created_once(results)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_with_distinct_idempotency_keys_create_it_exactly_once(api_user, channel):
    payload = order_payload(external_id="shop-3004")

    results = _deliver_concurrently(api_user, payload, keys=[f"delivery-{i}" for i in range(20)])

    _assert_one_order_created_once(results)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_with_one_idempotency_key_run_it_once(api_user, channel):
    payload = order_payload(external_id="shop-3005")

    results = _deliver_concurrently(api_user, payload, keys=["the-same-key"] * 20)

    # Each duplicate either waits for nothing and is told the first is still running (409), or
    # comes after it and gets its response replayed (201, the same body).
    assert all(isinstance(result, tuple) for result in results), results
    created = [body for status, body in results if status == 201]
    in_flight = [body for status, body in results if status == 409]
    assert len(created) + len(in_flight) == 20
    assert created and all(body == created[0] for body in created)
    assert all(body["code"] == "idempotency_request_in_progress" for body in in_flight)
    assert Order.objects.count() == 1
    assert Order.objects.get().events.filter(type=OrderEventType.IMPORTED).count() == 1


def test_a_click_and_collect_order_names_its_store(api_client, channel):
    Location.objects.create(code="lyon-store", name="Lyon store", kind="store", country="FR", store_pickup=True)
    payload = order_payload(shipping={"method": "collect", "price": "0", "pickup_location": "lyon-store"})
    response = api_client.post(ORDERS_URL, payload, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["pickup_location"] == "lyon-store"
    home = api_client.post(ORDERS_URL, order_payload(), format="json").json()
    assert home["pickup_location"] is None
    refused = api_client.post(
        ORDERS_URL, order_payload(shipping={"method": "collect", "pickup_location": "nowhere"}), format="json"
    )
    assert refused.status_code == 400
    assert "shipping.pickup_location" in refused.json()["extra"]["fields"]
