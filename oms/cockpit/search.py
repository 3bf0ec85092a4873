"""The cockpit's global search: one box in the header of every page.

It finds an order (number, its sequence digits, external id, customer e-mail, a parcel's tracking
number), a case (number) and a customer (e-mail, phone). Exactly one hit opens it; more show a
results page. Every lookup is an exact match on an indexed column — no `LIKE '%x%'` over tables of
millions of rows: order number (unique), external id (partial index), `Lower(email)` (orders and
customers), shipment tracking number, case number (unique), customer phone key.
"""

import re
from dataclasses import dataclass

from django.contrib import admin
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fulfillment.models import Shipment
from oms.core.numbering import format_number
from orders.cases import case_scope_q
from orders.identity import phone_key
from orders.models import Case, Customer, Order
from orders.selectors import order_search_q

PHONE_RE = re.compile(r"^\+?[\d\s().-]{8,}$")
MAX_TERM = 200


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "order", "case" or "customer"
    label: str
    detail: str
    url: str


def _case_q(term: str) -> Q:
    query = Q(number=term.upper())
    if term.isdigit() and len(term) <= 9:
        year = timezone.localdate().year
        query |= Q(number__in=[format_number("CASE", y, int(term)) for y in (year, year - 1)])
    return query


def cockpit_search(*, term: str, user, limit: int = 20) -> list[SearchHit]:
    """What `term` names, among what `user` may see: orders, then cases, then customers."""
    term = (term or "").strip()[:MAX_TERM]
    if not term:
        return []
    hits: list[SearchHit] = []
    if user.has_perm("orders.view_order"):
        # The parcel's order ids as values, not a subquery: `OR id IN (SELECT …)` would make
        # PostgreSQL filter every order row instead of OR-ing index scans.
        tracked = list(
            Shipment.objects.filter(tracking_number__in={term, term.upper()}).values_list("order_id", flat=True)[:limit]
        )
        orders = (
            Order.objects.filter(order_search_q(term) | Q(pk__in=tracked))
            .select_related("channel")
            .order_by("-placed_at", "-pk")[:limit]
        )
        hits += [
            SearchHit(
                "order",
                order.number,
                f"{order.get_status_display()} · {order.email} · {order.channel.name}",
                reverse("admin:orders_order_change", args=[order.pk]),
            )
            for order in orders
        ]
    if user.has_perm("orders.view_case"):
        found = Case.objects.filter(_case_q(term)).filter(case_scope_q(user)).order_by("-pk")[:limit]
        hits += [
            SearchHit(
                "case",
                case.number,
                f"{case.get_kind_display()} · {case.get_status_display()} · {case.title}",
                reverse("admin:orders_case_change", args=[case.pk]),
            )
            for case in found
        ]
    if user.has_perm("orders.view_customer"):
        query = Q(Exact(Lower("email"), term.lower()))
        key = phone_key(term) if PHONE_RE.match(term) else ""
        if key:
            query |= Q(phone_key=key)
        customers = Customer.objects.filter(query).order_by("pk")[:limit]
        hits += [
            SearchHit(
                "customer",
                customer.email,
                " · ".join(part for part in (customer.full_name, customer.phone, customer.company_name) if part),
                reverse("admin:orders_customer_change", args=[customer.pk]),
            )
            for customer in customers
        ]
    return hits


def search_view(request):
    term = (request.GET.get("q") or "").strip()
    hits = cockpit_search(term=term, user=request.user)
    if len(hits) == 1:
        return HttpResponseRedirect(hits[0].url)
    request.current_app = admin.site.name
    groups = [
        (label, [hit for hit in hits if hit.kind == kind])
        for kind, label in (("order", _("Orders")), ("case", _("Cases")), ("customer", _("Customers")))
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Search"),
        "subtitle": term,
        "term": term,
        "cockpit_search_term": term,
        "hits": hits,
        "groups": [(label, rows) for label, rows in groups if rows],
    }
    return TemplateResponse(request, "admin/cockpit/search.html", context)
