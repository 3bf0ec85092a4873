"""The waves: the list, a new wave (`wave_create`), and the wave page that prints its pick list
(in the background for large waves, with a polled progress bar)."""

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from fulfillment import services
from fulfillment.admin._common import (
    RENDER_TONES,
    RENDERING,
    SERVICE_ERRORS,
    SHIPMENT_TONES,
    BigListMixin,
    S,
    _error_message,
    _form_page,
    _pdf_response,
    _pk,
    _run_service,
    _url,
    shipment_badge,
)
from fulfillment.admin.filters import LocationFilter
from fulfillment.carriers.registry import CARRIERS
from fulfillment.choices import ShipmentStatus, WaveRender
from fulfillment.models import Shipment, ShipmentLine, Wave
from inventory.models import Location
from oms.core.admin import (
    AuditedAdmin,
    badge,
    short_datetime,
)


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
    list_filter = (LocationFilter, "render_status")
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
