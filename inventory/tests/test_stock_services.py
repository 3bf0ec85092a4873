import datetime
import logging

import pytest
import time_machine
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from inventory.models import CycleCount, MovementReason, StockAlert, StockItem, StockMovement, validate_gtin
from inventory.selectors import stock_ledger_drift
from inventory.services import (
    count_apply,
    count_cancel,
    count_open,
    count_record,
    coverage_alerts_refresh,
    stock_adjust,
)
from inventory.tasks import products_switch_off_expired
from oms.cockpit import roles
from oms.core.errors import ConflictError, PermissionDeniedError, ValidationError
from orders import services as order_services
from orders.tests.factories import make_user


def stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


@pytest.mark.django_db
def test_cycle_count_shows_the_variance_and_applies_only_with_approval(locations, product, receive, web, place_order):
    mug, tee = product("MUG"), product("TEE")
    receive(mug, locations["paris"], 10)
    receive(tee, locations["paris"], 4)
    place_order({"MUG": 3})
    warehouse = make_user(roles.WAREHOUSE)
    manager = make_user(roles.FINANCE_MANAGER)

    count = count_open(location=locations["paris"], products=[mug, tee], actor=warehouse)
    count_record(count=count, counted={mug.pk: 8, tee.pk: 4}, actor=warehouse)
    variances = {line.product.sku: line.counted - line.expected for line in count.lines.all()}
    assert variances == {"MUG": -2, "TEE": 0}

    with pytest.raises(PermissionDeniedError):
        count_apply(count=count, actor=warehouse)
    assert stock(mug, locations["paris"]) == (10, 3)

    count_apply(count=count, actor=manager, note="Two mugs broken on the shelf")

    count.refresh_from_db()
    assert (count.status, count.approved_by) == (CycleCount.Status.APPLIED, manager)
    assert stock(mug, locations["paris"]) == (8, 3)
    movement = StockMovement.objects.filter(reason=MovementReason.COUNT).get()
    assert (movement.on_hand_delta, movement.actor, movement.reference) == (-2, manager, f"count-{count.pk}")
    assert count.history.order_by("-history_id").first().history_user == manager
    with pytest.raises(ConflictError):
        count_apply(count=count, actor=manager)  # applied once only
    assert stock_ledger_drift() == []


@pytest.mark.django_db
def test_a_count_below_what_is_reserved_is_refused(locations, product, receive, web, place_order):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    place_order({"MUG": 4})
    warehouse = make_user(roles.WAREHOUSE)
    manager = make_user(roles.FINANCE_MANAGER)
    count = count_open(location=locations["paris"], products=[mug], actor=warehouse)
    count_record(count=count, counted={mug.pk: 2}, actor=warehouse)

    with pytest.raises(ConflictError) as excinfo:
        count_apply(count=count, actor=manager)

    assert excinfo.value.code == "count_below_reserved"
    assert stock(mug, locations["paris"]) == (5, 4)


@pytest.mark.django_db
def test_manual_adjustment_needs_its_permission_and_a_reason(locations, product, receive):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    warehouse = make_user(roles.WAREHOUSE)
    manager = make_user(roles.FINANCE_MANAGER)

    with pytest.raises(PermissionDeniedError):
        stock_adjust(product=mug, location=locations["paris"], delta=-1, actor=warehouse, note="Broken")
    with pytest.raises(ValidationError):
        stock_adjust(product=mug, location=locations["paris"], delta=-1, actor=manager, note="")
    stock_adjust(product=mug, location=locations["paris"], delta=-1, actor=manager, note="Broken in the aisle")

    assert stock(mug, locations["paris"]) == (4, 0)
    movement = StockMovement.objects.get(reason=MovementReason.ADJUSTMENT)
    assert (movement.on_hand_delta, movement.actor, movement.note) == (-1, manager, "Broken in the aisle")


@pytest.mark.django_db
def test_products_past_their_sell_window_are_switched_off_and_it_is_logged(product, caplog):
    now = timezone.now()
    xmas = product("XMAS", sellable_until=now + datetime.timedelta(days=1))
    product("EVERGREEN")

    with time_machine.travel(now + datetime.timedelta(days=2)), caplog.at_level(logging.INFO, logger="inventory"):
        switched = products_switch_off_expired.apply().get()
        again = products_switch_off_expired.apply().get()

    assert (switched, again) == (["XMAS"], [])
    xmas.refresh_from_db()
    assert xmas.is_active is False
    assert xmas.history.order_by("-history_id").first().history_user.username == "system"
    assert StockAlert.objects.get(product=xmas).kind == StockAlert.Kind.SELL_WINDOW_ENDED
    assert any("XMAS" in record.getMessage() and "switched off" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db
def test_key_sku_with_few_days_of_cover_raises_an_alert_that_resolves(
    locations, product, receive, web, place_order, boss
):
    lamp = product("LAMP", is_key=True, coverage_alert_days=10)
    receive(lamp, locations["paris"], 20)
    for _ in range(4):  # 4 × 4 = 16 shipped in 28 days: 0.57/day; 4 left → 7 days of cover < 10
        order = place_order({"LAMP": 4})
        order_services.order_start_preparation(order=order, actor=boss)
        order_services.order_record_shipment(order=order, actor=boss)

    opened = coverage_alerts_refresh(window_days=28)

    assert [alert.product for alert in opened] == [lamp]
    assert opened[0].days_of_cover == 7
    assert "LAMP" in opened[0].message
    assert coverage_alerts_refresh(window_days=28) == []  # still open, not duplicated
    receive(lamp, locations["paris"], 100)
    coverage_alerts_refresh(window_days=28)
    assert StockAlert.objects.get(product=lamp).resolved_at is not None


@pytest.mark.django_db
def test_a_count_that_cannot_be_applied_can_be_canceled(locations, product, receive, web, place_order):
    mug = product("MUG")
    receive(mug, locations["paris"], 5)
    place_order({"MUG": 4})
    warehouse = make_user(roles.WAREHOUSE)
    count = count_open(location=locations["paris"], products=[mug], actor=warehouse)
    count_record(count=count, counted={mug.pk: 2}, actor=warehouse)

    count = count_cancel(count=count, actor=warehouse, note="Recount after the orders ship")

    assert count.status == CycleCount.Status.CANCELED
    assert stock(mug, locations["paris"]) == (5, 4)
    with pytest.raises(ConflictError):
        count_cancel(count=count, actor=warehouse, note="again")


@pytest.mark.parametrize(
    ("barcode", "valid"),
    [("4006381333931", True), ("96385074", True), ("036000291452", True), ("4006381333932", False), ("12AB", False)],
)
def test_barcodes_are_checked_as_gtins(barcode, valid):
    if valid:
        validate_gtin(barcode)
    else:
        with pytest.raises(DjangoValidationError):
            validate_gtin(barcode)
