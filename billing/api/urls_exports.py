"""Routes of the exports API (under /api/v1/billing/)."""

from django.urls import path

from billing.api import views_exports as views

urlpatterns = [
    path("exports/", views.ExportCreateApi.as_view(), name="billing-export-create"),
    path("exports/download/", views.ExportDownloadApi.as_view(), name="billing-export-download"),
    path("exports/<int:export_id>/", views.ExportDetailApi.as_view(), name="billing-export-detail"),
    path("exports/<int:export_id>/file/", views.ExportFileApi.as_view(), name="billing-export-file"),
]
