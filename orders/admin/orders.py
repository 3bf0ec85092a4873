"""The order list and the order page (the cockpit's main screen), with the panels other apps register."""

import dataclasses
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from oms.core.admin import (
    ORDER_PAGE_ACTIONS,
    AuditedAdmin,
    EstimatedCountPaginator,
    QueueStateFilter,
    ReadOnlyAdminMixin,  # noqa: F401 (shared cockpit helpers)
    apply_service_error,
    badge,
    money,
    order_page_panels,
    short_datetime,
)
from oms.core.errors import ApplicationError
from orders.addresses import format_address
from orders.admin.actions import ACTIONS, order_available_actions
from orders.admin.timeline import (
    EVENT_TONES,
    FULFILLMENT_TONES,
    PAYMENT_TONES,
    STATUS_TONES,
    TIMELINE_EVENTS,
    event_for,
)
from orders.choices import (
    OrderEventType,
    OrderStatus,
)
from orders.fraud_details import RISK_FIELDS, can_see_fraud_details, hold_is_fraud
from orders.labels import order_customer_label
from orders.models import Order, OrderEvent, OrderHold, OrderLine, OrderNote
from orders.selectors import order_search_q


class ActiveHoldFilter(admin.SimpleListFilter):
    title = _("hold")
    parameter_name = "on_hold"

    def lookups(self, request, model_admin):
        return [("yes", _("On hold")), ("no", _("Not on hold"))]

    def queryset(self, request, queryset):
        active = Exists(OrderHold.objects.filter(order=OuterRef("pk"), released_at__isnull=True))
        if self.value() == "yes":
            return queryset.filter(active)
        if self.value() == "no":
            return queryset.exclude(active)
        return queryset


