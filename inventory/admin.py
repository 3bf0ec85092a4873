"""The cockpit's inventory screens, and the Sourcing panel of the order page.

Counters are never edited here. Receiving, adjusting, recording incoming supply and cycle counts
are small forms whose POST calls the service in `inventory.services` with `actor=request.user`:
the service checks the permission, locks the rows and writes the ledger; the admin only turns its
`ApplicationError` into a message on the form. Master data (products, locations, channel rules)
is edited with the ordinary forms and keeps its history. Lists never run an unfiltered COUNT(*)
(`oms.core.admin.EstimatedCountPaginator`) and search only on indexed columns.
"""

import datetime
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget, AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from inventory import services
from inventory.atp import atp
from inventory.models import (
    AllocationConflict,
    ChannelStockRule,
    ChannelStockSettings,
    CycleCount,
    CycleCountLine,
    IncomingSupply,
    Location,
    MovementReason,
    Product,
    Reservation,
    ReservationState,
    SourcingStrategy,
    StockAlert,
    StockItem,
    StockMovement,
    TransitTime,
)
from inventory.selectors import sourcing_decision_latest
from oms.core.admin import (  # noqa: F401 (shared cockpit helpers)
    AuditedAdmin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    apply_service_error,
    badge,
    form_page,
    short_datetime,
)
from oms.core.errors import ApplicationError
from orders.models import Channel, Order

# --- presentation helpers ------------------------------------------------------------------------

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
SUPPLY_TONES = {
    IncomingSupply.Status.OPEN: "info",
    IncomingSupply.Status.RECEIVED: "ok",
    IncomingSupply.Status.CANCELED: "void",
}
COUNT_TONES = {
    CycleCount.Status.OPEN: "info",
    CycleCount.Status.COUNTED: "warn",
    CycleCount.Status.APPLIED: "ok",
    CycleCount.Status.CANCELED: "void",
}


def signed(value: int):
    """+3 / −2 / blank for 0, coloured: the ledger reads at a glance."""
    if not value:
        return format_html('<span class="oms-quiet">{}</span>', "·")
    tone = "up" if value > 0 else "down"
    return format_html('<span class="oms-delta oms-delta--{}">{}{}</span>', tone, "+" if value > 0 else "−", abs(value))


def _url(name: str, *args, query: dict | None = None) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _sku_products(term: str):
    """Products whose SKU or barcode is `term` or starts with it.

    `LIKE 'X%'` is served on PostgreSQL by the `varchar_pattern_ops` indexes Django adds next to
    the SKU and barcode indexes (`…_like`); the plain b-tree ones would not serve it.
    """
    term = term.strip()
    condition = Q()
    for variant in {term, term.upper()}:
        condition |= Q(sku__startswith=variant) | Q(barcode__startswith=variant)
    return Product.objects.filter(condition)


class TitledListMixin:
    """A list page titled by what it shows ("Stock ledger"), not "Select stock movement to view"."""

    list_title = None

    def changelist_view(self, request, extra_context=None):
        if self.list_title:
            extra_context = {"title": self.list_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)


