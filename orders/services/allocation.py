"""Stock for an order: sourcing and reservation through inventory, promises from incoming supply,
shortage holds, reallocation.
"""

import datetime
import functools

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from inventory import services as inventory
from inventory.models import Product, ReservationMode
from oms.core.errors import ConflictError
from orders.choices import (
    HoldReason,
    OrderEventType,
    OrderStatus,
)
from orders.events import events_record
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderLine
from orders.services._common import _hold_place, _plan_shipments, _save


def _allocate_stock(
    order: Order, *, actor, lines=None, hard: bool = False, products: dict | None = None, waiting: bool = False
) -> list[tuple[str, str, dict]]:
    """Source and reserve the order's unreserved units (lock order: order, lines, then stock).

    Soft lines are reserved when the order is confirmed; with `hard`, at picking, every line not
    yet reserved is. Test orders never take real stock. Units nobody has are promised against
    incoming supply (the line carries the promised date) or put the order on a stock-shortage
    hold; at picking a shortage refuses the start instead; with `waiting` (an order already being
    prepared, whose missing units wait for their promised date) it is only reported. Returns the events.
    """
    if order.is_test:
        return []
    if lines is None:
        lines = order_lines_lock(order)
    wanted = {line.product_id for line in lines if line.product_id}
    if products is None or not wanted <= set(products):
        products = {p.pk: p for p in Product.objects.filter(pk__in=wanted)}
    if not hard:
        channel_mode = inventory.channel_reservation_mode(channel_id=order.channel_id)
        lines = [
            line
            for line in lines
            if line.product_id and (products[line.product_id].reservation_mode or channel_mode) == ReservationMode.SOFT
        ]
    decision = inventory.stock_allocate(
        order=order, lines=lines, actor=actor, products=products, preemptible_orders=_preemptible_orders()
    )
    if decision is None:
        return []
    for loser_id in decision.losers:
        transaction.on_commit(functools.partial(_reallocate_later, order_id=loser_id))
    if hard and decision.shortages and not waiting:
        missing = ", ".join(f"{qty} × {need.sku}" for need, qty in decision.shortages)
        raise ConflictError(
            f"Cannot start picking order {order.number}: {missing} not in stock.",
            code="stock_shortage",
            extra={"missing": missing},
        )
    events = [
        (
            OrderEventType.STOCK_ALLOCATED,
            "",
            {"decision": decision.pk, "summary": decision.summary, "allocations": decision.allocations},
        )
    ]
    if decision.promises:
        by_line = {line.pk: line for line in lines}
        changed = []
        for need, supply, _qty in decision.promises:
            line = by_line[need.line_id]
            promised = timezone.make_aware(datetime.datetime.combine(supply.expected_at, datetime.time(12)))
            if line.promised_at is None or line.promised_at < promised:
                line.promised_at = promised
                changed.append(line)
        if changed:
            bulk_update_with_history(
                changed,
                OrderLine,
                ["promised_at"],
                default_user=actor,
                default_change_reason="Promised from incoming supply",
            )
        order.promised_at = max(line.promised_at for line in by_line.values() if line.promised_at)
        events.append((OrderEventType.BACKORDERED, "", {"backorders": decision.backorders}))
    if decision.shortages and not waiting:
        missing = ", ".join(f"{qty} × {need.sku}" for need, qty in decision.shortages)
        if not order.holds.filter(reason=HoldReason.STOCK_SHORTAGE, released_at__isnull=True).exists():
            note = f"Not in stock: {missing}."
            events.append(_hold_place(order, reason=HoldReason.STOCK_SHORTAGE, note=note, actor=actor)[1])
    return events


def _preemptible_orders():
    """The orders whose soft reservations may go to a higher-priority channel's order: those confirmed
    and not yet in preparation. A subquery inventory runs when it preempts (it does not read orders)."""
    return Order.objects.filter(status=OrderStatus.CONFIRMED).values("pk")


def _reallocate_later(*, order_id: int) -> None:
    from orders.tasks import order_reallocate  # noqa: PLC0415 (tasks import these services: a cycle inside orders)

    order_reallocate.delay(order_id=order_id)


@transaction.atomic
def order_reallocate(*, order: Order | int, actor, reason: str = "") -> Order:
    """Source again what the order has not reserved (after losing a last-unit conflict, or a receipt)."""
    order = order_lock(order)
    preparing = order.status in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}
    if order.status != OrderStatus.CONFIRMED and not preparing:
        return order
    if preparing:
        # Units still open after a delay or a lost parcel: reserve what is in stock now, and wait
        # (promised date kept) for the rest rather than refusing.
        open_lines = [line for line in order_lines_lock(order) if line.quantity_open]
        events = _allocate_stock(order, actor=actor, lines=open_lines, hard=True, waiting=True)
    else:
        events = _allocate_stock(order, actor=actor)
    if order.promised_at:
        _save(order, actor=actor, reason=reason or "Stock reallocated", fields=["promised_at"])
    if events:
        events_record(order=order, actor=actor, events=events)
    if preparing:
        _plan_shipments(order, actor=actor)
    return order
