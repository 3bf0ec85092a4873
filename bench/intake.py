"""Order intake benchmark: POST /api/v1/orders/ through gunicorn against a fresh PostgreSQL database.

    .venv/bin/python bench/intake.py [--orders 2000] [--clients 8] [--workers 3]

What it does:
  1. drops and creates the database `oms_bench` on the local PostgreSQL server (DATABASE_URL's server,
     default postgres://postgres@127.0.0.1:5432), then `manage.py migrate` and `sync_roles` on it;
  2. creates the channel `web` and a store front API client on it (user `bench-client` in the
     "API: store front" group, with a DRF token);
  3. starts gunicorn on a free loopback port (gthread workers, 2 threads each, by default), with
     Celery tasks sent to Redis db 14 (nothing runs inline; the queue is flushed at the end) and
     OMS_COUNT_QUERIES=1, so that each response carries X-Query-Count;
  4. warms up with a few orders, then posts N orders of 3 lines each from C client threads (one
     keep-alive session per thread, a unique Idempotency-Key per request) and checks every answer is 201;
  5. prints throughput, latency percentiles and SQL statements per order; the last line reads
     `intake: <orders/s> orders/s, p95 <ms> ms, <n> queries/order`;
  6. stops gunicorn and drops the database, whatever happened.

Exits non-zero if any order was not accepted. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = "oms_bench"
BROKER_URL = "redis://127.0.0.1:6379/14"
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432"
REQUEST_TIMEOUT = (5, 60)  # connect, read (seconds)
STARTUP_TIMEOUT = 60
COMMAND_TIMEOUT = 900
CUSTOMERS = 200

SETUP_CODE = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from orders.models import Channel
from orders.services import api_client_save
from oms.core.actors import get_system_user
u, _ = User.objects.get_or_create(username='bench-client')
Channel.objects.get_or_create(code='web', defaults={'name': 'Web', 'kind': 'web'})
api_client_save(user=u, role='store_front', channels=['web'], actor=get_system_user())
# The catalog the orders sell, with stock at two warehouses: each order is sourced and reserved.
from inventory.models import Location, Product
from inventory.services import stock_receive
from oms.core.actors import get_system_user
system = get_system_user()
locations = [
    Location.objects.get_or_create(code=code, defaults={'name': code, 'kind': 'warehouse', 'country': 'FR'})[0]
    for code in ('paris', 'lyon')
]
for i in range(1, 8):
    product, _ = Product.objects.get_or_create(sku=f'SKU-{i}', defaults={'name': f'Product {i}'})
    for location in locations:
        stock_receive(product=product, location=location, quantity=1000000, actor=system)
print(Token.objects.get_or_create(user=u)[0].key)
"""

