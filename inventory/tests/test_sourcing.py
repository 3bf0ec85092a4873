import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from inventory.models import (
    AllocationConflict,
    ChannelStockRule,
    ChannelStockSettings,
    IncomingSupply,
    MovementReason,
    Reservation,
    ReservationState,
    SourcingDecision,
    StockItem,
    StockMovement,
)
from inventory.selectors import stock_ledger_drift
from inventory.services import stock_receive, supply_create
from oms.core.errors import ConflictError, ValidationError
from orders import services as order_services
from orders.choices import HoldReason, OrderEventType, OrderStatus
from orders.models import Channel


def stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


@pytest.mark.django_db
def test_one_location_that_has_everything_wins_and_the_others_say_why(locations, web, product, receive, place_order):
    mug, tee = product("MUG"), product("TEE")
    for loc in ("paris", "lyon"):
        receive(mug, locations[loc], 5)
        receive(tee, locations[loc], 5)
    receive(mug, locations["london"], 5)

    order = place_order({"MUG": 2, "TEE": 1})

    decision = SourcingDecision.objects.get(order=order)
    assert decision.strategy == "fewest_splits"
    assert {(a["sku"], a["location"], a["quantity"]) for a in decision.allocations} == {
        ("MUG", "paris", 2),
        ("TEE", "paris", 1),
    }
    why = {c["location"]: c["rejected_because"] for c in decision.candidates}
    assert why["paris"] == ""
    assert why["lyon"] == "slower: 3 days against 2 at Paris warehouse"
    assert why["london"].startswith("has no TEE")
    assert "Paris warehouse" in decision.summary and "1 parcel" in decision.summary
    assert stock(mug, locations["paris"]) == (5, 2)
    assert stock(tee, locations["paris"]) == (5, 1)
    assert order.events.filter(type=OrderEventType.STOCK_ALLOCATED).get().payload["decision"] == decision.pk
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_split_only_when_no_single_location_covers_the_order(locations, web, product, receive, place_order):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 5)
    receive(tee, locations["lyon"], 5)

    order = place_order({"MUG": 1, "TEE": 1})

    decision = SourcingDecision.objects.get(order=order)
    assert {(a["sku"], a["location"]) for a in decision.allocations} == {("MUG", "paris"), ("TEE", "lyon")}
    assert "2 parcels" in decision.summary
    assert Reservation.objects.filter(order=order, state=ReservationState.ACTIVE).count() == 2


@pytest.mark.django_db
def test_cheapest_strategy_prefers_cost_over_speed(locations, web, product, receive, place_order):
    ChannelStockSettings.objects.create(channel=web, sourcing_strategy="cheapest")
    locations["lyon"].cost_per_parcel = "3.00"
    locations["lyon"].save()
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    receive(mug, locations["lyon"], 5)

    order = place_order({"MUG": 1})

    decision = SourcingDecision.objects.get(order=order)
    assert decision.allocations[0]["location"] == "lyon"
    assert {c["location"]: c["rejected_because"] for c in decision.candidates}["paris"].startswith("costlier")


@pytest.mark.django_db
def test_store_stock_kept_from_the_web(locations, web, product, receive, place_order):
    ChannelStockRule.objects.create(channel=web, kind="exclude", location_kind="store")
    mug = product("MUG")
    receive(mug, locations["lyon"], 5)
    receive(mug, locations["london"], 5)

    order = place_order({"MUG": 1})

    decision = SourcingDecision.objects.get(order=order)
    assert decision.allocations[0]["location"] == "london"
    assert {c["location"]: c["rejected_because"] for c in decision.candidates}["lyon"] == (
        "its stock is kept from channel web"
    )


@pytest.mark.django_db
def test_marketplace_share_caps_what_it_can_reserve(locations, web, product, receive, place_order):
    amazon = Channel.objects.create(code="amazon", name="Amazon", kind="marketplace")
    ChannelStockRule.objects.create(channel=amazon, kind="share", share="0.5")
    mug = product("MUG")
    receive(mug, locations["paris"], 10)

    first = place_order({"MUG": 4}, channel="amazon")
    second = place_order({"MUG": 2}, channel="amazon")  # 4 + 2 > 50 % of 10

    assert not first.holds.exists()
    assert second.holds.get().reason == HoldReason.STOCK_SHORTAGE
    assert sum(r.quantity for r in Reservation.objects.filter(order=second)) == 1
    web_order = place_order({"MUG": 5})  # the web is not capped
    assert not web_order.holds.exists()
    assert stock(mug, locations["paris"]) == (10, 10)


