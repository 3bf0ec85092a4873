"""Row locks, taken in the project's one lock order.

Every service that changes rows of more than one kind locks them in this order, and only through
these helpers (or the app helpers built on them, such as `orders.locks`), so that two transactions
never wait on each other in a circle:

    1. orders, by id                      (orders.locks.order_lock / orders_lock)
    2. shipments, by id                   (fulfillment)
    3. order lines, by id                 (orders.locks.order_lines_lock)
    4. the rest of an order's own rows: holds, cases, returns, payments, refunds, disputes, by id
    5. stock rows, by (product, location) (inventory.stock)
    6. document counters and sequences    (oms.core.numbering), last

A service that starts from a lower row (a shipment, a refund, a payment) first finds the order id
without a lock, locks the order, and only then locks and re-reads its own row. Locks are taken with
`SELECT … FOR UPDATE OF <table>` (`of=("self",)`), so a join never locks a neighbour's rows, and
many rows are locked in primary-key order in one statement that is evaluated at once (a lazy
queryset takes no lock).
"""

from collections.abc import Iterable

from django.db import models

from oms.core.errors import NotFoundError


def lock_one(queryset: models.QuerySet, pk, *, not_found: str, code: str, related: Iterable[str] = ()):
    """Lock and re-read the row `pk` of `queryset` (only that table's row). 404 when it is gone."""
    queryset = queryset.select_for_update(of=("self",))
    if related:  # select_related() with no names would join every foreign key
        queryset = queryset.select_related(*related)
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise NotFoundError(not_found, code=code) from None


def lock_many(queryset: models.QuerySet, *, related: Iterable[str] = ()) -> list:
    """Lock every row of `queryset` in primary-key order and return them (evaluated now)."""
    queryset = queryset.select_for_update(of=("self",))
    if related:  # select_related() with no names would join every foreign key
        queryset = queryset.select_related(*related)
    return list(queryset.order_by("pk"))


def lock_ids(queryset: models.QuerySet) -> list:
    """Lock every row of `queryset` in primary-key order and return their ids only."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
