"""Reads shared by the cockpit, the API and (later) the portal."""

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone

from oms.core.errors import NotFoundError
from oms.core.numbering import format_number
from orders.models import Order, OrderEvent, OrderHold, OrderLine


def order_list(*, filters: dict | None = None) -> QuerySet[Order]:
    """Orders with what a list shows, newest first. Filters: see orders.api.filters."""
    qs = Order.objects.select_related("channel", "customer").prefetch_related("tags")
    filters = filters or {}
    if search := (filters.get("q") or "").strip():
        qs = qs.filter(order_search_q(search))
    return qs.order_by("-placed_at", "-id")


def order_search_q(term: str) -> Q:
    """Exact matches on indexed columns: order number, external id, customer email.

    Every branch must be able to use an index, or PostgreSQL scans the whole table for the OR:
    `number` as stored (numbers are upper case; the unique index), the e-mail through the
    `Lower(email)` index (`iexact` compiles to UPPER() and misses it), and the sequence digits alone
    ("123") as this year's and last year's full numbers rather than a `LIKE '%123'` scan.
    """
    term = term.strip()
    query = Q(number=term.upper()) | Q(external_id=term) | Q(Exact(Lower("email"), term.lower()))
    if term.isdigit() and len(term) <= 9:
        year = timezone.localdate().year
        query |= Q(number__in=[format_number("ORD", y, int(term)) for y in (year, year - 1)])
    return query


def order_get(*, number: str) -> Order:
    """One order with lines, holds (with their users), events (with actors) and tags."""
    try:
        return (
            Order.objects.select_related("channel", "customer")
            .prefetch_related(
                Prefetch("lines", queryset=OrderLine.objects.order_by("line_number")),
                Prefetch("holds", queryset=OrderHold.objects.select_related("placed_by", "released_by")),
                Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")),
                "tags",
            )
            .get(number=number)
        )
    except Order.DoesNotExist:
        raise NotFoundError(f"Order {number} not found.", code="order_not_found") from None
