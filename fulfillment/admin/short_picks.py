"""The short-pick queue: open ones, oldest first, each with its three ways out (substitute, delay,
cancel the missing units), each a form calling its service."""

import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from fulfillment import services
from fulfillment.admin._common import RESOLUTION_TONES, BigListMixin, _pk, _run_service, _text_field, _url
from fulfillment.admin.filters import ShortPickStateFilter
from fulfillment.choices import ConsentChannel, ShortPickResolution
from fulfillment.models import ShortPick
from inventory.models import Product, StockItem
from oms.core.admin import (
    AuditedAdmin,
    ReadOnlyAdminMixin,
    badge,
    short_datetime,
)
from orders.models import Order
from orders.selectors import order_search_q


class ShortPickForm(forms.Form):
    """A resolution form. Service field errors land on the field of the same name."""

    error_aliases: dict[str, str] = {}

    def field_for_error(self, key: str) -> str | None:
        key = self.error_aliases.get(key, key)
        return key if key in self.fields else None


def _consent_fields(*, required: bool):
    channel = forms.ChoiceField(
        label=_("Consent by"),
        choices=([] if required else [("", "—")]) + list(ConsentChannel.choices),
        required=required,
    )
    note = _text_field(
        required=required,
        label=_("What the customer agreed to"),
        help_text=_("In their words. Required.") if required else _("Optional."),
        rows=2,
    )
    return channel, note


class SubstituteForm(ShortPickForm):
    sku = forms.CharField(
        label=_("Substitute SKU"), max_length=64, widget=forms.TextInput(attrs={"list": "oms-substitutes"})
    )
    consent_channel, consent_note = _consent_fields(required=True)
    error_aliases = {"product": "sku"}

    def clean_sku(self):
        sku = self.cleaned_data["sku"].strip()
        product = Product.objects.filter(sku=sku).first() or Product.objects.filter(sku=sku.upper()).first()
        if product is None:
            raise forms.ValidationError(_("No product has this SKU."))
        self.product = product
        return product.sku


class DelayForm(ShortPickForm):
    promised_at = forms.DateField(label=_("New promise date"), widget=AdminDateWidget)
    consent_channel, consent_note = _consent_fields(required=False)

    def promised_datetime(self) -> datetime.datetime:
        # A promise is a day: the end of the working day, in the cockpit's time zone.
        day = self.cleaned_data["promised_at"]
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time(18, 0)))


class CancelLineForm(ShortPickForm):
    consent_channel, consent_note = _consent_fields(required=True)


RESOLUTIONS = {
    "substitute": SubstituteForm,
    "delay": DelayForm,
    "cancel_line": CancelLineForm,
}


