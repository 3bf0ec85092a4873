"""The cockpit's pages on 1,000,000 orders: p50 / p95 server time and SQL statements per request.

A PostgreSQL database (`oms_bench_cockpit`, dropped and recreated unless --keep) is migrated, then
filled with set-based SQL (`INSERT … SELECT … FROM generate_series`, a few statements per table,
not the ORM): --orders orders over the two years before now (mostly completed or delivered, ~7 %
canceled, the newest ~40,000 spread over every open status, ~1 % test orders), from 4 channels and
300,000 customers, with ~2.5 lines and ~5 typed events each, consistent totals, payment and
fulfillment statuses and timestamps (placed, paid, confirmed, preparation started, first shipped,
delivered, completed / canceled); a shipment with a tracking number for every order that left the
warehouse; ~3,000 active holds; 50,000 cases (~4,000 open over every kind and level, the rest
resolved) with their numbers CASE-YYYY-NNNNNN; one shipped order gets 300 more events (parcel
updates). Then VACUUM ANALYZE (about 5 minutes in all, 2.9 GB). Values come from a hash of the row
number, so two runs generate the same data.

Then, in this process, Django's test client (`oms.settings.dev`, DEBUG off, the same database),
logged in as `bench-admin` (the Administrator role, not a superuser: permissions are checked as
in production) or `bench-support1` (Support L1: the queue scoping is exercised): warm-up requests,
then --requests rounds over every page (round robin, so that load spikes on the machine hit every
page alike), each request timed with `time.perf_counter` and its statements counted with
`CaptureQueriesContext`. Pages: the order list (default, by status, on hold, a search), every case
queue (each kind × level, `/admin/orders/case/?kind__exact=…&level__exact=…`), the support agent's
own queues, the cockpit home page (both users), order pages (the one with 300 events, an open one,
a completed one), and the global search (`/admin/search/?q=`: tracking number, order number and
case number redirect to their only hit, an e-mail lists). A page that answers anything else than
expected (404: not built yet) is skipped and listed.

With --explain, each page's slowest SELECTs (up to 3) above --explain-ms are run again under
`EXPLAIN (ANALYZE, BUFFERS)` and their plans printed. After the warm-up the script calls
`gc.freeze()`, as oms/wsgi.py does once a server worker has loaded the app (Python's full
collections otherwise pause one request in ~16 for 100-150 ms); --no-gc-freeze measures without.

Run: .venv/bin/python bench/cockpit.py [--orders 1000000 --requests 30 --keep --explain --drop]
Needs the local PostgreSQL (BENCH_DATABASE_SERVER, default postgres://postgres@127.0.0.1:5432).
The database is left in place for --keep (about 3 GB; --drop removes it at the end).
Last line: `cockpit: worst p95 <ms> ms, queries <min>-<max>` (min / max over the pages of the
statements per request).
"""

import argparse
import gc
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "oms_bench_cockpit"
TARGET_P95_MS = 300.0
CUSTOMERS = 300_000
CASES = 50_000
OPEN_CASES = 4_000
RECENT = 40_000  # the newest orders, spread over the open statuses
ADMIN, SUPPORT = "bench-admin", "bench-support1"


def database_url(name: str) -> str:
    parsed = urlparse(SERVER_URL)
    return urlunparse(parsed._replace(path=f"/{name}"))


def admin_sql(sql: str):
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else None


def bench_environment() -> None:
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)  # Celery on its in-memory broker: tasks are queued, never run
    os.environ.update(
        DATABASE_URL=database_url(DB_NAME),
        DJANGO_SETTINGS_MODULE="oms.settings.dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        CELERY_TASK_ALWAYS_EAGER="false",
    )


def migrate() -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=os.environ, check=True)


# --- data ----------------------------------------------------------------------------------------