class HoldStateFilter(QueueStateFilter):
    """Active holds by default: the list is the exception queue."""

    closed_field = "released_at"
    open_choice = ("active", _("Active"))
    closed_choice = ("released", _("Released"))


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = (
        "number",
        "placed_column",
        "customer_column",
        "status_badge",
        "progress_column",
        "total_column",
        "flags_column",
    )
    list_display_links = ("number",)
    list_filter = (
        "status",
        "payment_status",
        "fulfillment_status",
        ActiveHoldFilter,
        "channel",
        "is_test",
        "tags",
        "placed_at",
    )
    list_select_related = ("channel", "customer")
    list_per_page = 50
    search_fields = ("number",)  # shows the search box; get_search_results does the matching
    search_help_text = _("Order number (or its sequence digits), external id or the customer's exact e-mail address.")
    sortable_by = ("number", "placed_at")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if getattr(request, "_oms_order_list", False):
            queryset = queryset.prefetch_related(
                "tags",
                Prefetch(
                    "holds",
                    queryset=OrderHold.objects.filter(released_at__isnull=True).order_by("placed_at"),
                    to_attr="active_holds",
                ),
            )
        return queryset

    def changelist_view(self, request, extra_context=None):
        request._oms_order_list = True  # the tags and holds columns are prefetched for the page only
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(order_search_q(term)), False

    @admin.display(description=_("placed / channel"), ordering="placed_at")
    def placed_column(self, order):
        return format_html('{}<br><span class="oms-quiet">{}</span>', short_datetime(order.placed_at), order.channel)

    @admin.display(description=_("customer"))
    def customer_column(self, order):
        name = order.customer.full_name or order.customer.company_name
        if name:
            return format_html('{}<br><span class="oms-quiet">{}</span>', name, order.email)
        return order.email

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, order):
        return badge(order.get_status_display(), STATUS_TONES.get(order.status, "muted"))

    @admin.display(description=_("payment"))
    def payment_badge(self, order):
        return badge(order.get_payment_status_display(), PAYMENT_TONES.get(order.payment_status, "muted"))

    @admin.display(description=_("fulfillment"))
    def fulfillment_badge(self, order):
        return badge(order.get_fulfillment_status_display(), FULFILLMENT_TONES.get(order.fulfillment_status, "muted"))

    @admin.display(description=_("total"))
    def total_column(self, order):
        return format_html('<span class="oms-money">{}</span>', money(order.total_gross, order.currency))

    @admin.display(description=_("payment / fulfillment"))
    def progress_column(self, order):
        return format_html("{}<br>{}", self.payment_badge(order), self.fulfillment_badge(order))

    def _flags(self, order, *, fraud_notes: bool):
        holds = getattr(order, "active_holds", None)
        if holds is None:
            holds = [h for h in order.holds.all() if h.released_at is None]
        flags = [badge(_("test"), "test")] if order.is_test else []
        flags += [
            badge(
                _("hold: %(reason)s") % {"reason": h.get_reason_display()},
                "alert",
                title=h.note if fraud_notes or not hold_is_fraud(h.reason) else "",
            )
            for h in holds
        ]
        flags += [
            format_html('<span class="oms-tag" style="--tag-color: {}">{}</span>', tag.color, tag.name)
            for tag in order.tags.all()
        ]
        return format_html_join(" ", "{}", ((flag,) for flag in flags))

    @admin.display(description=_("test, holds, tags"))
    def flags_column(self, order):
        return self._flags(order, fraud_notes=True)

    @admin.display(description=_("test, holds, tags"))
    def flags_column_plain(self, order):
        """The flags without a fraud-review hold's note (its tooltip): for those who do not work fraud."""
        return self._flags(order, fraud_notes=False)

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if can_see_fraud_details(request.user):
            return columns
        return tuple("flags_column_plain" if name == "flags_column" else name for name in columns)

    def get_exclude(self, request, obj=None):
        # The order's form is shown only by its history (a past version): no risk fields there either.
        exclude = tuple(super().get_exclude(request, obj) or ())
        return exclude if can_see_fraud_details(request.user) else (*exclude, *RISK_FIELDS)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        """simple-history's field changes per version; for those who do not work fraud, without the
        risk fields, and without the reason of a version that changed them or went into or out of a
        review (the reason is the fraud note)."""
        if can_see_fraud_details(request.user):
            return super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        records = list(historical_records)
        for newer, older in zip(records, [*records[1:], None], strict=True):
            # The oldest version of the page is compared with the one before it (on the next page).
            older = older or newer.prev_record
            if older is None:
                continue
            delta = newer.diff_against(older, foreign_keys_are_objs=foreign_keys_are_objs)
            if any(
                change.field in RISK_FIELDS
                or (change.field == "status" and OrderStatus.UNDER_REVIEW in (change.old, change.new))
                for change in delta.changes
            ):
                newer.history_change_reason = ""
                delta = dataclasses.replace(
                    delta,
                    changes=[change for change in delta.changes if change.field not in RISK_FIELDS],
                    changed_fields=[name for name in delta.changed_fields if name not in RISK_FIELDS],
                )
            helper = self.get_historical_record_context_helper(request, newer)
            newer.history_delta_changes = helper.context_for_delta_changes(delta)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/action/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="orders_order_action",
            ),
            *super().get_urls(),
        ]

    def _page_order(self, request, object_id) -> Order | None:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            return None
        return (
            self.get_queryset(request)
            .prefetch_related(
                Prefetch("lines", queryset=OrderLine.objects.order_by("line_number")),
                Prefetch("holds", queryset=OrderHold.objects.select_related("placed_by", "released_by")),
                # The newest events only: an order with a long life links to its full event list.
                Prefetch(
                    "events",
                    queryset=OrderEvent.objects.select_related("actor").order_by("-created_at", "-id")[
                        :TIMELINE_EVENTS
                    ],
                    to_attr="timeline_events",  # a sliced prefetch needs its own attribute
                ),
                Prefetch("notes", queryset=OrderNote.objects.select_related("author")),
                "tags",
            )
            .filter(pk=pk)
            .first()
        )

    def _base_context(self, request, order, title):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": title,
            "subtitle": None,
            "order": order,
            "original": order,
            "status_badge": self.status_badge(order),
            "payment_badge": self.payment_badge(order),
            "fulfillment_badge": self.fulfillment_badge(order),
            "customer_label": order_customer_label(order, language=get_language()),
            "customer_label_own": order_customer_label(order),
            "change_url": reverse("admin:orders_order_change", args=[order.pk], current_app=self.admin_site.name),
            "changelist_url": reverse("admin:orders_order_changelist", current_app=self.admin_site.name),
            "money": {
                "total": money(order.total_gross, order.currency),
                "net": money(order.total_net, order.currency),
                "tax": money(order.total_tax, order.currency),
                "shipping": money(order.shipping_price, order.currency),
                "discount": money(order.discount_total, order.currency),
                "paid": money(order.amount_paid, order.currency),
                "authorized": money(order.amount_authorized, order.currency),
                "refunded": money(order.amount_refunded, order.currency),
                "due": money(max(order.total_gross - order.amount_paid, Decimal("0")), order.currency),
            },
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self._page_order(request, object_id)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        holds = sorted(order.holds.all(), key=lambda h: (h.released_at is not None, -h.placed_at.timestamp()))
        lines = list(order.lines.all())
        events = order.timeline_events
        events_total = order.events.count() if len(events) >= TIMELINE_EVENTS else len(events)
        # Translated once per page, not once per event (get_type_display rebuilds the choices).
        event_labels = {value: str(label) for value, label in OrderEventType.choices}
        panels = order_page_panels(order=order, user=request.user)
        fraud_details = can_see_fraud_details(request.user)
        timeline = [(e, *event_for(request.user, e)) for e in events]
        context = {
            **self._base_context(request, order, title=_("Order %(number)s") % {"number": order.number}),
            "lines": [
                {
                    "line": line,
                    "unit_price": money(line.unit_price, order.currency),
                    "discount": money(line.discount_amount, order.currency) if line.discount_amount else "",
                    "total": money(line.total_gross, order.currency),
                    "tax_rate": f"{line.tax_rate * 100:.2f}".rstrip("0").rstrip(".") + " %",
                }
                for line in lines
            ],
            "quantities": {
                "ordered": sum(line.quantity for line in lines),
                "canceled": sum(line.quantity_canceled for line in lines),
                "shipped": sum(line.quantity_shipped for line in lines),
                "delivered": sum(line.quantity_delivered for line in lines),
                "open": sum(line.quantity_open for line in lines),
            },
            "holds": [{"hold": h, "notes_withheld": not fraud_details and hold_is_fraud(h.reason)} for h in holds],
            "active_hold_count": sum(1 for h in holds if h.released_at is None),
            "show_risk": fraud_details,
            "events": [
                {
                    "event": e,
                    "label": event_labels.get(e.type, e.type),
                    "reason": reason,
                    "summary": summary,
                    "withheld": withheld,
                    "tone": EVENT_TONES.get(e.type, "info"),
                }
                for e, reason, summary, withheld in timeline
            ],
            "events_total": events_total,
            "events_url": reverse("admin:orders_orderevent_changelist", current_app=self.admin_site.name)
            + f"?q={order.number}",
            "notes": list(order.notes.all()),
            "tags": list(order.tags.all()),
            "billing_address": format_address(order.billing_address or {}),
            "shipping_address": format_address(order.shipping_address or {}),
            "actions": [
                {
                    "action": action,
                    "url": reverse(
                        "admin:orders_order_action", args=[order.pk, action.name], current_app=self.admin_site.name
                    ),
                }
                for action in order_available_actions(order, request.user)
            ],
            "history_url": reverse("admin:orders_order_history", args=[order.pk], current_app=self.admin_site.name),
            # Each panel's data under its key, and the panels' templates in page order.
            **{panel.key: data for panel, data in panels},
            "panel_templates": [panel.template for panel, _data in panels],
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orders/order/detail.html", context)

    def action_view(self, request, object_id, action):
        spec = ACTIONS.get(action) or ORDER_PAGE_ACTIONS.get(action)
        if spec is None:
            raise Http404(f"Unknown action {action!r}.")
        order = self._page_order(request, object_id)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        change_url = reverse("admin:orders_order_change", args=[order.pk], current_app=self.admin_site.name)
        if request.method == "POST":
            # The service decides (permission, state, input); the form only collects the input.
            form = spec.form_class(request.POST, order=order, user=request.user)
            if form.is_valid():
                try:
                    spec.run(order, request.user, form)
                except ApplicationError as exc:
                    apply_service_error(form, exc)
                    messages.error(request, exc.message)
                except (TransitionNotAllowed, ConcurrentTransition) as exc:
                    form.add_error(None, str(exc))
                    messages.error(request, str(exc))
                else:
                    messages.success(request, spec.done % {"number": order.number})
                    return HttpResponseRedirect(change_url)
        else:
            if spec.name not in {a.name for a in order_available_actions(order, request.user)}:
                messages.warning(
                    request,
                    _("“%(action)s” is not available on order %(number)s now.")
                    % {"action": spec.label, "number": order.number},
                )
                return HttpResponseRedirect(change_url)
            initial = {"hold": request.GET.get("hold")} if action == "release_hold" else None
            form = spec.form_class(order=order, user=request.user, initial=initial)
        context = {
            **self._base_context(request, order, title=f"{spec.label} — {order.number}"),
            "action": spec,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)
