"""Channels, customers (with the duplicate finder and merge) and tags."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from oms.core.admin import (
    AuditedAdmin,
    EstimatedCountPaginator,
    apply_service_error,
    badge,
    money,
    reason_field,
)
from oms.core.errors import ApplicationError
from orders import identity
from orders.admin.timeline import STATUS_TONES
from orders.models import Channel, Customer, Order, Tag


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin):
    list_display = ("name", "code", "kind", "commission", "default_currency", "prices_include_tax", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    prepopulated_fields = {"code": ("name",)}
    readonly_fields = ("created_at",)

    @admin.display(description=_("commission"), ordering="commission_rate")
    def commission(self, channel):
        return f"{channel.commission_rate * 100:.2f} %"

    def get_readonly_fields(self, request, obj=None):
        # The code is what imports and the API reference: fixed once the channel exists.
        return ("code", "created_at") if obj else ("created_at",)

    def has_delete_permission(self, request, obj=None):
        return False  # orders reference channels (PROTECT): deactivate instead


class MergeForm(forms.Form):
    """One group of possible duplicates: the record to keep, the ones merged into it, and why."""

    keep = forms.TypedChoiceField(label=_("Keep"), coerce=int, widget=forms.RadioSelect)
    merge = forms.TypedMultipleChoiceField(label=_("Merge into it"), coerce=int, widget=forms.CheckboxSelectMultiple)
    reason = reason_field(required=True, label=_("Why they are one customer"), help_text=_("Required. Audited."))

    def __init__(self, *args, customers, **kwargs):
        super().__init__(*args, **kwargs)
        self.customers = customers
        choices = [(c.pk, f"{c.email} — {c.full_name or c.company_name or '–'} {c.phone}".strip()) for c in customers]
        self.fields["keep"].choices = choices
        self.fields["merge"].choices = choices
        if not self.is_bound and customers:
            self.initial.setdefault("keep", customers[0].pk)
            self.initial.setdefault("merge", [c.pk for c in customers[1:]])

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


@admin.register(Customer)
class CustomerAdmin(AuditedAdmin):
    list_display = ("email", "full_name", "company_name", "locale", "payment_terms_days", "is_test", "created_at")
    list_filter = ("locale", "is_test", ("payment_terms_days", admin.EmptyFieldListFilter))
    search_fields = ("email",)
    search_help_text = _("The customer's exact e-mail address.")
    fields = (
        "email",
        ("first_name", "last_name"),
        "company_name",
        "phone",
        "locale",
        "payment_terms_days",
        "is_test",
        "created_at",
        "recent_orders",
    )
    # Credit terms and the test flag decide how orders are handled: not for the contact form.
    readonly_fields = ("email", "payment_terms_days", "is_test", "created_at", "recent_orders")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    sortable_by = ("email", "created_at")

    change_list_template = "admin/orders/case/customer_change_list.html"

    def has_add_permission(self, request):
        return False  # customers come with their first order (order_create)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_merge": request.user.has_perm(identity.MERGE_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("duplicates/", self.admin_site.admin_view(self.duplicates_view), name="orders_customer_duplicates"),
            *super().get_urls(),
        ]

    def duplicates_view(self, request):
        """Possible duplicates (same phone or address key), each group with a merge form."""
        if not request.user.has_perm(identity.MERGE_PERMISSION):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        posted = None
        if request.method == "POST":
            ids = [int(pk) for pk in request.POST.get("group", "").split(",") if pk.strip().isdigit()]
            customers = list(Customer.objects.filter(pk__in=ids, merged_into__isnull=True).order_by("pk"))
            posted = MergeForm(request.POST, customers=customers)
            if posted.is_valid():
                by_id = {c.pk: c for c in customers}
                try:
                    kept = identity.customer_merge(
                        keep=by_id[posted.cleaned_data["keep"]],
                        merge=[by_id[pk] for pk in posted.cleaned_data["merge"]],
                        actor=request.user,
                        reason=posted.cleaned_data["reason"],
                    )
                except ApplicationError as exc:
                    apply_service_error(posted, exc)
                    messages.error(request, exc.message)
                else:
                    messages.success(
                        request,
                        _("%(count)s record(s) merged into %(email)s.")
                        % {"count": len(posted.cleaned_data["merge"]), "email": kept.email},
                    )
                    return HttpResponseRedirect(reverse("admin:orders_customer_change", args=[kept.pk]))
        groups = []
        for index, group in enumerate(identity.customer_duplicate_groups(limit=50)):
            ids = ",".join(str(c.pk) for c in group["customers"])
            form = posted if posted is not None and request.POST.get("group") == ids else None
            groups.append(
                {
                    "reason": group["reason"],
                    "key": group["key"],
                    "ids": ids,
                    "customers": group["customers"],
                    "form": form or MergeForm(customers=group["customers"], auto_id=f"id_group{index}_%s"),
                }
            )
        if posted is not None and not any(g["form"] is posted for g in groups):
            groups.insert(0, {"reason": "", "key": "", "ids": request.POST.get("group", ""), "form": posted})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Possible duplicate customers"),
            "groups": groups,
            "changelist_url": reverse("admin:orders_customer_changelist", current_app=self.admin_site.name),
        }
        return TemplateResponse(request, "admin/orders/case/customer_duplicates.html", context)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Exact(Lower("email"), term.lower())), False  # the unique Lower(email) index

    @admin.display(description=_("recent orders"))
    def recent_orders(self, customer):
        orders = Order.objects.filter(customer=customer).order_by("-placed_at", "-id")[:20]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td class="oms-money">{}</td></tr>',
            (
                (
                    reverse("admin:orders_order_change", args=[o.pk]),
                    o.number,
                    timezone.localtime(o.placed_at).strftime("%Y-%m-%d"),
                    badge(o.get_status_display(), STATUS_TONES.get(o.status, "muted")),
                    money(o.total_gross, o.currency),
                )
                for o in orders
            ),
        )
        if not rows:
            return _("No orders yet.")
        return format_html('<table class="oms-table oms-table--compact">{}</table>', rows)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "swatch")
    search_fields = ("name",)

    @admin.display(description=_("color"))
    def swatch(self, tag):
        return format_html('<span class="oms-tag" style="--tag-color: {}">{}</span>', tag.color, tag.color)