# Deterministic "random" numbers from the row number: the same data on every run, and functions
# PostgreSQL inlines (plain SQL, IMMUTABLE). Lines are defined by (order id, line number), so the
# order totals can be computed from the same formulas before the lines exist.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION bench_rand(n bigint, salt int) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8(n * 64 + salt) & 2147483647)::float8 / 2147483648.0 $$;
CREATE OR REPLACE FUNCTION bench_lines(o bigint) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 + (hashint8(o * 64 + 7) & 2147483647) % 4 $$;
CREATE OR REPLACE FUNCTION bench_qty(o bigint, l int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 + (hashint8(o * 512 + l * 8 + 1) & 2147483647) % 3 $$;
CREATE OR REPLACE FUNCTION bench_price(o bigint, l int) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT round((4.9 + ((hashint8(o * 512 + l * 8 + 2) & 2147483647) % 9500) / 100.0)::numeric, 2) $$;
"""

# Events each status has been through (created … completed): ~5 for a completed order.
EVENT_TYPES = """
CASE o.status
    WHEN 'draft' THEN ARRAY['created']
    WHEN 'pending_approval' THEN ARRAY['created', 'submitted']
    WHEN 'awaiting_payment' THEN ARRAY['created', 'submitted']
    WHEN 'under_review' THEN ARRAY['created', 'payment_recorded', 'flagged_for_review', 'hold_placed']
    WHEN 'confirmed' THEN ARRAY['created', 'payment_recorded', 'confirmed']
    WHEN 'in_preparation' THEN ARRAY['created', 'payment_recorded', 'confirmed', 'preparation_started']
    WHEN 'partially_shipped' THEN ARRAY['created', 'confirmed', 'preparation_started', 'shipment_recorded']
    WHEN 'shipped' THEN ARRAY['created', 'confirmed', 'preparation_started', 'shipped']
    WHEN 'delivered' THEN ARRAY['created', 'confirmed', 'shipped', 'delivered']
    WHEN 'completed' THEN ARRAY['created', 'confirmed', 'shipped', 'delivered', 'completed']
    ELSE ARRAY['created', 'canceled']
END
"""

EVENT_OFFSET = """
CASE e.type
    WHEN 'created' THEN interval '0'
    WHEN 'submitted' THEN interval '1 minute'
    WHEN 'payment_recorded' THEN interval '5 minutes'
    WHEN 'flagged_for_review' THEN interval '6 minutes'
    WHEN 'hold_placed' THEN interval '6 minutes'
    WHEN 'confirmed' THEN interval '10 minutes'
    WHEN 'preparation_started' THEN interval '4 hours'
    WHEN 'shipment_recorded' THEN interval '1 day'
    WHEN 'shipped' THEN interval '1 day'
    WHEN 'delivered' THEN interval '3 days'
    WHEN 'completed' THEN interval '17 days'
    ELSE interval '2 hours'
END
"""


def generate(orders: int) -> dict[str, float]:
    """Fill the tables; returns seconds per step."""
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from inventory.models import Location
    from oms.core.actors import get_system_user
    from orders.choices import CaseKind
    from orders.models import Channel, Tag

    system = get_system_user()
    admin_user = _users(Group)[ADMIN]
    location = Location.objects.create(
        code="bench-dc", name="Bench DC", kind="warehouse", country="FR", city="Lyon", priority=10
    )
    channels = [
        Channel.objects.create(code="web", name="Web store", kind="web"),
        Channel.objects.create(code="app", name="Mobile app", kind="app"),
        Channel.objects.create(code="marketplace", name="Marketplace", kind="marketplace", prices_include_tax=True),
        Channel.objects.create(code="edi", name="EDI resellers", kind="edi", prices_include_tax=False),
    ]
    tags = [Tag.objects.create(name=name) for name in ("vip", "b2b", "gift")]
    kinds = [kind.value for kind in CaseKind]
    steps: dict[str, float] = {}
    params = {
        "n": orders,
        "recent": min(RECENT, orders // 2),
        "customers": min(CUSTOMERS, max(orders // 3, 1)),
        "system": system.pk,
        "admin": admin_user.pk,
        "location": location.pk,
        "web": channels[0].pk,
        "app": channels[1].pk,
        "market": channels[2].pk,
        "edi": channels[3].pk,
        "kinds": kinds,
        "cases": CASES,
        "open_cases": OPEN_CASES,
        "tags": [tag.pk for tag in tags],
    }

    def step(name: str, *statements: str) -> None:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            for sql in statements:
                cursor.execute(sql, params)
        steps[name] = time.perf_counter() - started
        print(f"  {name}: {steps[name]:.0f} s", flush=True)

    with connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
        cursor.execute("SELECT now() - interval '1 hour'")
        params["end"] = cursor.fetchone()[0]

    step(
        "customers",
        """
        INSERT INTO orders_customer (id, email, first_name, last_name, phone, company_name, locale,
            payment_terms_days, is_test, phone_key, address_key, created_at)
        SELECT c, 'customer' || c || '@example.com', 'Client', 'N' || c,
            '+3361' || lpad(c::text, 7, '0'), CASE WHEN c %% 50 = 0 THEN 'Company ' || c ELSE '' END,
            CASE WHEN c %% 3 = 0 THEN 'en' ELSE 'fr' END,
            CASE WHEN c %% 50 = 0 THEN 30 END, c %% 100 = 0, '3361' || lpad(c::text, 7, '0'), '',
            %(end)s - interval '760 days' + (c * interval '60 seconds')
        FROM generate_series(1, %(customers)s) c
        """,
        "SELECT setval(pg_get_serial_sequence('orders_customer', 'id'), %(customers)s)",
    )
    step(
        "orders",
        """
        INSERT INTO orders_order (id, number, channel_id, external_id, customer_id, email, locale, currency,
            prices_include_tax, status, payment_status, fulfillment_status, requires_approval,
            on_payment_terms, billing_address, shipping_address, shipping_method, pickup_location_id,
            shipping_price, shipping_tax_rate, shipping_net, shipping_tax, discount_total,
            total_net, total_tax, total_gross, amount_authorized, amount_paid, amount_refunded,
            payment_method, payment_reference, is_test, risk_score, risk_facts, purchase_order_number,
            placed_at, paid_at, promised_at, confirmed_at, preparation_started_at, first_shipped_at,
            delivered_at, completed_at, canceled_at, cancel_reason, created_at, updated_at)
        SELECT s.i,
            'ORD-' || extract(year FROM s.placed_at) || '-'
                || lpad((row_number() OVER (PARTITION BY extract(year FROM s.placed_at) ORDER BY s.i))::text, 6, '0'),
            s.channel_id,
            CASE WHEN s.channel_id = %(market)s THEN 'MKP-' || (900000000 + s.i) END,
            s.customer_id, 'customer' || s.customer_id || '@example.com',
            CASE WHEN s.customer_id %% 3 = 0 THEN 'en' ELSE 'fr' END, 'EUR', s.channel_id <> %(edi)s,
            s.status,
            CASE WHEN s.status IN ('draft', 'pending_approval', 'awaiting_payment') THEN 'unpaid'
                 WHEN s.status = 'canceled' AND s.refunded THEN 'refunded'
                 WHEN s.status = 'canceled' THEN 'unpaid'
                 ELSE 'paid' END,
            CASE WHEN s.status IN ('delivered', 'completed') THEN 'delivered'
                 WHEN s.status IN ('partially_shipped', 'shipped', 'canceled') THEN s.status
                 ELSE 'unfulfilled' END,
            s.status = 'pending_approval', false,
            s.address, s.address,
            'standard', NULL,
            4.90, 0.2, 4.08, 0.82, 0,
            t.net + 4.08, t.gross - t.net + 0.82, t.gross + 4.90,
            CASE WHEN s.paid THEN t.gross + 4.90 ELSE 0 END,
            CASE WHEN s.paid THEN t.gross + 4.90 ELSE 0 END,
            CASE WHEN s.status = 'canceled' AND s.refunded THEN t.gross + 4.90 ELSE 0 END,
            CASE WHEN s.paid THEN 'card' ELSE '' END,
            CASE WHEN s.paid THEN 'pi_' || s.i ELSE '' END,
            s.is_test,
            CASE WHEN s.status = 'under_review' THEN 85 WHEN s.i %% 10 = 0 THEN (s.i %% 60)::int END,
            CASE WHEN s.status = 'under_review'
                 THEN '[{"source": "channel", "fact": "Billing and shipping countries differ"}]'::jsonb
                 ELSE '[]'::jsonb END,
            CASE WHEN s.channel_id = %(edi)s THEN 'PO-' || s.i ELSE '' END,
            s.placed_at,
            CASE WHEN s.paid THEN least(s.placed_at + interval '5 minutes', %(end)s) END,
            s.placed_at + interval '3 days',
            CASE WHEN s.stage >= 4 THEN least(s.placed_at + interval '10 minutes', %(end)s) END,
            CASE WHEN s.stage >= 5 THEN least(s.placed_at + interval '4 hours', %(end)s) END,
            CASE WHEN s.stage >= 6 THEN least(s.placed_at + interval '1 day', %(end)s) END,
            CASE WHEN s.stage >= 8 THEN least(s.placed_at + interval '3 days', %(end)s) END,
            CASE WHEN s.stage >= 9 THEN least(s.placed_at + interval '17 days', %(end)s) END,
            CASE WHEN s.status = 'canceled' THEN least(s.placed_at + interval '2 hours', %(end)s) END,
            CASE WHEN s.status <> 'canceled' THEN ''
                 WHEN s.refunded THEN 'customer_request'
                 WHEN s.i %% 3 = 0 THEN 'out_of_stock'
                 ELSE 'payment_failed' END,
            s.placed_at, s.placed_at
        FROM (
            SELECT g.*,
                jsonb_build_object('name', 'Client N' || g.customer_id, 'line1', g.customer_id || ' rue de la Paix',
                    'postal_code', '750' || lpad((g.customer_id %% 20 + 1)::text, 2, '0'), 'city', 'Paris',
                    'country', 'FR') AS address,
                g.status NOT IN ('draft', 'pending_approval', 'awaiting_payment')
                    AND (g.status <> 'canceled' OR g.refunded) AS paid,
                array_position(ARRAY['draft', 'pending_approval', 'awaiting_payment', 'under_review',
                    'confirmed', 'in_preparation', 'partially_shipped', 'shipped', 'delivered', 'completed'],
                    g.status) - 1 AS stage
            FROM (
                SELECT i,
                    %(end)s - interval '730 days' + (i - 1 + bench_rand(i, 0)) * (interval '730 days' / %(n)s)
                        AS placed_at,
                    CASE WHEN %(n)s - i >= %(recent)s THEN
                        CASE WHEN bench_rand(i, 1) < 0.07 THEN 'canceled'
                             WHEN bench_rand(i, 1) < 0.10 THEN 'delivered'
                             ELSE 'completed' END
                    ELSE
                        CASE WHEN bench_rand(i, 1) < 0.02 THEN 'draft'
                             WHEN bench_rand(i, 1) < 0.07 THEN 'pending_approval'
                             WHEN bench_rand(i, 1) < 0.17 THEN 'awaiting_payment'
                             WHEN bench_rand(i, 1) < 0.22 THEN 'under_review'
                             WHEN bench_rand(i, 1) < 0.32 THEN 'confirmed'
                             WHEN bench_rand(i, 1) < 0.42 THEN 'in_preparation'
                             WHEN bench_rand(i, 1) < 0.47 THEN 'partially_shipped'
                             WHEN bench_rand(i, 1) < 0.72 THEN 'shipped'
                             WHEN bench_rand(i, 1) < 0.92 THEN 'delivered'
                             ELSE 'canceled' END
                    END AS status,
                    bench_rand(i, 2) < 0.5 AS refunded,
                    bench_rand(i, 3) < 0.01 AS is_test,
                    1 + (hashint8(i * 64 + 4) & 2147483647) %% %(customers)s AS customer_id,
                    CASE WHEN bench_rand(i, 5) < 0.5 THEN %(web)s WHEN bench_rand(i, 5) < 0.7 THEN %(app)s
                         WHEN bench_rand(i, 5) < 0.92 THEN %(market)s ELSE %(edi)s END AS channel_id
                FROM generate_series(1, %(n)s) i
            ) g
        ) s
        CROSS JOIN LATERAL (
            SELECT sum(bench_qty(s.i, l) * bench_price(s.i, l)) AS gross,
                sum(round(bench_qty(s.i, l) * bench_price(s.i, l) / 1.2, 2)) AS net
            FROM generate_series(1, bench_lines(s.i)) l
        ) t
        """,
        "SELECT setval(pg_get_serial_sequence('orders_order', 'id'), %(n)s)",
    )
    step(
        "lines",
        """
        INSERT INTO orders_orderline (order_id, line_number, sku, name, product_id, attributes, quantity,
            unit_price, discount_amount, promotion, tax_rate, total_net, tax_amount, total_gross,
            quantity_canceled, quantity_shipped, quantity_delivered, promised_at, substitute_for_id)
        SELECT o.id, l, 'SKU-' || lpad(p::text, 5, '0'), 'Product ' || p, NULL, '{}'::jsonb, q,
            price, 0, '{}'::jsonb, 0.2, round(q * price / 1.2, 2), q * price - round(q * price / 1.2, 2), q * price,
            CASE WHEN o.status = 'canceled' THEN q ELSE 0 END,
            CASE WHEN o.status IN ('shipped', 'delivered', 'completed') OR (o.status = 'partially_shipped' AND l = 1)
                 THEN q ELSE 0 END,
            CASE WHEN o.status IN ('delivered', 'completed') THEN q ELSE 0 END,
            o.promised_at, NULL
        FROM orders_order o
        CROSS JOIN LATERAL generate_series(1, bench_lines(o.id)) l
        CROSS JOIN LATERAL (
            SELECT bench_qty(o.id, l) AS q, bench_price(o.id, l) AS price,
                1 + (hashint8(o.id * 512 + l * 8 + 3) & 2147483647) %% 5000 AS p
        ) v
        """,
    )
    step(
        "events",
        f"""
        INSERT INTO orders_orderevent (order_id, type, actor_id, reason, payload, created_at)
        SELECT o.id, e.type,
            CASE WHEN e.type IN ('confirmed', 'canceled') AND o.id %% 50 = 0 THEN %(admin)s ELSE %(system)s END,
            CASE WHEN e.type = 'canceled' THEN 'Bench: canceled' ELSE '' END,
            CASE WHEN e.type = 'shipped' THEN jsonb_build_object('shipment', o.id) ELSE '{{}}'::jsonb END,
            least(o.placed_at + {EVENT_OFFSET}, %(end)s)
        FROM orders_order o
        CROSS JOIN LATERAL unnest({EVENT_TYPES}) WITH ORDINALITY AS e(type, n)
        """,
    )
    step(
        "holds",
        # Active: every order under review (fraud), 10 % of the orders awaiting payment or confirmed;
        # released: 1 % of the older orders.
        """
        INSERT INTO orders_orderhold (order_id, reason, note, placed_by_id, placed_at, released_by_id,
            released_at, release_note)
        SELECT o.id,
            CASE o.status WHEN 'under_review' THEN 'fraud_review' WHEN 'awaiting_payment' THEN 'payment_overdue'
                 ELSE 'address_check' END,
            'Bench hold', %(system)s, o.placed_at + interval '6 minutes', NULL, NULL, ''
        FROM orders_order o
        WHERE o.status = 'under_review' OR (o.status IN ('awaiting_payment', 'confirmed') AND o.id %% 10 = 0)
        UNION ALL
        SELECT o.id, 'address_check', 'Bench hold', %(system)s, o.placed_at + interval '6 minutes',
            %(admin)s, o.placed_at + interval '2 hours', 'Address confirmed by phone'
        FROM orders_order o
        WHERE o.id %% 100 = 7 AND o.status = 'completed'
        """,
    )
    step(
        "tags",
        """
        INSERT INTO orders_order_tags (order_id, tag_id)
        SELECT o.id, (%(tags)s::bigint[])[1 + o.id %% 3] FROM orders_order o WHERE o.id %% 97 = 0
        """,
    )
    step(
        "shipments",
        """
        INSERT INTO fulfillment_shipment (number, order_id, location_id, kind, status, priority, ship_by,
            carrier, service, tracking_number, tracking_url, label, tracking_status, tracking_updated_at,
            ship_to, weight_grams, currency, declared_value, insured, insurance_amount, is_gift, gift_message,
            is_test, exception_note, created_at, picking_started_at, packed_at, shipped_at, delivered_at,
            ready_at, pickup_expires_at, pickup_reminded_at, canceled_at, wave_id)
        SELECT 'SHP-' || extract(year FROM o.first_shipped_at) || '-'
                || lpad((row_number() OVER (PARTITION BY extract(year FROM o.first_shipped_at) ORDER BY o.id))::text,
                        6, '0'),
            o.id, %(location)s, 'delivery',
            CASE WHEN o.status IN ('delivered', 'completed') THEN 'delivered' ELSE 'in_transit' END,
            100, o.placed_at + interval '1 day', 'sandbox', 'standard', 'BT' || lpad(o.id::text, 10, '0') || 'FR',
            '', '', CASE WHEN o.status IN ('delivered', 'completed') THEN 'delivered' ELSE 'in_transit' END,
            coalesce(o.delivered_at, o.first_shipped_at), o.shipping_address, 1000, 'EUR', o.total_gross, false,
            0, false, '', o.is_test, '', o.preparation_started_at, o.preparation_started_at,
            o.first_shipped_at, o.first_shipped_at, o.delivered_at, NULL, NULL, NULL, NULL, NULL
        FROM orders_order o
        WHERE o.first_shipped_at IS NOT NULL
        """,
    )
    step(
        "cases",
        # ~OPEN_CASES open over every kind and level (a third overdue), on the newest orders; the rest
        # resolved, on older orders. Escalated cases are level 2; one in seven open cases is assigned.
        """
        INSERT INTO orders_case (number, kind, level, status, source_key, title, facts, order_id, customer_id,
            assignee_id, due_at, opened_by_id, opened_at, escalated_at, escalation_reason, resolved_at,
            resolved_by_id, decision, resolution, evidence, is_test)
        SELECT 'CASE-' || extract(year FROM c.opened_at) || '-'
                || lpad((row_number() OVER (PARTITION BY extract(year FROM c.opened_at)
                                            ORDER BY c.opened_at, c.g))::text, 6, '0'),
            c.kind, c.level, c.status, 'bench:' || c.kind || ':' || c.g, 'Bench case ' || c.g || ' on ' || o.number,
            jsonb_build_object('order', o.number), o.id, o.customer_id,
            CASE WHEN c.status = 'in_progress' THEN %(admin)s END,
            c.opened_at + interval '1 day', %(system)s, c.opened_at,
            CASE WHEN c.status = 'escalated' THEN c.opened_at + interval '2 hours' END,
            CASE WHEN c.status = 'escalated' THEN 'Needs level 2' ELSE '' END,
            CASE WHEN c.status = 'resolved' THEN c.opened_at + interval '10 hours' END,
            CASE WHEN c.status = 'resolved' THEN %(admin)s END,
            CASE WHEN c.status = 'resolved' THEN 'fixed' ELSE '' END,
            CASE WHEN c.status = 'resolved' THEN 'Bench: fixed' ELSE '' END,
            '{}'::jsonb, o.is_test
        FROM (
            SELECT g, (%(kinds)s::text[])[1 + g %% array_length(%(kinds)s::text[], 1)] AS kind,
                CASE WHEN g <= %(open_cases)s THEN
                    CASE WHEN g %% 5 = 0 THEN 'l2' ELSE 'l1' END
                ELSE CASE WHEN g %% 10 = 0 THEN 'l2' ELSE 'l1' END END AS level,
                CASE WHEN g > %(open_cases)s THEN 'resolved'
                     WHEN g %% 10 = 0 THEN 'escalated'
                     WHEN g %% 7 = 0 THEN 'in_progress'
                     ELSE 'open' END AS status,
                CASE WHEN g <= %(open_cases)s THEN %(n)s - (g * 7) %% %(recent)s
                     ELSE 1 + (hashint8(g * 64 + 9) & 2147483647) %% (%(n)s - %(recent)s) END AS order_id,
                CASE WHEN g <= %(open_cases)s THEN %(end)s - (g %% 72) * interval '1 hour' END AS open_opened_at
            FROM generate_series(1, %(cases)s) g
        ) c0
        JOIN orders_order o ON o.id = c0.order_id
        CROSS JOIN LATERAL (
            SELECT c0.*, coalesce(c0.open_opened_at, o.placed_at + interval '1 day') AS opened_at
        ) c
        """,
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    steps["vacuum analyze"] = time.perf_counter() - started
    print(f"  vacuum analyze: {steps['vacuum analyze']:.0f} s", flush=True)
    return steps


def _users(group_model) -> dict:
    """The Administrator-role user (not a superuser: permissions are checked) and a Support L1 agent."""
    from django.contrib.auth import get_user_model

    from oms.cockpit import roles

    user_model = get_user_model()
    users = {}
    for username, role in ((ADMIN, roles.ADMINISTRATOR), (SUPPORT, roles.SUPPORT_L1)):
        user, _ = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "first_name": "Bench", "last_name": role}
        )
        user.groups.add(group_model.objects.get(name=role))
        users[username] = user
    return users


# --- the pages -----------------------------------------------------------------------------------


@dataclass
class Page:
    label: str
    user: str
    url: str
    times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    ok: tuple[int, ...] = (200,)  # the global search redirects to its only hit
    slow: dict[str, float] = field(default_factory=dict)  # SELECT -> its slowest time (s)
    note: str = ""

    @property
    def slowest(self) -> tuple[float, str]:
        return max(((t, sql) for sql, t in self.slow.items()), default=(0.0, ""))

    def p(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def pages() -> list[Page]:
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from fulfillment.models import Shipment
    from orders.cases import user_case_scope
    from orders.choices import CaseKind, CaseLevel
    from orders.models import Case, Order

    result = [
        Page("orders: list", ADMIN, "/admin/orders/order/"),
        Page("orders: in preparation", ADMIN, "/admin/orders/order/?status__exact=in_preparation"),
        Page("orders: completed", ADMIN, "/admin/orders/order/?status__exact=completed"),
        Page("orders: on hold", ADMIN, "/admin/orders/order/?on_hold=yes"),
    ]
    newest = Order.objects.order_by("-pk").values_list("pk", "number", "email")[5]
    result.append(Page("orders: search number", ADMIN, f"/admin/orders/order/?q={newest[1]}"))
    result.append(Page("orders: search e-mail", ADMIN, f"/admin/orders/order/?q={newest[2]}"))
    result.append(Page("cases: all (default)", ADMIN, "/admin/orders/case/"))
    for kind in CaseKind:
        for level in CaseLevel:
            result.append(
                Page(
                    f"queue {kind.value} {level.value}",
                    ADMIN,
                    f"/admin/orders/case/?kind__exact={kind.value}&level__exact={level.value}",
                )
            )
    support = get_user_model().objects.get(username=SUPPORT)
    kinds, levels = user_case_scope(support)
    for kind in sorted(kinds):
        for level in sorted(levels):
            result.append(
                Page(
                    f"queue {kind} {level} (L1 agent)",
                    SUPPORT,
                    f"/admin/orders/case/?kind__exact={kind}&level__exact={level}",
                )
            )
    result.append(Page("home (admin)", ADMIN, "/admin/"))
    result.append(Page("home (L1 agent)", SUPPORT, "/admin/"))
    busiest = (
        Order.objects.filter(pk__gt=Order.objects.count() - 200)  # among the newest: cheap to find
        .annotate(n=Count("events"))
        .order_by("-n", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    open_order = Order.objects.filter(status="in_preparation").order_by("-pk").values_list("pk", flat=True).first()
    completed = Order.objects.filter(status="completed").order_by("pk").values_list("pk", flat=True)[1000]
    result.append(Page("order page: most events", ADMIN, f"/admin/orders/order/{busiest}/change/"))
    result.append(Page("order page: in preparation", ADMIN, f"/admin/orders/order/{open_order}/change/"))
    result.append(Page("order page: completed", ADMIN, f"/admin/orders/order/{completed}/change/"))
    result.append(Page("order page: in prep (L1 agent)", SUPPORT, f"/admin/orders/order/{open_order}/change/"))
    tracking = Shipment.objects.order_by("-pk").values_list("tracking_number", flat=True)[10]
    case_number = (
        Case.objects.filter(kind="escalation", level="l1")
        .exclude(status="resolved")
        .values_list("number", flat=True)
        .first()
    )
    found = (200, 302)
    result.append(Page("search: tracking number", SUPPORT, f"/admin/search/?q={tracking}", ok=found))
    result.append(Page("search: order number", SUPPORT, f"/admin/search/?q={newest[1]}", ok=found))
    result.append(Page("search: e-mail (list)", SUPPORT, f"/admin/search/?q={newest[2]}", ok=found))
    result.append(Page("search: case number", SUPPORT, f"/admin/search/?q={case_number}", ok=found))
    return result


def data_summary() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM orders_order),
                (SELECT count(*) FROM orders_order WHERE status NOT IN ('completed', 'canceled')),
                (SELECT count(*) FROM orders_customer), (SELECT count(*) FROM orders_orderline),
                (SELECT count(*) FROM orders_orderevent), (SELECT count(*) FROM fulfillment_shipment),
                (SELECT count(*) FROM orders_orderhold WHERE released_at IS NULL),
                (SELECT count(*) FROM orders_case), (SELECT count(*) FROM orders_case WHERE status <> 'resolved'),
                pg_size_pretty(pg_database_size(current_database()))
            """
        )
        row = cursor.fetchone()
    return (
        "data: {:,} orders ({:,} open), {:,} customers, {:,} lines, {:,} events, {:,} shipments, "
        "{:,} active holds, {:,} cases ({:,} open); {}".format(*row)
    )


