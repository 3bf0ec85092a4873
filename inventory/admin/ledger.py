"""The stock ledger and the reservations: append-only rows, read only, newest first."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from inventory.admin.base import ActiveLocationFilter, BigListMixin, ReadableObjectMixin, signed
from inventory.models import MovementReason, Product, Reservation, ReservationState, StockItem, StockMovement
from inventory.selectors import order_id_get
from oms.core.admin import ReadOnlyAdminMixin, badge, short_datetime

REASON_TONES = {
    MovementReason.RECEIPT: "ok",
    MovementReason.RESERVATION: "info",
    MovementReason.RELEASE: "muted",
    MovementReason.SHIPMENT: "teal",
    MovementReason.ADJUSTMENT: "warn",
    MovementReason.RETURN: "purple",
    MovementReason.COUNT: "warn",
}
RESERVATION_TONES = {
    ReservationState.ACTIVE: "info",
    ReservationState.CONSUMED: "teal",
    ReservationState.RELEASED: "muted",
}


class LedgerLocationFilter(ActiveLocationFilter):
    lookup = "stock_item__location_id"


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, ReadableObjectMixin, BigListMixin, admin.ModelAdmin):
    """The stock ledger: append-only, newest first."""

    list_title = _("Stock ledger")

    list_display = (
        "created_column",
        "sku_column",
        "location_column",
        "on_hand_column",
        "reserved_column",
        "reason_badge",
        "order_link",
        "reference_column",
        "actor",
        "note_column",
    )
    list_display_links = ("created_column",)
    list_filter = ("reason", LedgerLocationFilter)
    list_select_related = ("stock_item__product", "stock_item__location", "order", "actor")
    search_fields = ("reference",)  # the box; get_search_results does the matching
    search_help_text = _("An exact SKU, order number or reference (receipt, shipment, count).")
    ordering = ("-pk",)  # the primary key follows time and is indexed
    sortable_by = ()
    actions = None
    readonly_fields = ("sku_column", "location_column")
    fields = (
        "created_at",
        "sku_column",
        "location_column",
        "on_hand_delta",
        "reserved_delta",
        "reason",
        "order",
        "order_line",
        "reference",
        "note",
        "actor",
    )

    def get_search_results(self, request, queryset, search_term):
        """By SKU (the stock rows' index), else by order number (the order index), else by reference."""
        term = search_term.strip()
        if not term:
            return queryset, False
        product_ids = list(Product.objects.filter(sku__in={term, term.upper()}).values_list("pk", flat=True)[:2])
        if product_ids:
            return queryset.filter(stock_item__in=StockItem.objects.filter(product_id__in=product_ids)), False
        order_id = order_id_get(number=term)
        if order_id is not None:
            return queryset.filter(order_id=order_id), False
        return queryset.filter(reference=term), False

    def object_title(self, movement) -> str:
        return _("%(reason)s of %(sku)s at %(location)s, %(time)s") % {
            "reason": movement.get_reason_display(),
            "sku": movement.stock_item.product.sku,
            "location": movement.stock_item.location.name,
            "time": short_datetime(movement.created_at),
        }

    @admin.display(description=_("time"))
    def created_column(self, movement):
        return short_datetime(movement.created_at)

    @admin.display(description=_("SKU"))
    def sku_column(self, movement):
        return format_html("<code>{}</code>", movement.stock_item.product.sku)

    @admin.display(description=_("location"))
    def location_column(self, movement):
        return movement.stock_item.location.name

    @admin.display(description=_("on hand"))
    def on_hand_column(self, movement):
        return signed(movement.on_hand_delta)

    @admin.display(description=_("reserved"))
    def reserved_column(self, movement):
        return signed(movement.reserved_delta)

    @admin.display(description=_("reason"))
    def reason_badge(self, movement):
        return badge(movement.get_reason_display(), REASON_TONES.get(movement.reason, "muted"))

    @admin.display(description=_("order"))
    def order_link(self, movement):
        if movement.order_id is None or movement.order is None:
            return ""
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[movement.order_id]), movement.order.number
        )

    @admin.display(description=_("reference"))
    def reference_column(self, movement):
        if movement.order_id is not None and movement.order is not None and movement.reference == movement.order.number:
            return ""  # the order column says it
        return movement.reference

    @admin.display(description=_("note"))
    def note_column(self, movement):
        return Truncator(movement.note).chars(70)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdminMixin, ReadableObjectMixin, BigListMixin, admin.ModelAdmin):
    list_title = _("Reservations")
    list_display = (
        "order_link",
        "line_column",
        "sku_column",
        "where_column",
        "quantity",
        "open_column",
        "mode_column",
        "state_badge",
        "created_column",
    )
    list_display_links = ("line_column",)
    list_filter = ("state", "mode", "location")
    list_select_related = ("order", "order_line", "product", "location", "supply")
    search_fields = ("order__number",)  # the box; get_search_results does the matching
    search_help_text = _("An exact order number.")
    ordering = ("-pk",)
    sortable_by = ()
    actions = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(order__number__in={term, term.upper()}), False

    def object_title(self, reservation) -> str:
        return _("%(n)s × %(sku)s for %(order)s, line %(line)s") % {
            "n": reservation.quantity,
            "sku": reservation.product.sku,
            "order": reservation.order.number,
            "line": reservation.order_line.line_number,
        }

    @admin.display(description=_("order"))
    def order_link(self, reservation):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:orders_order_change", args=[reservation.order_id]),
            reservation.order.number,
        )

    @admin.display(description=_("line"))
    def line_column(self, reservation):
        return f"{reservation.order_line.line_number}"

    @admin.display(description=_("SKU"))
    def sku_column(self, reservation):
        return format_html("<code>{}</code>", reservation.product.sku)

    @admin.display(description=_("location or supply"))
    def where_column(self, reservation):
        if reservation.supply_id is not None:
            return format_html(
                '{} <span class="oms-quiet">{} {}</span>',
                reservation.location.name,
                reservation.supply.reference,
                reservation.supply.expected_at.isoformat(),
            )
        return reservation.location.name

    @admin.display(description=_("open"))
    def open_column(self, reservation):
        return reservation.quantity_open

    @admin.display(description=_("mode"))
    def mode_column(self, reservation):
        return badge(reservation.mode, "muted", title=reservation.get_mode_display())

    @admin.display(description=_("state"))
    def state_badge(self, reservation):
        return badge(reservation.get_state_display(), RESERVATION_TONES.get(reservation.state, "muted"))

    @admin.display(description=_("created"))
    def created_column(self, reservation):
        return short_datetime(reservation.created_at)
