"""Changes to an order's lines before or after shipping: cancel some units, substitute, delay, add an exchange line."""

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from inventory import services as inventory
from inventory.models import Product
from oms.core.errors import PermissionDeniedError, ValidationError
from oms.core.history import stamp
from oms.core.money import ZERO, quantize, to_decimal
from oms.core.permissions import require_perm
from orders.choices import (
    CancelReason,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
)
from orders.events import event_record, events_record
from orders.exceptions import TransitionRefused
from orders.hooks import ORDER_CANCELED
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderHold, OrderLine
from orders.pricing import line_amounts
from orders.services._common import (
    _clean_quantities,
    _hold_place,
    _plan_shipments,
    _run_transition,
    _save,
    _unit_gross,
    derive_fulfillment_status,
)
from orders.services.allocation import _preemptible_orders
from orders.services.cancellation import order_can_cancel
from orders.services.holds import _release_all_holds


@transaction.atomic
def order_cancel_lines(
    *, order: Order | int, actor, quantities: dict, reason_code: str, reason: str = "", payload: dict | None = None
) -> Order:
    """Cancel open (unshipped) units of some lines: stock released, refund due recorded for billing.

    The same permission as canceling the order (canceling paid units needs the paid one). When
    nothing else is left to ship, the order moves on by itself: shipped if part had shipped,
    canceled if nothing had.
    """
    if reason_code not in CancelReason.values:
        raise ValidationError(
            "Unknown cancellation reason.",
            code="invalid_reason",
            fields={"reason_code": [f"One of: {', '.join(CancelReason.values)}."]},
        )
    order = order_lock(order)
    if actor is None or not order_can_cancel(order, actor):
        raise PermissionDeniedError(
            "You do not have permission to cancel items of this order.", code="permission_denied"
        )
    if order.status in {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.CANCELED}:
        raise TransitionRefused(
            f"Cannot cancel items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "cancel_lines", "status": order.status},
        )
    lines = order_lines_lock(order)
    canceled = _clean_quantities(lines, quantities, available=lambda line: line.quantity_open, field="quantities")
    by_id = {line.pk: line for line in lines}
    for line_id, qty in canceled.items():
        by_id[line_id].quantity_canceled += qty
    label = reason or str(CancelReason(reason_code).label)
    bulk_update_with_history(
        [by_id[pk] for pk in canceled],
        OrderLine,
        ["quantity_canceled"],
        default_user=actor,
        default_change_reason=label,
    )
    released = 0
    if not order.is_test:
        released = inventory.reservations_release_excess(
            order=order, actor=actor, lines=[by_id[pk] for pk in canceled], reason=label
        )
    refund_due = sum((_unit_gross(by_id[pk], qty, order.currency) for pk, qty in canceled.items()), ZERO)
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    events = [
        (
            OrderEventType.LINES_CANCELED,
            reason,
            {
                "reason_code": reason_code,
                "lines": [
                    {"line": by_id[pk].line_number, "sku": by_id[pk].sku, "quantity": q} for pk, q in canceled.items()
                ],
                "refund_due": str(refund_due),
                "stock_released": released,
                **(payload or {}),
            },
        )
    ]
    if order.fulfillment_status == FulfillmentStatus.CANCELED:
        _run_transition(order, "cancel", actor=actor, check_permission=False, reason=reason_code)
        _release_all_holds(order=order, actor=actor, note=_("Order canceled"))
        events.append((OrderEventType.CANCELED, reason, {"from": before, "reason_code": reason_code}))
    elif order.status == OrderStatus.PARTIALLY_SHIPPED and order.is_fully_shipped():
        _run_transition(order, "ship", actor=actor, check_permission=False)
        events.append((OrderEventType.SHIPPED, reason, {"from": before}))
    _save(order, actor=actor, reason=label, fields=["status", "fulfillment_status", "cancel_reason", "canceled_at"])
    events_record(order=order, actor=actor, events=events)
    if order.status == OrderStatus.CANCELED:
        ORDER_CANCELED.emit(order=order, actor=actor, reason=label)
    else:
        _plan_shipments(order, actor=actor)
    return order