def add_many_events(count: int) -> None:
    """One order with a long timeline (parcel updates): the order page must not slow down with it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) - 100 FROM orders_order WHERE status = 'shipped'")
        (order_id,) = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO orders_orderevent (order_id, type, actor_id, reason, payload, created_at)
            SELECT %s, 'parcel_updated', NULL, '', jsonb_build_object('status', 'in_transit', 'scan', g),
                now() - interval '1 day' + g * interval '1 minute'
            FROM generate_series(1, %s) g
            """,
            [order_id, count],
        )


def measure(page_list: list[Page], requests: int, warmup: int, *, freeze: bool = False) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for username in (ADMIN, SUPPORT):
        client = Client(raise_request_exception=False)
        client.force_login(get_user_model().objects.get(username=username))
        clients[username] = client

    live = []
    for page in page_list:
        response = clients[page.user].get(page.url)
        if response.status_code not in page.ok:
            page.note = f"HTTP {response.status_code}" + (
                f" -> {response['Location']}" if response.has_header("Location") else ""
            )
            continue
        for _ in range(warmup - 1):
            clients[page.user].get(page.url)
        live.append(page)
    if freeze:
        # What oms/wsgi.py does once a worker has loaded the app: the objects alive now are never
        # scanned again by the full collections that otherwise pause a request every ~16 for 100-150 ms.
        gc.collect()
        gc.freeze()

    for _ in range(requests):
        for page in live:
            connection.queries_log.clear()  # a full log (9,000 statements) would capture nothing
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = clients[page.user].get(page.url)
                page.times.append(time.perf_counter() - started)
            if response.status_code not in page.ok:
                page.note = f"HTTP {response.status_code} during the run"
            page.counts.append(len(queries))
            for query in queries.captured_queries:
                if query["sql"].lstrip().upper().startswith("SELECT"):
                    page.slow[query["sql"]] = max(page.slow.get(query["sql"], 0.0), float(query["time"]))


