"""The cockpit's returns: the queue of parcels to receive and inspect, and the return page.

Rows are written only by `returns.services`; every button here calls one service and turns its
`ApplicationError` into a message on the page (and field errors onto the inspection form).
"""

import os

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from inventory.models import Location
from oms.core.admin import AuditedAdmin
from oms.core.errors import ApplicationError
from returns import selectors, services
from returns.choices import TO_RECEIVE_OR_INSPECT, ReturnStatus
from returns.models import ReturnLine, ReturnRequest


def _url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


class QueueFilter(admin.SimpleListFilter):
    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("todo", _("To receive or inspect"))]

    def queryset(self, request, queryset):
        if self.value() == "todo":
            return queryset.filter(status__in=TO_RECEIVE_OR_INSPECT)
        return queryset


class InspectionForm(forms.Form):
    """Three counts per returned line and the restock location; the service checks the sums."""

    location = forms.ModelChoiceField(
        queryset=Location.objects.filter(is_active=True), required=False, label=_("Restock at")
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Note"))

    def __init__(self, *args, lines: list[ReturnLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            for kind in ("resellable", "damaged", "missing"):
                initial = line.quantity if kind == "resellable" else 0
                self.fields[f"{kind}_{line.pk}"] = forms.IntegerField(min_value=0, initial=initial, label=kind)

    def results(self) -> dict:
        return {
            line.pk: {kind: self.cleaned_data[f"{kind}_{line.pk}"] for kind in ("resellable", "damaged", "missing")}
            for line in self.lines
        }


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label=_("Reason"))


# name: (label, service call, required permission, statuses where offered)
SIMPLE_ACTIONS = {
    "approve": (_("Approve and issue the label"), services.return_approve, "approve", [ReturnStatus.REQUESTED]),
    "receive": (_("Parcel received"), services.return_receive, "receive", [ReturnStatus.APPROVED]),
    "close": (_("Close"), services.return_close, "close", [ReturnStatus.INSPECTED]),
    "cancel": (
        _("Cancel the return"),
        services.return_cancel,
        "cancel",
        [ReturnStatus.REQUESTED, ReturnStatus.APPROVED],
    ),
}


@admin.register(ReturnRequest)
class ReturnRequestAdmin(AuditedAdmin):
    list_display = [
        "number",
        "order",
        "customer",
        "status",
        "method",
        "restock_location",
        "tracking_number",
        "requested_at",
    ]
    list_filter = [QueueFilter, "status", "method", "restock_location"]
    search_fields = ["number", "order__number", "customer__email", "tracking_number"]
    list_select_related = ["order", "customer", "restock_location"]
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("queue/", self.admin_site.admin_view(self.queue_view), name="{}_{}_queue".format(*info)),
            path(
                "<path:object_id>/label/", self.admin_site.admin_view(self.label_view), name="{}_{}_label".format(*info)
            ),
            path(
                "<path:object_id>/inspect/",
                self.admin_site.admin_view(self.inspect_view),
                name="{}_{}_inspect".format(*info),
            ),
            path(
                "<path:object_id>/refuse/",
                self.admin_site.admin_view(self.refuse_view),
                name="{}_{}_refuse".format(*info),
            ),
            path(
                "<path:object_id>/do/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="{}_{}_action".format(*info),
            ),
            *super().get_urls(),
        ]

    # --- helpers ---------------------------------------------------------------------------------

    def _get(self, request, object_id) -> ReturnRequest:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            raise Http404("No such return.") from None
        found = ReturnRequest.objects.select_related("order", "customer", "restock_location").filter(pk=pk).first()
        if found is None:
            raise Http404("No such return.")
        if not self.has_view_permission(request, found):
            raise PermissionDenied
        return found

    def _context(self, request, rma: ReturnRequest, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Return %(number)s") % {"number": rma.number},
            "rma": rma,
            "original": rma,
            "change_url": _url("returns_returnrequest_change", rma.pk),
            "changelist_url": _url("returns_returnrequest_changelist"),
            "order_url": _url("orders_order_change", rma.order_id),
            **extra,
        }

    @staticmethod
    def _lines(rma: ReturnRequest) -> list[ReturnLine]:
        return list(rma.lines.select_related("order_line", "exchange_for", "exchange_line").order_by("pk"))

    @staticmethod
    def _run(request, call) -> bool:
        try:
            call()
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return False
        except (TransitionNotAllowed, ConcurrentTransition) as exc:
            messages.error(request, str(exc))
            return False
        return True

    # --- views -----------------------------------------------------------------------------------

    def queue_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = list(selectors.returns_to_process()[:200])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Returns to receive and inspect"),
            "rows": [{"rma": rma, "url": _url("returns_returnrequest_change", rma.pk)} for rma in rows],
            "changelist_url": _url("returns_returnrequest_changelist"),
        }
        return TemplateResponse(request, "admin/returns/returnrequest/queue.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rma = self._get(request, object_id)
        request.current_app = self.admin_site.name
        lines = self._lines(rma)
        user = request.user
        actions = [
            {"name": name, "label": label, "url": _url("returns_returnrequest_action", rma.pk, name)}
            for name, (label, _call, perm, statuses) in SIMPLE_ACTIONS.items()
            if rma.status in statuses and user.has_perm(f"returns.{perm}_returnrequest")
        ]
        may_inspect = rma.status == ReturnStatus.RECEIVED and user.has_perm("returns.inspect_returnrequest")
        may_refuse = rma.status in {
            ReturnStatus.REQUESTED,
            ReturnStatus.APPROVED,
            ReturnStatus.RECEIVED,
        } and user.has_perm("returns.refuse_returnrequest")
        context = self._context(
            request,
            rma,
            lines=lines,
            actions=actions,
            inspect_url=_url("returns_returnrequest_inspect", rma.pk) if may_inspect else "",
            refuse_url=_url("returns_returnrequest_refuse", rma.pk) if may_refuse else "",
            label_url=_url("returns_returnrequest_label", rma.pk) if rma.label else "",
            history_url=_url("returns_returnrequest_history", rma.pk),
            history=list(rma.history.select_related("history_user").order_by("-history_date", "-history_id")[:25]),
            **(extra_context or {}),
        )
        return TemplateResponse(request, "admin/returns/returnrequest/detail.html", context)

    def action_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        spec = SIMPLE_ACTIONS.get(action)
        if spec is None:
            raise Http404("Unknown action.")
        rma = self._get(request, object_id)
        label, call, _perm, _statuses = spec
        if self._run(request, lambda: call(request=rma.pk, actor=request.user)):
            messages.success(request, _("%(action)s: done for %(number)s.") % {"action": label, "number": rma.number})
        return HttpResponseRedirect(_url("returns_returnrequest_change", rma.pk))

    def inspect_view(self, request, object_id):
        rma = self._get(request, object_id)
        lines = self._lines(rma)
        form = InspectionForm(request.POST or None, lines=lines, initial={"location": rma.restock_location_id})
        if request.method == "POST" and form.is_valid():
            done = self._run(
                request,
                lambda: services.return_inspect(
                    request=rma.pk,
                    actor=request.user,
                    results=form.results(),
                    location=form.cleaned_data["location"],
                    note=form.cleaned_data["note"],
                ),
            )
            if done:
                messages.success(request, _("Return %(number)s inspected.") % {"number": rma.number})
                return HttpResponseRedirect(_url("returns_returnrequest_change", rma.pk))
        rows = [
            {"line": line, "fields": [form[f"{kind}_{line.pk}"] for kind in ("resellable", "damaged", "missing")]}
            for line in lines
        ]
        context = self._context(request, rma, form=form, rows=rows)
        return TemplateResponse(request, "admin/returns/returnrequest/inspect.html", context)

    def refuse_view(self, request, object_id):
        rma = self._get(request, object_id)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done = self._run(
                request,
                lambda: services.return_refuse(request=rma.pk, actor=request.user, reason=form.cleaned_data["reason"]),
            )
            if done:
                messages.success(request, _("Return %(number)s refused.") % {"number": rma.number})
                return HttpResponseRedirect(_url("returns_returnrequest_change", rma.pk))
        return TemplateResponse(
            request, "admin/returns/returnrequest/refuse.html", self._context(request, rma, form=form)
        )

    def label_view(self, request, object_id):
        rma = self._get(request, object_id)
        if not rma.label:
            raise Http404("No label.")
        response = FileResponse(
            rma.label.open("rb"), content_type="application/pdf", filename=os.path.basename(rma.label.name)
        )
        response["Cache-Control"] = "private, no-store"
        return response
