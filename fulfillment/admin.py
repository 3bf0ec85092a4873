"""The cockpit's fulfillment screens: shipments, waves and pick lists, short picks, tracking.

Nothing here writes a model: every button opens a small form (or is one) whose POST calls a service
in `fulfillment.services` with `actor=request.user`. The service checks the permission, the state
and the input; the admin only turns its `ApplicationError` into a message on the page. Labels, pick
lists and packing slips are served by admin views that first check the user may see the shipment or
the wave (media files are not public). Lists never run an unfiltered COUNT(*) (oms.core.admin).
"""

import datetime
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget, AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from fulfillment import selectors, services
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.registry import CARRIERS
from fulfillment.choices import ConsentChannel, ShipmentKind, ShipmentStatus, ShortPickResolution, WaveRender
from fulfillment.documents import natural_bin_key
from fulfillment.models import ConsolidationRule, Shipment, ShipmentLine, ShortPick, TrackingUpdate, Wave
from inventory.admin import ActiveLocationFilter
from inventory.models import Location, Product, StockItem
from oms.core.admin import (  # noqa: F401 (shared cockpit helpers)
    AuditedAdmin,
    EstimatedCountPaginator,
    QueueStateFilter,
    ReadOnlyAdminMixin,
    apply_service_error,
    badge,
    form_page,
    money,
    short_datetime,
)
from oms.core.errors import ApplicationError
from oms.core.numbering import format_number
from orders.addresses import format_address
from orders.models import Order
from orders.selectors import order_search_q

S = ShipmentStatus

# --- presentation helpers ------------------------------------------------------------------------

SHIPMENT_TONES = {
    S.PENDING: "muted",
    S.PICKING: "info",
    S.SHORT_PICKED: "alert",
    S.PACKED: "warn",
    S.SHIPPED: "teal",
    S.IN_TRANSIT: "teal",
    S.DELIVERED: "ok",
    S.LOST: "alert",
    S.DAMAGED: "alert",
    S.RETURNED_TO_SENDER: "purple",
    S.CANCELED: "void",
    S.READY_FOR_PICKUP: "warn",
    S.PICKED_UP: "ok",
    S.PICKUP_EXPIRED: "void",
}
RENDER_TONES = {
    WaveRender.IDLE: "muted",
    WaveRender.QUEUED: "info",
    WaveRender.RENDERING: "info",
    WaveRender.READY: "ok",
    WaveRender.FAILED: "alert",
}
TRACKING_TONES = {
    TrackingStatus.LABEL_CREATED: "muted",
    TrackingStatus.IN_TRANSIT: "teal",
    TrackingStatus.OUT_FOR_DELIVERY: "teal",
    TrackingStatus.DELIVERED: "ok",
    TrackingStatus.EXCEPTION: "warn",
    TrackingStatus.RETURNED_TO_SENDER: "purple",
    TrackingStatus.LOST: "alert",
    TrackingStatus.DAMAGED: "alert",
}
RESOLUTION_TONES = {
    ShortPickResolution.SUBSTITUTE: "info",
    ShortPickResolution.DELAY: "warn",
    ShortPickResolution.CANCEL_LINE: "void",
}
# Still in the building: a ship-by date in the past makes these late (Shipment.is_late).
LATE_STATUSES = (S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED)
CANCELABLE_STATUSES = (S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED)
RENDERING = (WaveRender.QUEUED, WaveRender.RENDERING)


def shipment_badge(shipment: Shipment):
    return badge(shipment.get_status_display(), SHIPMENT_TONES.get(shipment.status, "muted"))


def _url(name: str, *args, query: dict | None = None) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _pk(object_id) -> int | None:
    try:
        return int(unquote(object_id))
    except (TypeError, ValueError):
        return None


def _late_q() -> Q:
    return Q(status__in=LATE_STATUSES, ship_by__lt=timezone.now())


def _tracking_link(shipment):
    if not shipment.tracking_number:
        return ""
    if shipment.tracking_url:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer"><code>{}</code></a>',
            shipment.tracking_url,
            shipment.tracking_number,
        )
    return format_html("<code>{}</code>", shipment.tracking_number)


def _error_message(exc) -> str:
    return exc.message if isinstance(exc, ApplicationError) else str(exc)


SERVICE_ERRORS = (ApplicationError, TransitionNotAllowed, ConcurrentTransition, DjangoValidationError)


def _run_service(request, form, call):
    """Run `call()`; a domain error goes on the page and on the form, and None is returned."""
    try:
        return call()
    except ApplicationError as exc:
        apply_service_error(form, exc)
        messages.error(request, exc.message)
    except (TransitionNotAllowed, ConcurrentTransition) as exc:
        form.add_error(None, str(exc))
        messages.error(request, str(exc))
    except DjangoValidationError as exc:  # a model's full_clean() inside a service
        for message in exc.messages:
            form.add_error(None, message)
        messages.error(request, " ".join(exc.messages))
    return None


