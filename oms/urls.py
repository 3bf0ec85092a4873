from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from fulfillment.api.urls import order_urlpatterns as fulfillment_order_urlpatterns
from oms.cockpit.search import search_view
from oms.cockpit.views import kpis_weekly_csv_view

urlpatterns = [
    path("admin/search/", admin.site.admin_view(search_view), name="cockpit_search"),
    # Before the admin's catch-all: the cockpit's weekly KPI download.
    path("admin/kpis/weekly.csv", kpis_weekly_csv_view, name="cockpit_kpis_weekly_csv"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("orders.api.urls")),
    path("api/v1/", include(fulfillment_order_urlpatterns)),
    path("api/v1/inventory/", include("inventory.api.urls")),
    path("api/v1/fulfillment/", include("fulfillment.api.urls")),
    path("api/v1/billing/", include("billing.api.urls")),
    path("api/v1/returns/", include("returns.api.urls")),
    path("track/", include("fulfillment.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