def explain(sql: str) -> str:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def report(page_list: list[Page], args) -> int:
    measured = [page for page in page_list if page.times]
    width = max(len(page.label) for page in page_list)
    print(f"\n{'page':<{width}}  {'p50 ms':>7}  {'p95 ms':>7}  {'queries':>7}  {'slowest SQL ms':>14}")
    for page in page_list:
        if not page.times:
            print(f"{page.label:<{width}}  skipped: {page.note} ({page.url})")
            continue
        counts = sorted(set(page.counts))
        count = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        flag = "  > target" if page.p(0.95) >= TARGET_P95_MS else ""
        print(
            f"{page.label:<{width}}  {page.p(0.5):7.1f}  {page.p(0.95):7.1f}  {count:>7}  "
            f"{page.slowest[0] * 1000:14.1f}{flag}{'  ' + page.note if page.note else ''}"
        )
    explained: set[str] = set()
    if args.explain:
        for page in measured:
            # Its slowest SELECTs (at most 3) above --explain-ms, once each over all pages.
            for seconds, sql in sorted(((t, q) for q, t in page.slow.items()), reverse=True)[:3]:
                if seconds * 1000 < args.explain_ms or sql in explained:
                    continue
                explained.add(sql)
                print(f"\n--- {page.label}: {seconds * 1000:.1f} ms\n{sql}")
                print(explain(sql))
    if not measured:
        print("cockpit: no page answered")
        return 1
    worst = max(page.p(0.95) for page in measured)
    low = min(min(page.counts) for page in measured)
    high = max(max(page.counts) for page in measured)
    print(
        f"\n{sum(len(p.times) for p in measured)} requests over {len(measured)} pages "
        f"({args.requests} each, after {args.warmup} warm-up), {len(page_list) - len(measured)} skipped; "
        f"target p95 < {TARGET_P95_MS:.0f} ms and a constant query count per page"
    )
    print(f"cockpit: worst p95 {worst:.0f} ms, queries {low}-{high}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--keep", action="store_true", help="reuse the generated database if it exists")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slow pages' slowest statement")
    parser.add_argument("--explain-ms", type=float, default=50.0)
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="do not gc.freeze() after the warm-up (oms/wsgi.py does it in the servers)",
    )
    args = parser.parse_args()

    bench_environment()
    exists = bool(admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"))
    fresh = not (args.keep and exists)
    if fresh:
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin_sql(f"CREATE DATABASE {DB_NAME}")
    migrate()
    try:
        import django

        django.setup()
        logging.getLogger("django.request").setLevel(logging.ERROR)  # a skipped page's 404 is reported below
        warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected here
        from django.contrib.auth.models import Group
        from django.test.utils import setup_test_environment

        from orders.models import Order

        if fresh or not Order.objects.exists():
            print(f"generating {args.orders:,} orders in {DB_NAME} …", flush=True)
            started = time.perf_counter()
            generate(args.orders)
            add_many_events(300)
            print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            _users(Group)
            print(f"reusing {DB_NAME} ({Order.objects.order_by('-pk').values_list('pk', flat=True).first():,} orders)")
        print(data_summary(), flush=True)
        setup_test_environment()  # the test client's host name is allowed; nothing else changes
        page_list = pages()
        measure(page_list, args.requests, args.warmup, freeze=args.gc_freeze)
        return report(page_list, args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.drop:
            admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
