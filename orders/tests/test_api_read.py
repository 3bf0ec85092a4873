"""GET /api/v1/orders/ and /api/v1/orders/{number}/: filters, pagination, representation, query counts."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oms.cockpit import roles
from oms.core.api import IdCursorPagination
from orders import services
from orders.addresses import ADDRESS_FIELDS, MAX_LENGTH, REQUIRED_FIELDS
from orders.api.serializers import AddressInputSerializer
from orders.choices import OrderStatus
from orders.labels import order_customer_label
from orders.models import Channel
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import (
    ORDERS_URL,
    error_of,
    order_url,
    token_client,
)
from orders.tests.factories import make_user
from orders.tests.states import order_in_state


def _numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


# --- detail ----------------------------------------------------------------------------------------


def test_the_detail_shows_lines_holds_events_and_the_actions_left_to_the_user(api_client, admin_user_role, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role, tags=["b2c", "vip"])
    support = make_user(roles.SUPPORT_L2, username="sam")
    released = services.order_hold(order=order, actor=support, reason="fraud_review", note="Check the card")
    services.order_release_hold(hold=released, actor=support, note="Card owner confirmed")
    services.order_hold(order=order, actor=admin_user_role, reason="address_check", note="No street number")

    response = api_client.get(order_url(order.number))

    assert response.status_code == 200
    body = response.json()
    assert body["number"] == order.number
    assert body["status"] == "confirmed"
    assert body["tags"] == ["b2c", "vip"]
    assert body["customer_label"] == order_customer_label(order)
    assert body["customer_label_en"] == "Confirmed"
    assert body["customer_label_fr"] == order_customer_label(order, "fr")
    assert [line["line_number"] for line in body["lines"]] == [1, 2, 3]
    assert body["lines"][0]["quantity_open"] == 2
    holds = {hold["reason"]: hold for hold in body["holds"]}
    fraud = holds["fraud_review"]
    assert fraud["id"] == released.pk
    assert fraud["placed_at"] and fraud["released_at"] and fraud["released_at"] >= fraud["placed_at"]
    assert {key: value for key, value in fraud.items() if key not in {"id", "placed_at", "released_at"}} == {
        "reason": "fraud_review",
        "reason_display": "Fraud review",
        # The notes of a fraud review are for those who work fraud (test_fraud_visibility.py).
        "note": "",
        "is_active": False,
        "placed_by": "sam",
        "released_by": "sam",
        "release_note": "",
    }
    assert holds["address_check"]["is_active"] is True
    assert holds["address_check"]["placed_by"] == "administrator"
    assert holds["address_check"]["released_by"] is None
    assert [event["type"] for event in body["events"]] == [
        "imported",
        "submitted",
        "payment_recorded",
        "confirmed",
        "stock_allocated",
        "hold_placed",
        "case_opened",  # each hold opens its case, and its release resolves it
        "hold_released",
        "case_resolved",
        "hold_placed",
        "case_opened",
    ]
    assert body["events"][7]["actor"] == "sam"
    assert body["events"][7]["reason"] == ""  # the fraud hold's release note, as above
    # The store front neither cancels a paid order nor places or releases holds; preparation is
    # not its job either.
    assert body["allowed_actions"] == ["add-note", "add-tag", "remove-tag", "change-address"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (roles.SUPPORT_L1, ["hold", "add-note", "add-tag", "remove-tag", "change-address"]),
        (roles.WAREHOUSE, ["start-preparation", "hold", "add-note"]),
        (roles.FINANCE, ["hold", "add-note"]),
        (
            roles.SUPPORT_L2,
            ["flag-for-review", "cancel", "hold", "add-note", "add-tag", "remove-tag", "change-address"],
        ),
    ],
    ids=["support-l1", "warehouse", "finance", "support-l2"],
)
def test_allowed_actions_depend_on_the_user(admin_user_role, channel, role, expected):
    order = order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role)
    client = token_client(make_user(role))

    response = client.get(order_url(order.number))

    assert response.json()["allowed_actions"] == expected


def test_an_unknown_number_is_404_order_not_found(api_client, channel):
    response = api_client.get(order_url("ORD-1999-999999"))

    assert response.status_code == 404
    assert error_of(response)["code"] == "order_not_found"


def test_a_user_who_may_not_view_orders_is_refused(admin_user_role, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role)
    client = token_client(make_user())  # staff, but in no role

    assert client.get(order_url(order.number)).status_code == 403
    response = client.get(ORDERS_URL)
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


@pytest.mark.django_db
def test_reading_without_authentication_is_401(client):
    response = client.get(ORDERS_URL)

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_the_detail_runs_the_same_queries_for_3_lines_as_for_40(api_client, admin_user_role, make_order):
    small = make_order()
    many_lines = [
        {"sku": f"SKU-{i}", "name": f"Item {i}", "quantity": 1, "unit_price": "1.00", "tax_rate": "0.20"}
        for i in range(40)
    ]
    big = make_order(lines=many_lines, tags=["a", "b", "c"])
    for i in range(10):
        services.order_add_note(order=big, actor=admin_user_role, body=f"note {i}")
        hold = services.order_hold(order=big, actor=admin_user_role, reason="manual", note=f"hold {i}")
        services.order_release_hold(hold=hold, actor=admin_user_role, note="ok")

    with CaptureQueriesContext(connection) as small_queries:
        assert api_client.get(order_url(small.number)).status_code == 200
    with CaptureQueriesContext(connection) as big_queries:
        assert api_client.get(order_url(big.number)).status_code == 200

    assert len(big_queries) == len(small_queries)
    assert len(small_queries) <= 15


def test_the_address_shape_in_the_schema_is_the_services_one():
    fields = AddressInputSerializer().fields
    assert set(fields) == set(ADDRESS_FIELDS)
    assert {name for name, field in fields.items() if field.required} == set(REQUIRED_FIELDS)
    assert {field.max_length for name, field in fields.items() if name != "country"} == {MAX_LENGTH}


# --- list: filters -----------------------------------------------------------------------------------


@pytest.fixture
def catalogue(admin_user_role, channel, api_user):
    """Orders in several states, channels, tags and dates, by name; the API client serves both channels."""
    market = Channel.objects.create(code="market", name="Marketplace", kind="marketplace")
    api_user.api_client.channels.add(market)
    january = timezone.make_aware(datetime.datetime(2026, 1, 15, 10, 0))
    return {
        "confirmed": order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role, tags=["vip"]),
        "awaiting": order_in_state(
            OrderStatus.AWAITING_PAYMENT,
            actor=admin_user_role,
            customer={"email": "Zoe.Martin@Example.com", "first_name": "Zoé"},
        ),
        "draft": order_in_state(OrderStatus.DRAFT, actor=admin_user_role, is_test=True),
        "market": order_in_state(
            OrderStatus.CONFIRMED, actor=admin_user_role, channel=market.code, external_id="AMZ-111-222"
        ),
        "january": order_in_state(OrderStatus.SHIPPED, actor=admin_user_role, placed_at=january),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["january", "market", "draft", "awaiting", "confirmed"]),
        ("?status=confirmed", ["market", "confirmed"]),
        ("?status=confirmed&status=draft", ["market", "draft", "confirmed"]),
        ("?channel=market", ["market"]),
        ("?payment_status=unpaid", ["draft", "awaiting"]),
        ("?fulfillment_status=shipped", ["january"]),
        ("?tag=VIP", ["confirmed"]),
        ("?is_test=true", ["draft"]),
        ("?is_test=false&status=confirmed&channel=web", ["confirmed"]),
        ("?placed_before=2026-01-15", ["january"]),
        ("?placed_before=2026-01-14", []),
        ("?placed_after=2026-01-16", ["market", "draft", "awaiting", "confirmed"]),
        ("?placed_after=2026-01-15&placed_before=2026-01-15", ["january"]),
        ("?placed_after=2026-01-15T09:59:59%2B01:00&placed_before=2026-01-15T10:00:00%2B01:00", ["january"]),
        ("?placed_after=2026-01-15T10:00:01%2B01:00&placed_before=2026-01-31", []),
        ("?q=AMZ-111-222", ["market"]),
        ("?q=zoe.martin@example.com", ["awaiting"]),
        ("?q=%20nobody@example.com%20", []),
    ],
)
def test_the_list_filters(api_client, catalogue, query, expected):
    response = api_client.get(ORDERS_URL + query)

    assert _numbers(response) == [catalogue[name].number for name in expected]


def test_the_list_finds_an_order_by_its_number(api_client, catalogue):
    number = catalogue["awaiting"].number

    assert _numbers(api_client.get(ORDERS_URL, {"q": number})) == [number]
    assert _numbers(api_client.get(ORDERS_URL, {"q": number.lower()})) == [number]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=lost", "status"),
        ("?payment_status=free", "payment_status"),
        ("?placed_after=last-week", "placed_after"),
        ("?placed_before=2026-02-30", "placed_before"),
        ("?is_test=perhaps", "is_test"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_it(api_client, catalogue, query, field):
    response = api_client.get(ORDERS_URL + query)

    assert response.status_code == 400
    assert field in error_of(response)["extra"]["fields"]


def test_the_list_row_is_compact(api_client, catalogue):
    row = api_client.get(ORDERS_URL, {"q": catalogue["confirmed"].number}).json()["results"][0]

    assert set(row) == {
        "number",
        "channel",
        "external_id",
        "status",
        "payment_status",
        "fulfillment_status",
        "customer_label",
        "currency",
        "is_test",
        "placed_at",
        "tags",
        "email",
        "customer_name",
        "total_gross",
        "updated_at",
    }
    assert row["total_gross"] == "64.45"
    assert row["tags"] == ["vip"]
    assert row["customer_name"] == "Ann Lee"


# --- list: pagination and query counts -----------------------------------------------------------


def test_walking_the_pages_sees_every_order_once_while_new_orders_arrive(api_client, make_order):
    existing = [make_order().number for _ in range(23)]
    seen: list[str] = []
    url = f"{ORDERS_URL}?page_size=5"
    arrivals = []

    while url:
        response = api_client.get(url)
        seen += _numbers(response)
        arrivals.append(make_order().number)  # placed now: before the first page, never in the walk
        url = response.json()["next"]

    assert seen == list(reversed(existing))
    assert len(set(seen)) == len(seen)
    assert not set(arrivals) & set(seen)


def test_orders_sharing_one_placed_at_are_paged_without_gaps_or_repeats(api_client, make_order):
    one_second = timezone.make_aware(datetime.datetime(2026, 3, 1, 12, 0, 0))
    existing = {make_order(placed_at=one_second).number for _ in range(12)}
    seen: list[str] = []
    url = f"{ORDERS_URL}?page_size=5"

    while url:
        response = api_client.get(url)
        seen += _numbers(response)
        url = response.json()["next"]

    assert len(seen) == len(set(seen)) == 12
    assert set(seen) == existing


def test_going_back_a_page_shows_the_same_page_again(api_client, make_order):
    for _ in range(9):
        make_order()
    first = api_client.get(ORDERS_URL, {"page_size": 4})
    second = api_client.get(first.json()["next"])

    back = api_client.get(second.json()["previous"])

    assert _numbers(back) == _numbers(first)
    assert first.json()["previous"] is None


def test_the_page_size_defaults_to_50_and_is_capped_at_200(api_client, make_order):
    for _ in range(51):
        make_order()

    default = api_client.get(ORDERS_URL)
    larger = api_client.get(ORDERS_URL, {"page_size": 10_000})

    assert len(_numbers(default)) == 50
    assert default.json()["next"] is not None
    assert len(_numbers(larger)) == 51
    assert (IdCursorPagination.page_size, IdCursorPagination.max_page_size) == (50, 200)


@pytest.mark.parametrize("cursor", ["not-base64!", "cD1hYmM=", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ=="])
def test_a_bad_or_tampered_cursor_is_a_400(api_client, make_order, cursor):
    make_order()

    response = api_client.get(ORDERS_URL, {"cursor": cursor})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


def test_the_list_runs_the_same_queries_for_5_orders_as_for_30(api_client, make_order):
    for i in range(5):
        make_order(tags=[f"t{i}", "common"])
    with CaptureQueriesContext(connection) as five:
        assert len(_numbers(api_client.get(ORDERS_URL))) == 5

    for i in range(25):
        make_order(tags=[f"u{i}"])
    with CaptureQueriesContext(connection) as thirty:
        assert len(_numbers(api_client.get(ORDERS_URL))) == 30

    assert len(thirty) == len(five)
    assert len(five) <= 6


def test_the_list_query_count_has_a_ceiling(api_client, make_order, django_assert_max_num_queries):
    for _ in range(30):
        make_order(tags=["x"])

    with django_assert_max_num_queries(6):
        response = api_client.get(ORDERS_URL, {"status": "confirmed", "tag": "x", "page_size": 30})

    assert len(_numbers(response)) == 30


def test_the_list_pages_newest_received_first_whatever_the_placed_date(api_client, make_order):
    older_import = make_order(placed_at=timezone.now() - datetime.timedelta(days=30))
    recent = make_order()
    backdated_later = make_order(placed_at=timezone.now() - datetime.timedelta(days=60))

    numbers = _numbers(api_client.get(ORDERS_URL))

    assert numbers == [backdated_later.number, recent.number, older_import.number]