@transaction.atomic
def order_substitute_line(
    *, order: Order | int, actor, line: OrderLine | int, product: Product, quantity: int, reason: str = "", payload=None
) -> OrderLine:
    """Replace `quantity` open units of a line by another product, at the price the customer paid.

    The new line snapshots the substitute's SKU and name with the original unit price, discount share
    and tax rate; the original units are canceled. Nothing is due back: the customer consented to
    the swap (the caller records the consent). Stock for the substitute is the caller's to reserve.
    """
    order = order_lock(order)
    require_perm(actor, "fulfillment.resolve_short_pick", "substitute items")
    if order.status not in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}:
        raise TransitionRefused(
            f"Cannot substitute items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "substitute", "status": order.status},
        )
    lines = order_lines_lock(order)
    line_id = line.pk if isinstance(line, OrderLine) else line
    original = next((candidate for candidate in lines if candidate.pk == line_id), None)
    if original is None:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    if product.pk == original.product_id:
        raise ValidationError("Same product.", fields={"product": ["Choose another product than the missing one."]})
    _clean_quantities(
        lines, {original.pk: quantity}, available=lambda candidate: candidate.quantity_open, field="quantity"
    )
    discount = quantize(original.discount_amount * quantity / original.quantity, order.currency)
    amounts = line_amounts(
        quantity=quantity,
        unit_price=original.unit_price,
        discount=discount,
        tax_rate=original.tax_rate,
        includes_tax=order.prices_include_tax,
        currency=order.currency,
    )
    label = reason or f"Substitute for line {original.line_number}"
    new_line = OrderLine(
        order=order,
        line_number=max(candidate.line_number for candidate in lines) + 1,
        sku=product.sku,
        name=product.name,
        product=product,
        attributes={"substitute_for": {"line": original.line_number, "sku": original.sku}},
        quantity=quantity,
        unit_price=original.unit_price,
        discount_amount=discount,
        promotion=original.promotion,
        tax_rate=original.tax_rate,
        total_net=amounts.net,
        tax_amount=amounts.tax,
        total_gross=amounts.gross,
        promised_at=original.promised_at,
        substitute_for=original,
    )
    stamp(new_line, actor=actor, reason=label)
    new_line.save()
    original.quantity_canceled += quantity
    stamp(original, actor=actor, reason=label)
    original.save(update_fields=["quantity_canceled"])
    if not order.is_test:
        inventory.reservations_release_excess(order=order, actor=actor, lines=[original], reason=label)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.LINE_SUBSTITUTED,
        reason=reason,
        payload={
            "line": original.line_number,
            "sku": original.sku,
            "substitute_line": new_line.line_number,
            "substitute_sku": product.sku,
            "quantity": quantity,
            "refund_due": "0",
            **(payload or {}),
        },
    )
    return new_line


@transaction.atomic
def order_delay_lines(
    *, order: Order | int, actor, line_ids, promised_at: datetime.datetime, reason: str = "", payload=None
) -> Order:
    """Give lines a new (later) promise date; the customer is told by the notification of the event."""
    order = order_lock(order)
    require_perm(actor, "fulfillment.resolve_short_pick", "change promise dates")
    if promised_at is None or promised_at <= timezone.now():
        raise ValidationError("The new date must be in the future.", fields={"promised_at": ["Must be in the future."]})
    lines = [line for line in order_lines_lock(order) if line.pk in set(line_ids)]
    if not lines:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    for line in lines:
        line.promised_at = promised_at
    bulk_update_with_history(
        lines, OrderLine, ["promised_at"], default_user=actor, default_change_reason=reason or "Delivery delayed"
    )
    previous = order.promised_at
    order.promised_at = max(promised_at, previous or promised_at)
    _save(order, actor=actor, reason=reason or "Delivery delayed", fields=["promised_at"])
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.DELIVERY_DELAYED,
        reason=reason,
        payload={
            "lines": [{"line": line.line_number, "sku": line.sku} for line in lines],
            "promised_at": promised_at.isoformat(),
            "previous_promised_at": previous.isoformat() if previous else None,
            **(payload or {}),
        },
    )
    return order


EXCHANGE_STATES = {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED}