@pytest.mark.django_db
def test_ring_fenced_units_are_kept_for_their_channel(locations, web, product, receive, place_order):
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    ChannelStockRule.objects.create(
        channel=store, kind="ring_fence", product=mug, location=locations["paris"], quantity=3
    )

    web_order = place_order({"MUG": 3})
    assert web_order.holds.get().reason == HoldReason.STOCK_SHORTAGE  # only 2 free for the web
    store_order = place_order({"MUG": 3}, channel="lyon-store")
    assert not store_order.holds.exists()
    assert stock(mug, locations["paris"]) == (5, 5)


@pytest.mark.django_db
def test_last_unit_goes_to_the_higher_priority_channel_and_the_loser_is_held(
    locations, web, product, receive, place_order, django_capture_on_commit_callbacks, celery_eager
):
    store = Channel.objects.create(code="lyon-store", name="Lyon store", kind="store")
    ChannelStockSettings.objects.create(channel=store, priority=1)
    ChannelStockSettings.objects.create(channel=web, priority=50)
    mug = product("MUG")
    receive(mug, locations["paris"], 1)
    web_order = place_order({"MUG": 1})
    assert Reservation.objects.get(order=web_order).state == ReservationState.ACTIVE

    with django_capture_on_commit_callbacks(execute=True):
        store_order = place_order({"MUG": 1}, channel="lyon-store")

    assert not store_order.holds.exists()
    assert Reservation.objects.get(order=store_order).state == ReservationState.ACTIVE
    lost = Reservation.objects.get(order=web_order)
    assert lost.state == ReservationState.RELEASED
    conflict = AllocationConflict.objects.get()
    assert (conflict.winner_order, conflict.loser_order, conflict.quantity) == (store_order, web_order, 1)
    # The loser was re-sourced after commit (the task ran eagerly from on_commit) and now waits on
    # a stock-shortage hold.
    assert web_order.holds.get().reason == HoldReason.STOCK_SHORTAGE
    assert stock(mug, locations["paris"]) == (1, 1)
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_backorder_is_promised_from_incoming_supply(locations, web, product, receive, place_order, boss):
    mug = product("MUG")
    receive(mug, locations["paris"], 1)
    due = datetime.date.today() + datetime.timedelta(days=10)
    supply = supply_create(
        product=mug, location=locations["paris"], quantity=20, expected_at=due, reference="PO-1", actor=boss
    )

    order = place_order({"MUG": 3})

    line = order.lines.get()
    assert line.promised_at.date() == due
    assert not order.holds.exists()
    supply.refresh_from_db()
    assert supply.quantity_promised == 2
    decision = SourcingDecision.objects.get(order=order)
    assert decision.backorders == [
        {"line": 1, "sku": "MUG", "quantity": 2, "supply": "PO-1", "promised_for": due.isoformat()}
    ]

    stock_receive(product=mug, location=locations["paris"], quantity=20, actor=boss, supply=supply)

    supply.refresh_from_db()
    assert (supply.quantity_received, supply.quantity_promised, supply.status) == (20, 0, "received")
    assert stock(mug, locations["paris"]) == (21, 3)
    assert all(r.stock_item_id for r in Reservation.objects.filter(order=order, state="active"))
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_preorders_stop_at_their_limit(locations, web, product, place_order, boss):
    game = product("GAME", preorder_enabled=True, preorder_limit=3)
    supply_create(
        product=game,
        location=locations["paris"],
        quantity=100,
        expected_at=datetime.date.today() + datetime.timedelta(days=30),
        reference="PO-G",
        actor=boss,
    )

    ok = place_order({"GAME": 3})
    over = place_order({"GAME": 1})

    assert ok.lines.get().promised_at is not None and not ok.holds.exists()
    assert over.holds.get().reason == HoldReason.STOCK_SHORTAGE


@pytest.mark.django_db
def test_shortage_without_supply_holds_the_order(locations, web, product, receive, place_order):
    mug = product("MUG")
    receive(mug, locations["paris"], 1)

    order = place_order({"MUG": 2})

    hold = order.holds.get()
    assert hold.reason == HoldReason.STOCK_SHORTAGE
    assert "1 × MUG" in hold.note
    assert stock(mug, locations["paris"]) == (1, 1)


