"""What the cockpit's lists of rows hanging off an order share (events, rule firings)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from oms.core.admin import EstimatedCountPaginator, ReadOnlyAdminMixin
from orders.models import Order
from orders.selectors import order_search_q


class OrderRowsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A big, append-only table of rows of orders: newest first by primary key (it follows time and
    is indexed; sorting millions of rows by a date is not), no full count, searched by the order."""

    ordering = ("-pk",)
    sortable_by = ()
    search_fields = ("order__number",)
    search_help_text = _("Order number, external id or the customer's exact e-mail address.")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = None
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(order__in=Order.objects.filter(order_search_q(term)).values("pk")), False

    @admin.display(description=_("order"))
    def order_link(self, row):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[row.order_id]), row.order.number
        )
