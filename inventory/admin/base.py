"""What the inventory screens share: list mixins, the location filter, links, and the forms that
call a service and turn its errors into messages on the page."""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from inventory.models import Product
from inventory.selectors import location_choices
from oms.core.admin import EstimatedCountPaginator, IdChoiceFilter, apply_service_error, form_page
from oms.core.errors import ApplicationError


def signed(value: int):
    """+3 / −2 / blank for 0, coloured: the ledger reads at a glance."""
    if not value:
        return format_html('<span class="oms-quiet">{}</span>', "·")
    tone = "up" if value > 0 else "down"
    return format_html('<span class="oms-delta oms-delta--{}">{}{}</span>', tone, "+" if value > 0 else "−", abs(value))


def admin_url(name: str, *args, query: dict | None = None) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def sku_products(term: str):
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


class ActiveLocationFilter(IdChoiceFilter):
    """Locations by name, for models that reach the location through another row."""

    title = _("location")
    parameter_name = "location"
    lookup = "location_id"

    def options(self):
        return location_choices()


# --- forms that call the services ----------------------------------------------------------------


class ServiceForm(forms.Form):
    """A form whose input goes to one service. Service field errors land on the field of that name."""

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


def run_service(request, form: ServiceForm, call):
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


def product_field(source_model, admin_site, *, multiple: bool = False, field_name: str = "product", **kwargs):
    """A product picker that searches by SKU or barcode as you type (never loads every product)."""
    relation = source_model._meta.get_field(field_name)
    if multiple:
        return forms.ModelMultipleChoiceField(
            queryset=Product.objects.all(), widget=AutocompleteSelectMultiple(relation, admin_site), **kwargs
        )
    return forms.ModelChoiceField(
        queryset=Product.objects.all(), widget=AutocompleteSelect(relation, admin_site), **kwargs
    )


def note_field(*, required: bool, label=None, help_text=""):
    return forms.CharField(
        label=label or _("Note"),
        required=required,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=help_text,
    )


def inventory_form_page(request, model_admin, **kwargs):
    return form_page(request, model_admin, template="admin/inventory/form_page.html", **kwargs)
