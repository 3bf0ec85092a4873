"""The shipment list (with its bulk actions: wave, dispatch, labels, cancel) and the shipment page
(lines, short picks, tracking, history, action forms, label and packing-slip PDFs)."""

import os
from io import BytesIO

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from pypdf import PdfWriter

from fulfillment import selectors, services
from fulfillment.admin._common import (
    SERVICE_ERRORS,
    TRACKING_TONES,
    BigListMixin,
    S,
    _error_message,
    _pdf_response,
    _pk,
    _run_service,
    _text_field,
    _tracking_link,
    _url,
    shipment_badge,
)
from fulfillment.admin.filters import CarrierFilter, LateFilter, LocationFilter, WaveFilter, shipment_search_q
from fulfillment.admin.shipment_actions import ACTIONS, PicksForm, shipment_available_actions
from fulfillment.choices import ShipmentKind, ShipmentStatus
from fulfillment.documents import natural_bin_key
from fulfillment.models import Shipment, ShipmentLine, ShortPick
from inventory.models import StockItem
from oms.core.admin import (
    AuditedAdmin,
    ReadOnlyAdminMixin,
    badge,
    money,
    short_datetime,
)
from orders.addresses import format_address


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
        LocationFilter,
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