@admin.register(ShortPick)
class ShortPickAdmin(ReadOnlyAdminMixin, BigListMixin, AuditedAdmin):
    """The short-pick queue: open ones, oldest first, each with its three ways out."""

    list_title = _("Short picks")
    list_display = (
        "reported_column",
        "shipment_column",
        "order_column",
        "sku_column",
        "quantity",
        "location_column",
        "note_column",
        "state_column",
        "resolve_link",
    )
    list_filter = (ShortPickStateFilter, "resolution")
    list_select_related = ("shipment", "shipment__location", "order", "order_line")
    search_fields = ("order__number",)
    search_help_text = _("Order number or e-mail, or shipment number.")
    ordering = ("pk",)  # oldest first: the queue is worked from the top
    sortable_by = ()
    actions = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(order__in=Order.objects.filter(order_search_q(term)).values("pk")) | Q(shipment__number=term.upper())
        ), False

    @admin.display(description=_("reported"))
    def reported_column(self, short):
        return short_datetime(short.reported_at)

    @admin.display(description=_("shipment"))
    def shipment_column(self, short):
        return format_html(
            '<a href="{}">{}</a>', _url("fulfillment_shipment_change", short.shipment_id), short.shipment.number
        )

    @admin.display(description=_("order"))
    def order_column(self, short):
        return format_html('<a href="{}">{}</a>', _url("orders_order_change", short.order_id), short.order.number)

    @admin.display(description=_("missing"))
    def sku_column(self, short):
        return format_html(
            '<code>{}</code><br><span class="oms-quiet">{}</span>',
            short.order_line.sku,
            Truncator(short.order_line.name).chars(40),
        )

    @admin.display(description=_("location"))
    def location_column(self, short):
        return short.shipment.location.name

    @admin.display(description=_("note"))
    def note_column(self, short):
        return Truncator(short.note).chars(80)

    @admin.display(description=_("state"))
    def state_column(self, short):
        if short.is_open:
            return badge(_("open"), "alert")
        return badge(short.get_resolution_display(), RESOLUTION_TONES.get(short.resolution, "muted"))

    @admin.display(description="")
    def resolve_link(self, short):
        if not short.is_open:
            return ""
        return format_html(
            '<a class="oms-button oms-button--small" href="{}">{}</a>',
            _url("fulfillment_shortpick_change", short.pk),
            _("Resolve"),
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/resolve/<slug:how>/",
                self.admin_site.admin_view(self.resolve_view),
                name="fulfillment_shortpick_resolve",
            ),
            *super().get_urls(),
        ]

    def _short(self, object_id) -> ShortPick | None:
        pk = _pk(object_id)
        if pk is None:
            return None
        return (
            ShortPick.objects.select_related(
                "shipment",
                "shipment__location",
                "order",
                "order_line",
                "reported_by",
                "resolved_by",
                "substitute_product",
                "substitute_line",
            )
            .filter(pk=pk)
            .first()
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        short = self._short(object_id)
        if short is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, short):
            raise PermissionDenied
        return self._page(request, short)

    @staticmethod
    def _substitutes(short: ShortPick) -> list[StockItem]:
        """Suggestions: products with enough free stock where the parcel is picked."""
        return list(
            StockItem.objects.filter(location_id=short.shipment.location_id)
            .exclude(product_id=short.order_line.product_id)
            .annotate(free=F("on_hand") - F("reserved") - F("safety_stock"))
            .filter(free__gte=short.quantity)
            .select_related("product")
            .order_by("product__sku")[:30]
        )

    def _page(self, request, short: ShortPick, *, bound: dict | None = None):
        request.current_app = self.admin_site.name
        bound = bound or {}
        may_resolve = short.is_open and request.user.has_perm("fulfillment.resolve_short_pick")
        forms_ = {how: bound.get(how) or form_class(prefix=how) for how, form_class in RESOLUTIONS.items()}
        media = self.media
        for form in forms_.values():
            media += form.media
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Short pick #%(n)s") % {"n": short.pk},
            "subtitle": None,
            "short": short,
            "original": short,
            "state": self.state_column(short),
            "may_resolve": may_resolve,
            "forms": forms_,
            "resolve_urls": {how: _url("fulfillment_shortpick_resolve", short.pk, how) for how in RESOLUTIONS},
            "substitutes": self._substitutes(short) if may_resolve else [],
            "shipment_url": _url("fulfillment_shipment_change", short.shipment_id),
            "order_url": _url("orders_order_change", short.order_id),
            "changelist_url": _url("fulfillment_shortpick_changelist"),
            "history_url": _url("fulfillment_shortpick_history", short.pk),
            "media": media,
        }
        return TemplateResponse(request, "admin/fulfillment/shortpick/detail.html", context)

    def resolve_view(self, request, object_id, how):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form_class = RESOLUTIONS.get(how)
        if form_class is None:
            raise Http404(f"Unknown resolution {how!r}.")
        short = self._short(object_id)
        if short is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, short):
            raise PermissionDenied
        form = form_class(request.POST, prefix=how)
        if form.is_valid():
            data = form.cleaned_data
            user = request.user
            calls = {
                "substitute": lambda: services.short_pick_substitute(
                    short_pick=short.pk,
                    actor=user,
                    product=form.product,
                    consent_channel=data["consent_channel"],
                    consent_note=data["consent_note"],
                ),
                "delay": lambda: services.short_pick_delay(
                    short_pick=short.pk,
                    actor=user,
                    promised_at=form.promised_datetime(),
                    consent_channel=data.get("consent_channel") or "",
                    consent_note=data.get("consent_note") or "",
                ),
                "cancel_line": lambda: services.short_pick_cancel_line(
                    short_pick=short.pk,
                    actor=user,
                    consent_channel=data["consent_channel"],
                    consent_note=data["consent_note"],
                ),
            }
            done = _run_service(request, form, calls[how])
            if done is not None:
                messages.success(
                    request,
                    _("Short pick #%(n)s resolved: %(how)s.")
                    % {"n": short.pk, "how": ShortPickResolution(how).label.lower()},
                )
                return HttpResponseRedirect(_url("fulfillment_shipment_change", short.shipment_id))
            short = self._short(object_id)  # what the failed attempt left (unchanged)
        return self._page(request, short, bound={how: form})
