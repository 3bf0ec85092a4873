"""Routes of the billing API (mounted under /api/v1/billing/)."""

from billing.api import urls_exports, urls_invoices, urls_refunds

urlpatterns = [*urls_invoices.urlpatterns, *urls_refunds.urlpatterns, *urls_exports.urlpatterns]
