"""The cockpit's inventory screens: cheap lists, and forms that go through the inventory services."""

import datetime
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from inventory.admin import sku_products
from inventory.models import (
    AllocationConflict,
    ChannelStockRule,
    ChannelStockSettings,
    CycleCount,
    IncomingSupply,
    Location,
    MovementReason,
    SourcingDecision,
    StockItem,
    StockMovement,
)
from inventory.selectors import stock_ledger_drift
from inventory.services import count_open, products_switch_off_expired, supply_create
from inventory.tests.conftest import TOMORROW
from oms.cockpit import roles
from orders.models import Channel
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

LISTS = {
    "products": "admin:inventory_product_changelist",
    "locations": "admin:inventory_location_changelist",
    "stock": "admin:inventory_stockitem_changelist",
    "ledger": "admin:inventory_stockmovement_changelist",
    "reservations": "admin:inventory_reservation_changelist",
    "supply": "admin:inventory_incomingsupply_changelist",
    "counts": "admin:inventory_cyclecount_changelist",
    "alerts": "admin:inventory_stockalert_changelist",
    "channel rules": "admin:inventory_channelstockrule_changelist",
    "channel settings": "admin:inventory_channelstocksettings_changelist",
}


def page_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def get_with_queries(client, url: str):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return response, captured.captured_queries


def unbounded_counts(queries, table: str) -> list[str]:
    """COUNT queries over a whole table: no WHERE, no LIMIT (Django ticket #8408)."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper()
        and f'"{table}"' in q["sql"]
        and " WHERE " not in q["sql"].upper()
        and " LIMIT " not in q["sql"].upper()
    ]


def actions(response) -> set[str]:
    return set(re.findall(r'data-action="([a-z_]+)"', response.content.decode()))


def on_hand(product, location) -> tuple[int, int]:
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


@pytest.fixture
def store_location(db):
    """A store that does not ship to customers: a candidate sourcing must explain away."""
    return Location.objects.create(
        code="bordeaux", name="Bordeaux store", kind="store", country="FR", handling_days=1, priority=40
    )


@pytest.fixture
def grow(locations, web, product, receive, place_order, boss):
    """grow(n): n more products with stock in two places, orders (one split, one back-ordered),
    incoming supply, a cycle count, a channel rule and an expired product's alert."""
    made = {"n": 0}
    ChannelStockSettings.objects.get_or_create(channel=web, defaults={"priority": 50})

    def _grow(n: int):
        for _ in range(n):
            i = made["n"] = made["n"] + 1
            item = product(f"SKU-{i:03d}", barcode=f"40000000{i:05d}")
            receive(item, locations["paris"], 10)
            receive(item, locations["lyon"], 5)
            supply_create(
                product=item,
                location=locations["paris"],
                quantity=20,
                expected_at=TOMORROW,
                reference=f"PO-{i}",
                actor=boss,
            )
            place_order({item.sku: 2})
            place_order({item.sku: 20})  # 8 + 5 from stock in two parcels, 7 promised on the PO
            count_open(location=locations["paris"], products=[item], actor=boss)
            ChannelStockRule.objects.create(channel=web, kind="exclude", product=item, location=locations["london"])
            product(f"OLD-{i:03d}", sellable_until=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        products_switch_off_expired(actor=boss)

    return _grow


# --- the lists ------------------------------------------------------------------------------------


def test_every_inventory_list_loads_with_a_constant_query_count(client, grow, locations):
    users = {role: make_user(role) for role in (roles.ADMINISTRATOR, roles.WAREHOUSE, roles.SUPPORT_L2)}
    paris = locations["paris"].pk
    urls = [reverse(name) for name in LISTS.values()] + [
        reverse(LISTS["stock"]) + f"?location__id__exact={paris}&q=SKU",
        reverse(LISTS["stock"]) + "?o=-5",
        reverse(LISTS["ledger"]) + f"?reason__exact=reservation&location={paris}",
        reverse(LISTS["ledger"]) + "?q=SKU-001",
        reverse(LISTS["reservations"]) + "?state__exact=active",
        reverse(LISTS["products"]) + "?q=sku-0&is_active__exact=1",
    ]

    def measure():
        counts = {}
        for role, user in users.items():
            client.force_login(user)
            for url in urls:
                response, queries = get_with_queries(client, url)
                assert unbounded_counts(queries, "inventory_stockmovement") == [], (role, url)
                assert unbounded_counts(queries, "inventory_stockitem") == [], (role, url)
                assert unbounded_counts(queries, "inventory_reservation") == [], (role, url)
                counts[role, url] = len(queries)
        return counts

    grow(2)
    few = measure()
    grow(8)
    many = measure()

    assert many == few
    assert max(few.values()) <= 20
    assert stock_ledger_drift() == []


def test_the_ledger_never_counts_the_whole_table_and_lists_newest_first(client, grow, boss):
    grow(3)
    client.force_login(make_user(roles.WAREHOUSE))
    url = reverse(LISTS["ledger"])

    response, queries = get_with_queries(client, url)

    assert unbounded_counts(queries, "inventory_stockmovement") == []
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == StockMovement.objects.order_by("-pk").first().pk
    assert response.context["cl"].show_full_result_count is False


def test_ledger_search_by_sku_order_number_and_reference(client, locations, web, product, receive, place_order):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 5)
    receive(tee, locations["paris"], 5)
    order = place_order({"MUG": 1})
    client.force_login(make_user(roles.WAREHOUSE))
    url = reverse(LISTS["ledger"])

    by_sku = client.get(url, {"q": "mug"}).context["cl"].result_list
    by_order = client.get(url, {"q": order.number}).context["cl"].result_list
    by_reference = client.get(url, {"q": "no such reference"}).context["cl"].result_list

    assert {m.stock_item.product.sku for m in by_sku} == {"MUG"}
    assert len(by_sku) == 2  # the receipt and the reservation
    assert [(m.reason, m.order_id) for m in by_order] == [(MovementReason.RESERVATION, order.pk)]
    assert list(by_reference) == []


