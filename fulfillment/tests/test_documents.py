"""Pick lists and packing slips rendered to real PDFs and read back with pypdf (no database)."""

import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import barcode
import pytest
from pypdf import PdfReader

from fulfillment.documents import (
    PackingSlipData,
    PackingSlipLine,
    PickListData,
    PickRow,
    barcode_svg,
    group_pick_rows,
    natural_bin_key,
    packing_slip_html,
    packing_slip_pdf,
    pick_list_html,
    pick_list_pdf,
)

PRINTED_AT = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
BINS = ["B-10", "A-2", "A-10", "", "B-2", "A-1"]
# Natural order, empty bin last.
EXPECTED_BIN_ORDER = ["A-1", "A-2", "A-10", "B-2", "B-10"]


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def wave_rows() -> list[PickRow]:
    """30 rows over 6 bins; SKU i % 4 per bin, so several (bin, SKU) pairs repeat and must be summed."""
    rows = []
    for i in range(30):
        bin_location = BINS[i % len(BINS)]
        sku_index = (i // len(BINS)) % 4
        rows.append(
            PickRow(
                bin_location=bin_location,
                sku=f"SKU-{sku_index:03d}{'X' if bin_location == '' else ''}",
                name=f"Widget {sku_index}",
                quantity=i + 1,
                barcode="",
                order_numbers=[f"ORD-{1000 + i}"],
            )
        )
    return rows


def expected_groups(rows):
    groups: dict[tuple[str, str], int] = {}
    for row in rows:
        groups[(row.bin_location, row.sku)] = groups.get((row.bin_location, row.sku), 0) + row.quantity
    return groups


@pytest.fixture(scope="module")
def pick_list():
    rows = wave_rows()
    data = PickListData(wave_reference="WAVE-2026-0042", location_name="Lyon DC", printed_at=PRINTED_AT, rows=rows)
    pdf = pick_list_pdf(data)
    return rows, pdf, pdf_text(pdf)


def test_natural_bin_key_orders_numbers_numerically_and_empty_last():
    bins = ["B-10", "A-2", "", "A-10", "b-3", "A-2-1", "10", "2", "  "]
    assert sorted(bins, key=natural_bin_key) == ["2", "10", "A-2", "A-2-1", "A-10", "b-3", "B-10", "", "  "]


def test_group_pick_rows_sums_and_merges_order_numbers():
    rows = [
        PickRow("A-10", "S1", "One", 2, "", ["O1"]),
        PickRow("A-2", "S1", "One", 1, "", ["O2"]),
        PickRow("A-10", "S1", "One", 3, "", ["O3", "O1"]),
        PickRow("", "S2", "Two", 4, "", ["O4"]),
    ]
    grouped = group_pick_rows(rows)
    assert [(r.bin_location, r.sku, r.quantity, r.order_numbers) for r in grouped] == [
        ("A-2", "S1", 1, ["O2"]),
        ("A-10", "S1", 5, ["O1", "O3"]),
        ("", "S2", 4, ["O4"]),
    ]
    assert rows[0].quantity == 2  # the input is not modified


def test_pick_list_is_a_real_pdf_with_page_numbers(pick_list):
    _, pdf, text = pick_list
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert f"page 1 of {pages}" in text


def test_pick_list_header(pick_list):
    rows, _, text = pick_list
    total_units = sum(row.quantity for row in rows)
    assert total_units == 465
    assert "WAVE-2026-0042" in text
    assert "Lyon DC" in text
    assert re.search(rf"Total units:\s*{total_units}\b", text)
    assert re.search(rf"Lines:\s*{len(expected_groups(rows))}\b", text)
    assert "2026-03-02 08:30" in text  # printed time in the project's time zone (Europe/Paris)


def test_pick_list_bins_in_natural_order_with_empty_bin_last(pick_list):
    _, _, text = pick_list
    bins_in_text = [match.group(1) for match in re.finditer(r"(?m)^\s*([AB]-\d+|no bin)\b", text) if match.group(1)]
    order = list(dict.fromkeys(bins_in_text))
    assert order == EXPECTED_BIN_ORDER + ["no bin"]


def test_pick_list_quantities_are_summed_per_bin_and_sku(pick_list):
    rows, _, text = pick_list
    for (bin_location, sku), quantity in expected_groups(rows).items():
        label = bin_location or "no bin"
        pattern = rf"{re.escape(label)}\s+{re.escape(sku)}\s+Widget \d\s+{quantity}\b"
        assert re.search(pattern, text), (bin_location, sku, quantity)
    assert len(expected_groups(rows)) < len(rows)  # some rows were really merged


def test_pick_list_lists_every_order_number(pick_list):
    rows, _, text = pick_list
    flat = re.sub(r"\s+", "", text)
    for row in rows:
        for number in row.order_numbers:
            assert number in flat


def test_pick_list_has_one_code128_svg_per_line():
    rows = wave_rows()
    html = pick_list_html(PickListData("W1", "Lyon DC", PRINTED_AT, rows))
    assert html.count('<svg class="barcode"') == len(expected_groups(rows))
    assert "<?xml" not in html and 'id="barcode_group"' not in html
    assert barcode_svg("CAFÉ-€") == ""  # not encodable in Code 128: no barcode, no crash


@pytest.mark.parametrize("value", ["SKU-00012", "A", "1234567890", "x y-Z_09", "ORD-100042/3"])
def test_barcode_svg_draws_the_code128_modules_of_the_value(value):
    svg = barcode_svg(value)

    modules = barcode.get("code128", value).build()[0]
    width, height = len(modules) + 16, 32  # 8-module quiet zones, 4-module margins around 24-module bars
    assert f'viewBox="0 0 {width} {height}"' in svg
    assert f'width="{width * 0.25:g}mm" height="8mm"' in svg  # 0.25 mm per module, bars 6 mm high
    drawn = ["0"] * width
    for x, y, w, h, back in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-(\d+)z", re.search(r' d="([^"]*)"', svg)[1]):
        assert (int(y), int(h), back) == (4, 24, w)
        drawn[int(x) : int(x) + int(w)] = "1" * int(w)
    assert "".join(drawn) == "0" * 8 + modules + "0" * 8
    assert re.fullmatch(r'<svg [^>]*><path d="(M\d+ 4h\d+v24h-\d+z)+"/></svg>', svg)


def test_pick_list_escapes_data():
    rows = [PickRow("A-1", "S1", "<script>alert(1)</script>", 1, "", ["O1"])]
    html = pick_list_html(PickListData("W1", "Lyon DC", PRINTED_AT, rows))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


SHIP_TO = {
    "name": "Camille Martin",
    "line1": "12 rue de la République",
    "postal_code": "69002",
    "city": "Lyon",
    "country": "France",
}
SLIP_LINES = [
    PackingSlipLine("SKU-001", "Blue mug", 2, Decimal("12.50"), None),
    ("SKU-002", "Tea towel", 1, Decimal("7.90"), "Happy birthday, Lou! Love, Sam"),
]
AMOUNT = re.compile(r"\d+[.,]\d{2}\b|[€$£]")


def slip(is_gift: bool) -> PackingSlipData:
    return PackingSlipData(
        shipment_reference="SHP-0042-1",
        order_number="ORD-0042",
        ship_to=SHIP_TO,
        lines=SLIP_LINES,
        is_gift=is_gift,
        currency="EUR",
        totals=Decimal("32.90"),
    )


def test_gift_packing_slip_has_no_amounts_and_shows_the_message():
    text = pdf_text(packing_slip_pdf(slip(is_gift=True)))
    normalized = " ".join(text.split())
    assert "Happy birthday, Lou! Love, Sam" in normalized
    assert not AMOUNT.search(text), AMOUNT.findall(text)
    assert "Unit price" not in text and "Total units" in text
    html = packing_slip_html(slip(is_gift=True))
    assert not AMOUNT.search(html.split("</style>", 1)[1])
    for expected in ("SHP-0042-1", "ORD-0042", "Camille Martin", "69002 Lyon", "Blue mug", "Tea towel"):
        assert expected in normalized


def test_normal_packing_slip_shows_prices_and_total():
    text = pdf_text(packing_slip_pdf(slip(is_gift=False)))
    for amount in ("€12.50", "€25.00", "€7.90", "€32.90"):
        assert amount in text
    assert "Total" in text and "Unit price" in text
