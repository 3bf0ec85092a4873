"""Printed fulfillment documents: pick lists (per location and wave) and packing slips (per shipment).

The layer works on plain data (the dataclasses below) so that it can be fed from the Shipment model
later without changing the rendering. Each document is built as one HTML string with Django's
template engine and rendered once by WeasyPrint; there is no per-row PDF work. WeasyPrint costs
about half a second per page and uses one core: large waves belong in a Celery task, not a request.
The pieces every app's documents share (the rendering, barcodes, page counter, printed addresses and
amounts) are in oms.core.documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from oms.core.documents import address_lines, barcode_svg, format_money, page_counter_css, render_pdf

PICK_LIST_TEMPLATE = "fulfillment/pick_list.html"
PACKING_SLIP_TEMPLATE = "fulfillment/packing_slip.html"

# --------------------------------------------------------------------------------------------- data


@dataclass
class PickRow:
    bin_location: str
    sku: str
    name: str
    quantity: int
    barcode: str = ""  # value to encode; empty: the SKU
    order_numbers: list[str] = field(default_factory=list)


@dataclass
class PickListData:
    wave_reference: str
    location_name: str
    printed_at: datetime
    rows: list[PickRow]


class PackingSlipLine(NamedTuple):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal | None = None
    gift_message: str | None = None


@dataclass
class PackingSlipData:
    shipment_reference: str
    order_number: str
    ship_to: dict[str, str]
    lines: list[PackingSlipLine]  # plain (sku, name, quantity, unit_price, gift_message) tuples work too
    is_gift: bool = False
    currency: str = "EUR"
    totals: Decimal | None = None


# ----------------------------------------------------------------------------------------- helpers

_DIGITS = re.compile(r"(\d+)")


def natural_bin_key(bin_location: str) -> tuple:
    """Sort key: "A-2" before "A-10", case-insensitive, empty (unknown) bins last.

    `re.split` with a capturing group alternates text and digit chunks (text first, possibly empty),
    so position i always holds the same type and keys compare without TypeError.
    """
    value = (bin_location or "").strip()
    if not value:
        return (1, ())
    chunks = _DIGITS.split(value.casefold())
    return (0, tuple(int(chunk) if i % 2 else chunk for i, chunk in enumerate(chunks)))


def group_pick_rows(rows: Iterable[PickRow]) -> list[PickRow]:
    """Merge rows with the same (bin, SKU): quantities summed, order numbers merged (first-seen order,
    no duplicates); the result is sorted by bin (natural order), then SKU."""
    grouped: dict[tuple[str, str], PickRow] = {}
    for row in rows:
        bin_location = (row.bin_location or "").strip()
        key = (bin_location, row.sku)
        merged = grouped.get(key)
        if merged is None:
            grouped[key] = PickRow(
                bin_location=bin_location,
                sku=row.sku,
                name=row.name,
                quantity=row.quantity,
                barcode=row.barcode,
                order_numbers=list(dict.fromkeys(row.order_numbers)),
            )
            continue
        merged.quantity += row.quantity
        merged.barcode = merged.barcode or row.barcode
        for number in row.order_numbers:
            if number not in merged.order_numbers:
                merged.order_numbers.append(number)
    return sorted(grouped.values(), key=lambda r: (natural_bin_key(r.bin_location), r.sku))


# ------------------------------------------------------------------------------------------ pick list


def pick_list_context(data: PickListData) -> dict:
    rows = group_pick_rows(data.rows)
    barcodes: dict[str, SafeString] = {}  # one SVG per distinct value, reused by every row that needs it
    items = []
    for row in rows:
        value = row.barcode or row.sku
        if value not in barcodes:
            barcodes[value] = barcode_svg(value)
        items.append({"row": row, "barcode": barcodes[value]})
    return {
        "data": data,
        "items": items,
        "line_count": len(rows),
        "total_units": sum(row.quantity for row in rows),
        "order_count": len({number for row in rows for number in row.order_numbers}),
        "page_counter": page_counter_css(),
    }


def pick_list_html(data: PickListData) -> str:
    return render_to_string(PICK_LIST_TEMPLATE, pick_list_context(data))


def pick_list_pdf(data: PickListData) -> bytes:
    return render_pdf(pick_list_html(data))


# --------------------------------------------------------------------------------------- packing slip


def packing_slip_context(data: PackingSlipData) -> dict:
    """For a gift, no price, line amount or total reaches the template at all."""
    show_prices = not data.is_gift
    lines = []
    for raw in data.lines:
        line = PackingSlipLine(*raw)
        item = {"sku": line.sku, "name": line.name, "quantity": line.quantity, "gift_message": line.gift_message}
        if show_prices:
            item["unit_price"] = format_money(line.unit_price, data.currency)
            amount = None if line.unit_price is None else line.unit_price * line.quantity
            item["amount"] = format_money(amount, data.currency)
        lines.append(item)
    return {
        "data": {
            "shipment_reference": data.shipment_reference,
            "order_number": data.order_number,
            "is_gift": data.is_gift,
        },
        "ship_to": address_lines(data.ship_to),
        "lines": lines,
        "show_prices": show_prices,
        "total": format_money(data.totals, data.currency) if show_prices else "",
        "total_units": sum(int(PackingSlipLine(*raw).quantity) for raw in data.lines),
        "page_counter": page_counter_css(),
    }


def packing_slip_html(data: PackingSlipData) -> str:
    return render_to_string(PACKING_SLIP_TEMPLATE, packing_slip_context(data))


def packing_slip_pdf(data: PackingSlipData) -> bytes:
    return render_pdf(packing_slip_html(data))


__all__: Sequence[str] = (
    "PackingSlipData",
    "PackingSlipLine",
    "PickListData",
    "PickRow",
    "barcode_svg",
    "group_pick_rows",
    "natural_bin_key",
    "packing_slip_html",
    "packing_slip_pdf",
    "pick_list_html",
    "pick_list_pdf",
)
