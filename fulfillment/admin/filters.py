"""The list filters of the fulfillment screens, and the shipment search (exact, indexed matches)."""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fulfillment.admin._common import _late_q
from fulfillment.carriers.registry import CARRIERS
from fulfillment.models import ShipmentLine, Wave
from inventory.selectors import location_choices
from oms.core.admin import (
    IdChoiceFilter,
    QueueStateFilter,
)
from oms.core.numbering import format_number
from orders.models import Order
from orders.selectors import order_search_q


class CarrierFilter(admin.SimpleListFilter):
    """The carriers the registry knows (never a DISTINCT over the table), and parcels with none yet."""

    title = _("carrier")
    parameter_name = "carrier"

    def lookups(self, request, model_admin):
        return [(code, adapter.name or code) for code, adapter in sorted(CARRIERS.items())] + [("-", _("None yet"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(carrier="" if value == "-" else value)


class LateFilter(admin.SimpleListFilter):
    title = _("late")
    parameter_name = "late"

    def lookups(self, request, model_admin):
        return [("yes", _("Late: ship-by passed, not shipped")), ("no", _("On time"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_late_q())
        if self.value() == "no":
            return queryset.exclude(_late_q())
        return queryset


class WaveFilter(admin.SimpleListFilter):
    """Not in a wave, or one of the latest waves; any wave id works (the wave page links here)."""

    title = _("wave")
    parameter_name = "wave"

    def lookups(self, request, model_admin):
        recent = [(str(pk), number) for pk, number in Wave.objects.order_by("-pk").values_list("pk", "number")[:15]]
        value = self.value()
        if value and value.isdigit() and value not in {pk for pk, _n in recent}:
            recent += [
                (str(pk), number) for pk, number in Wave.objects.filter(pk=int(value)).values_list("pk", "number")
            ]
        return [("none", _("Not in a wave")), *recent]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(wave__isnull=True)
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(wave_id=int(value))


class ShortPickStateFilter(QueueStateFilter):
    """Open short picks by default: the list is the exception queue."""

    closed_field = "resolved_at"


def shipment_search_q(term: str) -> Q:
    """Exact matches on indexed columns: shipment number (or its digits), tracking number, order."""
    term = term.strip()
    query = Q(number=term.upper()) | Q(tracking_number=term) | Q(tracking_number=term.upper())
    if term.isdigit() and len(term) <= 9:
        year = timezone.localdate().year
        query |= Q(number__in=[format_number("SHP", y, int(term)) for y in (year, year - 1)])
    orders = Order.objects.filter(order_search_q(term)).values("pk")
    # A consolidated parcel carries lines of several orders: found by any of them.
    query |= Q(order__in=orders) | Q(
        pk__in=ShipmentLine.objects.filter(order_line__order__in=orders).values("shipment_id")
    )
    return query


class LocationFilter(IdChoiceFilter):
    """Parcels and waves by the location they leave from."""

    title = _("location")
    parameter_name = "location"
    lookup = "location_id"

    def options(self):
        return location_choices()
