"""Pick list printing for one big wave: 200 orders, 1,000 lines, ~300 SKUs over ~150 bins, from the database.

A real wave in a throwaway PostgreSQL database (`oms_bench_picklist`, dropped at the end, whatever
happens): one warehouse with ~300 products on ~150 shelves (received through `inventory.services`),
200 paid orders of 1,000 lines in all (`orders.services.order_create` + `order_start_preparation`,
which plans one shipment per order), then `fulfillment.services.wave_create` takes every shipment.
Setup is not timed. Then, interleaved in one process (picklist, bare, picklist, bare …, so that load
spikes on the machine hit both sides):
- picklist: seconds for `fulfillment.services.wave_render_pick_list`, end to end: database reads,
  grouping by bin, barcodes, Django template, WeasyPrint, progress writes, storing the PDF file;
- bare: seconds WeasyPrint alone needs for the same final HTML (`wave_pick_list_data` +
  `pick_list_html`, the functions the service calls), rendered exactly as the service renders it
  (`fulfillment.documents.render_pdf`, same base_url);
medians of --runs each; ratio = picklist / bare, i.e. our layer's overhead (target ≤ 1.15).
- peak: tracemalloc peak of one more `wave_render_pick_list` call (Python allocations only, in a
  separate run so that tracing does not slow down the timed runs).

Run: .venv/bin/python bench/picklist.py [--orders 200 --lines 1000 --skus 300 --bins 150 --runs 5]
Needs the local PostgreSQL (BENCH_DATABASE_SERVER, default postgres://postgres@127.0.0.1:5432).
Last line: `picklist: <s> s, bare <s> s, ratio <x.xx>, peak <MB> MB`
"""

import argparse
import io
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "oms_bench_picklist"
SEED = 20260302


