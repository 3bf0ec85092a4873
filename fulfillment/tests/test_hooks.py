"""Fulfillment's side of the hooks registry: the parcels it plans and cancels when orders tell it,
the `shipment.shipped` it emits (with ids, after the commit) and its answer about short-pick cases."""

import pytest

from fulfillment import services
from fulfillment.choices import ShipmentStatus
from fulfillment.hooks import SHIPMENT_SHIPPED
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import prepared_order
from inventory.models import Location
from inventory.services import stock_receive
from oms.core.actors import get_system_user
from oms.core.hooks import Subscriber
from orders import services as orders
from orders.choices import CancelReason
from orders.hooks import CASE_SOURCE_OPEN
from orders.models import Case

pytestmark = pytest.mark.django_db

ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]
STILL_OPEN = "The short pick is still open: resolve it (the case closes with it)."


@pytest.fixture
def shipped(settings):
    """What `shipment.shipped` hands an after-commit subscriber (billing's own invoicing kept out)."""
    settings.OMS_INVOICE_AUTO = False
    calls = []

    def record(**ids):
        calls.append(ids)

    SHIPMENT_SHIPPED.subscribe(record, after_commit=True)
    yield record, calls
    SHIPMENT_SHIPPED.subscribers.remove(Subscriber(function=record, after_commit=True))


def _run_after_commit(queued, function) -> None:
    for callback in queued:
        if getattr(callback, "func", None) is function:
            callback()


def _picked_and_packed(shipment, actor):
    services.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    return services.shipment_pack(shipment=shipment, actor=actor)


def test_preparing_an_order_plans_its_parcels_and_canceling_it_cancels_them(two_locations):
    order = prepared_order()
    parcels = Shipment.objects.filter(order=order)
    assert sorted(parcels.values_list("location__code", "status")) == [
        ("lyon-wh", ShipmentStatus.PENDING),
        ("paris-wh", ShipmentStatus.PENDING),
    ]

    orders.order_cancel(
        order=order, actor=get_system_user(), reason_code=CancelReason.CUSTOMER_REQUEST, reason="Changed my mind"
    )

    assert set(parcels.values_list("status", flat=True)) == {ShipmentStatus.CANCELED}


def test_a_dispatched_parcel_is_announced_after_the_commit_with_ids(
    two_locations, shipped, django_capture_on_commit_callbacks
):
    world = two_locations
    record, calls = shipped
    parcel = _picked_and_packed(Shipment.objects.get(order=prepared_order(), location=world.paris), world.warehouse)

    with django_capture_on_commit_callbacks() as queued:
        services.shipment_dispatch(shipment=parcel, actor=world.warehouse)
    assert calls == []  # nothing before the commit

    _run_after_commit(queued, record)
    assert calls == [{"shipment_id": parcel.pk, "actor_id": world.warehouse.pk}]


def test_a_parcel_collected_in_store_is_announced_after_the_commit(
    two_locations, shipped, django_capture_on_commit_callbacks
):
    world = two_locations
    record, calls = shipped
    store = Location.objects.create(
        code="lyon-store", name="Lyon store", kind="store", country="FR", city="Lyon", store_pickup=True, priority=5
    )
    stock_receive(product=world.mug, location=store, quantity=3, actor=get_system_user())
    order = prepared_order(lines=ONE_MUG, shipping={"method": "click & collect", "pickup_location": "lyon-store"})
    parcel = Shipment.objects.get(order=order)
    services.shipment_ready_for_pickup(shipment=_picked_and_packed(parcel, world.warehouse), actor=world.warehouse)

    with django_capture_on_commit_callbacks() as queued:
        services.shipment_hand_over(shipment=parcel, actor=world.warehouse)

    _run_after_commit(queued, record)
    assert calls == [{"shipment_id": parcel.pk, "actor_id": world.warehouse.pk}]


def test_a_short_pick_case_stays_open_while_its_short_pick_is(two_locations):
    world = two_locations
    parcel = Shipment.objects.get(order=prepared_order(), location=world.paris)
    mug, book = parcel.lines.get(order_line__sku="MUG-1"), parcel.lines.get(order_line__sku="BOOK-1")
    services.shipment_confirm_picks(shipment=parcel, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1})
    short = ShortPick.objects.get(shipment=parcel)
    case = Case(source_key=f"short_pick:{short.pk}")
    assert CASE_SOURCE_OPEN.collect(case=case) == [STILL_OPEN]

    services.short_pick_cancel_line(
        short_pick=short, actor=world.support, consent_channel="email", consent_note="Cancel the mug, thanks."
    )

    assert CASE_SOURCE_OPEN.collect(case=case) == []
    # Fulfillment answers only for its own short picks.
    assert services.short_pick_case_source_open(case=Case(source_key=f"hold:{short.pk}")) is None
    assert services.short_pick_case_source_open(case=Case(source_key="short_pick:test-1")) is None
