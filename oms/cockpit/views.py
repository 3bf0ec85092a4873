"""Cockpit pages outside a model admin: the weekly KPI CSV (the home page is templates/admin/index.html)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from oms.cockpit.kpis import iso_week_bounds, iso_week_label, kpis_weekly_csv, last_complete_week

KPI_PERMISSION = "orders.view_order"


@require_GET
def _kpis_weekly_csv(request):
    if not request.user.has_perm(KPI_PERMISSION):
        raise PermissionDenied
    week = request.GET.get("week") or last_complete_week()
    try:
        start, _end = iso_week_bounds(week)
    except ValueError:
        return HttpResponseBadRequest(_("Give the week as an ISO week, like 2026-W47."), content_type="text/plain")
    label = iso_week_label(start)
    response = HttpResponse(kpis_weekly_csv(label), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="oms-kpis-{label}.csv"'
    return response


def kpis_weekly_csv_view(request, *args, **kwargs):
    # The admin's own gate (staff login, redirect to its login page) around the permission check.
    return admin.site.admin_view(_kpis_weekly_csv)(request, *args, **kwargs)
