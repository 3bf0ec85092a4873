"""The pick list, packing slip and label PDFs rendered from the demo data (`manage.py seed_demo`) and
read back with pypdf: the lines and quantities the database holds, bins in natural order, totals,
order numbers, tracking numbers, and no price on a gift slip.

The demo is seeded once for the module, inside a transaction rolled back at the end; each test runs
in its own savepoint on top of it."""

import io
import re
from decimal import Decimal
from io import StringIO

import pytest
from babel.numbers import format_currency
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test.utils import override_settings
from django.utils import translation
from pypdf import PdfReader

from fulfillment import services
from fulfillment.choices import HANDED_OVER_STATUSES, ShipmentStatus
from fulfillment.models import Shipment, ShipmentLine, Wave
from inventory.models import StockItem

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ORDER_NUMBER = re.compile(r"ORD-\d{4}-\d{6}")


@pytest.fixture(scope="module")
def demo_media(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("demo-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield media
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _demo_files(_media, settings, demo_media):
    settings.MEDIA_ROOT = demo_media  # where the demo stored its labels and pick list


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def compact(text: str) -> str:
    """Without any whitespace: table cells wrap (a name over three lines) wherever the layout wants."""
    return re.sub(r"\s+", "", text)


def natural(bin_location: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in bin_location.split("-"))


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale="en")


def expected_pick_rows(wave: Wave) -> list[dict]:
    """From the database: one row per product of the wave's live parcels, in bin order."""
    bins = dict(StockItem.objects.filter(location=wave.location).values_list("product_id", "bin_location"))
    rows: dict[str, dict] = {}
    lines = (
        ShipmentLine.objects.filter(shipment__wave=wave)
        .exclude(shipment__status=ShipmentStatus.CANCELED)
        .select_related("order_line__order")
    )
    for line in lines:
        order_line = line.order_line
        row = rows.setdefault(
            order_line.sku,
            {
                "bin": bins[order_line.product_id],
                "sku": order_line.sku,
                "name": order_line.name,
                "quantity": 0,
                "orders": set(),
            },
        )
        row["quantity"] += line.quantity
        row["orders"].add(order_line.order.number)
    return sorted(rows.values(), key=lambda row: natural(row["bin"]))


def test_the_demo_waves_pick_list_has_its_lines_in_bin_order_with_totals_and_orders():
    warehouse = get_user_model().objects.get(username="warehouse")
    wave = Wave.objects.get(location__code="paris-wh")
    printed = wave.pick_list.name
    assert wave.pick_list.storage.exists(printed)  # the demo printed it

    with translation.override("en"):
        wave = services.wave_render_pick_list(wave=wave, actor=warehouse)
    with wave.pick_list.open("rb") as stored:
        text = pdf_text(stored.read())
    flat = compact(text)
    rows = expected_pick_rows(wave)
    assert len(rows) >= 8
    bins = [row["bin"] for row in rows]
    assert len(set(bins)) == len(bins)  # one shelf per product at a location
    assert sorted(bins) != bins  # the demo's bins need natural order (A-8 before A-11)

    assert f"Picklist{wave.number}" in flat and "Location:Pariswarehouse" in flat
    units = sum(row["quantity"] for row in rows)
    orders = set().union(*(row["orders"] for row in rows))
    assert f"Lines:{len(rows)}Totalunits:{units}Orders:{len(orders)}" in flat

    # Each row reads bin, SKU, name, quantity, then the orders it serves; rows follow the bins.
    starts = []
    for row in rows:
        head = re.compile(re.escape(compact(f"{row['bin']}{row['sku']}{row['name']}{row['quantity']}")) + "(?=ORD-)")
        match = head.search(flat)
        assert match, row
        starts.append((match.start(), match.end(), row))
    assert [start for start, _end, _row in starts] == sorted(start for start, _end, _row in starts)
    for (_start, end, row), following in zip(starts, [*starts[1:], (len(flat), None, None)], strict=True):
        assert set(ORDER_NUMBER.findall(flat[end : following[0]])) == row["orders"], row["sku"]


def test_a_demo_packing_slip_lists_the_parcels_lines_prices_and_both_consolidated_orders():
    consolidated = next(
        shipment
        for shipment in Shipment.objects.exclude(status=ShipmentStatus.CANCELED)
        if ShipmentLine.objects.filter(shipment=shipment).values("order_line__order").distinct().count() == 2
    )
    assert not consolidated.is_gift
    lines = list(consolidated.lines.select_related("order_line__order").order_by("pk"))
    with translation.override("en"):
        flat = compact(pdf_text(services.shipment_packing_slip_pdf(consolidated)))

    numbers = sorted({line.order_line.order.number for line in lines})
    assert "Packingslip" in flat and f"Shipment:{consolidated.number}" in flat
    assert set(ORDER_NUMBER.findall(flat)) == set(numbers)
    total = Decimal("0")
    for line in lines:
        unit = line.order_line.unit_price
        total += unit * line.quantity
        expected = f"{line.order_line.sku}{line.order_line.name}{line.quantity}{money(unit, consolidated.currency)}"
        assert compact(expected + money(unit * line.quantity, consolidated.currency)) in flat
    units = sum(line.quantity for line in lines)
    assert f"Totalunits{units}Total{compact(money(total, consolidated.currency))}" in flat
    assert compact(consolidated.ship_to["name"]) in flat


def test_a_demo_gift_slip_has_the_message_and_no_price():
    gift = Shipment.objects.exclude(status=ShipmentStatus.CANCELED).filter(is_gift=True).order_by("-pk").first()
    lines = list(gift.lines.select_related("order_line"))
    with translation.override("en"):
        text = pdf_text(services.shipment_packing_slip_pdf(gift))
    flat = compact(text)

    assert "Giftpackingslip" in flat
    messages = [line.gift_message for line in lines if line.gift_message]
    assert messages and all(compact(message) in flat for message in messages)
    for line in lines:
        assert compact(f"{line.order_line.sku}{line.order_line.name}{line.quantity}") in flat
        assert f"{line.order_line.unit_price:.2f}" not in flat
    assert f"Totalunits{sum(line.quantity for line in lines)}" in flat
    for word in ("€", "£", "$", "Unitprice", "Amount"):
        assert word not in flat
    assert "Total" not in flat.replace("Totalunits", "")


def test_every_demo_label_carries_its_tracking_number_order_and_address():
    labelled = list(
        Shipment.objects.filter(status__in=HANDED_OVER_STATUSES).exclude(label="").select_related("order", "location")
    )
    assert len(labelled) >= 5
    international = 0
    for shipment in labelled:
        with shipment.label.open("rb") as stored:
            text = pdf_text(stored.read())
        flat = compact(text)
        assert re.fullmatch(r"SBX\d{10}", shipment.tracking_number)
        assert shipment.tracking_url.endswith(shipment.tracking_number)
        assert shipment.tracking_number in text
        assert f"Order{shipment.order.number}" in flat and f"Shipment{shipment.number}" in flat
        address = shipment.ship_to
        assert compact(address["name"]) in flat and compact(f"{address['postal_code']}{address['city']}") in flat
        assert f"{shipment.weight_grams / 1000:.3f}kg" in flat
        if address["country"] != str(shipment.location.country):
            international += 1
            assert "customsdeclaration(cn22)" in flat.casefold()  # the heading is set in capitals
            assert f"Declaredvalue:{shipment.declared_value:.2f}{shipment.currency}" in flat
            for line in shipment.lines.select_related("order_line"):
                assert compact(f"{line.order_line.name}({line.order_line.sku}){line.hs_code}") in flat
    assert international >= 1  # the demo sends parcels abroad: their labels carry customs lines
