"""Printed fulfillment documents: pick lists (per location and wave) and packing slips (per shipment).

The layer works on plain data (the dataclasses below) so that it can be fed from the Shipment model
later without changing the rendering. Each document is built as one HTML string with Django's
template engine and rendered once by WeasyPrint; there is no per-row PDF work. WeasyPrint costs
about half a second per page and uses one core: large waves belong in a Celery task, not a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import barcode
from babel.numbers import format_currency
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

PICK_LIST_TEMPLATE = "fulfillment/pick_list.html"
PACKING_SLIP_TEMPLATE = "fulfillment/packing_slip.html"

# Code 128 geometry, in modules of 0.25 mm: bars 6 mm high with 1 mm above and below, 2 mm quiet zones.
BARCODE_MODULE_MM = 0.25
BARCODE_HEIGHT_MODULES = 24
BARCODE_MARGIN_MODULES = 4
BARCODE_QUIET_ZONE_MODULES = 8


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


_BARS = re.compile("1+")


def barcode_svg(value: str) -> SafeString:
    """Code 128 barcode of `value` as an inline <svg> element, or "" if Code 128 cannot encode it
    (ASCII only).

    python-barcode only encodes the value (its module string of 1s and 0s); each run of dark modules
    becomes one rectangle of a single <path>. The user units are modules, so every coordinate is an
    integer and the width/height in millimetres scale them: BARCODE_MODULE_MM per module, a quiet zone
    of BARCODE_QUIET_ZONE_MODULES on each side and BARCODE_MARGIN_MODULES above and below the bars.
    python-barcode's own SVG writer (minidom, a <rect> with a style attribute per bar) cost more than
    the rest of our layer together and made WeasyPrint log an "unknown property" warning per bar.
    """
    if not value:
        return mark_safe("")
    try:
        modules = barcode.get("code128", value).build()[0]
    except (barcode.errors.BarcodeError, ValueError, KeyError, UnicodeError):
        return mark_safe("")
    quiet, margin, bar_height = BARCODE_QUIET_ZONE_MODULES, BARCODE_MARGIN_MODULES, BARCODE_HEIGHT_MODULES
    width = len(modules) + 2 * quiet
    height = bar_height + 2 * margin
    path = "".join(
        f"M{quiet + bar.start()} {margin}h{bar.end() - bar.start()}v{bar_height}h-{bar.end() - bar.start()}z"
        for bar in _BARS.finditer(modules)
    )
    return mark_safe(  # integers only: no user text reaches the markup
        f'<svg class="barcode" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width * BARCODE_MODULE_MM:g}mm" height="{height * BARCODE_MODULE_MM:g}mm" '
        f'viewBox="0 0 {width} {height}"><path d="{path}"/></svg>'
    )


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def page_counter_css() -> SafeString:
    """CSS `content` value for the footer, e.g. "page " counter(page) " of " counter(pages), from a
    translatable sentence (translators see the whole sentence, not fragments)."""
    sentence = gettext("page %(page)s of %(pages)s")
    parts = []
    for token in re.split(r"(%\(page\)s|%\(pages\)s)", sentence):
        if token == "%(page)s":
            parts.append("counter(page)")
        elif token == "%(pages)s":
            parts.append("counter(pages)")
        elif token:
            parts.append(_css_string(token))
    return mark_safe(" ".join(parts))


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=translation.to_locale(translation.get_language() or "en"))


ADDRESS_KEYS = ("name", "company", "line1", "line2", "line3", "postal_code", "city", "region", "country")


def address_lines(ship_to: dict[str, str]) -> list[str]:
    """Address as printed lines: name, company, street lines, "postal code city", region, country;
    keys outside that list are appended in their order."""
    get = lambda key: str(ship_to.get(key) or "").strip()  # noqa: E731
    lines = [get("name"), get("company"), get("line1"), get("line2"), get("line3")]
    lines.append(" ".join(part for part in (get("postal_code"), get("city")) if part))
    lines += [get("region"), get("country")]
    lines += [str(value).strip() for key, value in ship_to.items() if key not in ADDRESS_KEYS and value]
    return [line for line in lines if line]


def render_pdf(html: str, *, progress=None) -> bytes:
    """One WeasyPrint pass. `progress(fraction)` is told when layout is done (most of the work) and
    at the end, for the cockpit's progress bar on large waves."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    if progress is not None:
        progress(0.8)
    pdf = document.write_pdf()
    if progress is not None:
        progress(1.0)
    return pdf


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
            item["unit_price"] = _money(line.unit_price, data.currency)
            amount = None if line.unit_price is None else line.unit_price * line.quantity
            item["amount"] = _money(amount, data.currency)
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
        "total": _money(data.totals, data.currency) if show_prices else "",
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
