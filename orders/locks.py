"""Locks on orders and their lines: the first locks of the project's lock order (oms.core.locks).

Every app that changes an order's rows locks the order through here first, never with a
hand-written `select_for_update` on `Order`.
"""

from oms.core.locks import lock_ids, lock_many, lock_one
from oms.core.logging import set_order
from orders.models import Order, OrderLine


def order_lock(order: Order | int) -> Order:
    """Re-read and lock one order row (with its channel and customer read, not locked); 404 if gone.
    Also tags the log context with the order number."""
    pk = order.pk if isinstance(order, Order) else order
    locked = lock_one(
        Order.objects.all(), pk, not_found="Order not found.", code="order_not_found", related=("channel", "customer")
    )
    set_order(locked.number)
    return locked


def orders_lock(order_ids) -> list[int]:
    """Lock several orders by id, in id order (a shipment's or a wave's orders). Returns the ids locked."""
    return lock_ids(Order.objects.filter(pk__in=list(order_ids)))


def order_lines_lock(order: Order | int) -> list[OrderLine]:
    """Lock an order's lines in id order (after the order itself)."""
    pk = order.pk if isinstance(order, Order) else order
    return lock_many(OrderLine.objects.filter(order_id=pk))