class BigListMixin:
    """Lists of tables that grow without bound: no exact count, no facet counts, newest first."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    list_title = None

    def changelist_view(self, request, extra_context=None):
        if self.list_title:
            extra_context = {"title": self.list_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)


def _form_page(request, model_admin, **kwargs):
    return form_page(request, model_admin, template="admin/fulfillment/form_page.html", **kwargs)


def _pdf_response(content, filename: str, *, attachment: bool = False):
    response = FileResponse(content, content_type="application/pdf", as_attachment=attachment, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


# --- filters -------------------------------------------------------------------------------------


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


# --- shipment action forms -----------------------------------------------------------------------


class ShipmentForm(forms.Form):
    """A form for one shipment action. Service field errors land on the field of the same name."""

    def __init__(self, *args, shipment: Shipment, user, **kwargs):
        self.shipment = shipment
        self.user = user
        super().__init__(*args, **kwargs)

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


def _text_field(*, required: bool, label, help_text="", rows: int = 3):
    return forms.CharField(
        label=label,
        required=required,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 60}),
        help_text=help_text,
    )


class NoInputForm(ShipmentForm):
    """A one-click action: the button is the form."""


class ReasonForm(ShipmentForm):
    reason = _text_field(required=False, label=_("Note"), help_text=_("Optional. Kept in the history."))


class CancelForm(ShipmentForm):
    reason = _text_field(required=True, label=_("Reason"), help_text=_("Required. Kept in the history."))


class PicksForm(ShipmentForm):
    """One picked-quantity input per line (totals picked so far), and whether the pick is final."""

    final = forms.BooleanField(
        label=_("Final"),
        required=False,
        initial=True,
        help_text=_("Ticked: a line left short becomes a short pick (its missing units leave the parcel)."),
    )
    note = _text_field(
        required=False, label=_("Note"), help_text=_("Why a line is short, e.g. “bin A-10-1 empty”."), rows=2
    )

    def __init__(self, *args, lines: list[ShipmentLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            self.fields[f"line_{line.pk}"] = forms.IntegerField(
                label=line.order_line.sku,
                min_value=0,
                max_value=line.quantity,
                # The usual case is "all found": the picker only lowers what is missing.
                initial=line.quantity_picked or line.quantity,
                widget=forms.NumberInput(attrs={"class": "oms-count-input", "min": 0, "max": line.quantity}),
            )
        self.order_fields([f"line_{line.pk}" for line in lines] + ["final", "note"])

    def picked(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.lines}

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("picked."):
            name = f"line_{key.removeprefix('picked.')}"
            return name if name in self.fields else None
        return super().field_for_error(key)


class PackForm(ShipmentForm):
    weight_grams = forms.IntegerField(
        label=_("Weight (g)"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text=_("As weighed. Empty: the catalogue weight of the lines."),
    )
    insured = forms.BooleanField(label=_("Insured"), required=False, help_text=_("Insure the declared value."))
    reason = _text_field(required=False, label=_("Note"), rows=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["insured"].initial = self.shipment.insured
        self.fields["weight_grams"].widget.attrs["placeholder"] = str(self.shipment.weight_grams)


class DispatchForm(ShipmentForm):
    carrier = forms.CharField(
        label=_("Carrier"),
        required=False,
        max_length=32,
        help_text=_("Only when the parcel was labelled elsewhere (e.g. by a 3PL), with its tracking number."),
        widget=forms.TextInput(attrs={"list": "oms-carriers"}),
    )
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        required=False,
        max_length=64,
        help_text=_("Empty: the label printed here (made now if there is none)."),
    )
    service = forms.CharField(label=_("Service"), required=False, max_length=32)

    carriers = sorted(CARRIERS)


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


# --- shipment actions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentAction:
    name: str
    label: str
    form_class: type[ShipmentForm]
    run: Callable[[Shipment, object, ShipmentForm], object]
    done: str
    tone: str = "default"
    intro: str = ""
    inline: bool = False  # a one-click button on the shipment page (a POST form with no input)


def _note(form) -> str:
    return form.cleaned_data.get("reason") or ""


ACTIONS: dict[str, ShipmentAction] = {
    action.name: action
    for action in [
        ShipmentAction(
            "start_picking",
            _("Start picking"),
            NoInputForm,
            lambda s, u, f: services.shipment_start_picking(shipment=s, actor=u),
            _("Picking of %(number)s started."),
            tone="primary",
            inline=True,
        ),
        ShipmentAction(
            "confirm_picks",
            _("Confirm picks"),
            PicksForm,
            lambda s, u, f: services.shipment_confirm_picks(
                shipment=s, actor=u, picked=f.picked(), final=f.cleaned_data["final"], note=f.cleaned_data["note"]
            ),
            _("Picks confirmed on %(number)s."),
            tone="primary",
            intro=_(
                "Enter the units found per line. Nothing ships that was not picked: with “Final” ticked, "
                "a line left short opens a short pick for support to substitute, delay or cancel."
            ),
        ),
        ShipmentAction(
            "pack",
            _("Pack"),
            PackForm,
            lambda s, u, f: services.shipment_pack(
                shipment=s,
                actor=u,
                weight_grams=f.cleaned_data.get("weight_grams"),
                insured=f.cleaned_data.get("insured", False),
                reason=_note(f),
            ),
            _("%(number)s packed."),
            tone="primary",
        ),
        ShipmentAction(
            "print_label",
            _("Print label"),
            NoInputForm,
            lambda s, u, f: services.shipment_create_label(shipment=s, actor=u),
            _("Label of %(number)s created: open “Label PDF” to print it."),
            inline=True,
        ),
        ShipmentAction(
            "dispatch",
            _("Dispatch"),
            DispatchForm,
            lambda s, u, f: services.shipment_dispatch(
                shipment=s,
                actor=u,
                carrier=f.cleaned_data.get("carrier") or "",
                service=f.cleaned_data.get("service") or "",
                tracking_number=f.cleaned_data.get("tracking_number") or "",
            ),
            _("%(number)s handed to the carrier."),
            tone="primary",
            intro=_("Stock leaves the location, the order counts the units shipped and the customer is told."),
        ),
        ShipmentAction(
            "ready_for_pickup",
            _("Ready for pickup"),
            NoInputForm,
            lambda s, u, f: services.shipment_ready_for_pickup(shipment=s, actor=u),
            _("%(number)s is on the pickup shelf: the customer is told."),
            tone="primary",
            inline=True,
        ),
        ShipmentAction(
            "hand_over",
            _("Hand over"),
            ReasonForm,
            lambda s, u, f: services.shipment_hand_over(shipment=s, actor=u, reason=_note(f)),
            _("%(number)s handed to the customer."),
            tone="primary",
            intro=_("The customer collected the parcel: it counts as shipped and delivered."),
        ),
        ShipmentAction(
            "cancel",
            _("Cancel shipment"),
            CancelForm,
            lambda s, u, f: services.shipment_cancel(shipment=s, actor=u, reason=f.cleaned_data["reason"]),
            _("%(number)s canceled."),
            tone="danger",
            intro=_("The units stay reserved for the order and are planned into a new parcel."),
        ),
    ]
}


def shipment_available_actions(shipment: Shipment, user, *, all_picked: bool) -> list[ShipmentAction]:
    """The buttons `user` may use on `shipment` now (the services decide again on POST)."""
    status, delivery = shipment.status, shipment.kind == ShipmentKind.DELIVERY

    def may(codename: str) -> bool:
        return user.has_perm(f"fulfillment.{codename}")

    names = set()
    if status == S.PENDING and may("pick_shipment"):
        names.add("start_picking")
    if status in (S.PENDING, S.PICKING) and may("pick_shipment") and not (status == S.PICKING and all_picked):
        names.add("confirm_picks")
    if status == S.PICKING and all_picked and delivery and may("pack_shipment"):
        names.add("pack")
    if delivery and status in (S.PICKING, S.PACKED) and not shipment.label and not shipment.is_test:
        if may("dispatch_shipment"):
            names.add("print_label")
    if delivery and status == S.PACKED and may("dispatch_shipment"):
        names.add("dispatch")
    if not delivery and (status == S.PACKED or (status == S.PICKING and all_picked)) and may("pack_shipment"):
        names.add("ready_for_pickup")
    if status == S.READY_FOR_PICKUP and may("hand_over_shipment"):
        names.add("hand_over")
    if status in CANCELABLE_STATUSES and may("cancel_shipment"):
        names.add("cancel")
    return [action for name, action in ACTIONS.items() if name in names]


# --- shipments -----------------------------------------------------------------------------------


class CancelSelectedForm(forms.Form):
    reason = _text_field(required=True, label=_("Reason"), help_text=_("Required. Kept in each parcel's history."))

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, BigListMixin, AuditedAdmin):
    list_title = _("Shipments")
    list_display = (
        "number_column",
        "order_column",
        "location_column",
        "status_column",
        "carrier_column",
        "ship_by_column",
        "lines_column",
    )
    list_display_links = ("number_column",)
    list_filter = (
        ActiveLocationFilter,
        "status",
        CarrierFilter,
        "kind",
        LateFilter,
        WaveFilter,
    )
    list_select_related = ("order", "location", "wave")
    search_fields = ("number",)  # shows the box; get_search_results does the matching
    search_help_text = _("Shipment number (or its digits), tracking number, or order number / e-mail.")
    ordering = ("-pk",)  # the primary key follows time and is indexed
    sortable_by = ("ship_by_column",)
    actions = ["create_wave", "dispatch_selected", "print_labels", "cancel_selected"]

    def get_queryset(self, request):
        lines = (
            ShipmentLine.objects.filter(shipment=OuterRef("pk"))
            .order_by()
            .values("shipment")
            .annotate(n=Count("pk"), units=Sum("quantity"))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                line_count=Coalesce(Subquery(lines.values("n")), 0),
                unit_count=Coalesce(Subquery(lines.values("units")), 0),
                has_open_short=Exists(ShortPick.objects.filter(shipment=OuterRef("pk"), resolved_at__isnull=True)),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(shipment_search_q(search_term)), False

    # --- the list --------------------------------------------------------------------------------
    @admin.display(description=_("shipment"))
    def number_column(self, shipment):
        wave = format_html('<br><span class="oms-quiet">{}</span>', shipment.wave.number) if shipment.wave_id else ""
        return format_html("<strong>{}</strong>{}", shipment.number, wave)

    @admin.display(description=_("order"))
    def order_column(self, shipment):
        return format_html('<a href="{}">{}</a>', _url("orders_order_change", shipment.order_id), shipment.order.number)

    @admin.display(description=_("location"))
    def location_column(self, shipment):
        pickup = format_html(" {}", badge(_("pickup"), "purple")) if shipment.kind == ShipmentKind.PICKUP else ""
        return format_html("{}{}", shipment.location.name, pickup)

    @admin.display(description=_("status"))
    def status_column(self, shipment):
        flags = [shipment_badge(shipment)]
        if getattr(shipment, "has_open_short", False):
            flags.append(badge(_("short pick open"), "alert"))
        if shipment.is_test:
            flags.append(badge(_("test"), "test"))
        return format_html_join(" ", "{}", ((flag,) for flag in flags))

    @admin.display(description=_("carrier / tracking"))
    def carrier_column(self, shipment):
        if not shipment.carrier:
            return format_html('<span class="oms-quiet">{}</span>', "–")
        return format_html(
            '{} <span class="oms-quiet">{}</span><br>{}',
            shipment.carrier,
            shipment.service,
            _tracking_link(shipment),
        )

    @admin.display(description=_("ship by"), ordering="ship_by")
    def ship_by_column(self, shipment):
        if not shipment.ship_by:
            return ""
        if shipment.is_late:
            return format_html(
                '<strong class="oms-delta oms-delta--down oms-late" title="{}">{}</strong>',
                _("Late: the ship-by time has passed"),
                short_datetime(shipment.ship_by),
            )
        return short_datetime(shipment.ship_by)

    @admin.display(description=_("lines"))
    def lines_column(self, shipment):
        lines = getattr(shipment, "line_count", None)
        if lines is None:
            return shipment.lines.count()
        return format_html('{} <span class="oms-quiet">({} u.)</span>', lines, shipment.unit_count)

    def changelist_view(self, request, extra_context=None):
        extra = {
            "may_add_wave": request.user.has_perm("fulfillment.add_wave"),
            "open_short_picks": ShortPick.objects.filter(resolved_at__isnull=True).count(),
            "short_picks_url": _url("fulfillment_shortpick_changelist"),
            "new_wave_url": _url("fulfillment_wave_add"),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    # --- bulk actions (each calls the services; errors are reported per row) ---------------------
    def has_add_wave_permission(self, request):
        return request.user.has_perm("fulfillment.add_wave")

    def has_dispatch_permission(self, request):
        return request.user.has_perm("fulfillment.dispatch_shipment")

    def has_cancel_permission(self, request):
        return request.user.has_perm("fulfillment.cancel_shipment")

    @admin.action(description=_("Create a wave from the selected pending shipments"), permissions=["add_wave"])
    def create_wave(self, request, queryset):
        selected = list(queryset.select_related("location", "wave").order_by("pk"))
        locations = sorted({s.location.name for s in selected})
        if len(locations) > 1:
            messages.error(
                request,
                _("A wave is picked in one location: the selection is at %(locations)s. Filter by location first.")
                % {"locations": ", ".join(locations)},
            )
            return None
        if len(selected) > 2000:
            messages.error(request, _("A wave holds at most 2000 shipments."))
            return None
        try:
            wave = services.wave_create(
                location=selected[0].location,
                actor=request.user,
                shipment_ids=[s.pk for s in selected],
                limit=len(selected),
            )
        except SERVICE_ERRORS as exc:
            messages.error(request, _error_message(exc))
            return None
        taken = set(wave.shipments.values_list("pk", flat=True))
        messages.success(
            request,
            ngettext(
                "Wave %(wave)s created with %(n)d shipment: print its pick list.",
                "Wave %(wave)s created with %(n)d shipments: print its pick list.",
                len(taken),
            )
            % {"wave": wave.number, "n": len(taken)},
        )
        for shipment in selected:
            if shipment.pk not in taken:
                messages.warning(request, self._left_out(shipment))
        return HttpResponseRedirect(_url("fulfillment_wave_change", wave.pk))

    @staticmethod
    def _left_out(shipment: Shipment) -> str:
        if shipment.status != S.PENDING:
            why = _("it is %(status)s") % {"status": shipment.get_status_display().lower()}
        elif shipment.wave_id:
            why = _("it is already in wave %(wave)s") % {"wave": shipment.wave.number}
        elif shipment.is_test:
            why = _("test orders are never picked")
        else:
            why = _("its order is on hold, or another wave is taking it")
        return _("%(number)s was left out: %(why)s.") % {"number": shipment.number, "why": why}

    @admin.action(description=_("Dispatch the selected packed shipments"), permissions=["dispatch"])
    def dispatch_selected(self, request, queryset):
        selected = list(queryset.order_by("pk"))
        ready = []
        for shipment in selected:
            if shipment.status == S.PACKED and shipment.kind == ShipmentKind.DELIVERY:
                ready.append(shipment)
            else:
                messages.warning(
                    request,
                    _("%(number)s was not dispatched: it is %(status)s.")
                    % {"number": shipment.number, "status": shipment.get_status_display().lower()},
                )
        if not ready:
            return None
        try:
            # Together in one transaction: a customer with three parcels gets one message.
            done = services.shipments_dispatch(shipments=ready, actor=request.user)
        except SERVICE_ERRORS:
            # One of them was refused: the others go one by one, and each refusal is named.
            done = []
            for shipment in ready:
                try:
                    done.append(services.shipment_dispatch(shipment=shipment.pk, actor=request.user))
                except SERVICE_ERRORS as exc:
                    messages.error(request, f"{shipment.number}: {_error_message(exc)}")
        if done:
            messages.success(
                request,
                ngettext("%(n)d shipment dispatched: %(list)s.", "%(n)d shipments dispatched: %(list)s.", len(done))
                % {"n": len(done), "list": ", ".join(f"{s.number} ({s.tracking_number})" for s in done)},
            )
        return None

    @admin.action(description=_("Print labels of the selected shipments"), permissions=["dispatch"])
    def print_labels(self, request, queryset):
        labelled = []
        for shipment in queryset.order_by("pk"):
            try:
                labelled.append(services.shipment_create_label(shipment=shipment.pk, actor=request.user))
            except SERVICE_ERRORS as exc:
                messages.error(request, f"{shipment.number}: {_error_message(exc)}")
        if not labelled:
            return None
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Labels"),
            "subtitle": None,
            "shipments": [
                {"shipment": s, "label_url": _url("fulfillment_shipment_label", s.pk), "badge": shipment_badge(s)}
                for s in labelled
            ],
            "merged_url": _url("fulfillment_shipment_labels", query={"ids": ",".join(str(s.pk) for s in labelled)}),
            "changelist_url": _url("fulfillment_shipment_changelist"),
        }
        return TemplateResponse(request, "admin/fulfillment/shipment/labels.html", context)

    @admin.action(description=_("Cancel the selected shipments…"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        selected = list(queryset.select_related("order").order_by("pk"))
        form = CancelSelectedForm(request.POST if request.POST.get("post") else None)
        if request.POST.get("post") and form.is_valid():
            canceled = []
            for shipment in selected:
                try:
                    services.shipment_cancel(
                        shipment=shipment.pk, actor=request.user, reason=form.cleaned_data["reason"]
                    )
                    canceled.append(shipment.number)
                except SERVICE_ERRORS as exc:
                    messages.error(request, f"{shipment.number}: {_error_message(exc)}")
            if canceled:
                messages.success(
                    request,
                    ngettext("%(n)d shipment canceled: %(list)s.", "%(n)d shipments canceled: %(list)s.", len(canceled))
                    % {"n": len(canceled), "list": ", ".join(canceled)},
                )
            return None
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Cancel shipments"),
            "subtitle": None,
            "form": form,
            "shipments": [{"shipment": s, "badge": shipment_badge(s)} for s in selected],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": _url("fulfillment_shipment_changelist"),
        }
        return TemplateResponse(request, "admin/fulfillment/shipment/cancel_selected.html", context)

    # --- the shipment page -----------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("labels.pdf", view(self.labels_view), name="fulfillment_shipment_labels"),
            path("<path:object_id>/action/<slug:action>/", view(self.action_view), name="fulfillment_shipment_action"),
            path("<path:object_id>/label.pdf", view(self.label_view), name="fulfillment_shipment_label"),
            path(
                "<path:object_id>/packing-slip.pdf",
                view(self.packing_slip_view),
                name="fulfillment_shipment_packing_slip",
            ),
            *super().get_urls(),
        ]

    def _shipment(self, object_id) -> Shipment | None:
        pk = _pk(object_id)
        if pk is None:
            return None
        return Shipment.objects.select_related("order", "location", "wave").filter(pk=pk).first()

    @staticmethod
    def _lines(shipment: Shipment) -> list[ShipmentLine]:
        return list(
            shipment.lines.select_related("order_line", "order_line__order").order_by(
                "order_line__order_id", "order_line__line_number"
            )
        )

    @staticmethod
    def _bins(shipment: Shipment, lines: list[ShipmentLine]) -> dict[int, str]:
        """Product → bin at the shipment's location (where the picker walks)."""
        return dict(
            StockItem.objects.filter(
                location_id=shipment.location_id,
                product_id__in={line.order_line.product_id for line in lines if line.order_line.product_id},
            ).values_list("product_id", "bin_location")
        )

    def _base_context(self, request, shipment: Shipment, *, title) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": title,
            "subtitle": None,
            "shipment": shipment,
            "original": shipment,
            "status_badge": shipment_badge(shipment),
            "tracking_link": _tracking_link(shipment),
            "change_url": _url("fulfillment_shipment_change", shipment.pk),
            "changelist_url": _url("fulfillment_shipment_changelist"),
            "order_url": _url("orders_order_change", shipment.order_id),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        shipment = self._shipment(object_id)
        if shipment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, shipment):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        lines = self._lines(shipment)
        bins = self._bins(shipment, lines)
        orders = {line.order_line.order_id for line in lines}
        short_picks = list(
            shipment.short_picks.select_related("order_line", "reported_by", "resolved_by").order_by("-reported_at")
        )
        context_shorts = [
            {"short": short, "url": _url("fulfillment_shortpick_change", short.pk)} for short in short_picks
        ]
        open_shorts = [item["url"] for item in context_shorts if item["short"].is_open]
        may_resolve = request.user.has_perm("fulfillment.resolve_short_pick")
        all_picked = bool(lines) and all(line.quantity_picked == line.quantity for line in lines)
        actions = shipment_available_actions(shipment, request.user, all_picked=all_picked)
        history = list(shipment.history.select_related("history_user").order_by("-history_date", "-history_id")[:25])
        context = {
            **self._base_context(request, shipment, title=_("Shipment %(number)s") % {"number": shipment.number}),
            "lines": [
                {
                    "line": line,
                    "bin": bins.get(line.order_line.product_id, ""),
                    "customs_value": money(line.customs_value, shipment.currency),
                    "short": line.quantity_picked < line.quantity,
                }
                for line in lines
            ],
            "several_orders": len(orders) > 1,
            "units": sum(line.quantity for line in lines),
            "picked": sum(line.quantity_picked for line in lines),
            "short_picks": context_shorts,
            "tracking": [
                {"update": update, "tone": TRACKING_TONES.get(update.status, "info")}
                for update in selectors.tracking_of(shipment)
            ],
            "history": [
                {"row": row, "status": ShipmentStatus(row.status).label if row.status in S.values else row.status}
                for row in history
            ],
            "ship_to": format_address(shipment.ship_to or {}),
            "declared_value": money(shipment.declared_value, shipment.currency),
            "insurance_amount": money(shipment.insurance_amount, shipment.currency),
            "actions": [
                {"action": action, "url": _url("fulfillment_shipment_action", shipment.pk, action.name)}
                for action in actions
            ],
            # The oldest open short pick: support resolves them in the order they came.
            "resolve_url": open_shorts[-1] if open_shorts and may_resolve else "",
            "label_url": _url("fulfillment_shipment_label", shipment.pk) if shipment.label else "",
            "packing_slip_url": _url("fulfillment_shipment_packing_slip", shipment.pk) if lines else "",
            "wave_url": _url("fulfillment_wave_change", shipment.wave_id) if shipment.wave_id else "",
            "history_url": _url("fulfillment_shipment_history", shipment.pk),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/fulfillment/shipment/detail.html", context)

    def action_view(self, request, object_id, action):
        spec = ACTIONS.get(action)
        if spec is None:
            raise Http404(f"Unknown action {action!r}.")
        shipment = self._shipment(object_id)
        if shipment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, shipment):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        change_url = _url("fulfillment_shipment_change", shipment.pk)
        lines = self._lines(shipment)
        kwargs = {"shipment": shipment, "user": request.user}
        if spec.form_class is PicksForm:
            kwargs["lines"] = lines
        if request.method == "POST":
            # The service decides (permission, state, input); the form only collects the input.
            form = spec.form_class(request.POST, **kwargs)
            if form.is_valid():
                done = _run_service(request, form, lambda: spec.run(shipment, request.user, form) or True)
                if done is not None:
                    messages.success(request, spec.done % {"number": shipment.number})
                    return HttpResponseRedirect(change_url)
            if spec.inline:  # no input to correct: the message says why, on the shipment page
                return HttpResponseRedirect(change_url)
        else:
            all_picked = bool(lines) and all(line.quantity_picked == line.quantity for line in lines)
            available = shipment_available_actions(shipment, request.user, all_picked=all_picked)
            if spec.name not in {a.name for a in available}:
                messages.warning(
                    request,
                    _("“%(action)s” is not available on %(number)s now.")
                    % {"action": spec.label, "number": shipment.number},
                )
                return HttpResponseRedirect(change_url)
            form = spec.form_class(**kwargs)
        rows = []
        if isinstance(form, PicksForm):
            bins = self._bins(shipment, lines)
            rows = [
                {"line": line, "field": form[f"line_{line.pk}"], "bin": bins.get(line.order_line.product_id, "")}
                for line in sorted(
                    lines, key=lambda line: (natural_bin_key(bins.get(line.order_line.product_id, "")), line.pk)
                )
            ]
        context = {
            **self._base_context(request, shipment, title=f"{spec.label} — {shipment.number}"),
            "action": spec,
            "form": form,
            "rows": rows,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/fulfillment/shipment/action_form.html", context)

    def label_view(self, request, object_id):
        shipment = self._shipment(object_id)
        if shipment is None or not shipment.label:
            raise Http404("No label.")
        if not self.has_view_permission(request, shipment):
            raise PermissionDenied
        return _pdf_response(shipment.label.open("rb"), os.path.basename(shipment.label.name))

    def labels_view(self, request):
        """Every label asked for, as one PDF to print in one go (in the order of the ids)."""
        from pypdf import PdfWriter

        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(pk) for pk in request.GET.get("ids", "").split(",") if pk.strip().isdigit()][:500]
        shipments = {s.pk: s for s in Shipment.objects.filter(pk__in=ids).exclude(label="")}
        if not shipments:
            raise Http404("No label.")
        writer = PdfWriter()
        for pk in ids:
            if pk in shipments:
                with shipments[pk].label.open("rb") as label:
                    writer.append(BytesIO(label.read()))
        buffer = BytesIO()
        writer.write(buffer)
        buffer.seek(0)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return _pdf_response(buffer, f"labels-{stamp}.pdf")

    def packing_slip_view(self, request, object_id):
        shipment = self._shipment(object_id)
        if shipment is None:
            raise Http404("No shipment.")
        if not self.has_view_permission(request, shipment):
            raise PermissionDenied
        pdf = services.shipment_packing_slip_pdf(shipment)
        return _pdf_response(BytesIO(pdf), f"{shipment.number}-packing-slip.pdf")


