"""Holds and the order event log: append-only lists support filters by order."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from oms.core.admin import (
    ReadOnlyAdminMixin,  # noqa: F401 (shared cockpit helpers)
    badge,
    short_datetime,
)
from orders.admin.base import OrderRowsAdmin
from orders.admin.orders import HoldStateFilter
from orders.admin.timeline import EVENT_TONES, STATUS_TONES, payload_summary
from orders.fraud_details import can_see_fraud_details, event_is_fraud, hold_is_fraud, plain_payload
from orders.models import OrderEvent, OrderHold

FRAUD_WITHHELD = _("(for the fraud team)")


@admin.register(OrderHold)
class OrderHoldAdmin(OrderRowsAdmin):
    """The exception queue: active holds, oldest first (a queue, unlike the other order-row lists),
    with a way to the order and its release."""

    list_display = (
        "order_link",
        "reason_badge",
        "placed_column",
        "placed_by",
        "age",
        "order_status",
        "note_column",
        "released_column",
        "released_by",
        "release_link",
    )
    list_filter = (HoldStateFilter, "reason", "order__channel")
    list_select_related = ("order", "placed_by", "released_by")
    ordering = ("pk",)

    @admin.display(description=_("reason"))
    def reason_badge(self, hold):
        return badge(hold.get_reason_display(), "alert" if hold.released_at is None else "muted")

    @admin.display(description=_("placed"))
    def placed_column(self, hold):
        return short_datetime(hold.placed_at)

    @admin.display(description=_("note"))
    def note_column(self, hold):
        return Truncator(hold.note).chars(90)

    @admin.display(description=_("note"))
    def note_column_plain(self, hold):
        """The note, except a fraud-review hold's: for those who do not work fraud."""
        return FRAUD_WITHHELD if hold_is_fraud(hold.reason) else self.note_column(hold)

    @admin.display(description=_("released"))
    def released_column(self, hold):
        return short_datetime(hold.released_at)

    @admin.display(description=_("age"))
    def age(self, hold):
        end = hold.released_at or timezone.now()
        hours = int((end - hold.placed_at).total_seconds() // 3600)
        return f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h"

    @admin.display(description=_("order status"))
    def order_status(self, hold):
        return badge(hold.order.get_status_display(), STATUS_TONES.get(hold.order.status, "muted"))

    @admin.display(description="")
    def release_link(self, hold):
        if hold.released_at is not None:
            return ""
        url = reverse("admin:orders_order_action", args=[hold.order_id, "release_hold"])
        return format_html(
            '<a class="oms-button oms-button--small" href="{}?hold={}">{}</a>', url, hold.pk, _("Release")
        )

    def get_list_display(self, request):
        hidden = set()
        if request.GET.get(HoldStateFilter.parameter_name, "active") == "active":
            hidden |= {"released_column", "released_by"}  # the queue: nothing released in it
        if not request.user.has_perm("orders.release_hold"):
            hidden.add("release_link")
        plain = {} if can_see_fraud_details(request.user) else {"note_column": "note_column_plain"}
        return tuple(plain.get(name, name) for name in self.list_display if name not in hidden)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and hold_is_fraud(obj.reason) and not can_see_fraud_details(request.user):
            return [name for name in fields if name not in {"note", "release_note"}]
        return fields


@admin.register(OrderEvent)
class OrderEventAdmin(OrderRowsAdmin):
    list_display = ("created_column", "order_link", "type_badge", "actor", "reason", "summary")
    list_filter = ("type", "created_at")
    list_select_related = ("order", "actor")
    fields = ("order", "type", "actor", "reason", "payload", "created_at")

    @admin.display(description=_("time"))
    def created_column(self, event):
        return short_datetime(event.created_at)

    @admin.display(description=_("type"))
    def type_badge(self, event):
        return badge(event.get_type_display(), EVENT_TONES.get(event.type, "info"))

    @admin.display(description=_("details"))
    def summary(self, event):
        return payload_summary(event, limit=120)

    # For those who do not work fraud: a fraud event without its reason and details.
    @admin.display(description=_("reason"))
    def reason_plain(self, event):
        return FRAUD_WITHHELD if event_is_fraud(event.type, event.payload) else event.reason

    @admin.display(description=_("details"))
    def summary_plain(self, event):
        if event_is_fraud(event.type, event.payload):
            return payload_summary(event, limit=120, payload=plain_payload(event.payload))
        return self.summary(event)

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if can_see_fraud_details(request.user):
            return columns
        plain = {"reason": "reason_plain", "summary": "summary_plain"}
        return tuple(plain.get(name, name) for name in columns)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and event_is_fraud(obj.type, obj.payload) and not can_see_fraud_details(request.user):
            return [name for name in fields if name not in {"reason", "payload"}]
        return fields
