"""What fulfillment lets the apps above it react to (see oms.core.hooks)."""

from oms.core.hooks import Hook

SHIPMENT_SHIPPED = Hook(
    "shipment.shipped",
    owner="fulfillment",
    args=("shipment", "actor"),
    doc="A parcel left (dispatched to a carrier) or was collected in store. Billing invoices it after "
    "commit when the orders' policy invoices per shipment.",
)
