"""Issue 12, findings 1–6 and 11: what a clumsy integrator or an attacker sends is answered 4xx,
naming the field, and writes nothing; it is never a server error.

Bodies are sent as raw JSON text (json.dumps escapes a lone surrogate as `\\ud800`, as a client's
JSON library would), not through the test client's renderer, which cannot encode one.
"""

import copy
import datetime
import json
import threading
import time

import pytest
from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import PaymentEvent
from fulfillment.models import TrackingUpdate
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.api import exception_handler
from oms.core.idempotency import request_fingerprint
from oms.core.models import IdempotencyRecord
from orders import services
from orders.choices import OrderStatus
from orders.models import Case, Channel, Order
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import ORDERS_URL, error_of, order_state, row_counts, token_client
from orders.tests.factories import make_user, order_payload

pytestmark = pytest.mark.django_db

NUL = "a\u0000b"
SURROGATE = "Par\ud800is"
PAYMENTS_URL = "/api/v1/billing/payments/sandbox/events/"
TRACKING_URL = "/api/v1/fulfillment/carriers/sandbox/tracking/"


def post_json(client: APIClient, url: str, body, **headers):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data=text, content_type="application/json", **headers)


def with_value(payload: dict, path: str, value) -> dict:
    """A copy of payload with the dotted path set to value (creating objects on the way)."""
    result = copy.deepcopy(payload)
    *parents, last = path.split(".")
    target = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


def assert_refused(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = error_of(response)
    if field is not None:
        assert field in error["extra"].get("fields", {}), error
    return error


@pytest.fixture
def staff(channel):
    """A finance manager's token (payment events) and a warehouse lead's (carrier events)."""
    return {
        "finance": token_client(make_user(roles.FINANCE_MANAGER)),
        "warehouse": token_client(make_user(roles.WAREHOUSE)),
        "support": token_client(make_user(roles.SUPPORT_L2)),
    }


# --- 1. NUL and unpaired surrogates --------------------------------------------------------------


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    "path",
    [
        "billing_address.name",
        "billing_address.city",
        "shipping_address.line1",
        "customer.first_name",
        "lines.0.name",
        "lines.0.attributes.colour",
        "note",
        "external_id",
        "payment.reference",
    ],
)
def test_nul_or_a_lone_surrogate_in_any_order_field_is_a_400_on_that_field(api_client, channel, path, text):
    payload = order_payload()
    payload["shipping_address"] = dict(payload["billing_address"])
    before = row_counts()

    response = post_json(api_client, ORDERS_URL, with_value(payload, path, text))

    assert_refused(response, 400, path)
    assert row_counts() == before


def test_a_bad_key_inside_line_attributes_is_refused_too(api_client, channel):
    payload = order_payload()
    payload["lines"][0]["attributes"] = {"col\u0000our": "red"}
    before = row_counts()

    assert_refused(post_json(api_client, ORDERS_URL, payload), 400, "lines.0.attributes")
    assert row_counts() == before


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_change_address_refuses_them_and_leaves_the_order_as_it_was(api_client, channel, staff, text):
    order, _ = services.order_create(actor=get_system_user(), **order_payload())
    before = order_state(order)
    address = dict(order_payload()["billing_address"], city=text)

    response = post_json(
        staff["support"], f"{ORDERS_URL}{order.number}/change-address/", {"kind": "shipping", "address": address}
    )

    assert_refused(response, 400, "address.city")
    assert order_state(order) == before


def test_case_evidence_with_a_lone_surrogate_is_refused_and_the_case_stays_open(channel, staff):
    order, _ = services.order_create(actor=get_system_user(), **order_payload())
    services.order_hold(order=order, actor=get_system_user(), reason="address_check", note="n")
    case = Case.objects.get(kind="address_check")

    response = post_json(
        staff["support"],
        f"/api/v1/cases/{case.number}/resolve/",
        {"decision": "fixed", "resolution": "ok", "evidence": {"call": SURROGATE}},
    )

    assert_refused(response, 400, "evidence.call")
    case.refresh_from_db()
    assert case.status != "resolved"


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_payment_and_carrier_webhooks_refuse_them_without_storing_the_event(channel, staff, text):
    payment = {"id": "evt-1", "type": "captured", "payment_reference": "pi-1", "amount": "10.00", "reason": text}
    tracking = {
        "events": [
            {
                "id": "t-1",
                "tracking_number": "SBX0000000001",
                "status": "IN_TRANSIT",
                "occurred_at": timezone.now().isoformat(),
                "description": text,
            }
        ]
    }

    assert_refused(post_json(staff["finance"], PAYMENTS_URL, payment), 400, "reason")
    assert_refused(post_json(staff["warehouse"], TRACKING_URL, tracking), 400, "events.0.description")
    assert PaymentEvent.objects.count() == 0 and TrackingUpdate.objects.count() == 0