@pytest.mark.django_db
def test_cancel_releases_and_shipment_consumes(locations, web, product, receive, place_order, boss):
    mug = product("MUG")
    receive(mug, locations["paris"], 10)
    canceled = place_order({"MUG": 3})
    shipped = place_order({"MUG": 2})
    assert stock(mug, locations["paris"]) == (10, 5)

    order_services.order_cancel(order=canceled, actor=boss, reason_code="customer_request")
    order_services.order_start_preparation(order=shipped, actor=boss)
    order_services.order_record_shipment(order=shipped, actor=boss, reference="SHP-1")

    assert stock(mug, locations["paris"]) == (8, 0)
    reasons = list(StockMovement.objects.order_by("id").values_list("reason", "on_hand_delta", "reserved_delta"))
    assert reasons[-2:] == [(MovementReason.RELEASE, 0, -3), (MovementReason.SHIPMENT, -2, -2)]
    assert StockMovement.objects.filter(reason=MovementReason.SHIPMENT).get().reference == "SHP-1"
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_hard_reservation_happens_at_picking(locations, web, product, receive, place_order, boss):
    ChannelStockSettings.objects.create(channel=web, reservation_mode="hard")
    mug = product("MUG")
    receive(mug, locations["paris"], 2)
    order = place_order({"MUG": 2})
    assert stock(mug, locations["paris"]) == (2, 0)

    order_services.order_start_preparation(order=order, actor=boss)
    assert stock(mug, locations["paris"]) == (2, 2)

    late = place_order({"MUG": 1})
    with pytest.raises(ConflictError) as excinfo:
        order_services.order_start_preparation(order=late, actor=boss)
    assert excinfo.value.code == "stock_shortage"
    late.refresh_from_db()
    assert late.status == OrderStatus.CONFIRMED


@pytest.mark.django_db
def test_test_orders_never_take_stock(locations, web, product, receive, place_order, boss):
    mug = product("MUG")
    receive(mug, locations["paris"], 1)
    order = place_order({"MUG": 1}, is_test=True)
    assert stock(mug, locations["paris"]) == (1, 0)
    order_services.order_start_preparation(order=order, actor=boss)
    order_services.order_record_shipment(order=order, actor=boss)
    assert stock(mug, locations["paris"]) == (1, 0)


@pytest.mark.django_db
def test_product_outside_its_sell_window_is_refused(locations, web, product, place_order):
    product("XMAS", sellable_until=timezone.now() - datetime.timedelta(days=1))
    with pytest.raises(ValidationError) as excinfo:
        place_order({"XMAS": 1})
    assert "no longer sold since" in excinfo.value.extra["fields"]["lines.0.sku"][0]


@pytest.mark.django_db
def test_unknown_sku_keeps_the_order_on_hold(locations, web, place_order):
    order = place_order({"NOPE": 1})
    assert order.status == OrderStatus.CONFIRMED
    assert order.holds.get().reason == HoldReason.UNKNOWN_PRODUCT


@pytest.mark.django_db
def test_check_stock_ledger_reports_drift(locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 4)
    call_command("check_stock_ledger", stdout=open("/dev/null", "w"))  # noqa: SIM115

    StockItem.objects.filter(product=mug).update(on_hand=7)  # a write that bypassed the services

    with pytest.raises(CommandError, match="1 stock row"):
        call_command("check_stock_ledger", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert stock_ledger_drift()[0]["ledger_on_hand"] == 4


@pytest.mark.django_db
def test_incoming_supply_cannot_be_over_received(locations, product, boss):
    mug = product("MUG")
    supply = supply_create(
        product=mug,
        location=locations["paris"],
        quantity=5,
        expected_at=datetime.date.today(),
        reference="PO-9",
        actor=boss,
    )
    with pytest.raises(ValidationError):
        stock_receive(product=mug, location=locations["paris"], quantity=6, actor=boss, supply=supply)
    assert not StockItem.objects.filter(product=mug, on_hand__gt=0).exists()
    assert IncomingSupply.objects.get().quantity_received == 0


@pytest.mark.django_db
def test_a_split_names_what_each_unchosen_location_lacks(locations, web, product, receive, place_order):
    lamp, mug = product("LAMP"), product("MUG")
    receive(lamp, locations["lyon"], 5)
    receive(mug, locations["paris"], 5)
    receive(mug, locations["london"], 5)

    order = place_order({"LAMP": 1, "MUG": 1})

    decision = SourcingDecision.objects.get(order=order)
    why = {c["location"]: c["rejected_because"] for c in decision.candidates}
    assert {a["location"] for a in decision.allocations} == {"lyon", "paris"}
    assert why["london"] == "has no LAMP; the chosen locations ship the order in 2 parcels without it"