class ReadableObjectMixin:
    """The page of a row named in words ("MUG-1 at Paris warehouse"), not by the model's ids."""

    change_form_template = "admin/inventory/readable_change_form.html"

    def object_title(self, obj) -> str:
        return str(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            title = self.object_title(obj)
            extra_context = {"subtitle": title, "object_title": title, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)


class BigListMixin(TitledListMixin):
    """Lists of tables that grow without bound: no exact count, no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


class ActiveLocationFilter(admin.SimpleListFilter):
    """Locations by name, for models that reach the location through another row."""

    title = _("location")
    parameter_name = "location"
    lookup = "location_id"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Location.objects.order_by("priority", "code").values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.lookup: int(value)})


class LedgerLocationFilter(ActiveLocationFilter):
    lookup = "stock_item__location_id"


# --- forms that call the services ----------------------------------------------------------------


class ServiceForm(forms.Form):
    """A form whose input goes to one service. Service field errors land on the field of that name."""

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


def _run_service(request, form: ServiceForm, call):
    """Run `call()`; on a domain error, the message goes on the page and on the form. None on error."""
    try:
        return call()
    except ApplicationError as exc:
        apply_service_error(form, exc)
        messages.error(request, exc.message)
    except DjangoValidationError as exc:  # a model's full_clean() inside a service
        for message in exc.messages:
            form.add_error(None, message)
        messages.error(request, " ".join(exc.messages))
    return None


def _product_field(source_model, admin_site, *, multiple: bool = False, field_name: str = "product", **kwargs):
    """A product picker that searches by SKU or barcode as you type (never loads every product)."""
    relation = source_model._meta.get_field(field_name)
    if multiple:
        return forms.ModelMultipleChoiceField(
            queryset=Product.objects.all(), widget=AutocompleteSelectMultiple(relation, admin_site), **kwargs
        )
    return forms.ModelChoiceField(
        queryset=Product.objects.all(), widget=AutocompleteSelect(relation, admin_site), **kwargs
    )


def _note_field(*, required: bool, label=None, help_text=""):
    return forms.CharField(
        label=label or _("Note"),
        required=required,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=help_text,
    )


class _StockForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"] = _product_field(StockItem, admin_site, label=_("Product"))
        self.order_fields(["product", "location"])


class ReceiveForm(_StockForm):
    quantity = forms.IntegerField(label=_("Quantity received"), min_value=1, max_value=1_000_000)
    reference = forms.CharField(
        label=_("Reference"), required=False, max_length=128, help_text=_("Delivery note, purchase order, transfer.")
    )
    note = _note_field(required=False)
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
    note = _note_field(required=True, label=_("Reason"), help_text=_("Required. Kept in the stock ledger."))
    reference = forms.CharField(label=_("Reference"), required=False, max_length=128)


class SupplyForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    kind = forms.ChoiceField(label=_("Kind"), choices=IncomingSupply.Kind.choices)
    reference = forms.CharField(label=_("Reference"), max_length=64, help_text=_("Purchase order or transfer number."))
    quantity = forms.IntegerField(label=_("Quantity expected"), min_value=1, max_value=10_000_000)
    expected_at = forms.DateField(label=_("Expected on"), widget=AdminDateWidget)

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"] = _product_field(IncomingSupply, admin_site, label=_("Product"))
        self.order_fields(["product", "location"])


class CountOpenForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    note = _note_field(required=False)

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["products"] = _product_field(
            CycleCountLine,
            admin_site,
            multiple=True,
            label=_("Products to count"),
            help_text=_("Type a SKU or a barcode. The expected quantity is what is on hand when the count opens."),
        )
        self.order_fields(["location", "products", "note"])


class CountRecordForm(ServiceForm):
    """One counted quantity per line of the count."""

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        for line in lines:
            self.fields[f"line_{line.product_id}"] = forms.IntegerField(
                label=line.product.sku,
                min_value=0,
                max_value=10_000_000,
                initial=line.counted,
                widget=forms.NumberInput(attrs={"class": "oms-count-input", "min": 0}),
            )

    def counted(self) -> dict[int, int]:
        return {int(name.removeprefix("line_")): value for name, value in self.cleaned_data.items()}

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("counted."):
            name = f"line_{key.removeprefix('counted.')}"
            return name if name in self.fields else None
        return super().field_for_error(key)


class CountApplyForm(ServiceForm):
    note = _note_field(required=False, help_text=_("Optional. Kept on each ledger row the count writes."))


def _form_page(request, model_admin, **kwargs):
    return form_page(request, model_admin, template="admin/inventory/form_page.html", **kwargs)


# --- products and locations (master data) --------------------------------------------------------


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
        return queryset.filter(pk__in=_sku_products(search_term).values("pk")), False

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
        ruled_channels = (
            ChannelStockRule.objects.filter(is_active=True)
            .filter(Q(product=product) | Q(product__isnull=True))
            .values("channel_id")
        )
        by_channel = [
            {"channel": channel, "atp": atp(product_id=product.pk, channel_id=channel.pk)["atp"]}
            for channel in Channel.objects.filter(pk__in=ruled_channels).order_by("name")
        ]
        rows = [
            {
                "code": code,
                "location": locations.get(code),
                **numbers,
                "url": _url(
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
                "ledger_url": _url("inventory_stockmovement_changelist", query={"q": product.sku}),
            },
        )


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


# --- stock ------------------------------------------------------------------------------------------


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
        return queryset.filter(product_id__in=_sku_products(search_term).values("pk")), False

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
            links.append((_url("inventory_stockitem_receive", query=query), "receive", _("Receive")))
        if may["adjust"]:
            links.append((_url("inventory_stockitem_adjust", query=query), "adjust", _("Adjust")))
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
                "ledger_url": _url(
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
        return _url("inventory_stockitem_changelist", query={"q": product.sku})

    def receive_view(self, request):
        if not request.user.has_perm("inventory.receive_stock"):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        initial, item, supply = self._preset(request)
        if request.method == "POST":
            form = ReceiveForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                received = _run_service(
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
                        return HttpResponseRedirect(_url("inventory_incomingsupply_changelist"))
                    return HttpResponseRedirect(self._done_url(data["product"]))
            supply = form.cleaned_data.get("supply") or supply
        else:
            form = ReceiveForm(initial=initial, admin_site=self.admin_site)
        intro = _("Goods in: on hand goes up and the ledger records who received what.")
        if supply is not None:
            intro = _(
                "Against %(ref)s: %(open)s unit(s) still expected. Pre-orders promised on it become reservations."
            ) % {"ref": supply.reference, "open": supply.quantity_open}
        return _form_page(
            request,
            self,
            form=form,
            title=_("Receive stock"),
            submit=_("Receive"),
            intro=intro,
            back_url=_url("inventory_stockitem_changelist"),
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
                adjusted = _run_service(
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
        return _form_page(
            request,
            self,
            form=form,
            title=_("Adjust stock"),
            submit=_("Adjust"),
            tone="danger",
            intro=_("A manual correction of on hand, with its reason. Counts go through cycle counts instead."),
            back_url=_url("inventory_stockitem_changelist"),
            extra={"item": item},
        )


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
        order_id = Order.objects.filter(number__in={term, term.upper()}).values_list("pk", flat=True).first()
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
        return queryset.filter(order_id__in=Order.objects.filter(number__in={term, term.upper()}).values("pk")), False

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


# --- incoming supply ------------------------------------------------------------------------------


@admin.register(IncomingSupply)
class IncomingSupplyAdmin(BigListMixin, AuditedAdmin):
    list_title = _("Incoming supply")
    list_display = (
        "reference",
        "sku_column",
        "location",
        "kind",
        "quantity",
        "received_column",
        "promised_column",
        "unpromised_column",
        "expected_column",
        "status_badge",
        "receive_link",
    )
    list_display_links = ("reference",)
    list_filter = ("status", "kind", "location")
    list_select_related = ("product", "location")
    search_fields = ("reference",)  # the box; get_search_results does the matching
    search_help_text = _("A reference, or a SKU (exact or its beginning).")
    sortable_by = ("expected_column", "reference")
    ordering = ("expected_at", "pk")
    actions = None
    fields = (
        "product",
        "location",
        "kind",
        "reference",
        "quantity",
        "quantity_received",
        "quantity_promised",
        "expected_at",
        "status",
        "created_at",
    )

    def has_change_permission(self, request, obj=None):
        # Counters move only through receipts and promises (the services); no service reschedules yet.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(reference=term) | Q(product_id__in=_sku_products(term).values("pk"))), False

    def get_list_display(self, request):
        if request.user.has_perm("inventory.receive_stock"):
            return self.list_display
        return tuple(name for name in self.list_display if name != "receive_link")

    @admin.display(description=_("product"))
    def sku_column(self, supply):
        return format_html('<code>{}</code> <span class="oms-quiet">{}</span>', supply.product.sku, supply.product.name)

    @admin.display(description=_("received"))
    def received_column(self, supply):
        return supply.quantity_received

    @admin.display(description=_("promised"))
    def promised_column(self, supply):
        return supply.quantity_promised

    @admin.display(description=_("expected"), ordering="expected_at")
    def expected_column(self, supply):
        return supply.expected_at.isoformat()

    @admin.display(description=_("unpromised"))
    def unpromised_column(self, supply):
        return supply.quantity_unpromised

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, supply):
        late = supply.status == IncomingSupply.Status.OPEN and supply.expected_at < timezone.localdate()
        if late:
            return badge(_("late"), "alert", title=_("Expected before today and not fully received."))
        return badge(supply.get_status_display(), SUPPLY_TONES.get(supply.status, "muted"))

    @admin.display(description="")
    def receive_link(self, supply):
        if supply.status != IncomingSupply.Status.OPEN:
            return ""
        return format_html(
            '<a class="oms-button oms-button--small oms-button--link" href="{}">{}</a>',
            _url("inventory_stockitem_receive", query={"supply": supply.pk}),
            _("Receive"),
        )

    def add_view(self, request, form_url="", extra_context=None):
        """The form of `supply_create`: the service sets the counters, never the form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        if request.method == "POST":
            form = SupplyForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                supply = _run_service(
                    request,
                    form,
                    lambda: services.supply_create(
                        product=data["product"],
                        location=data["location"],
                        quantity=data["quantity"],
                        expected_at=data["expected_at"],
                        reference=data["reference"],
                        kind=data["kind"],
                        actor=request.user,
                    ),
                )
                if supply is not None:
                    messages.success(
                        request,
                        _("%(ref)s recorded: %(n)s × %(sku)s expected at %(location)s on %(date)s.")
                        % {
                            "ref": supply.reference,
                            "n": supply.quantity,
                            "sku": data["product"].sku,
                            "location": data["location"],
                            "date": supply.expected_at.isoformat(),
                        },
                    )
                    return HttpResponseRedirect(_url("inventory_incomingsupply_changelist"))
        else:
            form = SupplyForm(
                initial={"expected_at": timezone.localdate() + datetime.timedelta(days=7)}, admin_site=self.admin_site
            )
        return _form_page(
            request,
            self,
            form=form,
            title=_("Record incoming supply"),
            submit=_("Record supply"),
            intro=_(
                "Expected goods count in available-to-promise by their date; back-orders are promised against them."
            ),
            back_url=_url("inventory_incomingsupply_changelist"),
        )


# --- cycle counts ---------------------------------------------------------------------------------


@admin.register(CycleCount)
class CycleCountAdmin(BigListMixin, AuditedAdmin):
    list_title = _("Cycle counts")
    list_display = (
        "count_column",
        "location",
        "status_badge",
        "lines_column",
        "created_by",
        "created_column",
        "approved_by",
        "applied_column",
    )
    list_display_links = ("count_column",)
    list_filter = ("status", "location")
    list_select_related = ("location", "created_by", "approved_by")
    ordering = ("-pk",)
    sortable_by = ()
    actions = None

    def get_queryset(self, request):
        lines = (
            CycleCountLine.objects.filter(count=OuterRef("pk"))
            .order_by()
            .values("count")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(line_count=Coalesce(Subquery(lines), 0))

    def has_change_permission(self, request, obj=None):
        return False  # the count page's forms call the services

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("count"))
    def count_column(self, count):
        return f"#{count.pk}"

    @admin.display(description=_("status"))
    def status_badge(self, count):
        return badge(count.get_status_display(), COUNT_TONES.get(count.status, "muted"))

    @admin.display(description=_("lines"))
    def lines_column(self, count):
        return count.line_count

    @admin.display(description=_("opened"))
    def created_column(self, count):
        return short_datetime(count.created_at)

    @admin.display(description=_("applied"))
    def applied_column(self, count):
        return short_datetime(count.applied_at)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/record/",
                self.admin_site.admin_view(self.record_view),
                name="inventory_cyclecount_record",
            ),
            path(
                "<path:object_id>/apply/",
                self.admin_site.admin_view(self.apply_view),
                name="inventory_cyclecount_apply",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """New count: a location and the products to count (`count_open`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        if request.method == "POST":
            form = CountOpenForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                count = _run_service(
                    request,
                    form,
                    lambda: services.count_open(
                        location=data["location"], products=data["products"], actor=request.user, note=data["note"]
                    ),
                )
                if count is not None:
                    messages.success(request, _("Count #%(n)s opened: enter what you find.") % {"n": count.pk})
                    return HttpResponseRedirect(_url("inventory_cyclecount_change", count.pk))
        else:
            form = CountOpenForm(admin_site=self.admin_site)
        return _form_page(
            request,
            self,
            form=form,
            title=_("New cycle count"),
            submit=_("Open the count"),
            intro=_("Counted quantities are entered on the count's page; a finance manager approves and applies them."),
            back_url=_url("inventory_cyclecount_changelist"),
        )

    def _count(self, object_id) -> CycleCount | None:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            return None
        return CycleCount.objects.select_related("location", "created_by", "approved_by").filter(pk=pk).first()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        count = self._count(object_id)
        if count is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, count):
            raise PermissionDenied
        return self._count_page(request, count)

    def _count_page(self, request, count: CycleCount, *, record_form=None, apply_form=None):
        request.current_app = self.admin_site.name
        lines = list(count.lines.select_related("product").order_by("product__sku"))
        stock_now = {
            product_id: (units, reserved)
            for product_id, units, reserved in StockItem.objects.filter(
                location_id=count.location_id, product_id__in=[line.product_id for line in lines]
            ).values_list("product_id", "on_hand", "reserved")
        }
        may_record = count.status == CycleCount.Status.OPEN and request.user.has_perm("inventory.change_cyclecount")
        may_apply = count.status == CycleCount.Status.COUNTED and request.user.has_perm("inventory.approve_cyclecount")
        if may_record and record_form is None:
            record_form = CountRecordForm(lines=lines)
        if may_apply and apply_form is None:
            apply_form = CountApplyForm()
        applied = {}
        if count.status == CycleCount.Status.APPLIED:
            # What the count changed: its ledger rows, reached through the stock rows' index.
            items = StockItem.objects.filter(
                location_id=count.location_id, product_id__in=[line.product_id for line in lines]
            )
            applied = dict(
                StockMovement.objects.filter(
                    stock_item__in=items, reason=MovementReason.COUNT, reference=f"count-{count.pk}"
                )
                .values_list("stock_item__product_id")
                .annotate(delta=Sum("on_hand_delta"))
                .order_by()
            )
        pending = count.status in (CycleCount.Status.OPEN, CycleCount.Status.COUNTED)
        rows = []
        for line in lines:
            now, reserved = stock_now.get(line.product_id, (0, 0))
            rows.append(
                {
                    "line": line,
                    "on_hand_now": now,
                    "reserved_now": reserved,
                    # count_apply refuses a count below what orders hold: say so before anyone tries.
                    "below_reserved": line.counted is not None and line.counted < reserved,
                    "moved": pending and now != line.expected,
                    "applied": applied.get(line.product_id, 0),
                    "variance": None if line.counted is None else line.counted - line.expected,
                    "to_apply": None if line.counted is None else line.counted - now,
                    "field": record_form[f"line_{line.product_id}"] if record_form is not None else None,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Cycle count #%(n)s") % {"n": count.pk},
            "subtitle": None,
            "count": count,
            "original": count,
            "status_badge": self.status_badge(count),
            "rows": rows,
            "counted_lines": sum(1 for line in lines if line.counted is not None),
            "below_reserved": [row["line"].product.sku for row in rows if row["below_reserved"]],
            "record_form": record_form if may_record else None,
            "apply_form": apply_form if may_apply else None,
            "record_url": _url("inventory_cyclecount_record", count.pk),
            "apply_url": _url("inventory_cyclecount_apply", count.pk),
            "changelist_url": _url("inventory_cyclecount_changelist"),
            "history_url": _url("inventory_cyclecount_history", count.pk),
            "ledger_url": _url("inventory_stockmovement_changelist", query={"q": f"count-{count.pk}"}),
        }
        return TemplateResponse(request, "admin/inventory/cyclecount/detail.html", context)

    def record_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("inventory.change_cyclecount"):
            raise PermissionDenied
        count = self._count(object_id)
        if count is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        lines = list(count.lines.select_related("product").order_by("product__sku"))
        form = CountRecordForm(request.POST, lines=lines)
        if form.is_valid():
            done = _run_service(
                request,
                form,
                lambda: services.count_record(count=count, counted=form.counted(), actor=request.user),
            )
            if done is not None:
                messages.success(request, _("Count #%(n)s submitted for approval.") % {"n": count.pk})
                return HttpResponseRedirect(_url("inventory_cyclecount_change", count.pk))
        return self._count_page(request, count, record_form=form)

    def apply_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("inventory.approve_cyclecount"):
            raise PermissionDenied
        count = self._count(object_id)
        if count is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = CountApplyForm(request.POST)
        if form.is_valid():
            done = _run_service(
                request,
                form,
                lambda: services.count_apply(count=count, actor=request.user, note=form.cleaned_data["note"]),
            )
            if done is not None:
                messages.success(request, _("Count #%(n)s applied to stock.") % {"n": count.pk})
                return HttpResponseRedirect(_url("inventory_cyclecount_change", count.pk))
        return self._count_page(request, count, apply_form=form)


# --- alerts and channel rules ---------------------------------------------------------------------


class AlertStateFilter(admin.SimpleListFilter):
    title = _("resolved")
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("open", _("Open")), ("resolved", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(StockAlert)
class StockAlertAdmin(ReadOnlyAdminMixin, BigListMixin, admin.ModelAdmin):
    list_title = _("Stock alerts")
    list_display = (
        "state_badge",
        "kind_badge",
        "sku_column",
        "message",
        "days_of_cover",
        "created_column",
        "resolved_column",
    )
    list_filter = (AlertStateFilter, "kind")
    list_select_related = ("product",)
    ordering = (F("resolved_at").asc(nulls_first=True), "-created_at", "-pk")  # open first, newest first
    sortable_by = ()
    actions = None

    @admin.display(description=_("state"))
    def state_badge(self, alert):
        return badge(_("resolved"), "muted") if alert.resolved_at else badge(_("open"), "alert")

    @admin.display(description=_("kind"))
    def kind_badge(self, alert):
        return badge(alert.get_kind_display(), "warn")

    @admin.display(description=_("product"))
    def sku_column(self, alert):
        return format_html(
            '<a href="{}"><code>{}</code></a>',
            reverse("admin:inventory_product_change", args=[alert.product_id]),
            alert.product.sku,
        )

    @admin.display(description=_("raised"))
    def created_column(self, alert):
        return short_datetime(alert.created_at)

    @admin.display(description=_("resolved"))
    def resolved_column(self, alert):
        return short_datetime(alert.resolved_at)


@admin.register(ChannelStockRule)
class ChannelStockRuleAdmin(TitledListMixin, AuditedAdmin):
    list_title = _("Channel stock rules")
    list_display = ("channel", "kind", "product", "location", "location_kind", "share", "quantity", "is_active")
    list_filter = ("channel", "kind", "is_active")
    list_select_related = ("channel", "product", "location")
    autocomplete_fields = ("product",)
    fields = ("channel", "kind", "product", "location", "location_kind", "share", "quantity", "is_active")


@admin.register(ChannelStockSettings)
class ChannelStockSettingsAdmin(TitledListMixin, AuditedAdmin):
    list_title = _("Channel stock settings")
    list_display = ("channel", "priority", "reservation_mode", "sourcing_strategy")
    list_select_related = ("channel",)
    ordering = ("priority", "channel__name")


# --- the Sourcing panel of the order page -----------------------------------------------------------


def _parcel_label(parcel: int | None, lines: list[str]) -> str:
    if parcel is None:
        return ""
    return ngettext("parcel %(n)s: line %(lines)s", "parcel %(n)s: lines %(lines)s", len(lines)) % {
        "n": parcel,
        "lines": ", ".join(lines),
    }


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return Decimal(0)


def _date(value: str | None):
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def order_sourcing_panel(*, order, user) -> dict | None:
    """What the order page shows under "Sourcing": the latest decision, explained, and conflicts.

    None when the user may not see sourcing. Support reads this to answer "why does this ship from
    Lyon?": every candidate location with its lead time, cost, units and why it was not chosen.
    """
    if not user.has_perm("inventory.view_sourcingdecision"):
        return None
    decision = sourcing_decision_latest(order_id=order.pk)
    conflicts = [
        {
            "won": conflict.winner_order_id == order.pk,
            "other": conflict.loser_order if conflict.winner_order_id == order.pk else conflict.winner_order,
            "quantity": conflict.quantity,
            "sku": conflict.stock_item.product.sku,
            "location": conflict.stock_item.location.name,
            "reason": conflict.reason,
            "created_at": conflict.created_at,
        }
        for conflict in AllocationConflict.objects.filter(Q(winner_order_id=order.pk) | Q(loser_order_id=order.pk))
        .select_related("stock_item__product", "stock_item__location", "winner_order", "loser_order")
        .order_by("-created_at", "-pk")[:50]
    ]
    if decision is None:
        return {"decision": None, "conflicts": conflicts}
    names = {c.get("location"): c.get("name") or c.get("location") for c in decision.candidates}
    skus = []
    for entry in [*decision.allocations, *decision.backorders]:
        if entry.get("sku") and entry["sku"] not in skus:
            skus.append(entry["sku"])
    for candidate in decision.candidates:
        for sku in candidate.get("available") or {}:
            if sku not in skus:
                skus.append(sku)
    # Parcels in the order the plan chose them (the summary's order), then the others by speed.
    parcel_of = {}
    for allocation in decision.allocations:
        parcel_of.setdefault(allocation.get("location"), len(parcel_of) + 1)
    lines_of = {}
    for allocation in decision.allocations:
        lines_of.setdefault(allocation.get("location"), []).append(str(allocation.get("line")))
    candidates = sorted(
        decision.candidates,
        key=lambda c: (
            parcel_of.get(c.get("location"), len(parcel_of) + 1),
            c.get("lead_days", 0),
            _decimal(c.get("cost")),
            c.get("location", ""),
        ),
    )
    try:
        strategy = SourcingStrategy(decision.strategy).label
    except ValueError:
        strategy = decision.strategy
    return {
        "decision": decision,
        "strategy": strategy,
        "skus": skus,
        "parcels": len(parcel_of),
        "allocations": [
            {
                **a,
                "location_name": names.get(a.get("location"), a.get("location")),
                "parcel": parcel_of[a.get("location")],
            }
            for a in sorted(decision.allocations, key=lambda a: (parcel_of[a.get("location")], a.get("line", 0)))
        ],
        "backorders": [{**b, "promised_date": _date(b.get("promised_for"))} for b in decision.backorders],
        "candidates": [
            {
                "code": c.get("location"),
                "name": c.get("name") or c.get("location"),
                "lead_days": c.get("lead_days"),
                "cost": c.get("cost"),
                "units": [(c.get("available") or {}).get(sku) for sku in skus],
                "chosen": bool(c.get("chosen")),
                "parcel": parcel_of.get(c.get("location")),
                "ships": _parcel_label(parcel_of.get(c.get("location")), lines_of.get(c.get("location"), [])),
                "reason": c.get("rejected_because") or "",
            }
            for c in candidates
        ],
        "conflicts": conflicts,
    }
