"""The products screen: master data, with each product's stock and available-to-promise."""

from django.contrib import admin
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from inventory.admin.base import BigListMixin, admin_url, sku_products
from inventory.atp import atp
from inventory.models import ChannelStockRule, IncomingSupply, Location, Product
from oms.core.admin import AuditedAdmin, badge


@admin.register(Product)
class ProductAdmin(BigListMixin, AuditedAdmin):
    list_title = _("Products")
    list_display = (
        "sku",
        "name",
        "barcode",
        "active_badge",
        "sell_window",
        "preorder_column",
        "safety_stock",
        "is_key",
    )
    list_display_links = ("sku", "name")
    list_filter = ("is_active", "preorder_enabled", "is_key", "is_returnable", "is_perishable", "is_custom_made")
    search_fields = ("sku",)  # the box and the autocomplete; get_search_results does the matching
    search_help_text = _("SKU or barcode: exact, or its beginning.")
    sortable_by = ("sku",)
    ordering = ("sku",)
    fieldsets = (
        (None, {"fields": ("sku", "name", "barcode", "is_active")}),
        (_("Stock and available to promise"), {"fields": ("stock_by_location",)}),
        (_("Sell window"), {"fields": (("sellable_from", "sellable_until"),)}),
        (_("Pre-order"), {"fields": ("preorder_enabled", "preorder_limit", "preorder_promised_at")}),
        (
            _("Stock settings"),
            {"fields": ("safety_stock", "reservation_mode", ("is_key", "coverage_alert_days"))},
        ),
        (
            _("Returns and customs"),
            {
                "fields": (
                    ("is_returnable", "is_custom_made", "is_perishable", "is_hygiene_sealed"),
                    ("hs_code", "country_of_origin", "weight_grams"),
                    "created_at",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Orders and integrations find products by SKU: fixed once the product exists.
        return ("sku", "created_at", "stock_by_location") if obj else ("created_at", "stock_by_location")

    def has_delete_permission(self, request, obj=None):
        return False  # stock, orders and the ledger reference products (PROTECT): deactivate instead

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(pk__in=sku_products(search_term).values("pk")), False

    @admin.display(description=_("active"), ordering="is_active")
    def active_badge(self, product):
        return badge(_("active"), "ok") if product.is_active else badge(_("off"), "void")

    @admin.display(description=_("sell window"))
    def sell_window(self, product):
        if not product.sellable_from and not product.sellable_until:
            return "–"
        start = timezone.localtime(product.sellable_from).strftime("%Y-%m-%d") if product.sellable_from else "…"
        end = timezone.localtime(product.sellable_until).strftime("%Y-%m-%d") if product.sellable_until else "…"
        return f"{start} → {end}"

    @admin.display(description=_("pre-order"))
    def preorder_column(self, product):
        if not product.preorder_enabled:
            return "–"
        promised = product.preorder_promised_at
        promised = timezone.localtime(promised).strftime("%Y-%m-%d") if promised else ""
        return format_html(
            '{} <span class="oms-quiet">{}</span>',
            badge(_("up to %(n)s") % {"n": product.preorder_limit}, "purple"),
            promised,
        )

    @admin.display(description=_("per location"))
    def stock_by_location(self, product):
        if product is None or product.pk is None:
            return _("Saved products show their stock here.")
        result = atp(product_id=product.pk)
        codes = list(result["locations"])
        locations = {loc.code: loc for loc in Location.objects.filter(code__in=codes)}
        supply = list(
            IncomingSupply.objects.filter(product=product, status=IncomingSupply.Status.OPEN)
            .select_related("location")
            .order_by("expected_at", "pk")[:20]
        )
        # The channels come through their rules (orders own the channels, above inventory).
        ruled_channels = {
            rule.channel_id: rule.channel
            for rule in ChannelStockRule.objects.filter(is_active=True)
            .filter(Q(product=product) | Q(product__isnull=True))
            .select_related("channel")
            .order_by("channel__name", "channel_id")
        }
        by_channel = [
            {"channel": channel, "atp": atp(product_id=product.pk, channel_id=channel.pk)["atp"]}
            for channel in ruled_channels.values()
        ]
        rows = [
            {
                "code": code,
                "location": locations.get(code),
                **numbers,
                "url": admin_url(
                    "inventory_stockitem_changelist",
                    query={"q": product.sku, "location__id__exact": locations[code].pk},
                )
                if code in locations
                else "",
            }
            for code, numbers in result["locations"].items()
        ]
        return render_to_string(
            "admin/inventory/product/stock_table.html",
            {
                "rows": rows,
                "total": result["atp"],
                "supply": supply,
                "by_channel": by_channel,
                "ledger_url": admin_url("inventory_stockmovement_changelist", query={"q": product.sku}),
            },
        )
