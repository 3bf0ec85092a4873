"""Reservations per second on one hot SKU spread over 3 locations, 32 concurrent allocators.

Two runs on the same table, same stock, same attempts, same location choice, in one process tree:
- baseline: the raw conditional UPDATE `… SET reserved = reserved + 1 WHERE id = %s AND
  on_hand - reserved >= 1`, one statement per autocommit transaction, prepared, through psycopg;
- ours: `inventory.services.stock_reserve`: that conditional UPDATE and, when it matched, the
  reservation row and its ledger row, as one statement (its own transaction), the primitive that
  every order allocation goes through.
Stock is 3/4 of the attempts, so the SKU sells out under contention: `oversold` counts units
reserved beyond stock (it must be 0), and the ledger is checked against the counters.

Run: .venv/bin/python bench/reservation.py [--workers 32 --attempts 50]
Last line: `reservation: <r/s> reservations/s, baseline <r/s>, ratio <x.xx>, oversold <n>`
"""

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "oms_bench_reservation"
BASELINE_SQL = "UPDATE inventory_stockitem SET reserved = reserved + 1 WHERE id = %s AND on_hand - reserved >= 1"


def database_url(name: str) -> str:
    parsed = urlparse(SERVER_URL)
    return urlunparse(parsed._replace(path=f"/{name}"))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def setup_database() -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB_NAME}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(DB_NAME),
        "DJANGO_SETTINGS_MODULE": "oms.settings.dev",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


def django_setup() -> None:
    os.environ["DATABASE_URL"] = database_url(DB_NAME)
    os.environ["DJANGO_SETTINGS_MODULE"] = "oms.settings.dev"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    import django

    django.setup()


def seed(units_per_location: int, workers: int) -> dict:
    """The hot SKU at 3 locations, and one awaiting-payment order per worker to reserve for."""
    from django.db import connection

    from inventory.models import Location, Product, StockItem
    from oms.core.actors import get_system_user
    from orders import services as order_services
    from orders.models import Channel

    Channel.objects.get_or_create(code="web", defaults={"name": "Web", "kind": "web"})
    system = get_system_user()
    product, _ = Product.objects.get_or_create(sku="HOT", defaults={"name": "Hot item"})
    items = []
    for code in ("paris", "lyon", "lille"):
        location, _ = Location.objects.get_or_create(
            code=code, defaults={"name": code, "kind": "warehouse", "country": "FR"}
        )
        item, _ = StockItem.objects.get_or_create(product=product, location=location)
        items.append(item.pk)
    orders = []
    for i in range(workers):
        order, _ = order_services.order_create(
            actor=system,
            channel="web",
            external_id=f"bench-{i}",
            customer={"email": f"b{i}@example.com"},
            billing_address={"name": "B", "line1": "1 rue", "city": "Paris", "country": "FR"},
            lines=[{"sku": "HOT", "name": "Hot", "quantity": 1, "unit_price": "1.00"}],
            payment={"status": "unpaid"},
        )
        orders.append((order.pk, order.lines.get().pk))
    reset(items, units_per_location)
    connection.close()
    return {"items": items, "orders": orders, "system": system.pk}


def reset(items, units_per_location: int) -> None:
    """Same starting stock for each run, written through the ledger so that it balances."""
    from django.db import connection

    from inventory.models import Reservation, StockItem, StockMovement

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE inventory_reservation, inventory_stockmovement")
    StockItem.objects.filter(pk__in=items).update(on_hand=units_per_location, reserved=0)
    StockMovement.objects.bulk_create(
        [StockMovement(stock_item_id=pk, on_hand_delta=units_per_location, reason="receipt") for pk in items]
    )
    assert not Reservation.objects.exists()


