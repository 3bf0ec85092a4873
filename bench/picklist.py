"""Pick list rendering for one big wave: 200 orders, 1,000 lines, ~300 SKUs over ~150 bins.

Plain data only (no database): the wave is built with a seeded random generator, so every run renders
the same document. Measured in one process:
- picklist: seconds from the plain data to the finished PDF through `fulfillment.documents.pick_list_pdf`
  (grouping, barcodes, Django template and WeasyPrint included), median of --runs;
- bare: seconds WeasyPrint alone needs for the same final HTML string, called exactly as our layer calls it
  (`fulfillment.documents.render_pdf`, same base_url), median of --runs; ratio = picklist / bare, i.e.
  the overhead of our layer;
- peak: tracemalloc peak of one `pick_list_pdf` call (Python allocations only, measured in a separate
  run so tracing does not slow down the timed runs).

Run: .venv/bin/python bench/picklist.py [--orders 200 --lines 1000 --skus 300 --bins 150 --runs 3]
Last line: `picklist: <s> s, bare <s> s, ratio <x.xx>, peak <MB> MB`
"""

import argparse
import logging
import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings.base")


def build_wave(orders: int, lines: int, skus: int, bins: int, seed: int = 20260302):
    from fulfillment.documents import PickListData, PickRow

    rng = random.Random(seed)
    aisles = "ABCDEFGH"
    bin_names = [f"{aisles[i % len(aisles)]}-{i // len(aisles) + 1}-{rng.randint(1, 4)}" for i in range(bins)]
    kinds = ["mug", "towel", "lamp", "cable", "notebook"]
    catalogue = [(f"SKU-{i:05d}", f"Product {i} {rng.choice(kinds)}") for i in range(skus)]
    # Each SKU lives in one bin (a few in no bin yet); every order gets at least one line.
    sku_bin = {sku: ("" if rng.random() < 0.02 else rng.choice(bin_names)) for sku, _ in catalogue}
    order_numbers = [f"ORD-{100000 + i}" for i in range(orders)]
    owners = order_numbers + [rng.choice(order_numbers) for _ in range(lines - orders)]
    rows = []
    for order_number in owners:
        sku, name = rng.choice(catalogue)
        rows.append(
            PickRow(
                bin_location=sku_bin[sku],
                sku=sku,
                name=name,
                quantity=rng.randint(1, 5),
                barcode="",
                order_numbers=[order_number],
            )
        )
    return PickListData(
        wave_reference="WAVE-BENCH-0001",
        location_name="Lyon DC",
        printed_at=datetime(2026, 3, 2, 7, 30, tzinfo=UTC),
        rows=rows,
    )


def median_seconds(function, runs: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--bins", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", help="also write the PDF here")
    args = parser.parse_args()

    import django

    django.setup()
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # progress lines would be timed too

    from pypdf import PdfReader

    from fulfillment.documents import render_pdf, group_pick_rows, pick_list_html, pick_list_pdf

    data = build_wave(args.orders, args.lines, args.skus, args.bins)
    grouped = group_pick_rows(data.rows)
    print(
        f"wave: {args.orders} orders, {len(data.rows)} lines, {len({r.sku for r in data.rows})} SKUs, "
        f"{len({r.bin_location for r in data.rows})} bins -> {len(grouped)} pick rows, "
        f"{sum(r.quantity for r in grouped)} units"
    )

    pick_list_pdf(data)  # warm-up: imports, font configuration, template loading
    seconds, pdf = median_seconds(lambda: pick_list_pdf(data), args.runs)
    html = pick_list_html(data)
    bare, bare_pdf = median_seconds(lambda: render_pdf(html), args.runs)

    import io

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    bare_pages = len(PdfReader(io.BytesIO(bare_pdf)).pages)
    if args.out:
        Path(args.out).write_bytes(pdf)

    tracemalloc.start()
    pick_list_pdf(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"pdf: {len(pdf) / 1024:.0f} KiB, {pages} pages ({bare_pages} bare), html {len(html) / 1024:.0f} KiB")
    print(f"per page: {seconds / pages:.3f} s; peak = tracemalloc peak of one pick_list_pdf call")
    print(f"picklist: {seconds:.2f} s, bare {bare:.2f} s, ratio {seconds / bare:.2f}, peak {peak / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