FIRST_NAMES = ["Ann", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès", "Jules"]
LAST_NAMES = ["Lee", "Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel", "Leroy", "Roux"]
CITIES = [("75002", "Paris"), ("69002", "Lyon"), ("13001", "Marseille"), ("33000", "Bordeaux"), ("59000", "Lille")]
PRODUCTS = [
    ("SKU-1", "Mug", "12.00"),
    ("SKU-2", "Teapot", "34.50"),
    ("SKU-3", "Coaster set", "8.90"),
    ("SKU-4", "Espresso cup", "6.40"),
    ("SKU-5", "Tray", "21.00"),
    ("SKU-6", "Tea towel", "9.99"),
    ("SKU-7", "Sugar bowl", "14.20"),
]


def log(message: str) -> None:
    print(message, flush=True)


# --- Database -------------------------------------------------------------------------------------


def server_url() -> str:
    """DATABASE_URL without its database name (the server the bench database is created on)."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"bench: DATABASE_URL must be a PostgreSQL URL, not {parts.scheme}://…")
    if not is_loopback(parts.hostname or "127.0.0.1"):
        raise SystemExit(f"bench: the database server must be local (loopback), not {parts.hostname}")
    return urlunsplit(parts._replace(path="", query="", fragment=""))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_connection(server: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True, connect_timeout=10)


def create_database(server: str) -> str:
    with admin_connection(server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    return f"{server}/{BENCH_DB}"


def drop_database(server: str) -> None:
    with admin_connection(server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


# --- The server -------------------------------------------------------------------------------------


def bench_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="oms.settings.dev",
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_BROKER_URL=BROKER_URL,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        OMS_COUNT_QUERIES="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"bench: manage.py {args[0]} failed (exit {result.returncode})")
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict[str, str], *, workers: int, worker_class: str, threads: int):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
        command = [
            PYTHON, "-m", "gunicorn", "oms.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers),
            "--worker-class", worker_class,
            "--chdir", str(ROOT),
            "--timeout", "60",
            "--log-level", "warning",
        ]  # fmt: skip
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = requests.get(f"{self.base_url}/admin/login/", timeout=2)
                if response.status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise SystemExit(f"bench: gunicorn did not answer within {STARTUP_TIMEOUT}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# --- The load ----------------------------------------------------------------------------------------


def order_payload(prefix: str, i: int) -> dict:
    c = i % CUSTOMERS
    first, last = FIRST_NAMES[c % len(FIRST_NAMES)], LAST_NAMES[(c // len(FIRST_NAMES)) % len(LAST_NAMES)]
    postal_code, city = CITIES[c % len(CITIES)]
    address = {
        "name": f"{first} {last}",
        "line1": f"{1 + c} rue de la Paix",
        "postal_code": postal_code,
        "city": city,
        "country": "FR",
    }
    lines = []
    for n in range(3):
        sku, name, price = PRODUCTS[(i + n) % len(PRODUCTS)]
        lines.append(
            {
                "sku": sku,
                "name": name,
                "quantity": 1 + (i + n) % 3,
                "unit_price": price,
                "tax_rate": "0.20",
                "discount": "1.00" if n == 0 and i % 5 == 0 else "0.00",
            }
        )
    return {
        "channel": "web",
        "external_id": f"{prefix}-{i:06d}",
        "currency": "EUR",
        "customer": {
            "email": f"customer{c:03d}@example.com",
            "first_name": first,
            "last_name": last,
            "phone": f"+3312345{c:04d}",
        },
        "billing_address": address,
        "shipping_address": dict(address),
        "shipping": {"method": "standard", "price": "4.90", "tax_rate": "0.20"},
        "lines": lines,
        # No amount: the API takes the order total.
        "payment": {"status": "paid", "method": "card", "reference": f"pay-{prefix}-{i:06d}"},
    }


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    query_counts: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_orders(base_url: str, token: str, prefix: str, count: int, clients: int) -> tuple[Results, float]:
    url = f"{base_url}/api/v1/orders/"
    local = threading.local()
    sessions: list[requests.Session] = []
    results = Results()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update({"Authorization": f"Token {token}", "Content-Type": "application/json"})
            with results.lock:
                sessions.append(local.session)
        return local.session

    def post(i: int) -> None:
        body = json.dumps(order_payload(prefix, i))
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        started = time.perf_counter()
        try:
            response = session().post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            with results.lock:
                results.failures.append(f"{prefix}-{i:06d}: {type(exc).__name__}: {exc}")
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        queries = response.headers.get("X-Query-Count")
        number = None
        if response.status_code == 201:
            try:
                number = response.json().get("number")
            except ValueError:
                pass
        with results.lock:
            results.latencies_ms.append(elapsed_ms)
            if queries is not None and queries.isdigit():
                results.query_counts.append(int(queries))
            if response.status_code != 201:
                text = " ".join(response.text.split())[:300]
                results.failures.append(f"{prefix}-{i:06d}: HTTP {response.status_code}: {text}")
            elif not number:
                results.failures.append(f"{prefix}-{i:06d}: 201 without an order number: {response.text[:300]}")
            else:
                results.numbers.append(number)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="client") as pool:
            list(pool.map(post, range(1, count + 1)))
    finally:
        for s in sessions:
            s.close()
    return results, time.perf_counter() - started


def percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def cleanup(gunicorn: Gunicorn | None, broker: redis.Redis, server: str) -> None:
    """Every step runs even if an earlier one fails."""
    steps = [
        ("stop gunicorn", gunicorn.stop if gunicorn is not None else None),
        ("empty the bench's Celery queue (Redis db 14)", broker.flushdb),
        (f"drop database {BENCH_DB}", lambda: drop_database(server)),
    ]
    for what, step in steps:
        if step is None:
            continue
        try:
            step()
        except Exception as exc:  # report it and go on with the next step
            log(f"bench: could not {what}: {exc}")
    broker.close()
    log(f"bench: gunicorn stopped, database {BENCH_DB} dropped")


# --- Main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders to post (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (default 2)")
    parser.add_argument("--warmup", type=int, default=50, help="orders posted before measuring (default 50)")
    args = parser.parse_args()
    if args.orders < 1 or args.clients < 1 or args.workers < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("counts must be positive")

    server = server_url()
    broker = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        broker.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"bench: Redis is needed at {BROKER_URL} (the Celery broker): {exc}") from exc

    gunicorn = None
    try:
        log(f"bench: creating database {BENCH_DB}")
        database_url = create_database(server)
        env = bench_env(database_url)
        log("bench: migrate, sync_roles")
        manage(env, "migrate", "--noinput")
        manage(env, "sync_roles")
        token = manage(env, "shell", "-c", SETUP_CODE).strip().splitlines()[-1].strip()

        gunicorn = Gunicorn(env, workers=args.workers, worker_class=args.worker_class, threads=args.threads)
        gunicorn.wait_ready()
        threads = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
        log(f"bench: gunicorn {args.workers} {args.worker_class} workers{threads} on {gunicorn.base_url}")

        if args.warmup:
            warm, _ = post_orders(gunicorn.base_url, token, "warm", args.warmup, args.clients)
            if warm.failures:
                log(f"bench: warm-up failed ({len(warm.failures)}/{args.warmup}); first failures:")
                for failure in warm.failures[:5]:
                    log(f"  {failure}")
                return 1

        log(f"bench: posting {args.orders} orders (3 lines each) from {args.clients} clients")
        results, wall = post_orders(gunicorn.base_url, token, "bench", args.orders, args.clients)
    finally:
        cleanup(gunicorn, broker, server)

    ok = len(results.numbers)
    if len(set(results.numbers)) != ok:
        results.failures.append(f"{ok - len(set(results.numbers))} order numbers were given twice")
    if results.failures:
        log(f"bench: {len(results.failures)} of {args.orders} requests failed; first failures:")
        for failure in results.failures[:10]:
            log(f"  {failure}")

    rate = args.orders / wall
    latencies = results.latencies_ms or [float("nan")]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    queries = statistics.fmean(results.query_counts) if results.query_counts else float("nan")
    if not results.query_counts:
        results.failures.append("no response carried X-Query-Count")
        log("bench: no response carried X-Query-Count (is OMS_COUNT_QUERIES honoured?)")
    log(f"orders: {ok} accepted of {args.orders} in {wall:.2f} s")
    log(f"latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms")
    log(f"SQL statements per order: mean {queries:.1f}, max {max(results.query_counts, default=0)}")
    log(f"intake: {rate:.1f} orders/s, p95 {p95:.1f} ms, {queries:.1f} queries/order")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
