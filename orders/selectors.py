"""Reads shared by the cockpit, the API and (later) the portal."""

from django.db.models import Prefetch, Q, QuerySet

from oms.core.errors import NotFoundError
from orders.models import Order, OrderEvent, OrderHold, OrderLine


def order_list(*, filters: dict | None = None) -> QuerySet[Order]:
    """Orders with what a list shows, newest first. Filters: see orders.api.filters."""
    qs = Order.objects.select_related("channel", "customer").prefetch_related("tags")
    filters = filters or {}
    if search := (filters.get("q") or "").strip():
        qs = qs.filter(order_search_q(search))
    return qs.order_by("-placed_at", "-id")


def order_search_q(term: str) -> Q:
    """Exact matches on indexed columns: order number, external id, customer email."""
    term = term.strip()
    return Q(number__iexact=term) | Q(external_id=term) | Q(email__iexact=term) | Q(number__iendswith=term)


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
