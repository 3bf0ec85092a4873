"""Routes of the inventory API (mounted under /api/v1/inventory/)."""

from django.urls import path

from inventory.api import views

urlpatterns = [
    # A SKU may hold a slash (TEE/M/RED): the path converter takes it whole.
    path("products/<path:sku>/atp/", views.ProductAtpApi.as_view(), name="inventory-product-atp"),
    path("feed/", views.StockFeedApi.as_view(), name="inventory-stock-feed"),
    path("receipts/", views.StockReceiveApi.as_view(), name="inventory-receipt-create"),
    path("adjustments/", views.StockAdjustApi.as_view(), name="inventory-adjustment-create"),
    path("counts/", views.CycleCountSubmitApi.as_view(), name="inventory-count-submit"),
    path("counts/<int:count_id>/apply/", views.CycleCountApplyApi.as_view(), name="inventory-count-apply"),
]
