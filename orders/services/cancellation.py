"""Canceling a whole order before anything shipped (after shipping: a return, then a refund)."""

from django.db import transaction
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from inventory import services as inventory
from oms.core.errors import ValidationError
from orders.choices import (
    CancelReason,
    OrderEventType,
)
from orders.events import event_record
from orders.hooks import ORDER_CANCELED
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderLine, _can_cancel
from orders.services._common import _run_transition, _save, derive_fulfillment_status
from orders.services.holds import _release_all_holds


def order_can_cancel(order: Order, actor) -> bool:
    """The cancel transition's own permission rule (canceling paid units needs the paid-cancel one)."""
    return _can_cancel(order, actor)


@transaction.atomic
def order_cancel(*, order: Order | int, actor, reason_code: str, reason: str = "") -> Order:
    """Cancel before anything shipped. Open quantities are canceled and active holds released.

    Money already captured stays recorded on the order (payment status unchanged) until billing
    refunds it; the event says how much is due back.
    """
    if reason_code not in CancelReason.values:
        raise ValidationError(
            "Unknown cancellation reason.",
            code="invalid_reason",
            fields={"reason_code": [f"One of: {', '.join(CancelReason.values)}."]},
        )
    order = order_lock(order)
    before = order.status
    _run_transition(order, "cancel", actor=actor, reason=reason_code)
    lines = order_lines_lock(order)
    for line in lines:
        line.quantity_canceled = line.quantity - line.quantity_shipped
    bulk_update_with_history(
        lines, OrderLine, ["quantity_canceled"], default_user=actor, default_change_reason=reason or "Order canceled"
    )
    order.fulfillment_status = derive_fulfillment_status(lines)
    released_units = inventory.reservations_release(order=order, actor=actor, reason="Order canceled")
    ORDER_CANCELED.emit(order=order, actor=actor, reason=f"Order canceled: {reason or reason_code}")
    label = reason or CancelReason(reason_code).label
    _save(
        order, actor=actor, reason=str(label), fields=["status", "fulfillment_status", "cancel_reason", "canceled_at"]
    )
    released = _release_all_holds(order=order, actor=actor, note=_("Order canceled"))
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.CANCELED,
        reason=reason,
        payload={
            "from": before,
            "reason_code": reason_code,
            "refund_due": str(order.amount_paid - order.amount_refunded),
            "holds_released": released,
            "stock_released": released_units,
        },
    )
    return order