def test_stock_list_computes_available_in_sql_and_sorts_by_it(client, locations, product, receive):
    a, b, c = product("A"), product("B"), product("C")
    receive(a, locations["paris"], 3)
    receive(b, locations["paris"], 30)
    receive(c, locations["paris"], 12)
    client.force_login(make_user(roles.SUPPORT_L2))

    response = client.get(reverse(LISTS["stock"]), {"o": "-5"})

    rows = list(response.context["cl"].result_list)
    assert [(row.product.sku, row.available_units) for row in rows] == [("B", 30), ("C", 12), ("A", 3)]
    assert actions(response) == set()  # support may look, not receive or adjust


def test_stock_search_by_sku_prefix_and_barcode(client, locations, product, receive):
    mug = product("MUG-STONE-01", barcode="3760000000017")
    tee = product("TEE-ORG-M", barcode="3760000000024")
    receive(mug, locations["paris"], 3)
    receive(tee, locations["paris"], 3)
    client.force_login(make_user(roles.WAREHOUSE))
    url = reverse(LISTS["stock"])

    assert [r.product.sku for r in client.get(url, {"q": "mug-st"}).context["cl"].result_list] == ["MUG-STONE-01"]
    assert [r.product.sku for r in client.get(url, {"q": "3760000000024"}).context["cl"].result_list] == ["TEE-ORG-M"]
    assert list(client.get(url, {"q": "STONE"}).context["cl"].result_list) == []  # prefix only: the index


def test_sku_and_barcode_prefix_search_is_served_by_their_indexes(product):
    product("MUG-STONE-01", barcode="3760000000017")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a plan that can use an index must

    plan = sku_products("mug-st").order_by().explain()

    assert "Seq Scan" not in plan
    assert plan.count("Bitmap Index Scan on inventory_product_sku_") == 2  # the varchar_pattern_ops indexes
    assert plan.count("Bitmap Index Scan on inventory_product_barcode_") == 2


