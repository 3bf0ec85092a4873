"""The rules of a return: the legal withdrawal window, each product's eligibility, shipped units only."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from fulfillment.models import Shipment
from fulfillment.tests.fixtures import prepared_order
from inventory.models import Product
from oms.core.errors import ValidationError
from returns import services
from returns.models import ReturnRequest
from returns.tests.fixtures import deliver, delivered_order, lines_by_sku

pytestmark = pytest.mark.django_db


def _request(order, actor, *lines, **kwargs):
    return services.return_request(
        order=order,
        actor=actor,
        reason=kwargs.pop("reason", "changed_mind"),
        lines=[{"line": line.pk, "quantity": quantity} for line, quantity in lines],
        **kwargs,
    )


def test_return_after_the_14_day_window_is_refused_with_the_date(world, manager, settings):
    assert settings.OMS_RETURN_WINDOW_DAYS == 14
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]
    delivered_at = services.line_delivered_at(mug, order)
    closes = delivered_at + datetime.timedelta(days=14)

    with time_machine.travel(closes + datetime.timedelta(hours=1), tick=False):
        with pytest.raises(ValidationError) as caught:
            _request(order, manager, (mug, 1))
    message = caught.value.extra["fields"]["lines.0.line"][0]
    assert "withdrawal window closed on " + timezone.localtime(closes).strftime("%Y-%m-%d") in message
    assert caught.value.code == "invalid_return"
    assert not ReturnRequest.objects.exists()

    # On the last day it is still accepted.
    with time_machine.travel(closes - datetime.timedelta(hours=1), tick=False):
        request = _request(order, manager, (mug, 1))
    assert request.lines.get().quantity == 1


def test_window_counts_from_the_lines_own_parcel(world, manager):
    """MUG (Paris parcel) delivered long ago, TEE (Lyon parcel) delivered now: only MUG is late."""
    order = delivered_order(world, deliver_parcels=False)
    paris, lyon = Shipment.objects.filter(order=order).order_by("location__priority")
    deliver(paris, at=timezone.now() - datetime.timedelta(days=20))
    deliver(lyon, at=timezone.now() - datetime.timedelta(days=2))
    lines = lines_by_sku(order)
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (lines["TEE-1"], 1), (lines["MUG-1"], 1))
    assert list(caught.value.extra["fields"]) == ["lines.1.line"]
    request = _request(order, manager, (lines["TEE-1"], 1))
    assert request.restock_location == world.lyon


def test_ineligible_products_are_refused_with_their_reason_per_line(world, manager):
    Product.objects.filter(pk=world.mug.pk).update(is_hygiene_sealed=True)
    Product.objects.filter(pk=world.book.pk).update(is_custom_made=True)
    Product.objects.filter(pk=world.tee.pk).update(is_perishable=True)
    order = delivered_order(world)
    lines = lines_by_sku(order)
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (lines["MUG-1"], 1), (lines["TEE-1"], 1), (lines["BOOK-1"], 1))
    fields = caught.value.extra["fields"]
    assert "hygiene" in fields["lines.0.line"][0] and fields["lines.0.line"][0].startswith("MUG-1")
    assert "Perishable" in fields["lines.1.line"][0]
    assert "specifications" in fields["lines.2.line"][0]

    Product.objects.filter(pk=world.tee.pk).update(is_perishable=False, is_returnable=False)
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (lines["TEE-1"], 1))
    assert caught.value.extra["fields"] == {"lines.0.line": ["TEE-1: This product is not returnable."]}
    assert not ReturnRequest.objects.exists()


def test_never_more_than_shipped_minus_already_returned(world, manager):
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (mug, 3))
    assert caught.value.extra["fields"]["lines.0.quantity"][0].startswith("At most 2 for line")
    first = _request(order, manager, (mug, 1))
    _request(order, manager, (mug, 1))
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (mug, 1))
    assert "1 already returned" not in caught.value.extra["fields"]["lines.0.quantity"][0]
    assert "2 already returned" in caught.value.extra["fields"]["lines.0.quantity"][0]
    # A canceled request gives its units back.
    services.return_cancel(request=first, actor=manager)
    assert _request(order, manager, (mug, 1)).lines.get().quantity == 1


def test_unshipped_lines_cannot_be_returned(world, manager):
    order = prepared_order()
    mug = lines_by_sku(order)["MUG-1"]
    with pytest.raises(ValidationError) as caught:
        _request(order, manager, (mug, 1))
    assert caught.value.extra["fields"]["lines.0.quantity"][0].startswith("At most 0")
