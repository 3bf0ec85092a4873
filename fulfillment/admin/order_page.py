"""Fulfillment's panel on the order page (oms.core.admin.order_panel): the order's parcels, first after
the lines."""

from fulfillment import selectors
from fulfillment.admin._common import S, _tracking_link, _url, shipment_badge
from oms.core.admin import order_panel
from orders.models import Order


@order_panel("shipments_panel", template="admin/fulfillment/shipments_panel.html", position=10)
def order_shipments_panel(*, order: Order, user) -> dict | None:
    """The order's parcels for the order page: number, location, status, tracking, contents."""
    if not user.has_perm("fulfillment.view_shipment"):
        return None
    parcels = []
    for shipment in selectors.shipments_of_order(order):
        own, others = [], 0
        for line in shipment.lines.all():
            if line.order_line.order_id == order.pk:
                own.append(line)
            else:
                others += line.quantity
        parcels.append(
            {
                "shipment": shipment,
                "url": _url("fulfillment_shipment_change", shipment.pk),
                "badge": shipment_badge(shipment),
                "tracking": _tracking_link(shipment),
                "late": shipment.is_late,
                "items": [
                    {"sku": line.order_line.sku, "quantity": line.quantity, "picked": line.quantity_picked}
                    for line in own
                ],
                "other_units": others,
                "consolidated_into": shipment.order if shipment.order_id != order.pk else None,
            }
        )
    return {
        "parcels": parcels,
        "count": sum(1 for p in parcels if p["shipment"].status != S.CANCELED),
        "list_url": _url("fulfillment_shipment_changelist", query={"q": order.number}),
    }