def database_url(name: str) -> str:
    parsed = urlparse(SERVER_URL)
    return urlunparse(parsed._replace(path=f"/{name}"))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def bench_environment(media_root: str) -> None:
    """The settings of the run: the throwaway database, files in a temporary folder, no task inline."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)  # Celery on its in-memory broker: tasks are queued, never run
    os.environ.update(
        DATABASE_URL=database_url(DB_NAME),
        DJANGO_SETTINGS_MODULE="oms.settings.dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        CELERY_TASK_ALWAYS_EAGER="false",
        MEDIA_ROOT=media_root,
    )


def setup_database() -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=os.environ, check=True)


def gtin13(number: int) -> str:
    """A valid EAN-13 (check digit included) in the 200-299 'in-store' prefix range."""
    body = f"20{number:010d}"
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def build_wave(*, orders: int, lines: int, skus: int, bins: int):
    """Catalogue, stock on shelves, paid orders in preparation, and one wave taking them all."""
    from simple_history.utils import bulk_create_with_history

    from fulfillment import services
    from inventory.models import Location, Product, StockItem
    from inventory.services import stock_receive
    from oms.core.actors import get_system_user
    from orders import services as order_services
    from orders.models import Channel

    if lines < orders:
        raise SystemExit("bench: --lines must be at least --orders (every order has a line)")
    if lines // orders > skus:
        raise SystemExit("bench: not enough SKUs for that many lines per order")
    rng = random.Random(SEED)
    system = get_system_user()
    Channel.objects.get_or_create(code="web", defaults={"name": "Web", "kind": "web"})
    location = Location.objects.create(
        code="bench-wh", name="Lyon DC", kind="warehouse", country="FR", city="Lyon", priority=10
    )
    kinds = ["mug", "towel", "lamp", "cable", "notebook", "candle", "scarf", "teapot"]
    products = bulk_create_with_history(
        [
            Product(
                sku=f"SKU-{i:05d}",
                name=f"Product {i} {rng.choice(kinds)}",
                barcode=gtin13(i + 1) if rng.random() < 0.8 else "",  # a few have none: the SKU is scanned
                weight_grams=rng.randint(100, 2000),
            )
            for i in range(skus)
        ],
        Product,
        default_user=system,
        default_change_reason="Bench catalogue",
    )
    aisles = "ABCDEFGH"
    shelves = [f"{aisles[i % len(aisles)]}-{i // len(aisles) + 1}-{rng.randint(1, 4)}" for i in range(bins)]
    for product in products:
        stock_receive(product=product, location=location, quantity=10_000, actor=system, reference="Bench stock")
    items = list(StockItem.objects.filter(location=location).order_by("product_id"))
    rng.shuffle(items)
    for index, item in enumerate(items):
        # Each SKU on one shelf, every shelf holds a couple of SKUs; a few are not yet shelved ("no bin"
        # rows, printed last). Stock rows keep no history: the bench writes the shelf directly.
        item.bin_location = "" if rng.random() < 0.02 else shelves[index % len(shelves)]
    StockItem.objects.bulk_update(items, ["bin_location"])

    # Every order has a line, the rest of the lines go to random orders; no SKU twice in an order.
    counts = [1] * orders
    for _ in range(lines - orders):
        candidates = [i for i in range(orders) if counts[i] < skus]
        counts[rng.choice(candidates)] += 1
    address = {"name": "Bench Customer", "line1": "1 rue de la Paix", "postal_code": "69002", "city": "Lyon"}
    for index, count in enumerate(counts):
        order, _ = order_services.order_create(
            actor=system,
            channel="web",
            external_id=f"bench-{index:05d}",
            customer={"email": f"customer{index}@example.com", "first_name": "Bench", "last_name": f"#{index}"},
            billing_address={**address, "country": "FR", "name": f"Bench Customer {index}"},
            lines=[
                {
                    "sku": product.sku,
                    "name": product.name,
                    "quantity": rng.randint(1, 5),
                    "unit_price": "9.90",
                    "tax_rate": "0.20",
                }
                for product in rng.sample(products, count)
            ],
            payment={"status": "paid", "method": "card"},
        )
        order_services.order_start_preparation(order=order, actor=system)
    return services.wave_create(location=location, actor=system, limit=max(orders, 1))


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--bins", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side, interleaved; medians reported")
    parser.add_argument("--out", help="also write the last pick list PDF here")
    args = parser.parse_args()

    media_root = tempfile.mkdtemp(prefix="oms-bench-picklist-")
    bench_environment(media_root)
    setup_database()
    try:
        import django

        django.setup()
        logging.getLogger("weasyprint").setLevel(logging.ERROR)  # progress lines would be timed too
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(media_root, ignore_errors=True)


def run(args) -> int:
    from pypdf import PdfReader

    from fulfillment import services
    from fulfillment.documents import group_pick_rows, pick_list_html, render_pdf
    from fulfillment.models import ShipmentLine
    from oms.core.actors import get_system_user

    started = time.perf_counter()
    wave = build_wave(orders=args.orders, lines=args.lines, skus=args.skus, bins=args.bins)
    actor = get_system_user()
    data = services.wave_pick_list_data(wave)
    grouped = group_pick_rows(data.rows)
    shipments = wave.shipments.count()
    wave_lines = ShipmentLine.objects.filter(shipment__wave=wave).count()
    print(
        f"wave {wave.number}: {shipments} shipments of {len({r.order_numbers[0] for r in data.rows})} orders, "
        f"{wave_lines} lines, {len({r.sku for r in data.rows})} SKUs, "
        f"{len({r.bin_location for r in data.rows if r.bin_location})} bins -> {len(grouped)} pick rows, "
        f"{sum(r.quantity for r in grouped)} units (setup {time.perf_counter() - started:.0f} s, not timed)",
        flush=True,
    )
    if shipments != args.orders or wave_lines != args.lines:
        print(f"bench: expected {args.orders} shipments and {args.lines} lines in the wave", file=sys.stderr)
        return 1

    def picklist() -> None:
        nonlocal wave
        wave = services.wave_render_pick_list(wave=wave.pk, actor=actor)

    # The same final HTML the service renders (only the printed-at minute may differ).
    html = pick_list_html(services.wave_pick_list_data(wave))
    bare_pdf = b""

    def bare() -> None:
        nonlocal bare_pdf
        bare_pdf = render_pdf(html)

    picklist()  # warm-up: imports, font configuration, template loading
    bare()
    ours, alone = [], []
    for run_number in range(1, args.runs + 1):
        ours.append(timed(picklist))
        alone.append(timed(bare))
        print(f"run {run_number}: picklist {ours[-1]:.2f} s, bare {alone[-1]:.2f} s", flush=True)
    seconds, bare_seconds = statistics.median(ours), statistics.median(alone)
    paired = statistics.median(a / b for a, b in zip(ours, alone, strict=True))
    # Our layer's own steps, once each (not part of the timed runs).
    data_seconds = timed(lambda: services.wave_pick_list_data(wave))
    html_seconds = timed(lambda: pick_list_html(services.wave_pick_list_data(wave))) - data_seconds

    with wave.pick_list.open("rb") as stored:
        pdf = stored.read()
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    bare_pages = len(PdfReader(io.BytesIO(bare_pdf)).pages)
    if args.out:
        Path(args.out).write_bytes(pdf)

    tracemalloc.start()
    picklist()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"pdf: {len(pdf) / 1024:.0f} KiB, {pages} pages ({bare_pages} bare), html {len(html) / 1024:.0f} KiB")
    print(
        f"outside WeasyPrint: database reads {data_seconds:.2f} s, grouping + barcodes + template "
        f"{html_seconds:.2f} s; median of the per-run ratios {paired:.2f}"
    )
    print(
        f"per page: {seconds / pages:.3f} s; medians of {args.runs} interleaved runs; "
        "peak = tracemalloc peak of one wave_render_pick_list call"
    )
    print(
        f"picklist: {seconds:.2f} s, bare {bare_seconds:.2f} s, ratio {seconds / bare_seconds:.2f}, "
        f"peak {peak / 2**20:.0f} MB"
    )
    return 0 if pages == bare_pages else 1


if __name__ == "__main__":
    sys.exit(main())
