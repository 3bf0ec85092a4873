"""The cockpit home: what is open right now, by status, and the exception queues.

Cheap on tables of any size: the counts group the open statuses only (the status index, not the
millions of completed and canceled orders) and the active holds (a partial index).
"""

from django.db.models import Count
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from integrations.selectors import outbox_dead_letter_count
from orders.choices import HoldReason, OrderStatus
from orders.models import Order, OrderEvent, OrderHold

OPEN_STATUSES = [status for status in OrderStatus if status not in {OrderStatus.COMPLETED, OrderStatus.CANCELED}]


def _url(name: str, **query) -> str | None:
    try:
        url = reverse(name)
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(query)}" if query else url


def cockpit_dashboard(*, user) -> dict | None:
    if not user.has_perm("orders.view_order"):
        return None
    by_status = dict(
        Order.objects.filter(status__in=OPEN_STATUSES, is_test=False)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    orders_url = _url("admin:orders_order_changelist")
    statuses = [
        {
            "label": status.label,
            "value": status.value,
            "count": by_status.get(status.value, 0),
            "url": f"{orders_url}?status__exact={status.value}&is_test__exact=0",
        }
        for status in OPEN_STATUSES
    ]
    holds_by_reason = dict(
        OrderHold.objects.filter(released_at__isnull=True).values_list("reason").annotate(n=Count("pk")).order_by()
    )
    holds_url = _url("admin:orders_orderhold_changelist")
    holds = [
        {
            "label": reason.label,
            "count": holds_by_reason[reason.value],
            "url": f"{holds_url}?reason__exact={reason.value}",
        }
        for reason in HoldReason
        if holds_by_reason.get(reason.value)
    ]
    dashboard = {
        "orders_url": orders_url,
        "statuses": statuses,
        "open_total": sum(item["count"] for item in statuses),
        "holds": holds,
        "holds_total": sum(item["count"] for item in holds),
        "holds_url": holds_url,
        "dead_letters": None,
        # The actor's foreign-key index, newest first: what did I just do?
        "recent": list(OrderEvent.objects.filter(actor=user).select_related("order").order_by("-pk")[:8]),
    }
    if user.has_perm("integrations.view_outboxmessage"):
        dashboard["dead_letters"] = outbox_dead_letter_count()
        dashboard["dead_letters_url"] = _url("admin:integrations_outboxmessage_changelist", status__exact="dead")
    return dashboard
