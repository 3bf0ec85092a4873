"""The billing cockpit, one module per area."""

from billing.admin import exports, invoices, order_page, refunds  # noqa: F401 (registers the admin classes)