def test_product_page_shows_its_stock_per_location_with_atp(client, locations, product, receive):
    mug = product("MUG", safety_stock=0)
    receive(mug, locations["paris"], 7)
    receive(mug, locations["lyon"], 4)
    supply_create(
        product=mug,
        location=locations["paris"],
        quantity=12,
        expected_at=TOMORROW,
        reference="PO-77",
        actor=make_user(roles.ADMINISTRATOR),
    )
    client.force_login(make_user(roles.ADMINISTRATOR))

    response = client.get(reverse("admin:inventory_product_change", args=[mug.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Paris warehouse" in content and "Lyon store" in content
    assert "Available to promise now, all channels" in content
    assert "<strong>11</strong>" in content  # 7 + 4
    assert "PO-77" in content


def test_stock_rows_cannot_be_added_changed_or_deleted_through_the_admin(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    item = StockItem.objects.get(product=mug)
    client.force_login(make_user(roles.ADMINISTRATOR))

    page = client.get(reverse("admin:inventory_stockitem_change", args=[item.pk]))
    posted = client.post(reverse("admin:inventory_stockitem_change", args=[item.pk]), {"on_hand": 500})

    assert page.status_code == 200
    assert 'name="on_hand"' not in page.content.decode()
    assert posted.status_code == 403
    assert client.get(reverse("admin:inventory_stockitem_add")).status_code == 403
    assert client.get(reverse("admin:inventory_stockitem_delete", args=[item.pk])).status_code == 403
    assert on_hand(mug, locations["paris"]) == (5, 0)


# --- receive and adjust ------------------------------------------------------------------------------


def test_warehouse_receives_stock_through_the_service(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    user = make_user(roles.WAREHOUSE)
    client.force_login(user)
    item = StockItem.objects.get(product=mug)
    assert client.get(reverse("admin:inventory_stockitem_receive"), {"item": item.pk}).status_code == 200

    response = client.post(
        reverse("admin:inventory_stockitem_receive"),
        {"product": mug.pk, "location": locations["paris"].pk, "quantity": 12, "reference": "DN-4411", "note": ""},
    )

    assert response.status_code == 302
    assert on_hand(mug, locations["paris"]) == (17, 0)
    movement = StockMovement.objects.order_by("-pk").first()
    assert (movement.reason, movement.on_hand_delta, movement.actor, movement.reference) == (
        MovementReason.RECEIPT,
        12,
        user,
        "DN-4411",
    )
    assert page_messages(response) == ["Received 12 × MUG at Paris warehouse: 17 on hand."]


def test_receiving_against_a_purchase_order_fills_it(client, locations, product, boss):
    mug = product("MUG")
    supply = supply_create(
        product=mug, location=locations["paris"], quantity=10, expected_at=TOMORROW, reference="PO-1", actor=boss
    )
    user = make_user(roles.WAREHOUSE)
    client.force_login(user)
    form = client.get(reverse("admin:inventory_stockitem_receive"), {"supply": supply.pk})
    assert form.context["form"].initial["quantity"] == 10

    response = client.post(
        reverse("admin:inventory_stockitem_receive"),
        {"product": mug.pk, "location": locations["paris"].pk, "quantity": 10, "supply": supply.pk, "reference": ""},
    )

    assert response.status_code == 302
    supply.refresh_from_db()
    assert (supply.quantity_received, supply.status) == (10, IncomingSupply.Status.RECEIVED)
    assert supply.history.latest().history_user == user
    assert StockMovement.objects.get(reason=MovementReason.RECEIPT).reference == "PO-1"


def test_finance_manager_adjusts_stock_with_a_reason(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    user = make_user(roles.FINANCE_MANAGER)
    client.force_login(user)
    assert "adjust" in actions(client.get(reverse(LISTS["stock"])))

    response = client.post(
        reverse("admin:inventory_stockitem_adjust"),
        {"product": mug.pk, "location": locations["paris"].pk, "delta": -2, "note": "Broken in the aisle"},
    )

    assert response.status_code == 302
    assert on_hand(mug, locations["paris"]) == (3, 0)
    movement = StockMovement.objects.order_by("-pk").first()
    assert (movement.reason, movement.on_hand_delta, movement.actor, movement.note) == (
        MovementReason.ADJUSTMENT,
        -2,
        user,
        "Broken in the aisle",
    )
    assert stock_ledger_drift() == []


def test_an_adjustment_below_what_is_reserved_is_a_message_on_the_form_and_changes_nothing(
    client, locations, web, product, receive, place_order
):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    place_order({"MUG": 4})
    movements = StockMovement.objects.count()
    client.force_login(make_user(roles.FINANCE_MANAGER))

    response = client.post(
        reverse("admin:inventory_stockitem_adjust"),
        {"product": mug.pk, "location": locations["paris"].pk, "delta": -3, "note": "Count was off"},
    )

    assert response.status_code == 200
    message = "MUG at paris: on hand would fall to 2, below the 4 unit(s) reserved for orders."
    assert page_messages(response) == [message]
    assert response.context["form"].non_field_errors() == [message]
    assert on_hand(mug, locations["paris"]) == (5, 4)
    assert StockMovement.objects.count() == movements


def test_service_field_errors_land_on_the_adjust_form(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    client.force_login(make_user(roles.FINANCE_MANAGER))

    response = client.post(
        reverse("admin:inventory_stockitem_adjust"),
        {"product": mug.pk, "location": locations["paris"].pk, "delta": 0, "note": "nothing"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["delta"] == ["Non-zero integer."]


def test_warehouse_has_no_adjust_button_and_is_refused_when_posting(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    client.force_login(make_user(roles.WAREHOUSE))

    listing = client.get(reverse(LISTS["stock"]))
    form = client.get(reverse("admin:inventory_stockitem_adjust"))
    posted = client.post(
        reverse("admin:inventory_stockitem_adjust"),
        {"product": mug.pk, "location": locations["paris"].pk, "delta": -5, "note": "gone"},
    )

    assert actions(listing) == {"receive"}
    assert form.status_code == 403
    assert posted.status_code == 403
    assert on_hand(mug, locations["paris"]) == (5, 0)
    assert not StockMovement.objects.filter(reason=MovementReason.ADJUSTMENT).exists()


def test_support_cannot_receive(client, locations, product):
    mug = product("MUG")
    client.force_login(make_user(roles.SUPPORT_L2))

    response = client.post(
        reverse("admin:inventory_stockitem_receive"),
        {"product": mug.pk, "location": locations["paris"].pk, "quantity": 5},
    )

    assert response.status_code == 403
    assert not StockItem.objects.filter(product=mug).exists()


# --- incoming supply ---------------------------------------------------------------------------------


def test_warehouse_records_incoming_supply_through_the_service(client, locations, product):
    blanket = product("BLANKET")
    user = make_user(roles.WAREHOUSE)
    client.force_login(user)
    assert client.get(reverse("admin:inventory_incomingsupply_add")).status_code == 200

    response = client.post(
        reverse("admin:inventory_incomingsupply_add"),
        {
            "product": blanket.pk,
            "location": locations["paris"].pk,
            "kind": "purchase_order",
            "reference": "PO-2026-0099",
            "quantity": 60,
            "expected_at": "2030-01-15",
        },
    )

    assert response.status_code == 302
    supply = IncomingSupply.objects.get()
    assert (supply.reference, supply.quantity, supply.quantity_received, supply.expected_at) == (
        "PO-2026-0099",
        60,
        0,
        datetime.date(2030, 1, 15),
    )
    assert supply.history.get().history_user == user
    page = client.get(reverse("admin:inventory_incomingsupply_change", args=[supply.pk]))
    assert page.status_code == 200
    assert 'name="quantity"' not in page.content.decode()  # counters are not editable
    assert client.post(reverse("admin:inventory_incomingsupply_change", args=[supply.pk]), {}).status_code == 403


# --- cycle counts ------------------------------------------------------------------------------------


def test_cycle_count_opened_and_counted_by_the_warehouse_is_applied_by_a_finance_manager(
    client, locations, product, receive
):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 10)
    receive(tee, locations["paris"], 4)
    warehouse = make_user(roles.WAREHOUSE)
    manager = make_user(roles.FINANCE_MANAGER)
    client.force_login(warehouse)

    opened = client.post(
        reverse("admin:inventory_cyclecount_add"),
        {"location": locations["paris"].pk, "products": [mug.pk, tee.pk], "note": "Aisle 3"},
    )
    count = CycleCount.objects.get()
    assert opened.status_code == 302 and opened["Location"] == reverse(
        "admin:inventory_cyclecount_change", args=[count.pk]
    )
    assert {(line.product.sku, line.expected) for line in count.lines.all()} == {("MUG", 10), ("TEE", 4)}

    recorded = client.post(
        reverse("admin:inventory_cyclecount_record", args=[count.pk]),
        {f"line_{mug.pk}": 8, f"line_{tee.pk}": 5},
    )
    assert recorded.status_code == 302
    count.refresh_from_db()
    assert count.status == CycleCount.Status.COUNTED

    page = client.get(reverse("admin:inventory_cyclecount_change", args=[count.pk]))
    assert "apply" not in actions(page)
    refused = client.post(reverse("admin:inventory_cyclecount_apply", args=[count.pk]), {"note": "ok"})
    assert refused.status_code == 403
    assert on_hand(mug, locations["paris"]) == (10, 0)

    client.force_login(manager)
    page = client.get(reverse("admin:inventory_cyclecount_change", args=[count.pk]))
    content = page.content.decode()
    assert "apply" in actions(page)
    assert "−2" in content or "-2" in content  # MUG: counted 8 against 10
    applied = client.post(reverse("admin:inventory_cyclecount_apply", args=[count.pk]), {"note": "Checked twice"})

    assert applied.status_code == 302
    count.refresh_from_db()
    assert (count.status, count.approved_by) == (CycleCount.Status.APPLIED, manager)
    assert on_hand(mug, locations["paris"]) == (8, 0)
    assert on_hand(tee, locations["paris"]) == (5, 0)
    rows = StockMovement.objects.filter(reason=MovementReason.COUNT).order_by("pk")
    assert [(m.stock_item.product.sku, m.on_hand_delta, m.actor, m.reference) for m in rows] == [
        ("MUG", -2, manager, f"count-{count.pk}"),
        ("TEE", 1, manager, f"count-{count.pk}"),
    ]
    assert stock_ledger_drift() == []


def test_a_count_with_a_missing_line_is_a_form_error_and_stays_open(client, locations, product, receive):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 10)
    warehouse = make_user(roles.WAREHOUSE)
    count = count_open(location=locations["paris"], products=[mug, tee], actor=warehouse)
    client.force_login(warehouse)

    response = client.post(reverse("admin:inventory_cyclecount_record", args=[count.pk]), {f"line_{mug.pk}": 9})

    assert response.status_code == 200
    assert response.context["record_form"].errors[f"line_{tee.pk}"] == ["This field is required."]
    count.refresh_from_db()
    assert count.status == CycleCount.Status.OPEN
    assert not count.lines.filter(counted__isnull=False).exists()


def test_recording_a_count_that_is_no_longer_open_is_a_message_not_an_error_page(client, locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    warehouse = make_user(roles.WAREHOUSE)
    count = count_open(location=locations["paris"], products=[mug], actor=warehouse)
    client.force_login(warehouse)
    client.post(reverse("admin:inventory_cyclecount_record", args=[count.pk]), {f"line_{mug.pk}": 9})

    again = client.post(reverse("admin:inventory_cyclecount_record", args=[count.pk]), {f"line_{mug.pk}": 3})

    assert again.status_code == 200
    assert page_messages(again)[-1] == "This count is not open."
    assert count.lines.get().counted == 9


# --- the Sourcing panel of the order page -------------------------------------------------------------


def test_order_page_explains_a_split_between_two_locations_and_every_rejected_candidate(
    client, locations, store_location, web, product, receive, place_order
):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 5)
    receive(tee, locations["lyon"], 5)
    receive(mug, locations["london"], 1)
    receive(mug, store_location, 9)
    order = place_order({"MUG": 2, "TEE": 1})
    decision = SourcingDecision.objects.get(order=order)
    assert "2 parcels" in decision.summary
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    panel = content[content.index('id="oms-sourcing"') : content.index('id="oms-timeline"')]
    assert escape(decision.summary) in panel
    assert "Paris warehouse" in panel and "Lyon store" in panel
    rejected = {c["location"]: c["rejected_because"] for c in decision.candidates if not c["chosen"]}
    assert set(rejected) == {"london", "bordeaux"}
    assert rejected["bordeaux"] == "a store that does not ship to customers"
    for reason in rejected.values():
        assert reason and escape(reason) in panel
    allocations = panel[panel.index('id="oms-sourcing-allocations"') : panel.index('id="oms-sourcing-candidates"')]
    assert re.search(r"<code>MUG</code></td><td>Paris warehouse</td><td class=\"num\">2</td>", allocations)
    assert re.search(r"<code>TEE</code></td><td>Lyon store</td><td class=\"num\">1</td>", allocations)
    assert panel.count("✓") == 2


def test_order_page_shows_backorders_with_their_promised_date(
    client, locations, web, product, receive, place_order, boss
):
    blanket = product("BLANKET")
    receive(blanket, locations["paris"], 1)
    supply_create(
        product=blanket, location=locations["paris"], quantity=50, expected_at=TOMORROW, reference="PO-9", actor=boss
    )
    order = place_order({"BLANKET": 3})
    client.force_login(make_user(roles.SUPPORT_L1))

    content = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    backorders = content[content.index('id="oms-sourcing-backorders"') :]
    assert "PO-9" in backorders
    assert '<code>BLANKET</code></td><td class="num">2</td>' in backorders


def test_order_page_shows_a_lost_last_unit_conflict_and_against_which_order(
    client, locations, web, product, receive, place_order, django_capture_on_commit_callbacks, celery_eager
):
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    ChannelStockSettings.objects.create(channel=store, priority=1)
    ChannelStockSettings.objects.create(channel=web, priority=50)
    mug = product("MUG")
    receive(mug, locations["paris"], 1)
    web_order = place_order({"MUG": 1})
    with django_capture_on_commit_callbacks(execute=True):
        store_order = place_order({"MUG": 1}, channel="lyon-store")
    assert AllocationConflict.objects.filter(winner_order=store_order, loser_order=web_order).exists()
    client.force_login(make_user(roles.SUPPORT_L1))

    lost = client.get(reverse("admin:orders_order_change", args=[web_order.pk])).content.decode()
    won = client.get(reverse("admin:orders_order_change", args=[store_order.pk])).content.decode()

    lost_panel = lost[lost.index('id="oms-sourcing-conflicts"') :]
    won_panel = won[won.index('id="oms-sourcing-conflicts"') :]
    assert ">lost<" in lost_panel and store_order.number in lost_panel
    assert ">won<" in won_panel and web_order.number in won_panel


def test_the_sourcing_panel_is_for_roles_that_may_see_sourcing(client, locations, web, product, receive, place_order):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    order = place_order({"MUG": 1})
    url = reverse("admin:orders_order_change", args=[order.pk])

    client.force_login(make_user(roles.FINANCE))
    finance = client.get(url).content.decode()
    client.force_login(make_user(roles.WAREHOUSE))
    warehouse = client.get(url).content.decode()

    assert 'id="oms-sourcing"' not in finance
    assert 'id="oms-sourcing"' in warehouse


def test_order_page_query_count_does_not_grow_with_candidates_or_conflicts(
    client, locations, store_location, web, product, receive, place_order
):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 5)
    receive(tee, locations["lyon"], 5)
    small = place_order({"MUG": 1})
    for location in (locations["london"], store_location):
        receive(mug, location, 3)
        receive(tee, location, 3)
    big = place_order({"MUG": 2, "TEE": 2})
    client.force_login(make_user(roles.SUPPORT_L2))

    _, few = get_with_queries(client, reverse("admin:orders_order_change", args=[small.pk]))
    _, many = get_with_queries(client, reverse("admin:orders_order_change", args=[big.pk]))

    assert len(many) == len(few)
