"""Incoming supply: purchase orders and transfers expected, recorded and received through the services."""

import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from inventory import services
from inventory.admin.base import (
    BigListMixin,
    ServiceForm,
    admin_url,
    inventory_form_page,
    product_field,
    run_service,
    sku_products,
)
from inventory.models import IncomingSupply, Location
from oms.core.admin import AuditedAdmin, badge

SUPPLY_TONES = {
    IncomingSupply.Status.OPEN: "info",
    IncomingSupply.Status.RECEIVED: "ok",
    IncomingSupply.Status.CANCELED: "void",
}


class SupplyForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    kind = forms.ChoiceField(label=_("Kind"), choices=IncomingSupply.Kind.choices)
    reference = forms.CharField(label=_("Reference"), max_length=64, help_text=_("Purchase order or transfer number."))
    quantity = forms.IntegerField(label=_("Quantity expected"), min_value=1, max_value=10_000_000)
    expected_at = forms.DateField(label=_("Expected on"), widget=AdminDateWidget)

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"] = product_field(IncomingSupply, admin_site, label=_("Product"))
        self.order_fields(["product", "location"])


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
        return queryset.filter(Q(reference=term) | Q(product_id__in=sku_products(term).values("pk"))), False

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
            admin_url("inventory_stockitem_receive", query={"supply": supply.pk}),
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
                supply = run_service(
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
                    return HttpResponseRedirect(admin_url("inventory_incomingsupply_changelist"))
        else:
            form = SupplyForm(
                initial={"expected_at": timezone.localdate() + datetime.timedelta(days=7)}, admin_site=self.admin_site
            )
        return inventory_form_page(
            request,
            self,
            form=form,
            title=_("Record incoming supply"),
            submit=_("Record supply"),
            intro=_(
                "Expected goods count in available-to-promise by their date; back-orders are promised against them."
            ),
            back_url=admin_url("inventory_incomingsupply_changelist"),
        )
