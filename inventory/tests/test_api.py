"""The inventory API: ATP, the channel stock feed, receipts, adjustments and cycle counts."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from inventory.atp import atp
from inventory.models import (
    ChannelStockRule,
    CycleCount,
    IncomingSupply,
    MovementReason,
    Reservation,
    StockItem,
    StockMovement,
)
from inventory.selectors import stock_ledger_drift
from inventory.services import products_switch_off_expired, supply_create
from oms.cockpit import roles
from oms.core.models import IdempotencyRecord
from oms.core.testing import run_together
from orders.models import Channel
from orders.tests.api_fixtures import error_of, token_client
from orders.tests.factories import make_user

API = "/api/v1/inventory/"
TODAY = datetime.date.today()


def stock(product, location) -> tuple[int, int]:
    item = StockItem.objects.filter(product=product, location=location).first()
    return (item.on_hand, item.reserved) if item else (0, 0)


def ledger() -> list[tuple]:
    return list(
        StockMovement.objects.order_by("pk").values_list(
            "stock_item__product__sku", "stock_item__location__code", "on_hand_delta", "reserved_delta", "reason"
        )
    )


def written() -> dict[str, int]:
    """Rows a refused write must leave as they were."""
    return {
        "movements": StockMovement.objects.count(),
        "stock_items": StockItem.objects.count(),
        "counts": CycleCount.objects.count(),
        "reservations": Reservation.objects.count(),
    }


@pytest.fixture
def controller(db):
    """Whoever adjusts stock by hand: the finance manager (no API client role may)."""
    user = make_user(roles.FINANCE_MANAGER, username="controller")
    client = token_client(user)
    client.user = user
    return client


@pytest.fixture
def api(db):
    """An integration (a 3PL): the 3PL API client role, with its token."""
    user = make_user(roles.API_3PL, username="3pl")
    client = token_client(user)
    client.user = user
    return client


def atp_url(sku: str, **query) -> str:
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return f"{API}products/{sku}/atp/" + (f"?{params}" if params else "")


# --- ATP -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_atp_applies_the_channels_share_and_counts_supply_due_by_the_date(
    api, locations, web, product, receive, place_order, boss
):
    amazon = Channel.objects.create(code="amazon", name="Amazon", kind="marketplace")
    ChannelStockRule.objects.create(channel=amazon, kind="share", share="0.5")
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    receive(mug, locations["lyon"], 4)
    place_order({"MUG": 2}, channel="amazon")  # reserved at Paris, the fastest
    for location, units, days, reference in (("paris", 6, 5, "PO-1"), ("london", 3, 20, "PO-2")):
        supply_create(
            product=mug,
            location=locations[location],
            quantity=units,
            expected_at=TODAY + datetime.timedelta(days=days),
            reference=reference,
            actor=boss,
        )
    in_a_week = (TODAY + datetime.timedelta(days=7)).isoformat()

    response = api.get(atp_url("MUG", channel="amazon", date=in_a_week))

    assert response.status_code == 200
    # Paris: min(10 − 2 free, ⌊50 % × 10⌋ − 2 amazon holds) = 3, plus PO-1; Lyon: ⌊50 % × 4⌋ = 2;
    # London's supply comes after the date.
    assert response.json() == {
        "sku": "MUG",
        "channel": "amazon",
        "date": in_a_week,
        "atp": 11,
        "locations": [
            {"location": "paris", "on_hand": 10, "reserved": 2, "safety_stock": 0, "available": 3, "incoming": 6},
            {"location": "lyon", "on_hand": 4, "reserved": 0, "safety_stock": 0, "available": 2, "incoming": 0},
        ],
    }
    without_date = api.get(atp_url("MUG", channel="amazon")).json()
    assert (without_date["date"], without_date["atp"]) == (None, 5)
    assert [row["incoming"] for row in without_date["locations"]] == [0, 0]
    web_view = api.get(atp_url("MUG", channel="web")).json()  # no rule: all that is free
    assert (web_view["atp"], [row["available"] for row in web_view["locations"]]) == (12, [8, 4])
    lyon_only = api.get(atp_url("MUG", channel="amazon", location="lyon", date=in_a_week)).json()
    assert lyon_only["atp"] == 2
    assert [row["location"] for row in lyon_only["locations"]] == ["lyon"]
    in_a_month = api.get(atp_url("MUG", date=(TODAY + datetime.timedelta(days=30)).isoformat())).json()
    assert (in_a_month["channel"], in_a_month["atp"]) == (None, 8 + 4 + 6 + 3)
    assert in_a_month["locations"][-1] == {
        "location": "london",
        "on_hand": 0,
        "reserved": 0,
        "safety_stock": 0,
        "available": 0,
        "incoming": 3,
    }


@pytest.mark.django_db
def test_atp_of_an_unknown_sku_is_404_and_unknown_codes_are_field_errors(api, locations, web, product, receive):
    product("MUG")
    receive(product("TEE/M/RED"), locations["paris"], 2)

    missing = api.get(atp_url("NOPE"))
    bad_channel = api.get(atp_url("MUG", channel="nope"))
    bad_location = api.get(atp_url("MUG", location="nowhere"))
    bad_date = api.get(atp_url("MUG", date="tomorrow", chanel="web"))

    assert api.get(atp_url("TEE/M/RED")).json()["atp"] == 2  # a SKU may hold slashes
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "product_not_found"
    assert (bad_channel.status_code, error_of(bad_channel)["extra"]) == (
        400,
        {"fields": {"channel": ["Unknown or inactive channel nope."]}},
    )
    assert (bad_location.status_code, error_of(bad_location)["extra"]) == (
        400,
        {"fields": {"location": ["Unknown location nowhere."]}},
    )
    assert bad_date.status_code == 400
    assert set(error_of(bad_date)["extra"]["fields"]) == {"date", "chanel"}  # a misspelt filter is not ignored


@pytest.mark.django_db
def test_atp_needs_the_stock_view_permission(locations, product):
    product("MUG")
    finance = token_client(make_user(roles.FINANCE))

    response = finance.get(atp_url("MUG"))

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


@pytest.mark.django_db
def test_atp_takes_the_same_number_of_queries_for_one_location_or_many(api, locations, web, product, receive, boss):
    ChannelStockRule.objects.create(channel=web, kind="exclude", location_kind="store")
    lone, spread = product("LONE"), product("SPREAD")
    receive(lone, locations["paris"], 3)
    for location in locations.values():
        receive(spread, location, 3)
        supply_create(product=spread, location=location, quantity=2, expected_at=TODAY, reference="PO", actor=boss)
    date = TODAY.isoformat()

    with CaptureQueriesContext(connection) as lone_here:
        assert api.get(atp_url("LONE", channel="web", location="paris", date=date)).status_code == 200
    with CaptureQueriesContext(connection) as spread_here:
        here = api.get(atp_url("SPREAD", channel="web", location="paris", date=date)).json()
    with CaptureQueriesContext(connection) as lone_everywhere:
        assert api.get(atp_url("LONE", channel="web", date=date)).status_code == 200
    with CaptureQueriesContext(connection) as spread_everywhere:
        everywhere = api.get(atp_url("SPREAD", channel="web", date=date)).json()

    assert here["atp"] == 3 + 2
    assert everywhere["atp"] == 3 + 2 + 3 + 2  # Lyon, a store, is kept from the web
    assert len(lone_here) == len(spread_here)
    assert len(lone_everywhere) == len(spread_everywhere), [q["sql"] for q in spread_everywhere.captured_queries]


# --- the stock feed ------------------------------------------------------------------------------


def feed(client, **query):
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return client.get(f"{API}feed/?{params}")


@pytest.mark.django_db
def test_the_feed_walks_every_active_product_once_in_id_order(api, locations, web, product, receive):
    skus = [f"SKU-{n}" for n in range(7)]
    for n, sku in enumerate(skus):
        receive(product(sku), locations["paris"], n + 1)

    seen, pages = [], 0
    response = feed(api, channel="web", page_size=3)
    while True:
        assert response.status_code == 200
        body = response.json()
        seen.extend(body["results"])
        pages += 1
        if body["next"] is None:
            break
        response = api.get(body["next"])

    assert pages == 3
    assert seen == [{"sku": sku, "available": n + 1, "sellable": True} for n, sku in enumerate(skus)]


@pytest.mark.django_db
def test_the_feed_takes_the_same_number_of_queries_for_3_or_20_products(
    api, locations, web, product, receive, place_order
):
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    ChannelStockRule.objects.create(channel=web, kind="share", share="0.8", location=locations["paris"])

    def catalogue(prefix: str, size: int):
        for n in range(size):
            item = product(f"{prefix}-{n:02d}")
            receive(item, locations["paris"], 10)
            receive(item, locations["lyon"], 5)
            ChannelStockRule.objects.create(
                channel=store, kind="ring_fence", product=item, location=locations["lyon"], quantity=2
            )
        place_order({f"{prefix}-00": 1})

    catalogue("A", 3)
    with CaptureQueriesContext(connection) as small:
        small_page = feed(api, channel="web", page_size=50).json()["results"]
    catalogue("B", 17)
    with CaptureQueriesContext(connection) as large:
        large_page = feed(api, channel="web", page_size=50).json()["results"]

    assert len(small_page) == 3 and len(large_page) == 20
    # Paris: min(10 − 1, ⌊80 % × 10⌋ − 1 web holds) = 7 for A-00, 8 for the rest; Lyon: 5 − 2 fenced.
    assert small_page[0] == {"sku": "A-00", "available": 7 + 3, "sellable": True}
    assert large_page[5] == {"sku": "B-02", "available": 8 + 3, "sellable": True}
    assert len(small) == len(large), [q["sql"] for q in large.captured_queries]


@pytest.mark.django_db
def test_the_feed_figures_are_the_channels_atp(api, locations, web, product, receive, place_order):
    amazon = Channel.objects.create(code="amazon", name="Amazon", kind="marketplace")
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    ChannelStockRule.objects.create(channel=amazon, kind="share", share="0.5")
    ChannelStockRule.objects.create(channel=amazon, kind="exclude", location=locations["london"])
    products = [product(sku) for sku in ("MUG", "TEE", "CAP")]
    for index, item in enumerate(products):
        for location in locations.values():
            receive(item, location, 3 + 4 * index)
    ChannelStockRule.objects.create(
        channel=store, kind="ring_fence", product=products[1], location=locations["paris"], quantity=4
    )
    place_order({"MUG": 1, "TEE": 2}, channel="amazon")
    place_order({"TEE": 3, "CAP": 1})

    for channel in (amazon, web, store):
        body = feed(api, channel=channel.code).json()
        assert body["results"] == [
            {"sku": p.sku, "available": atp(product_id=p.pk, channel_id=channel.pk)["atp"], "sellable": True}
            for p in products
        ]
    assert [row["available"] for row in feed(api, channel="amazon").json()["results"]] == [1, 4, 10]


@pytest.mark.django_db
def test_a_product_outside_its_sell_window_is_reported_unsellable_and_a_switched_off_one_is_left_out(
    api, locations, web, product, receive, boss
):
    now = timezone.now()
    ended = product("ENDED", sellable_until=now - datetime.timedelta(days=1))  # switch-off not run yet
    early = product("EARLY", sellable_from=now + datetime.timedelta(days=3))
    off = product("OFF", is_active=False)
    live = product("LIVE", sellable_until=now + datetime.timedelta(days=30))
    for item in (ended, early, off, live):
        receive(item, locations["paris"], 5)

    body = feed(api, channel="web").json()

    # Stock at hand is not what the channel may sell once the window is shut: 0, unsellable.
    assert body["results"] == [
        {"sku": "ENDED", "available": 0, "sellable": False},
        {"sku": "EARLY", "available": 0, "sellable": False},
        {"sku": "LIVE", "available": 5, "sellable": True},
    ]
    products_switch_off_expired(actor=boss)
    assert [row["sku"] for row in feed(api, channel="web").json()["results"]] == ["EARLY", "LIVE"]


# Committed transactions: the hot path dates its ledger row with the database's now(), the start of
# its transaction, which in a test wrapped in one transaction would be before `since`.
@pytest.mark.django_db(transaction=True)
def test_the_feed_since_a_time_lists_what_moved_or_changed_since(api, locations, web, product, receive, place_order):
    still, sold, received = product("STILL"), product("SOLD"), product("RECEIVED")
    closing = product("CLOSING", sellable_until=timezone.now() + datetime.timedelta(days=1))
    for item in (still, sold, received, closing):
        receive(item, locations["paris"], 5)
    since = timezone.now()
    assert feed(api, channel="web", updated_since=since.isoformat().replace("+", "%2B")).json()["results"] == []

    place_order({"SOLD": 2})  # the hot path's one-statement reservation: its ledger row says it moved
    receive(received, locations["lyon"], 3)  # a new stock row
    closing.sellable_until = since + datetime.timedelta(microseconds=1)  # its window closes (no stock move)
    closing.save(update_fields=["sellable_until"])

    response = feed(api, channel="web", updated_since=since.isoformat().replace("+", "%2B"))

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"sku": "SOLD", "available": 3, "sellable": True},
        {"sku": "RECEIVED", "available": 8, "sellable": True},
        {"sku": "CLOSING", "available": 0, "sellable": False},
    ]
    # StockItem.updated_at is not what says stock moved: the counters change by UPDATE … + n.
    assert StockItem.objects.get(product=sold).updated_at < since


@pytest.mark.django_db
def test_the_feed_refuses_a_missing_or_unknown_channel_a_bad_time_or_cursor(api, web):
    missing = feed(api)
    unknown = feed(api, channel="nope")
    bad_time = feed(api, channel="web", updated_since="yesterday")
    bad_cursor = feed(api, channel="web", cursor="cD1hYmM%3D")

    assert (missing.status_code, error_of(missing)["extra"]["fields"]) == (
        400,
        {"channel": ["This field is required."]},
    )
    assert (unknown.status_code, error_of(unknown)["extra"]["fields"]) == (
        400,
        {"channel": ["Unknown or inactive channel nope."]},
    )
    assert (bad_time.status_code, list(error_of(bad_time)["extra"]["fields"])) == (400, ["updated_since"])
    assert (bad_cursor.status_code, error_of(bad_cursor)["code"]) == (400, "invalid_cursor")
    assert feed(token_client(make_user(roles.FINANCE)), channel="web").status_code == 403


# --- receipts ------------------------------------------------------------------------------------


def receipt(reference="ASN-1", location="paris", lines=None) -> dict:
    return {
        "location": location,
        "reference": reference,
        "lines": lines or [{"sku": "MUG", "quantity": 5}, {"sku": "TEE", "quantity": 2}],
    }


@pytest.mark.django_db
def test_a_receipt_is_applied_once_and_a_redelivery_gets_the_first_answer(api, locations, product, receive):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 1)

    first = api.post(f"{API}receipts/", receipt(), format="json")

    assert first.status_code == 201
    assert first.json() == {
        "location": "paris",
        "reference": "ASN-1",
        "lines": [{"sku": "MUG", "quantity": 5, "on_hand": 6}, {"sku": "TEE", "quantity": 2, "on_hand": 2}],
    }
    rows = StockMovement.objects.filter(reference="ASN-1").order_by("pk")
    assert [(r.stock_item.product.sku, r.on_hand_delta, r.reason, r.actor) for r in rows] == [
        ("MUG", 5, MovementReason.RECEIPT, api.user),
        ("TEE", 2, MovementReason.RECEIPT, api.user),
    ]
    receive(mug, locations["paris"], 10)  # stock moves on before the 3PL retries
    before = written()

    again = api.post(f"{API}receipts/", receipt(), format="json")  # a retry without a key

    assert again.status_code == 200
    assert again.content == first.content
    assert written() == before
    assert (stock(mug, locations["paris"]), stock(tee, locations["paris"])) == ((16, 0), (2, 0))
    elsewhere = api.post(f"{API}receipts/", receipt(location="lyon"), format="json")  # same number, other site
    assert elsewhere.status_code == 201
    assert stock(mug, locations["lyon"]) == (5, 0)
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_a_receipt_fills_its_incoming_supply_and_the_preorders_promised_on_it(
    api, locations, web, product, place_order, boss
):
    mug = product("MUG")
    supply = supply_create(
        product=mug, location=locations["paris"], quantity=10, expected_at=TODAY, reference="PO-7", actor=boss
    )
    order = place_order({"MUG": 3})  # nothing in stock: promised against PO-7

    response = api.post(
        f"{API}receipts/", receipt(lines=[{"sku": "MUG", "quantity": 4, "supply": "PO-7"}]), format="json"
    )

    assert response.status_code == 201
    assert response.json()["lines"] == [{"sku": "MUG", "quantity": 4, "on_hand": 4}]
    supply.refresh_from_db()
    assert (supply.quantity_received, supply.quantity_promised, supply.status) == (4, 0, IncomingSupply.Status.OPEN)
    assert stock(mug, locations["paris"]) == (4, 3)
    assert Reservation.objects.get(order=order, state="active").stock_item_id is not None
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_a_receipt_with_an_unknown_sku_or_supply_is_refused_and_writes_nothing(api, locations, product):
    product("MUG")
    product("TEE")
    before = written()

    bad_sku = api.post(
        f"{API}receipts/", receipt(lines=[{"sku": "MUG", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]), format="json"
    )
    bad_supply = api.post(
        f"{API}receipts/", receipt(lines=[{"sku": "MUG", "quantity": 1, "supply": "PO-404"}]), format="json"
    )
    bad_shape = api.post(
        f"{API}receipts/", receipt(location="nowhere", lines=[{"sku": "MUG", "quantity": 0}]), format="json"
    )

    assert bad_sku.status_code == 400
    assert error_of(bad_sku)["extra"] == {"fields": {"lines.1.sku": ["Unknown SKU NOPE."]}}
    assert error_of(bad_supply)["extra"] == {
        "fields": {"lines.0.supply": ["No open incoming supply PO-404 of MUG at paris."]}
    }
    assert bad_shape.status_code == 400
    assert list(error_of(bad_shape)["extra"]["fields"]) == ["lines.0.quantity"]
    assert written() == before


@pytest.mark.django_db
def test_a_receipt_failing_on_its_second_line_writes_nothing_at_all(api, locations, product, boss):
    mug, tee = product("MUG"), product("TEE")
    supply_create(product=tee, location=locations["paris"], quantity=5, expected_at=TODAY, reference="PO-9", actor=boss)
    before = written()

    response = api.post(
        f"{API}receipts/",
        receipt(lines=[{"sku": "MUG", "quantity": 2}, {"sku": "TEE", "quantity": 8, "supply": "PO-9"}]),
        format="json",
    )

    assert response.status_code == 400
    body = error_of(response)
    assert (body["code"], body["extra"]) == ("over_receipt", {"fields": {"lines.1.quantity": ["At most 5."]}})
    assert written() == before
    assert stock(mug, locations["paris"]) == (0, 0)
    assert IncomingSupply.objects.get(reference="PO-9").quantity_received == 0


@pytest.mark.django_db
def test_a_receipt_number_sent_again_with_other_lines_is_refused(api, locations, product):
    product("MUG")
    product("TEE")
    api.post(f"{API}receipts/", receipt(), format="json")
    before = written()

    response = api.post(f"{API}receipts/", receipt(lines=[{"sku": "MUG", "quantity": 6}]), format="json")

    assert response.status_code == 409
    body = error_of(response)
    assert (body["code"], body["extra"]) == ("receipt_reference_reused", {"reference": "ASN-1", "location": "paris"})
    assert written() == before


@pytest.mark.django_db
def test_receiving_needs_the_receive_permission(locations, product):
    product("MUG")
    product("TEE")
    finance_manager = token_client(make_user(roles.FINANCE_MANAGER))

    response = finance_manager.post(f"{API}receipts/", receipt(), format="json")

    assert response.status_code == 403
    assert error_of(response)["extra"] == {"permission": "inventory.receive_stock"}
    assert StockMovement.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_receipt_at_the_same_moment_apply_it_once(locations, product):
    mug, tee = product("MUG"), product("TEE")
    user = make_user(roles.API_3PL)
    clients = [token_client(user), token_client(user)]

    results = run_together(2, lambda i: clients[i].post(f"{API}receipts/", receipt(), format="json"))

    assert sorted(r.status_code for r in results) == [200, 201], results
    assert results[0].content == results[1].content
    assert ledger() == [
        ("MUG", "paris", 5, 0, MovementReason.RECEIPT),
        ("TEE", "paris", 2, 0, MovementReason.RECEIPT),
    ]
    assert (stock(mug, locations["paris"]), stock(tee, locations["paris"])) == ((5, 0), (2, 0))
    assert stock_ledger_drift() == []


# --- adjustments ---------------------------------------------------------------------------------


def adjustment(**overrides) -> dict:
    return {
        "location": "paris",
        "sku": "MUG",
        "delta": -2,
        "note": "Broken in the rack",
        "reference": "ADJ-1",
    } | overrides


@pytest.mark.django_db
def test_an_adjustment_writes_one_ledger_row_with_its_reason(controller, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    movements = StockMovement.objects.count()

    response = controller.post(f"{API}adjustments/", adjustment(), format="json")

    assert response.status_code == 201
    assert response.json() == {
        "location": "paris",
        "sku": "MUG",
        "delta": -2,
        "reference": "ADJ-1",
        "note": "Broken in the rack",
        "on_hand": 8,
        "reserved": 0,
        "safety_stock": 0,
        "available": 8,
    }
    assert StockMovement.objects.count() == movements + 1
    row = StockMovement.objects.order_by("pk").last()
    assert (row.reason, row.on_hand_delta, row.reserved_delta, row.note, row.reference, row.actor) == (
        MovementReason.ADJUSTMENT,
        -2,
        0,
        "Broken in the rack",
        "ADJ-1",
        controller.user,
    )
    assert stock(mug, locations["paris"]) == (8, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.WAREHOUSE, roles.API_3PL])
def test_the_warehouse_and_the_3pl_may_not_adjust_stock(role, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    before = written()

    response = token_client(make_user(role)).post(f"{API}adjustments/", adjustment(), format="json")

    assert response.status_code == 403
    assert error_of(response)["extra"] == {"permission": "inventory.adjust_stock"}
    assert written() == before
    assert stock(mug, locations["paris"]) == (10, 0)


@pytest.mark.django_db
def test_an_adjustment_below_what_is_reserved_is_a_conflict(controller, locations, web, product, receive, place_order):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    place_order({"MUG": 3})
    before = written()

    response = controller.post(f"{API}adjustments/", adjustment(delta=-3), format="json")

    assert response.status_code == 409
    assert error_of(response)["code"] == "adjustment_below_reserved"
    assert written() == before
    assert stock(mug, locations["paris"]) == (5, 3)


@pytest.mark.django_db
def test_an_adjustment_needs_a_reason_a_known_sku_and_a_non_zero_delta(controller, locations, product, receive):
    receive(product("MUG"), locations["paris"], 5)
    before = written()

    no_reason = controller.post(f"{API}adjustments/", adjustment(note="  "), format="json")
    unknown = controller.post(f"{API}adjustments/", adjustment(sku="NOPE"), format="json")
    zero = controller.post(f"{API}adjustments/", adjustment(delta=0), format="json")

    assert [r.status_code for r in (no_reason, unknown, zero)] == [400, 400, 400]
    assert error_of(no_reason)["extra"] == {"fields": {"note": ["Required."]}}
    assert error_of(unknown)["extra"] == {"fields": {"sku": ["Unknown SKU NOPE."]}}
    assert error_of(zero)["extra"] == {"fields": {"delta": ["Non-zero integer."]}}
    assert written() == before


@pytest.mark.django_db
def test_an_adjustment_sent_again_with_its_idempotency_key_is_replayed_not_repeated(
    controller, locations, product, receive
):
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    first = controller.post(f"{API}adjustments/", adjustment(), format="json", HTTP_IDEMPOTENCY_KEY="adj-1")
    before = written()

    again = controller.post(f"{API}adjustments/", adjustment(), format="json", HTTP_IDEMPOTENCY_KEY="adj-1")
    other = controller.post(f"{API}adjustments/", adjustment(delta=-1), format="json", HTTP_IDEMPOTENCY_KEY="adj-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert (other.status_code, error_of(other)["code"]) == (422, "idempotency_key_reused")
    assert written() == before
    assert stock(mug, locations["paris"]) == (8, 0)
    record = IdempotencyRecord.objects.get(key="adj-1")
    assert (record.client, record.response_status) == (controller.user, 201)


# --- cycle counts --------------------------------------------------------------------------------


def count_body(**overrides) -> dict:
    return {
        "location": "paris",
        "reference": "CC-1",
        "lines": [{"sku": "TEE", "counted": 5}, {"sku": "MUG", "counted": 8}],
    } | overrides


def at(value) -> str:
    return serializers.DateTimeField().to_representation(value)


@pytest.mark.django_db
def test_a_submitted_count_shows_its_variances_and_changes_no_stock(api, locations, product, receive):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 10)
    receive(tee, locations["paris"], 4)
    movements = StockMovement.objects.count()

    response = api.post(f"{API}counts/", count_body(), format="json")

    assert response.status_code == 201
    count = CycleCount.objects.get()
    assert response.json() == {
        "id": count.pk,
        "location": "paris",
        "status": "counted",
        "note": "Reference: CC-1",
        "created_at": at(count.created_at),
        "applied_at": None,
        "lines": [
            {"sku": "MUG", "expected": 10, "counted": 8, "variance": -2},
            {"sku": "TEE", "expected": 4, "counted": 5, "variance": 1},
        ],
    }
    assert (count.created_by, count.status) == (api.user, CycleCount.Status.COUNTED)
    assert count.history.first().history_user == api.user
    assert StockMovement.objects.count() == movements
    assert (stock(mug, locations["paris"]), stock(tee, locations["paris"])) == ((10, 0), (4, 0))


@pytest.mark.django_db
def test_a_finance_manager_applies_a_count_through_count_movements(api, locations, product, receive):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 10)
    receive(tee, locations["paris"], 4)
    count_id = api.post(f"{API}counts/", count_body(), format="json").json()["id"]
    manager = make_user(roles.FINANCE_MANAGER)

    response = token_client(manager).post(f"{API}counts/{count_id}/apply/", {"note": "Q3 count"}, format="json")

    assert response.status_code == 200
    count = CycleCount.objects.get(pk=count_id)
    assert (response.json()["status"], response.json()["applied_at"]) == ("applied", at(count.applied_at))
    assert (count.status, count.approved_by) == (CycleCount.Status.APPLIED, manager)
    rows = StockMovement.objects.filter(reason=MovementReason.COUNT).order_by("pk")
    assert [(r.stock_item.product.sku, r.on_hand_delta, r.reference, r.note, r.actor) for r in rows] == [
        ("MUG", -2, f"count-{count_id}", "Q3 count", manager),
        ("TEE", 1, f"count-{count_id}", "Q3 count", manager),
    ]
    assert (stock(mug, locations["paris"]), stock(tee, locations["paris"])) == ((8, 0), (5, 0))
    again = token_client(manager).post(f"{API}counts/{count_id}/apply/", {}, format="json")
    assert (again.status_code, error_of(again)["code"]) == (409, "count_not_counted")
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_the_warehouse_may_not_apply_a_count(api, locations, product, receive):
    mug = product("MUG")
    product("TEE")
    receive(mug, locations["paris"], 10)
    count_id = api.post(f"{API}counts/", count_body(), format="json").json()["id"]
    before = written()

    response = token_client(make_user(roles.WAREHOUSE)).post(f"{API}counts/{count_id}/apply/", {}, format="json")
    missing = api.post(f"{API}counts/{count_id + 1}/apply/", {}, format="json")

    assert response.status_code == 403
    assert error_of(response)["extra"] == {"permission": "inventory.approve_cyclecount"}
    assert CycleCount.objects.get(pk=count_id).status == CycleCount.Status.COUNTED
    assert (missing.status_code, error_of(missing)["code"]) == (404, "count_not_found")
    assert written() == before
    assert stock(mug, locations["paris"]) == (10, 0)


@pytest.mark.django_db
def test_a_count_with_an_unknown_or_repeated_sku_is_refused_and_opens_nothing(api, locations, product):
    product("MUG")
    product("TEE")

    unknown = api.post(
        f"{API}counts/", count_body(lines=[{"sku": "MUG", "counted": 1}, {"sku": "NOPE", "counted": 1}]), format="json"
    )
    repeated = api.post(
        f"{API}counts/", count_body(lines=[{"sku": "MUG", "counted": 1}, {"sku": "MUG", "counted": 2}]), format="json"
    )

    assert error_of(unknown)["extra"] == {"fields": {"lines.1.sku": ["Unknown SKU NOPE."]}}
    assert (repeated.status_code, error_of(repeated)["extra"]) == (
        400,
        {"fields": {"lines.1.sku": ["Already on line 1."]}},
    )
    assert CycleCount.objects.count() == 0