def test_a_nul_in_the_url_or_a_filter_is_a_400_not_a_database_error(api_client, channel, staff):
    assert_refused(api_client.get(f"{ORDERS_URL}ORD%00X/"), 400)
    assert_refused(api_client.get(f"{ORDERS_URL}?search=a%00b"), 400)
    assert_refused(staff["support"].get("/api/v1/cases/?order=%00"), 400)


# --- 2. amounts that overflow ----------------------------------------------------------------------


def test_a_line_whose_total_overflows_is_refused_on_that_line(api_client, channel):
    payload = order_payload()
    payload["lines"][0].update(quantity=100_000, unit_price="999999999")
    before = row_counts()

    assert_refused(post_json(api_client, ORDERS_URL, payload), 400, "lines.0")
    assert row_counts() == before


def test_an_order_total_above_the_largest_amount_is_refused(api_client, channel):
    payload = order_payload()
    payload["lines"] = [
        {"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "600000000", "tax_rate": "0"},
        {"sku": "TEE-1", "name": "T-shirt", "quantity": 1, "unit_price": "600000000", "tax_rate": "0"},
    ]
    before = row_counts()

    assert_refused(post_json(api_client, ORDERS_URL, payload), 400, "lines")
    assert row_counts() == before


@pytest.mark.parametrize("amount", ["1e15", 1e15, "1e999999", "-1e15", "NaN", "0.0000000000001"])
def test_a_payment_event_with_an_absurd_amount_is_refused(channel, staff, amount):
    event = {"id": "evt-big", "type": "captured", "payment_reference": "pi-big", "amount": amount}

    assert_refused(post_json(staff["finance"], PAYMENTS_URL, event), 400, "amount")
    assert PaymentEvent.objects.count() == 0


# --- 3. bodies over the limit ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "big-1"], ids=["no-key", "idempotency-key"])
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100_000)
def test_a_body_over_the_limit_is_a_413(api_client, channel, key):
    payload = order_payload(note="x" * 150_000)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    before = row_counts()

    error = assert_refused(post_json(api_client, ORDERS_URL, payload, **headers), 413)

    assert error["code"] == "request_too_large" and error["extra"]["max_bytes"] == 100_000
    assert row_counts() == before and IdempotencyRecord.objects.count() == 0


def test_a_body_too_large_found_while_reading_is_a_413_too():
    # A body whose size is only known once read (no Content-Length up front) fails inside the view.
    response = exception_handler(RequestDataTooBig("too big"), {})
    assert response.status_code == 413 and response.data["code"] == "request_too_large"


# --- 4. deep nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "deep-1"], ids=["no-key", "idempotency-key"])
def test_json_nested_beyond_the_parser_is_a_400(api_client, channel, key):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    before = row_counts()

    response = post_json(api_client, ORDERS_URL, "[" * 100_000 + "]" * 100_000, **headers)

    assert_refused(response, 400)
    assert row_counts() == before


def test_nesting_deeper_than_any_document_is_refused_on_its_field(api_client, channel):
    deep: dict = {}
    for _ in range(40):
        deep = {"a": deep}
    payload = order_payload()
    payload["lines"][0]["attributes"] = deep
    before = row_counts()

    error = assert_refused(post_json(api_client, ORDERS_URL, payload), 400)

    assert any(field.startswith("lines.0.attributes.a") for field in error["extra"]["fields"]), error
    assert row_counts() == before


# --- 5. currencies and their minor units ----------------------------------------------------------------


