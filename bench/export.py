"""Accounting exports of 100,000 invoices: the FEC journal and the invoices CSV, seconds and peak memory.

A throwaway PostgreSQL database (`oms_bench_export`, dropped at the end, whatever happens) gets
--invoices orders, one invoice each (two lines at 20 % and 5.5 %, their tax breakdown, consistent
totals, numbers INV-2026-000001…) spread over March 2026, plus a credit note for every 50th invoice,
all bulk-created (setup, not timed). Then, through the services a cockpit user calls
(`billing.services.exports.export_request`, then `export_run`, the Celery task's body, run here in
the process: the broker is in memory and never delivers):
- seconds of `export_run` for the FEC journal and for the invoices CSV (median of --runs each):
  server-side cursors, the writers, the temporary file, storing the file, progress writes;
- peak: tracemalloc peak of one more run of each (Python allocations only; a separate run, since
  tracing slows the code down), the larger of the two.

Run: .venv/bin/python bench/export.py [--invoices 100000 --runs 3]
Needs the local PostgreSQL (BENCH_DATABASE_SERVER, default postgres://postgres@127.0.0.1:5432).
Last line: `export: <n> invoices in <s> s, peak <MB> MB` (s: FEC + CSV, medians).
"""

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "oms_bench_export"
BATCH = 5000
D = Decimal
PERIOD = (datetime.date(2026, 3, 1), datetime.date(2026, 3, 31))


def database_url(name: str) -> str:
    parsed = urlparse(SERVER_URL)
    return urlunparse(parsed._replace(path=f"/{name}"))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def bench_environment(media_root: str) -> None:
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


