"""Shipped and delivered quantities per line, and the order status derived from them."""

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from inventory import services as inventory
from oms.core.permissions import require_perm
from orders.choices import (
    OrderEventType,
    OrderStatus,
)
from orders.events import event_record, events_record
from orders.exceptions import TransitionRefused
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderLine
from orders.services._common import (
    _clean_quantities,
    _plan_shipments,
    _run_transition,
    _save,
    derive_fulfillment_status,
)


@transaction.atomic
def order_record_shipment(
    *,
    order: Order | int,
    actor,
    quantities: dict | None = None,
    reason: str = "",
    reference: str = "",
    location_id: int | None = None,
    payload: dict | None = None,
) -> Order:
    """Record shipped quantities per line (all that is open by default); derives the order status.

    You cannot ship more than was ordered and not canceled (guarded here and by a check constraint).
    With `location_id` (a shipment's), stock is consumed from that location's reservations.
    """
    order = order_lock(order)
    require_perm(actor, "orders.ship_order", "record shipments")
    if order.status not in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}:
        raise TransitionRefused(
            f"Cannot ship order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "ship", "status": order.status},
        )
    if not order.has_no_active_hold():
        raise TransitionRefused("The order has an active hold; release it first.", code="order_on_hold")
    lines = order_lines_lock(order)
    shipped = _clean_quantities(lines, quantities, available=lambda line: line.quantity_open, field="quantities")
    if not order.is_test:
        inventory.stock_consume(
            order=order,
            actor=actor,
            quantities=shipped,
            reference=reference or order.number,
            location_id=location_id,
            lines=lines,
        )
    changed = []
    for line in lines:
        if line.pk in shipped:
            line.quantity_shipped += shipped[line.pk]
            changed.append(line)
    bulk_update_with_history(
        changed,
        OrderLine,
        ["quantity_shipped"],
        default_user=actor,
        default_change_reason=reason or "Shipment recorded",
    )
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    _run_transition(order, "ship", actor=actor)
    order.first_shipped_at = order.first_shipped_at or timezone.now()
    _save(
        order,
        actor=actor,
        reason=reason or "Shipment recorded",
        fields=["status", "fulfillment_status", "first_shipped_at"],
    )
    by_id = {line.pk: line for line in lines}
    events = [
        (
            OrderEventType.SHIPMENT_RECORDED,
            reason,
            {
                "reference": reference,
                "lines": [
                    {"line": by_id[pk].line_number, "sku": by_id[pk].sku, "quantity": qty}
                    for pk, qty in shipped.items()
                ],
                **(payload or {}),
            },
        )
    ]
    if order.status == OrderStatus.SHIPPED and before != OrderStatus.SHIPPED:
        events.append((OrderEventType.SHIPPED, reason, {"from": before}))
    events_record(order=order, actor=actor, events=events)
    if not (payload or {}).get("shipment"):
        _plan_shipments(order, actor=actor)  # shipped outside a parcel: the parcels give those units up
    return order


@transaction.atomic
def order_mark_delivered(*, order: Order | int, actor, quantities: dict | None = None, reason: str = "") -> Order:
    """Record delivered quantities (all that shipped by default); the order is delivered once all is."""
    order = order_lock(order)
    require_perm(actor, "orders.deliver_order", "mark orders delivered")
    if order.status not in {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED}:
        raise TransitionRefused(
            f"Cannot record a delivery on order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "deliver", "status": order.status},
        )
    lines = order_lines_lock(order)
    delivered = _clean_quantities(
        lines, quantities, available=lambda line: line.quantity_shipped - line.quantity_delivered, field="quantities"
    )
    changed = []
    for line in lines:
        if line.pk in delivered:
            line.quantity_delivered += delivered[line.pk]
            changed.append(line)
    bulk_update_with_history(
        changed,
        OrderLine,
        ["quantity_delivered"],
        default_user=actor,
        default_change_reason=reason or "Delivery recorded",
    )
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    if order.status == OrderStatus.SHIPPED and order.is_fully_delivered():
        _run_transition(order, "deliver", actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Delivery recorded",
        fields=["status", "fulfillment_status", "delivered_at"],
    )
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.DELIVERED,
        reason=reason,
        payload={
            "from": before,
            "to": order.status,
            "fulfillment_status": order.fulfillment_status,
            "lines": {str(pk): qty for pk, qty in delivered.items()},
        },
    )
    return order
