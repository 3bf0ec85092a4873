"""The admin paginator never counts a whole big table, and a slow count gives way to an estimate."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oms.core.admin import EstimatedCountPaginator
from orders.models import Order

pytestmark = pytest.mark.django_db


def statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


def test_a_small_unfiltered_table_gets_an_exact_count_bounded_by_a_limit(make_order):
    for _ in range(3):
        make_order()
    paginator = EstimatedCountPaginator(Order.objects.order_by("-placed_at"), 50)

    with CaptureQueriesContext(connection) as captured:
        count = paginator.count

    assert count == 3
    assert paginator.is_estimate is False
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 10001" in counts[0]


def test_a_big_unfiltered_table_uses_the_planner_estimate(make_order, monkeypatch):
    for _ in range(5):
        make_order()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 3)
    paginator = EstimatedCountPaginator(Order.objects.all(), 2)

    with CaptureQueriesContext(connection) as captured:
        count = paginator.count

    assert count == 5  # pg_class.reltuples right after ANALYZE
    assert paginator.is_estimate is True
    assert not [q for q in captured.captured_queries if "COUNT(" in q["sql"]]
    assert paginator.num_pages == 3


def test_a_filtered_count_is_exact_when_fast_and_leaves_no_timeout_behind(make_order):
    make_order()
    make_order(payment={"status": "unpaid"})
    before = statement_timeout()
    paginator = EstimatedCountPaginator(Order.objects.filter(status="confirmed"), 50)

    assert paginator.count == 1
    assert paginator.is_estimate is False
    assert statement_timeout() == before


def test_a_slow_filtered_count_is_cut_short_and_estimated(make_order, monkeypatch):
    for _ in range(3):
        make_order()
    monkeypatch.setattr(EstimatedCountPaginator, "count_timeout_ms", 50)
    before = statement_timeout()
    # pg_sleep in the WHERE clause stands in for a count over millions of rows.
    slow = Order.objects.filter(status="confirmed").extra(where=["pg_sleep(0.05) IS NOT NULL"])
    paginator = EstimatedCountPaginator(slow, 2)

    count = paginator.count

    assert paginator.is_estimate is True
    assert count >= 3  # the planner's estimate, at least one page more than shown
    assert statement_timeout() == before
    assert Order.objects.count() == 3  # the connection (and the test's transaction) still works