def build(invoices: int) -> None:
    """Orders, invoices with lines and tax rows, and credit notes, in batches (setup, not timed)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceTax
    from oms.core.actors import get_system_user
    from orders.models import Channel, Customer, Order

    system = get_system_user()
    channel, _ = Channel.objects.get_or_create(code="web", defaults={"name": "Web", "kind": "web"})
    customers = Customer.objects.bulk_create(
        [Customer(email=f"customer{i}@example.com", first_name="Bench", last_name=f"#{i}") for i in range(1000)]
    )
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(PERIOD[0], datetime.time(8), tzinfo=tz)
    seconds = int((PERIOD[1] - PERIOD[0]).days * 86400 + 12 * 3600)
    credit_number = 0
    for offset in range(0, invoices, BATCH):
        count = min(BATCH, invoices - offset)
        with transaction.atomic():
            at = [start + datetime.timedelta(seconds=(offset + i) * seconds // invoices) for i in range(count)]
            orders = Order.objects.bulk_create(
                [
                    Order(
                        number=f"WEB-{offset + i + 1:07d}",
                        channel=channel,
                        customer=customers[(offset + i) % len(customers)],
                        email=customers[(offset + i) % len(customers)].email,
                        currency="EUR",
                        status="delivered",
                        placed_at=at[i],
                        total_net=D("110.00"),
                        total_tax=D("20.55"),
                        total_gross=D("130.55"),
                        amount_paid=D("130.55"),
                    )
                    for i in range(count)
                ]
            )
            docs = Invoice.objects.bulk_create(
                [
                    Invoice(
                        number=f"INV-2026-{offset + i + 1:06d}",
                        order=order,
                        currency="EUR",
                        issued_at=at[i] + datetime.timedelta(minutes=5),
                        due_at=at[i].date(),
                        payment_terms="immediate",
                        seller={"name": "Bench SAS", "vat_number": "FR00000000000"},
                        buyer={"name": f"Bench Customer {order.customer_id}", "country": "FR"},
                        total_net=D("110.00"),
                        total_tax=D("20.55"),
                        total_gross=D("130.55"),
                        issued_by=system,
                    )
                    for i, order in enumerate(orders)
                ]
            )
            lines, taxes = [], []
            for doc in docs:
                lines += [
                    InvoiceLine(invoice=doc, position=1, sku="MUG", description="Mug", quantity=1,
                                unit_price=D("120.00"), tax_rate=D("0.20"), net=D("100.00"), tax=D("20.00"),
                                gross=D("120.00")),
                    InvoiceLine(invoice=doc, position=2, sku="BOOK", description="Book", quantity=1,
                                unit_price=D("10.55"), tax_rate=D("0.055"), net=D("10.00"), tax=D("0.55"),
                                gross=D("10.55")),
                ]  # fmt: skip
                taxes += [
                    InvoiceTax(invoice=doc, rate=D("0.20"), base=D("100.00"), tax=D("20.00")),
                    InvoiceTax(invoice=doc, rate=D("0.055"), base=D("10.00"), tax=D("0.55")),
                ]
            InvoiceLine.objects.bulk_create(lines)
            InvoiceTax.objects.bulk_create(taxes)
            credited = docs[::50]
            notes = []
            for doc in credited:
                credit_number += 1
                notes.append(
                    CreditNote(
                        number=f"CRN-2026-{credit_number:06d}",
                        invoice=doc,
                        order_id=doc.order_id,
                        currency="EUR",
                        reason="return",
                        issued_at=doc.issued_at + datetime.timedelta(hours=1),
                        buyer=doc.buyer,
                        total_net=D("100.00"),
                        total_tax=D("20.00"),
                        total_gross=D("120.00"),
                        issued_by=system,
                    )
                )
            notes = CreditNote.objects.bulk_create(notes)
            CreditNoteLine.objects.bulk_create(
                [
                    CreditNoteLine(credit_note=note, position=1, sku="MUG", description="Mug", quantity=1,
                                   unit_price=D("120.00"), tax_rate=D("0.20"), net=D("100.00"), tax=D("20.00"),
                                   gross=D("120.00"))
                    for note in notes
                ]
            )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def one_export(kind: str, actor):
    from billing.services.exports import export_request, export_run

    export = export_request(kind=kind, period_start=PERIOD[0], period_end=PERIOD[1], actor=actor)
    started = time.perf_counter()
    export = export_run(export=export)
    return time.perf_counter() - started, export


def check_fec(path: str, documents: int) -> None:
    """Every line has 18 columns and every entry balances (so the timed file is a real one)."""
    balance: dict[str, Decimal] = {}
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        assert len(header) == 18, header
        for line in handle:
            cells = line.rstrip("\r\n").split("\t")
            assert len(cells) == 18, cells
            amount = D(cells[11].replace(",", ".")) - D(cells[12].replace(",", "."))
            balance[cells[2]] = balance.get(cells[2], D(0)) + amount
    assert len(balance) == documents, (len(balance), documents)
    assert all(value == 0 for value in balance.values())


def run(args) -> int:
    from django.contrib.auth import get_user_model

    from billing.models import CreditNote, ExportKind, Invoice

    started = time.perf_counter()
    build(args.invoices)
    invoices, notes = Invoice.objects.count(), CreditNote.objects.count()
    print(f"setup: {invoices} invoices, {notes} credit notes in {time.perf_counter() - started:.1f} s (not timed)")
    actor = get_user_model().objects.create_superuser("bench-accountant", "bench@example.com", "pw")

    timings = {ExportKind.FEC: [], ExportKind.INVOICES_CSV: []}
    for _ in range(args.runs):
        for kind in timings:
            seconds, export = one_export(kind, actor)
            timings[kind].append(seconds)
            assert export.progress == 100 and export.rows == invoices + notes, (export.progress, export.rows)
            if kind == ExportKind.FEC:
                check_fec(export.file.path, invoices + notes)
            size = os.path.getsize(export.file.path)
            print(f"  {kind}: {seconds:.2f} s, {size / 1e6:.1f} MB file, {export.rows} documents")
            export.file.delete(save=False)
    peaks = {}
    for kind in timings:
        tracemalloc.start()
        _, export = one_export(kind, actor)
        peaks[kind] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        export.file.delete(save=False)
    fec, csv_ = (statistics.median(timings[kind]) for kind in timings)
    print(f"fec: {fec:.2f} s, peak {peaks[ExportKind.FEC]:.1f} MB (tracemalloc)")
    print(f"csv: {csv_:.2f} s, peak {peaks[ExportKind.INVOICES_CSV]:.1f} MB (tracemalloc)")
    print(f"export: {invoices} invoices in {fec + csv_:.2f} s, peak {max(peaks.values()):.0f} MB")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each export; medians reported")
    args = parser.parse_args()

    media_root = tempfile.mkdtemp(prefix="oms-bench-export-")
    bench_environment(media_root)
    setup_database()
    try:
        import django

        django.setup()
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(media_root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
