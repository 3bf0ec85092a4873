"""Locations and their stock rows, with the receive and adjust forms (each calls its service)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from inventory import services
from inventory.admin.base import (
    BigListMixin,
    ReadableObjectMixin,
    ServiceForm,
    TitledListMixin,
    admin_url,
    inventory_form_page,
    note_field,
    product_field,
    run_service,
    signed,
    sku_products,
)
from inventory.models import IncomingSupply, Location, Product, StockItem, StockMovement, TransitTime
from oms.core.admin import AuditedAdmin, ReadOnlyAdminMixin, badge

# --- locations ------------------------------------------------------------------------------------


class TransitTimeInline(admin.TabularInline):
    model = TransitTime
    extra = 0
    fields = ("country", "days", "cost_per_parcel")


@admin.register(Location)
class LocationAdmin(TitledListMixin, AuditedAdmin):
    list_title = _("Locations")
    list_display = (
        "code",
        "name",
        "kind",
        "country",
        "city",
        "handling_days",
        "cutoff_time",
        "cost_per_parcel",
        "ships_column",
        "priority",
        "active_badge",
    )
    list_display_links = ("code", "name")
    list_filter = ("kind", "is_active", "ships_from_store", "store_pickup", "is_franchise")
    search_fields = ("code", "name", "city")
    inlines = [TransitTimeInline]
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", ("country", "city"), "is_active", "priority")}),
        (
            _("Shipping"),
            {
                "fields": (
                    ("handling_days", "cutoff_time"),
                    "cost_per_parcel",
                    ("ships_from_store", "store_pickup", "is_franchise"),
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Sourcing decisions and integrations name locations by code: fixed once it exists.
        return ("code",) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False  # stock and the ledger reference locations (PROTECT): deactivate instead

    @admin.display(description=_("ships / pickup"))
    def ships_column(self, location):
        parts = []
        if location.can_ship:
            parts.append(badge(_("ships"), "teal"))
        if location.store_pickup:
            parts.append(badge(_("pickup"), "info"))
        return format_html(" ".join(["{}"] * len(parts)), *parts) if parts else "–"

    @admin.display(description=_("active"), ordering="is_active")
    def active_badge(self, location):
        return badge(_("active"), "ok") if location.is_active else badge(_("off"), "void")


# --- stock rows, and the receive and adjust forms -------------------------------------------------


class _StockForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"] = product_field(StockItem, admin_site, label=_("Product"))
        self.order_fields(["product", "location"])


class ReceiveForm(_StockForm):
    quantity = forms.IntegerField(label=_("Quantity received"), min_value=1, max_value=1_000_000)
    reference = forms.CharField(
        label=_("Reference"), required=False, max_length=128, help_text=_("Delivery note, purchase order, transfer.")
    )
    note = note_field(required=False)
    supply = forms.ModelChoiceField(
        queryset=IncomingSupply.objects.filter(status=IncomingSupply.Status.OPEN),
        required=False,
        widget=forms.HiddenInput,
    )


class AdjustForm(_StockForm):
    delta = forms.IntegerField(
        label=_("Change of on hand"),
        help_text=_("Units to add (e.g. 3) or to remove (e.g. −2). Never below what is reserved for orders."),
    )
    note = note_field(required=True, label=_("Reason"), help_text=_("Required. Kept in the stock ledger."))
    reference = forms.CharField(label=_("Reference"), required=False, max_length=128)


@admin.register(StockItem)
class StockItemAdmin(ReadOnlyAdminMixin, ReadableObjectMixin, BigListMixin, admin.ModelAdmin):
    list_title = _("Stock")
    list_display = (
        "sku_column",
        "location",
        "on_hand",
        "reserved",
        "safety_stock",
        "available_column",
        "bin_location",
    )
    list_display_links = ("sku_column",)
    list_filter = ("location", "location__kind")
    list_select_related = ("product", "location")
    search_fields = ("product__sku",)  # the box; get_search_results does the matching
    search_help_text = _("SKU or barcode: exact, or its beginning.")
    sortable_by = ("on_hand", "reserved", "available_column")
    ordering = ("product_id", "location_id")  # the unique (product, location) index
    actions = None
    fields = (
        "product",
        "location",
        "on_hand",
        "reserved",
        "safety_stock",
        "available_column",
        "bin_location",
        "recent_movements",
    )
    readonly_fields = ("available_column", "recent_movements")

    def get_queryset(self, request):
        # Sortable in SQL, and the same number as StockItem.available (never below 0).
        return (
            super()
            .get_queryset(request)
            .annotate(available_units=Greatest(F("on_hand") - F("reserved") - F("safety_stock"), Value(0)))
        )

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(product_id__in=sku_products(search_term).values("pk")), False

    def object_title(self, item) -> str:
        return _("%(sku)s at %(location)s") % {"sku": item.product.sku, "location": item.location.name}

    def get_list_display(self, request):
        # The row buttons follow the user's permissions, read once per page (not per row, and
        # never stored on this admin instance: it is shared by every request).
        may = self._may(request)
        if not (may["receive"] or may["adjust"]):
            return self.list_display

        @admin.display(description="")
        def row_actions(item):
            return self._row_buttons(item, may)

        return (*self.list_display, row_actions)

    @staticmethod
    def _may(request) -> dict[str, bool]:
        return {
            "receive": request.user.has_perm("inventory.receive_stock"),
            "adjust": request.user.has_perm("inventory.adjust_stock"),
        }

    @admin.display(description=_("product"), ordering="product__sku")
    def sku_column(self, item):
        return format_html(
            '<code>{}</code><br><span class="oms-quiet">{}</span>',
            item.product.sku,
            Truncator(item.product.name).chars(48),
        )

    @admin.display(description=_("available"), ordering="available_units")
    def available_column(self, item):
        units = getattr(item, "available_units", None)
        if units is None:
            units = item.available
        tone = "ok" if units > 0 else ("warn" if item.on_hand else "muted")
        return format_html('<strong class="oms-available oms-available--{}">{}</strong>', tone, units)

    @staticmethod
    def _row_buttons(item, may: dict[str, bool]):
        query = {"item": item.pk}
        links = []
        if may["receive"]:
            links.append((admin_url("inventory_stockitem_receive", query=query), "receive", _("Receive")))
        if may["adjust"]:
            links.append((admin_url("inventory_stockitem_adjust", query=query), "adjust", _("Adjust")))
        button = '<a class="oms-button oms-button--small oms-button--link" href="{}" data-action="{}">{}</a>'
        return format_html(" ".join([button] * len(links)), *[part for link in links for part in link])

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "may": self._may(request)})

    @admin.display(description=_("recent movements"))
    def recent_movements(self, item):
        movements = list(
            StockMovement.objects.filter(stock_item=item).select_related("actor", "order").order_by("-id")[:15]
        )
        return render_to_string(
            "admin/inventory/stockitem/recent_movements.html",
            {
                "movements": [
                    {"m": m, "on_hand": signed(m.on_hand_delta), "reserved": signed(m.reserved_delta)}
                    for m in movements
                ],
                "ledger_url": admin_url(
                    "inventory_stockmovement_changelist",
                    query={"q": item.product.sku, "location": item.location_id},
                ),
            },
        )

    # --- receive and adjust: forms that call the services ----------------------------------------
    def get_urls(self):
        return [
            path("receive/", self.admin_site.admin_view(self.receive_view), name="inventory_stockitem_receive"),
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="inventory_stockitem_adjust"),
            *super().get_urls(),
        ]

    def _preset(self, request) -> tuple[dict, StockItem | None, IncomingSupply | None]:
        """Initial values from ?item= (a stock row) or ?supply= (an open purchase order)."""
        initial, item, supply = {}, None, None
        raw_item, raw_supply = request.GET.get("item", ""), request.GET.get("supply", "")
        if raw_supply.isdigit():
            supply = (
                IncomingSupply.objects.select_related("product", "location")
                .filter(pk=int(raw_supply), status=IncomingSupply.Status.OPEN)
                .first()
            )
            if supply is not None:
                initial = {
                    "product": supply.product_id,
                    "location": supply.location_id,
                    "quantity": supply.quantity_open,
                    "reference": supply.reference,
                    "supply": supply.pk,
                }
                item = StockItem.objects.filter(product_id=supply.product_id, location_id=supply.location_id).first()
        elif raw_item.isdigit():
            item = StockItem.objects.select_related("product", "location").filter(pk=int(raw_item)).first()
            if item is not None:
                initial = {"product": item.product_id, "location": item.location_id}
        return initial, item, supply

    def _done_url(self, product: Product) -> str:
        return admin_url("inventory_stockitem_changelist", query={"q": product.sku})

    def receive_view(self, request):
        if not request.user.has_perm("inventory.receive_stock"):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        initial, item, supply = self._preset(request)
        if request.method == "POST":
            form = ReceiveForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                received = run_service(
                    request,
                    form,
                    lambda: services.stock_receive(
                        product=data["product"],
                        location=data["location"],
                        quantity=data["quantity"],
                        actor=request.user,
                        reference=data["reference"],
                        note=data["note"],
                        supply=data["supply"],
                    ),
                )
                if received is not None:
                    messages.success(
                        request,
                        _("Received %(n)s × %(sku)s at %(location)s: %(on_hand)s on hand.")
                        % {
                            "n": data["quantity"],
                            "sku": data["product"].sku,
                            "location": data["location"],
                            "on_hand": received.on_hand,
                        },
                    )
                    if data["supply"] is not None:
                        return HttpResponseRedirect(admin_url("inventory_incomingsupply_changelist"))
                    return HttpResponseRedirect(self._done_url(data["product"]))
            supply = form.cleaned_data.get("supply") or supply
        else:
            form = ReceiveForm(initial=initial, admin_site=self.admin_site)
        intro = _("Goods in: on hand goes up and the ledger records who received what.")
        if supply is not None:
            intro = _(
                "Against %(ref)s: %(open)s unit(s) still expected. Pre-orders promised on it become reservations."
            ) % {"ref": supply.reference, "open": supply.quantity_open}
        return inventory_form_page(
            request,
            self,
            form=form,
            title=_("Receive stock"),
            submit=_("Receive"),
            intro=intro,
            back_url=admin_url("inventory_stockitem_changelist"),
            extra={"item": item},
        )

    def adjust_view(self, request):
        if not request.user.has_perm("inventory.adjust_stock"):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        initial, item, _supply = self._preset(request)
        if request.method == "POST":
            form = AdjustForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                adjusted = run_service(
                    request,
                    form,
                    lambda: services.stock_adjust(
                        product=data["product"],
                        location=data["location"],
                        delta=data["delta"],
                        actor=request.user,
                        note=data["note"],
                        reference=data["reference"],
                    ),
                )
                if adjusted is not None:
                    messages.success(
                        request,
                        _("Adjusted %(sku)s at %(location)s by %(delta)+d: %(on_hand)s on hand.")
                        % {
                            "sku": data["product"].sku,
                            "location": data["location"],
                            "delta": data["delta"],
                            "on_hand": adjusted.on_hand,
                        },
                    )
                    return HttpResponseRedirect(self._done_url(data["product"]))
        else:
            form = AdjustForm(initial=initial, admin_site=self.admin_site)
        return inventory_form_page(
            request,
            self,
            form=form,
            title=_("Adjust stock"),
            submit=_("Adjust"),
            tone="danger",
            intro=_("A manual correction of on hand, with its reason. Counts go through cycle counts instead."),
            back_url=admin_url("inventory_stockitem_changelist"),
            extra={"item": item},
        )
