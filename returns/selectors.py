"""Reads shared by the cockpit and the API."""

from django.db.models import Prefetch, QuerySet

from oms.core.errors import NotFoundError
from orders.selectors import order_scope_q
from returns.choices import TO_RECEIVE_OR_INSPECT
from returns.models import ReturnLine, ReturnRequest


def return_list(*, status: str | list[str] | None = None) -> QuerySet[ReturnRequest]:
    queryset = ReturnRequest.objects.select_related("order", "customer", "restock_location")
    if status:
        queryset = queryset.filter(status__in=[status] if isinstance(status, str) else status)
    return queryset.order_by("-requested_at", "-id")


def returns_to_process() -> QuerySet[ReturnRequest]:
    """The warehouse queue: parcels on their way back, then parcels to inspect; oldest first."""
    return return_list(status=TO_RECEIVE_OR_INSPECT).order_by("approved_at", "id")


def returns_visible(user) -> QuerySet[ReturnRequest]:
    """The returns of the orders `user` may reach (orders.selectors): another API client's is not found."""
    return ReturnRequest.objects.filter(order_scope_q(user, "order"))


def return_get(*, user, number: str) -> ReturnRequest:
    lines = ReturnLine.objects.select_related("order_line", "exchange_for", "exchange_line").order_by("pk")
    found = (
        returns_visible(user)
        .select_related("order", "customer", "restock_location")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(number=number)
        .first()
    )
    if found is None:
        raise NotFoundError(f"Return {number} not found.", code="return_not_found")
    return found