# --- waves ---------------------------------------------------------------------------------------


class WaveForm(forms.Form):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    ship_by_before = forms.SplitDateTimeField(
        label=_("Ship by before"),
        required=False,
        widget=AdminSplitDateTime,
        help_text=_("Only parcels due by then. Empty: every pending parcel."),
    )
    carrier = forms.ChoiceField(label=_("Carrier"), required=False)
    max_priority = forms.IntegerField(
        label=_("Priority up to"),
        required=False,
        min_value=0,
        max_value=1000,
        help_text=_("Lower is more urgent: express parcels are 10, the others 100."),
    )
    limit = forms.IntegerField(label=_("At most"), min_value=1, max_value=2000, initial=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["carrier"].choices = [("", _("Any"))] + [
            (code, adapter.name or code) for code, adapter in sorted(CARRIERS.items())
        ]

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


def _render_state(wave: Wave) -> dict:
    ready = wave.render_status == WaveRender.READY and bool(wave.pick_list)
    return {
        "status": wave.render_status,
        "label": str(wave.get_render_status_display()),
        "progress": wave.render_progress,
        "error": wave.render_error,
        "url": _url("fulfillment_wave_pick_list", wave.pk) if ready else None,
    }


@admin.register(Wave)
class WaveAdmin(BigListMixin, AuditedAdmin):
    list_title = _("Waves")
    list_display = ("number", "location", "shipments_column", "render_column", "created_by", "created_column")
    list_filter = (ActiveLocationFilter, "render_status")
    list_select_related = ("location", "created_by")
    search_fields = ("number",)
    search_help_text = _("Wave number.")
    ordering = ("-pk",)
    sortable_by = ()
    actions = None

    def get_queryset(self, request):
        shipments = (
            Shipment.objects.filter(wave=OuterRef("pk")).order_by().values("wave").annotate(n=Count("pk")).values("n")
        )
        return super().get_queryset(request).annotate(shipment_count=Coalesce(Subquery(shipments), 0))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(number=term.upper()), False

    def has_add_permission(self, request):
        return request.user.has_perm("fulfillment.add_wave")

    def has_change_permission(self, request, obj=None):
        return False  # the wave page's buttons call the services

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("shipments"))
    def shipments_column(self, wave):
        return wave.shipment_count

    @admin.display(description=_("pick list"))
    def render_column(self, wave):
        state = badge(wave.get_render_status_display(), RENDER_TONES.get(wave.render_status, "muted"))
        if wave.render_status in RENDERING:
            return format_html(
                '{} <progress max="100" value="{}">{} %</progress>', state, wave.render_progress, wave.render_progress
            )
        if wave.render_status == WaveRender.READY and wave.pick_list:
            return format_html(
                '{} <a href="{}" target="_blank">{}</a>', state, _url("fulfillment_wave_pick_list", wave.pk), _("PDF")
            )
        return state

    @admin.display(description=_("created"))
    def created_column(self, wave):
        return short_datetime(wave.created_at)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/print/", view(self.print_view), name="fulfillment_wave_print"),
            path(
                "<path:object_id>/render-status/", view(self.render_status_view), name="fulfillment_wave_render_status"
            ),
            path("<path:object_id>/pick-list.pdf", view(self.pick_list_view), name="fulfillment_wave_pick_list"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """New wave: pending parcels of one location by cut-off, carrier and priority (`wave_create`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        if request.method == "POST":
            form = WaveForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                wave = _run_service(
                    request,
                    form,
                    lambda: services.wave_create(
                        location=data["location"],
                        actor=request.user,
                        ship_by_before=data.get("ship_by_before"),
                        carrier=data.get("carrier") or "",
                        max_priority=data.get("max_priority"),
                        limit=data["limit"],
                    ),
                )
                if wave is not None:
                    count = wave.shipments.count()
                    messages.success(
                        request,
                        ngettext(
                            "Wave %(wave)s created with %(n)d shipment: print its pick list.",
                            "Wave %(wave)s created with %(n)d shipments: print its pick list.",
                            count,
                        )
                        % {"wave": wave.number, "n": count},
                    )
                    return HttpResponseRedirect(_url("fulfillment_wave_change", wave.pk))
        else:
            initial = {}
            if request.GET.get("location", "").isdigit():
                initial["location"] = int(request.GET["location"])
            form = WaveForm(initial=initial)
        return _form_page(
            request,
            self,
            form=form,
            title=_("New wave"),
            submit=_("Create the wave"),
            intro=_(
                "Pending parcels of one location start picking together, most urgent first. "
                "Parcels of orders on hold are left out."
            ),
            back_url=_url("fulfillment_wave_changelist"),
            extra={"pending": self._pending_by_location()},
        )

    @staticmethod
    def _pending_by_location() -> list[dict]:
        """What a new wave could take now, per location (the status index: pending rows only)."""
        rows = (
            Shipment.objects.filter(status=S.PENDING, wave__isnull=True, is_test=False)
            .values("location_id", "location__name")
            .annotate(n=Count("pk"), late=Count("pk", filter=Q(ship_by__lt=timezone.now())))
            .order_by("location__name")
        )
        return [
            {
                "name": row["location__name"],
                "count": row["n"],
                "late": row["late"],
                "add_url": _url("fulfillment_wave_add", query={"location": row["location_id"]}),
            }
            for row in rows
        ]

    def _wave(self, object_id) -> Wave | None:
        pk = _pk(object_id)
        if pk is None:
            return None
        return Wave.objects.select_related("location", "created_by").filter(pk=pk).first()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        wave = self._wave(object_id)
        if wave is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, wave):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        lines = (
            ShipmentLine.objects.filter(shipment=OuterRef("pk"))
            .order_by()
            .values("shipment")
            .annotate(n=Sum("quantity"))
            .values("n")
        )
        shipments = list(
            wave.shipments.select_related("order")
            .annotate(unit_count=Coalesce(Subquery(lines), 0))
            .order_by("priority", F("ship_by").asc(nulls_last=True), "pk")
        )
        by_status = defaultdict(int)
        for shipment in shipments:
            by_status[shipment.status] += 1
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Wave %(number)s") % {"number": wave.number},
            "subtitle": None,
            "wave": wave,
            "original": wave,
            "render": _render_state(wave),
            "render_badge": badge(wave.get_render_status_display(), RENDER_TONES.get(wave.render_status, "muted")),
            "rendering": wave.render_status in RENDERING,
            "may_print": request.user.has_perm("fulfillment.print_wave"),
            "shipments": [
                {
                    "shipment": s,
                    "badge": shipment_badge(s),
                    "url": _url("fulfillment_shipment_change", s.pk),
                    "order_url": _url("orders_order_change", s.order_id),
                }
                for s in shipments
            ],
            "units": sum(s.unit_count for s in shipments),
            "by_status": [
                {
                    "label": ShipmentStatus(status).label,
                    "count": n,
                    "badge": badge(ShipmentStatus(status).label, SHIPMENT_TONES[status]),
                }
                for status, n in by_status.items()
            ],
            "criteria": [
                (key.replace("_", " "), value) for key, value in (wave.criteria or {}).items() if key != "shipments"
            ],
            "print_url": _url("fulfillment_wave_print", wave.pk),
            "status_url": _url("fulfillment_wave_render_status", wave.pk),
            "shipments_url": _url("fulfillment_shipment_changelist", query={"wave": wave.pk}),
            "changelist_url": _url("fulfillment_wave_changelist"),
            "history_url": _url("fulfillment_wave_history", wave.pk),
        }
        return TemplateResponse(request, "admin/fulfillment/wave/detail.html", context)

    def print_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        wave = self._wave(object_id)
        if wave is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, wave):
            raise PermissionDenied
        try:
            wave = services.wave_print(wave=wave, actor=request.user)
        except SERVICE_ERRORS as exc:
            messages.error(request, _error_message(exc))
        else:
            if wave.render_status == WaveRender.READY:
                messages.success(request, _("Pick list of %(wave)s printed.") % {"wave": wave.number})
            else:
                messages.info(
                    request,
                    _(
                        "The pick list of %(wave)s is rendered in the background: "
                        "this page shows its progress, then the download."
                    )
                    % {"wave": wave.number},
                )
        return HttpResponseRedirect(_url("fulfillment_wave_change", wave.pk))

    def render_status_view(self, request, object_id):
        """Polled by the wave page's progress bar: a few columns of one row."""
        pk = _pk(object_id)
        wave = (
            Wave.objects.filter(pk=pk)
            .only("pk", "render_status", "render_progress", "render_error", "pick_list")
            .first()
            if pk is not None
            else None
        )
        if wave is None:
            raise Http404("No wave.")
        if not self.has_view_permission(request, wave):
            raise PermissionDenied
        response = JsonResponse(_render_state(wave))
        response["Cache-Control"] = "no-store"
        return response

    def pick_list_view(self, request, object_id):
        wave = self._wave(object_id)
        if wave is None or not wave.pick_list:
            raise Http404("No pick list.")
        if not self.has_view_permission(request, wave):
            raise PermissionDenied
        return _pdf_response(wave.pick_list.open("rb"), f"{wave.number}.pdf")


# --- short picks ---------------------------------------------------------------------------------

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


# --- tracking and consolidation ------------------------------------------------------------------


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


# --- the Shipments panel of the order page -------------------------------------------------------


def order_shipments_panel(*, order: Order, user) -> dict | None:
    """The order's parcels for the order page: number, location, status, tracking, contents."""
    if not user.has_perm("fulfillment.view_shipment"):
        return None
    parcels = []
    for shipment in selectors.shipments_of_order(order):
        own, others = [], 0
        for line in shipment.lines.all():
            if line.order_line.order_id == order.pk:
                own.append(line)
            else:
                others += line.quantity
        parcels.append(
            {
                "shipment": shipment,
                "url": _url("fulfillment_shipment_change", shipment.pk),
                "badge": shipment_badge(shipment),
                "tracking": _tracking_link(shipment),
                "late": shipment.is_late,
                "items": [
                    {"sku": line.order_line.sku, "quantity": line.quantity, "picked": line.quantity_picked}
                    for line in own
                ],
                "other_units": others,
                "consolidated_into": shipment.order if shipment.order_id != order.pk else None,
            }
        )
    return {
        "parcels": parcels,
        "count": sum(1 for p in parcels if p["shipment"].status != S.CANCELED),
        "list_url": _url("fulfillment_shipment_changelist", query={"q": order.number}),
    }