def worker(kind: str, index: int, attempts: int, shared: dict, start, results) -> None:
    from django.db import connection

    from inventory.models import StockItem
    from inventory.services import stock_reserve
    from inventory.sourcing import LineNeed
    from orders.models import Order

    items = shared["items"]
    order_id, line_id = shared["orders"][index]
    if kind == "ours":
        order = Order.objects.get(pk=order_id)
        stock_rows = {row.pk: row for row in StockItem.objects.filter(pk__in=items)}
        need = LineNeed(
            line_id=line_id, line_number=1, sku="HOT", product_id=stock_rows[items[0]].product_id, quantity=1
        )
        from django.contrib.auth import get_user_model

        actor = get_user_model().objects.get(pk=shared["system"])
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection, in autocommit like Django's default
    start.wait()
    latencies, reserved = [], 0
    for attempt in range(attempts):
        began = time.perf_counter()
        for offset in range(3):  # the next location when one is sold out, same as the baseline
            item_id = items[(index + attempt + offset) % 3]
            if kind == "baseline":
                # Same driver path as ours: psycopg, server-side prepared, autocommit.
                ok = raw.execute(BASELINE_SQL, [item_id], prepare=True).rowcount == 1
            else:
                # One statement, atomic on its own: like the baseline, its own transaction.
                ok = stock_reserve(order=order, item=stock_rows[item_id], parts=[(need, 1)], actor=actor)
            if ok:
                reserved += 1
                break
        latencies.append(time.perf_counter() - began)
    connection.close()
    results.put((reserved, latencies))


def run(kind: str, shared: dict, workers: int, attempts: int) -> dict:
    from django.db import connection

    connection.close()  # a forked child must not inherit (and later close) the parent's socket
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(kind, i, attempts, shared, start, results)) for i in range(workers)]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # let every worker connect and load before the clock starts
    began = time.perf_counter()
    start.set()
    collected = [results.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join(timeout=60)
    reserved = sum(r for r, _ in collected)
    latencies = sorted(x for _, lat in collected for x in lat)
    return {
        "reserved": reserved,
        "attempts": workers * attempts,
        "wall": wall,
        "rate": reserved / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


def check(shared: dict, units_per_location: int) -> tuple[int, list]:
    from django.db import connection
    from django.db.models import Sum

    from inventory.models import StockItem
    from inventory.selectors import stock_ledger_drift

    rows = list(StockItem.objects.filter(pk__in=shared["items"]))
    oversold = sum(max(0, row.reserved - row.on_hand) for row in rows)
    total = StockItem.objects.filter(pk__in=shared["items"]).aggregate(n=Sum("reserved"))["n"]
    oversold = max(oversold, total - 3 * units_per_location)
    drift = stock_ledger_drift()
    connection.close()
    return oversold, drift


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--attempts", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each kind, alternating; medians reported")
    args = parser.parse_args()
    units = args.workers * args.attempts // 4  # per location: 3/4 of all attempts in total
    setup_database()
    django_setup()
    shared = seed(units, args.workers)
    runs = {"baseline": [], "ours": []}
    oversold_total, drift_seen = 0, []
    try:
        for _ in range(args.repeat):
            for kind in ("baseline", "ours"):
                reset(shared["items"], units)
                result = run(kind, shared, args.workers, args.attempts)
                oversold, drift = check(shared, units)
                oversold_total += oversold
                if kind == "ours":
                    drift_seen += drift
                runs[kind].append(result)
                print(
                    f"{kind:>8}: {result['reserved']}/{result['attempts']} reserved in {result['wall']:.2f} s "
                    f"= {result['rate']:.0f}/s, p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, "
                    f"oversold {oversold}, ledger drift rows {len(drift) if kind == 'ours' else '-'}",
                    flush=True,
                )
    finally:
        from django.db import connection

        connection.close()
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    ours = statistics.median(r["rate"] for r in runs["ours"])
    baseline = statistics.median(r["rate"] for r in runs["baseline"])
    print(
        f"workers {args.workers} x attempts {args.attempts}, stock {3 * units} units over 3 locations, "
        f"{args.repeat} runs each, medians"
    )
    print(
        f"reservation: {ours:.0f} reservations/s, baseline {baseline:.0f}, ratio {ours / baseline:.2f}, "
        f"oversold {oversold_total}"
    )
    return 1 if oversold_total or drift_seen else 0


if __name__ == "__main__":
    sys.exit(main())
