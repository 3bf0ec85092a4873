"""The cockpit's refunds, store credit, vouchers and disputes.

Nothing here writes a model: approve, reject and process are admin actions that call
billing.services.refunds with `actor=request.user`, one refund at a time, and report each refusal
by its number (the requester approving their own refund, a refund above the threshold without a
finance manager, a refund no longer awaiting approval). Refunds open on the approval queue
(requested), largest first; disputes sort by their deadline, late ones highlighted, with the
evidence pack to download.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, Sum
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.models import Dispute, DisputeStatus, Refund, RefundStatus, StoreCreditEntry, Voucher
from billing.services import disputes as dispute_services
from billing.services import refunds as services
from oms.core.admin import (  # noqa: F401 (shared cockpit helpers)
    AuditedAdmin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    badge,
    money,
)
from oms.core.errors import ApplicationError

STATUS_TONES = {
    RefundStatus.REQUESTED: "warn",
    RefundStatus.APPROVED: "info",
    RefundStatus.PROCESSED: "ok",
    RefundStatus.REJECTED: "void",
    RefundStatus.FAILED: "alert",
}


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the refund is refused: kept on the refund and told to the requester."),
    )


class RefundQueueFilter(admin.SimpleListFilter):
    """The approval queue by default: what finance has to decide on."""

    title = _("status")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("awaiting", _("Awaiting approval")),
            ("to_process", _("Approved, to process")),
            ("failed", _("Failed")),
            ("processed", _("Processed")),
            ("rejected", _("Rejected")),
            ("all", _("All")),
        ]

    def value(self):
        return super().value() or "awaiting"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        statuses = {
            "awaiting": [RefundStatus.REQUESTED],
            "to_process": [RefundStatus.APPROVED],
            "failed": [RefundStatus.FAILED],
            "processed": [RefundStatus.PROCESSED],
            "rejected": [RefundStatus.REJECTED],
        }.get(self.value())
        return queryset if statuses is None else queryset.filter(status__in=statuses)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = (
        "number",
        "order_column",
        "amount_column",
        "method",
        "reason",
        "status_column",
        "requested_by",
        "requested_at",
        "approved_by",
    )
    list_filter = (RefundQueueFilter, "method", "reason")
    list_select_related = ("order", "requested_by", "approved_by")
    search_fields = ("number", "order__number")
    ordering = ("-requested_at", "-pk")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ["approve_selected", "reject_selected", "process_selected"]
    readonly_fields = [f.name for f in Refund._meta.fields]

    @admin.display(description=_("order"))
    def order_column(self, refund):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[refund.order_id]), refund.order.number
        )

    def get_changelist_instance(self, request):
        # The page's second-approver sums in one go (each refund counts with its order's and its
        # customer's others): the rows keep them for amount_column.
        changelist = super().get_changelist_instance(request)
        limits = services.approval_limits(changelist.result_list)
        for refund in changelist.result_list:
            refund.approval_limit = limits[refund.pk]
        return changelist

    @admin.display(description=_("amount"), ordering="amount")
    def amount_column(self, refund):
        text = money(refund.amount, refund.currency)
        limit = getattr(refund, "approval_limit", None) or services.approval_limit(refund)
        if limit.needs_second_approver:
            return format_html(
                "<strong>{}</strong> {}",
                text,
                badge(_("second approver"), "purple", title=limit.reason()),
            )
        return text

    @admin.display(description=_("status"))
    def status_column(self, refund):
        flag = badge(refund.get_status_display(), STATUS_TONES.get(refund.status, "muted"))
        if refund.status == RefundStatus.FAILED and refund.failure_reason:
            return format_html('{}<br><span class="oms-quiet">{}</span>', flag, refund.failure_reason[:120])
        return flag

    def changelist_view(self, request, extra_context=None):
        extra = {"title": _("Refunds")}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    # --- the refund's page: approve, or why not (refund_can_approve, the service's own rule) -------
    change_form_template = "admin/billing/refund/change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="billing_refund_approve"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        refund = Refund.objects.filter(pk=int(object_id)).first() if str(object_id).isdigit() else None
        context = dict(extra_context or {})
        if refund is not None and refund.status == RefundStatus.REQUESTED and self.has_approve_permission(request):
            allowed, reason = services.refund_can_approve(refund, request.user)
            context["refund_approval"] = {
                "allowed": allowed,
                "reason": reason,
                "url": reverse("admin:billing_refund_approve", args=[refund.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def approve_view(self, request, object_id):
        """POST only: approve this refund as the signed-in user (the service decides)."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        try:
            pk = int(unquote(object_id))
        except ValueError:
            raise Http404 from None
        change_url = reverse("admin:billing_refund_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        note = (request.POST.get("note") or "").strip()[:2000]
        try:
            refund = services.refund_approve(refund=pk, actor=request.user, note=note)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Refund %(number)s approved.") % {"number": refund.number})
        return HttpResponseRedirect(change_url)

    # --- actions: one service call per refund, each refusal named ------------------------------
    def has_approve_permission(self, request):
        return request.user.has_perm("billing.approve_refund")

    def has_reject_permission(self, request):
        return request.user.has_perm("billing.approve_refund") or request.user.has_perm("billing.request_refund")

    def _each(self, request, refunds, call, done_message):
        done = []
        for refund in refunds:
            try:
                call(refund)
            except ApplicationError as exc:
                messages.error(request, f"{refund.number}: {exc.message}")
            else:
                done.append(refund.number)
        if done:
            messages.success(request, done_message(done))

    @admin.action(description=_("Approve the selected refunds"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        self._each(
            request,
            queryset.order_by("pk"),
            lambda refund: services.refund_approve(refund=refund.pk, actor=request.user),
            lambda done: (
                ngettext("%(n)d refund approved: %(list)s.", "%(n)d refunds approved: %(list)s.", len(done))
                % {"n": len(done), "list": ", ".join(done)}
            ),
        )

    @admin.action(description=_("Reject the selected refunds…"), permissions=["reject"])
    def reject_selected(self, request, queryset):
        selected = list(queryset.select_related("order").order_by("pk"))
        form = RejectForm(request.POST if request.POST.get("post") else None)
        if request.POST.get("post") and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                selected,
                lambda refund: services.refund_reject(refund=refund.pk, actor=request.user, reason=reason),
                lambda done: (
                    ngettext("%(n)d refund rejected: %(list)s.", "%(n)d refunds rejected: %(list)s.", len(done))
                    % {"n": len(done), "list": ", ".join(done)}
                ),
            )
            return None
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("Reject refunds"),
            "subtitle": None,
            "form": form,
            "refunds": [
                {"refund": r, "amount": money(r.amount, r.currency), "badge": self.status_column(r)} for r in selected
            ],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": reverse("admin:billing_refund_changelist"),
        }
        return TemplateResponse(request, "billing/refunds/reject_selected.html", context)

    @admin.action(description=_("Process the selected approved refunds"), permissions=["approve"])
    def process_selected(self, request, queryset):
        for refund in queryset.order_by("pk"):
            try:
                result = services.refund_process(refund=refund.pk, actor=request.user)
            except ApplicationError as exc:
                messages.error(request, f"{refund.number}: {exc.message}")
                continue
            if result.status == RefundStatus.FAILED:
                messages.error(request, f"{refund.number}: {result.failure_reason}")
            else:
                messages.success(
                    request,
                    _("%(number)s processed (%(reference)s).")
                    % {"number": refund.number, "reference": result.provider_reference},
                )


@admin.register(StoreCreditEntry)
class StoreCreditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "customer_column", "amount_column", "refund", "order", "note", "actor")
    list_select_related = ("customer", "refund", "order", "actor")
    search_fields = ("customer__email", "order__number", "refund__number")
    list_filter = ("currency",)
    ordering = ("-created_at", "-pk")
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description=_("customer"))
    def customer_column(self, entry):
        return entry.customer.email

    @admin.display(description=_("amount"))
    def amount_column(self, entry):
        tone = "ok" if entry.amount > 0 else "muted"
        return badge(money(entry.amount, entry.currency), tone)


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = ("code", "customer_column", "balance_column", "expires_at", "refund", "created_at")
    list_select_related = ("customer", "refund")
    search_fields = ("code", "customer__email")
    ordering = ("-created_at", "-pk")
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("entries__amount"))

    @admin.display(description=_("customer"))
    def customer_column(self, voucher):
        return voucher.customer.email if voucher.customer_id else "–"

    @admin.display(description=_("balance"))
    def balance_column(self, voucher):
        balance = voucher.balance or 0
        expired = voucher.expires_at and voucher.expires_at <= timezone.now()
        tone = "void" if expired or balance <= 0 else "ok"
        return badge(money(balance, voucher.currency), tone, title=_("Expired") if expired else "")


class DisputeLateFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("late", _("Past the deadline")), ("open", _("Open"))]

    def queryset(self, request, queryset):
        open_q = Q(status__in=[DisputeStatus.OPEN])
        if self.value() == "late":
            return queryset.filter(open_q, respond_by__lt=timezone.now())
        if self.value() == "open":
            return queryset.filter(open_q)
        return queryset


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = (
        "provider_reference",
        "order_link",
        "amount_column",
        "reason",
        "status",
        "deadline",
        "evidence_link",
    )
    list_select_related = ("order", "payment")
    list_filter = (DisputeLateFilter, "status")
    search_fields = ("provider_reference", "order__number")
    ordering = ("respond_by", "pk")  # the nearest deadline first
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = [f.name for f in Dispute._meta.fields]

    @admin.display(description=_("order"))
    def order_link(self, dispute):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[dispute.order_id]), dispute.order.number
        )

    @admin.display(description=_("amount"))
    def amount_column(self, dispute):
        return money(dispute.amount, dispute.currency)

    @admin.display(description=_("respond by"), ordering="respond_by")
    def deadline(self, dispute):
        text = timezone.localtime(dispute.respond_by).strftime("%Y-%m-%d %H:%M")
        if dispute.status == DisputeStatus.OPEN and dispute.respond_by < timezone.now():
            return format_html(
                '<strong class="oms-late" style="color:#b42318" title="{}">{}</strong> {}',
                _("The deadline has passed"),
                text,
                badge(_("late"), "alert"),
            )
        return text

    @admin.display(description=_("evidence"))
    def evidence_link(self, dispute):
        url = reverse("admin:billing_dispute_evidence", args=[dispute.pk])
        label = _("Download the evidence pack") if dispute.evidence else _("Generate the evidence pack")
        return format_html('<a href="{}">{}</a>', url, label)

    change_form_template = "admin/billing/dispute/change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/evidence.pdf", view(self.evidence_view), name="billing_dispute_evidence"),
            path("<path:object_id>/outcome/<slug:outcome>/", view(self.outcome_view), name="billing_dispute_outcome"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dispute = Dispute.objects.filter(pk=int(object_id)).first() if str(object_id).isdigit() else None
        context = dict(extra_context or {})
        if dispute is not None and request.user.has_perm("billing.change_dispute"):
            context["dispute_outcomes"] = {
                "can_submit": dispute.status == DisputeStatus.OPEN,
                "has_evidence": bool(dispute.evidence),
                "can_close": dispute.status not in {DisputeStatus.WON, DisputeStatus.LOST},
                "evidence_url": reverse("admin:billing_dispute_evidence", args=[dispute.pk]),
                "submit_url": reverse("admin:billing_dispute_outcome", args=[dispute.pk, "submit"]),
                "won_url": reverse("admin:billing_dispute_outcome", args=[dispute.pk, "won"]),
                "lost_url": reverse("admin:billing_dispute_outcome", args=[dispute.pk, "lost"]),
                "amount": money(dispute.amount, dispute.currency),
            }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def outcome_view(self, request, object_id, outcome):
        """POST only: submit the evidence, or close the dispute as won or lost (the service decides)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if outcome not in {"submit", "won", "lost"}:
            raise Http404
        try:
            pk = int(unquote(object_id))
        except ValueError:
            raise Http404 from None
        change_url = reverse("admin:billing_dispute_change", args=[pk])
        if request.method != "POST":
            return HttpResponse(status=303, headers={"Location": change_url})
        note = (request.POST.get("note") or "").strip()[:2000]
        try:
            if outcome == "submit":
                dispute = dispute_services.dispute_submit_evidence(dispute=pk, actor=request.user, note=note)
                messages.success(request, _("Evidence of %(dispute)s submitted.") % {"dispute": dispute})
            else:
                dispute = dispute_services.dispute_close(
                    dispute=pk, actor=request.user, won=outcome == "won", note=note
                )
                messages.success(
                    request,
                    _("%(dispute)s closed: %(status)s.")
                    % {"dispute": dispute, "status": dispute.get_status_display().lower()},
                )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return HttpResponse(status=303, headers={"Location": change_url})

    def evidence_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            dispute = Dispute.objects.get(pk=int(unquote(object_id)))
        except (Dispute.DoesNotExist, ValueError):
            raise Http404 from None
        try:
            pdf = dispute_services.dispute_evidence_pack(dispute=dispute, actor=request.user)
        except ApplicationError as exc:
            if not dispute.evidence:
                messages.error(request, exc.message)
                return HttpResponse(status=303, headers={"Location": reverse("admin:billing_dispute_changelist")})
            with dispute.evidence.open("rb") as stored:  # closed: the last pack generated
                pdf = stored.read()
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="evidence-{dispute.provider_reference}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response
