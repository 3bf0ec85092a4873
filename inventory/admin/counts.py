"""Cycle counts (opened, recorded and approved through the services) and the stock alerts."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from inventory import services
from inventory.admin.base import (
    BigListMixin,
    ServiceForm,
    admin_url,
    inventory_form_page,
    note_field,
    product_field,
    run_service,
)
from inventory.models import CycleCount, CycleCountLine, Location, MovementReason, StockAlert, StockItem, StockMovement
from oms.core.admin import AuditedAdmin, ReadOnlyAdminMixin, badge, short_datetime

COUNT_TONES = {
    CycleCount.Status.OPEN: "info",
    CycleCount.Status.COUNTED: "warn",
    CycleCount.Status.APPLIED: "ok",
    CycleCount.Status.CANCELED: "void",
}


class CountOpenForm(ServiceForm):
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    note = note_field(required=False)

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["products"] = product_field(
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
    note = note_field(required=False, help_text=_("Optional. Kept on each ledger row the count writes."))


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
                count = run_service(
                    request,
                    form,
                    lambda: services.count_open(
                        location=data["location"], products=data["products"], actor=request.user, note=data["note"]
                    ),
                )
                if count is not None:
                    messages.success(request, _("Count #%(n)s opened: enter what you find.") % {"n": count.pk})
                    return HttpResponseRedirect(admin_url("inventory_cyclecount_change", count.pk))
        else:
            form = CountOpenForm(admin_site=self.admin_site)
        return inventory_form_page(
            request,
            self,
            form=form,
            title=_("New cycle count"),
            submit=_("Open the count"),
            intro=_("Counted quantities are entered on the count's page; a finance manager approves and applies them."),
            back_url=admin_url("inventory_cyclecount_changelist"),
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
            "record_url": admin_url("inventory_cyclecount_record", count.pk),
            "apply_url": admin_url("inventory_cyclecount_apply", count.pk),
            "changelist_url": admin_url("inventory_cyclecount_changelist"),
            "history_url": admin_url("inventory_cyclecount_history", count.pk),
            "ledger_url": admin_url("inventory_stockmovement_changelist", query={"q": f"count-{count.pk}"}),
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
            done = run_service(
                request,
                form,
                lambda: services.count_record(count=count, counted=form.counted(), actor=request.user),
            )
            if done is not None:
                messages.success(request, _("Count #%(n)s submitted for approval.") % {"n": count.pk})
                return HttpResponseRedirect(admin_url("inventory_cyclecount_change", count.pk))
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
            done = run_service(
                request,
                form,
                lambda: services.count_apply(count=count, actor=request.user, note=form.cleaned_data["note"]),
            )
            if done is not None:
                messages.success(request, _("Count #%(n)s applied to stock.") % {"n": count.pk})
                return HttpResponseRedirect(admin_url("inventory_cyclecount_change", count.pk))
        return self._count_page(request, count, apply_form=form)


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