@pytest.mark.parametrize("code", ["XXX", "XAU", "XTS", "XDR", "HRK", "EURO", "E1R"])
def test_codes_that_are_no_currency_in_use_are_refused(api_client, channel, code):
    before = row_counts()
    assert_refused(post_json(api_client, ORDERS_URL, order_payload(currency=code)), 400, "currency")
    assert row_counts() == before


def test_a_jpy_price_with_decimals_is_refused_and_a_whole_one_is_booked_as_sent(api_client, channel):
    fractional = order_payload(currency="JPY")
    fractional["lines"] = [{"sku": "MUG-1", "name": "Mug", "quantity": 3, "unit_price": "19.50", "tax_rate": "0.10"}]
    fractional["shipping"] = {"method": "standard", "price": "500", "tax_rate": "0.10"}
    before = row_counts()

    error = assert_refused(post_json(api_client, ORDERS_URL, fractional), 400, "lines.0.unit_price")

    assert error["extra"]["fields"]["lines.0.unit_price"] == ["JPY amounts are whole numbers."]
    assert row_counts() == before
    whole = with_value(fractional, "lines.0.unit_price", "1950")
    created = post_json(api_client, ORDERS_URL, whole)
    assert created.status_code == 201, created.content
    assert created.json()["totals"]["gross"] == "6350"


def test_an_eur_amount_with_three_decimals_is_refused_by_field(api_client, channel):
    payload = order_payload()
    payload["lines"][1]["unit_price"] = "25.005"
    payload["shipping"]["price"] = "4.901"

    error = assert_refused(post_json(api_client, ORDERS_URL, payload), 400)

    assert error["extra"]["fields"]["lines.1.unit_price"] == ["EUR amounts have at most 2 decimals."]
    assert error["extra"]["fields"]["shipping.price"] == ["EUR amounts have at most 2 decimals."]


# --- 6. dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("placed_at", "0001-01-01T00:00:00Z"),
        ("placed_at", "1999-12-31T23:59:59Z"),
        ("placed_at", "9999-12-31T23:59:59+14:00"),
        ("promised_at", "2999-01-01T00:00:00Z"),
    ],
)
def test_absurd_dates_are_refused_by_field(api_client, channel, field, value):
    before = row_counts()
    assert_refused(post_json(api_client, ORDERS_URL, order_payload(**{field: value})), 400, field)
    assert row_counts() == before


def test_a_date_in_the_window_is_kept_and_read_back_as_a_valid_date_time(api_client, channel):
    placed = (timezone.now() - datetime.timedelta(days=3)).replace(microsecond=0)

    response = post_json(api_client, ORDERS_URL, order_payload(placed_at=placed.isoformat()))

    assert response.status_code == 201, response.content
    assert datetime.datetime.fromisoformat(response.json()["placed_at"]) == placed


# --- 11. a duplicate during the first request's commit ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_arriving_while_the_first_commits_answers_409_at_once(channel, api_user):
    Channel.objects.get_or_create(code="web", defaults={"name": "Web"})
    client = token_client(api_user)
    key, path = "dup-commit-1", ORDERS_URL
    body = json.dumps(order_payload())
    # The first request has claimed the key and is committing: its transaction holds the row.
    fingerprint = request_fingerprint(method="POST", path=path, body=body.encode(), content_type="application/json")
    record = IdempotencyRecord.objects.create(
        client=api_user, key=key, method="POST", path=path, request_fingerprint=fingerprint
    )
    locked, release = threading.Event(), threading.Event()

    def first_request_committing():
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.select_for_update().get(pk=record.pk)
                locked.set()
                release.wait(15)
        finally:
            connection.close()

    holder = threading.Thread(target=first_request_committing)
    holder.start()
    assert locked.wait(10)
    try:
        started = time.monotonic()
        response = client.post(path, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        elapsed = time.monotonic() - started
        still_holding = not release.is_set()
    finally:
        release.set()
        holder.join(30)

    assert still_holding, "the duplicate waited for the first request to finish"
    error = assert_refused(response, 409)
    assert error["code"] == "idempotency_request_in_progress"
    assert elapsed < 5
    assert Order.objects.filter(status=OrderStatus.CONFIRMED).count() == 0
