"""Carrier events as received (read only), and the consolidation rules."""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from fulfillment.admin._common import TRACKING_TONES, BigListMixin, _url
from fulfillment.admin.filters import CarrierFilter
from fulfillment.models import ConsolidationRule, Shipment, TrackingUpdate
from oms.core.admin import (
    AuditedAdmin,
    ReadOnlyAdminMixin,
    badge,
    short_datetime,
)


@admin.register(TrackingUpdate)
class TrackingUpdateAdmin(ReadOnlyAdminMixin, BigListMixin, admin.ModelAdmin):
    """Carrier events as received (idempotent per carrier event id): read only."""

    list_title = _("Tracking updates")
    list_display = (
        "occurred_column",
        "carrier",
        "tracking_column",
        "shipment_column",
        "status_column",
        "carrier_status_code",
        "description_column",
        "source",
        "applied",
    )
    list_filter = (CarrierFilter, "status", "applied", "source", ("shipment", admin.EmptyFieldListFilter))
    list_select_related = ("shipment",)
    search_fields = ("tracking_number",)
    search_help_text = _("Tracking number or shipment number.")
    ordering = ("-pk",)
    sortable_by = ()
    actions = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Through the shipment's indexed tracking number (this table is keyed by carrier event).
        parcels = Shipment.objects.filter(
            Q(tracking_number=term) | Q(tracking_number=term.upper()) | Q(number=term.upper())
        ).values("pk")
        return queryset.filter(shipment__in=parcels), False

    @admin.display(description=_("occurred"))
    def occurred_column(self, update):
        return short_datetime(update.occurred_at)

    @admin.display(description=_("tracking number"))
    def tracking_column(self, update):
        return format_html("<code>{}</code>", update.tracking_number)

    @admin.display(description=_("shipment"))
    def shipment_column(self, update):
        if update.shipment_id is None:
            return badge(_("unmatched"), "warn")
        return format_html(
            '<a href="{}">{}</a>', _url("fulfillment_shipment_change", update.shipment_id), update.shipment.number
        )

    @admin.display(description=_("status"))
    def status_column(self, update):
        return badge(update.get_status_display(), TRACKING_TONES.get(update.status, "info"))

    @admin.display(description=_("description"))
    def description_column(self, update):
        where = f" ({update.location})" if update.location else ""
        return Truncator(f"{update.description}{where}").chars(90)


@admin.register(ConsolidationRule)
class ConsolidationRuleAdmin(AuditedAdmin):
    list_display = ("__str__", "channel", "window_hours", "is_active")
    list_filter = ("is_active",)
    list_select_related = ("channel",)