@transaction.atomic
def order_add_exchange_line(
    *,
    order: Order | int,
    actor,
    product: Product,
    quantity: int,
    unit_price,
    replaces_line: OrderLine | int,
    reason: str,
) -> tuple[OrderLine, OrderHold]:
    """Add the line a return exchanges shipped units for, held until the returned goods arrive.

    Mirrors `order_substitute_line`: the new line snapshots the product with the replaced line's
    tax rate and a share of its discount. The shipped units stay shipped (they come back through
    the return); the order gets one manual hold (reused when one is active), which the return
    releases once the goods are inspected as resellable. A shipped or delivered order is reopened
    (partially shipped) so that the new line ships through a parcel of its own, planned here; the
    new line's stock is reserved here (sourced like any line).
    """
    order = order_lock(order)
    require_perm(actor, "returns.add_returnrequest", "exchange items")
    if order.status not in EXCHANGE_STATES:
        raise TransitionRefused(
            f"Cannot exchange items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "exchange", "status": order.status},
        )
    lines = order_lines_lock(order)
    line_id = replaces_line.pk if isinstance(replaces_line, OrderLine) else replaces_line
    original = next((candidate for candidate in lines if candidate.pk == line_id), None)
    if original is None:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    _clean_quantities(
        lines, {original.pk: quantity}, available=lambda candidate: candidate.quantity_shipped, field="quantity"
    )
    price = to_decimal(unit_price, field="unit_price")
    if price < 0:
        raise ValidationError("Invalid price.", fields={"unit_price": ["A price of at least 0 is required."]})
    discount = quantize(original.discount_amount * quantity / original.quantity, order.currency)
    amounts = line_amounts(
        quantity=quantity,
        unit_price=price,
        discount=discount,
        tax_rate=original.tax_rate,
        includes_tax=order.prices_include_tax,
        currency=order.currency,
    )
    new_line = OrderLine(
        order=order,
        line_number=max(candidate.line_number for candidate in lines) + 1,
        sku=product.sku,
        name=product.name,
        product=product,
        attributes={"exchange_for": {"line": original.line_number, "sku": original.sku}},
        quantity=quantity,
        unit_price=price,
        discount_amount=discount,
        promotion=original.promotion,
        tax_rate=original.tax_rate,
        total_net=amounts.net,
        tax_amount=amounts.tax,
        total_gross=amounts.gross,
    )
    stamp(new_line, actor=actor, reason=reason)
    new_line.save()
    lines.append(new_line)
    if not order.is_test:
        # The exchanged product is kept for the customer now (what no location has is promised or
        # reported as a shortage by the sourcing, like any line).
        inventory.stock_allocate(order=order, lines=[new_line], actor=actor, preemptible_orders=_preemptible_orders())
    order.fulfillment_status = derive_fulfillment_status(lines)
    before = order.status
    if order.status in {OrderStatus.SHIPPED, OrderStatus.DELIVERED}:
        # The new line has to ship: the order is partially shipped again (until it does).
        _run_transition(order, "reopen", actor=actor, check_permission=False)
    _save(order, actor=actor, reason=reason, fields=["status", "fulfillment_status"])
    # A return's order has shipped, so `order_hold` (before shipping only) does not apply.
    hold = (
        OrderHold.objects.select_for_update()
        .filter(order=order, reason=HoldReason.MANUAL, released_at__isnull=True)
        .first()
    )
    if hold is None:
        hold, _event = _hold_place(order, reason=HoldReason.MANUAL, note=reason, actor=actor)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.HOLD_PLACED,
        reason=reason,
        payload={
            "hold": hold.pk,
            "reason": HoldReason.MANUAL,
            "exchange_line": new_line.line_number,
            "sku": product.sku,
            "quantity": quantity,
            "replaces_line": original.line_number,
            "replaces_sku": original.sku,
        },
    )
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.EXCHANGE_LINE_ADDED,
        reason=reason,
        payload={
            "line": new_line.line_number,
            "sku": product.sku,
            "quantity": quantity,
            "from": before,
            "to": order.status,
        },
    )
    # Its parcel is planned now; waves leave it out while the hold waits for the returned goods.
    _plan_shipments(order, actor=actor)
    return new_line, hold
