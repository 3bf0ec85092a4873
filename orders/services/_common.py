"""The building blocks every order service shares: limits, the transition runner, saving with history,
the one place a hold row is written, derived statuses, input checks, and the hooks that tell the
apps above.
"""

from decimal import Decimal

from oms.core.errors import ValidationError
from oms.core.fsm import run_transition
from oms.core.history import stamp
from oms.core.inputs import text_problem
from oms.core.money import ZERO, quantize, to_decimal
from orders.choices import (
    FulfillmentStatus,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
)
from orders.exceptions import TransitionRefused
from orders.hooks import ORDER_CONFIRMED, ORDER_UNITS_TO_PLAN
from orders.models import Order, OrderHold, OrderLine

MAX_LINES = 500


MAX_QUANTITY = 100_000


MAX_TEXT = 5_000


# Why a transition's condition failed, in words support can act on.
CONDITION_MESSAGES = {
    "has_lines": "The order has no lines.",
    "is_paid_or_authorized": "The order is not paid or authorized in full.",
    "customer_has_terms": "The customer has no payment terms.",
    "has_no_active_hold": "The order has an active hold; release it first.",
    "has_shipped_something": "Nothing has been shipped yet.",
    "is_fully_delivered": "Not every shipped item has been delivered.",
    "return_window_elapsed": "The return window has not elapsed yet.",
    "has_nothing_shipped": "Part of the order has shipped: use a return instead.",
}


TERMINAL_OR_SHIPPED = {
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
    OrderStatus.CANCELED,
}


def _run_transition(order: Order, name: str, *, actor, check_permission: bool = True, **kwargs) -> str:
    """Permission, then source state, then conditions; then the transition itself. Returns the new status."""
    return run_transition(
        order,
        name,
        actor=actor,
        noun="order",
        messages=CONDITION_MESSAGES,
        check_permission=check_permission,
        refused=TransitionRefused,
        **kwargs,
    )


def _save(order: Order, *, actor, reason: str, fields: list[str]) -> None:
    stamp(order, actor=actor, reason=reason)
    order.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


def _hold_place(order: Order, *, reason: str, note: str, actor) -> tuple[OrderHold, tuple[str, str, dict]]:
    """The one place a hold row is written (order_hold, intake, allocation, exchanges): the caller
    holds the order lock and checked what its action needs. Returns the hold and its event."""
    hold = OrderHold(order=order, reason=reason, note=note or "", placed_by=actor)
    stamp(hold, actor=actor, reason=note)
    hold.save()
    return hold, (OrderEventType.HOLD_PLACED, note, {"hold": hold.pk, "reason": reason})


def derive_payment_status(order: Order) -> str:
    if order.amount_refunded > 0:
        if order.amount_refunded >= order.amount_paid:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if order.amount_paid > 0 or order.total_gross == 0:
        if order.amount_paid >= order.total_gross:
            return PaymentStatus.PAID
        return PaymentStatus.PARTIALLY_PAID
    if order.amount_authorized > 0 and order.amount_authorized >= order.total_gross:
        return PaymentStatus.AUTHORIZED
    if order.on_payment_terms:
        return PaymentStatus.ON_TERMS
    return PaymentStatus.UNPAID


def derive_fulfillment_status(lines) -> str:
    ordered = sum(line.quantity - line.quantity_canceled for line in lines)
    shipped = sum(line.quantity_shipped for line in lines)
    delivered = sum(line.quantity_delivered for line in lines)
    if ordered == 0:
        return FulfillmentStatus.CANCELED
    if shipped < ordered:
        return FulfillmentStatus.PARTIALLY_SHIPPED if shipped else FulfillmentStatus.UNFULFILLED
    if delivered >= ordered:
        return FulfillmentStatus.DELIVERED
    return FulfillmentStatus.PARTIALLY_DELIVERED if delivered else FulfillmentStatus.SHIPPED


def _text(errors, key, value, *, required=False, max_length=255) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[key] = ["Must be a string."]
        return ""
    problem = text_problem(value)
    if problem:
        errors[key] = [problem]
        return ""
    value = value.strip()
    if required and not value:
        errors[key] = ["This field is required."]
    elif len(value) > max_length:
        errors[key] = [f"At most {max_length} characters."]
    return value


def _decimal(errors, key, value, *, default=None, minimum=ZERO, maximum=None) -> Decimal:
    if value is None or value == "":
        if default is None:
            errors[key] = ["This field is required."]
            return ZERO
        return default
    if isinstance(value, bool):
        errors[key] = ["A valid number is required."]
        return ZERO
    try:
        number = to_decimal(value, field=key)
    except ValidationError as exc:
        errors[key] = exc.extra["fields"][key]
        return ZERO
    if number < minimum:
        errors[key] = [f"Must be at least {minimum}."]
    elif maximum is not None and number > maximum:
        errors[key] = [f"Must be at most {maximum}."]
    return number


def _announce_confirmed(order: Order, *, actor) -> None:
    """Tell the apps above (billing invoices per order) once the order is confirmed."""
    if order.status == OrderStatus.CONFIRMED:
        ORDER_CONFIRMED.emit(order=order, actor=actor)


def _plan_shipments(order: Order, *, actor) -> None:
    """Reserved units get shipments, one per location: fulfillment plans them, in this transaction."""
    ORDER_UNITS_TO_PLAN.emit(order=order, actor=actor)


def _clean_quantities(lines: list[OrderLine], quantities: dict | None, *, available, field: str) -> dict[int, int]:
    """{line id: quantity} checked against what each line still allows (`available(line)`)."""
    by_id = {line.pk: line for line in lines}
    if quantities is None:
        return {line.pk: available(line) for line in lines if available(line) > 0}
    errors: dict[str, list[str]] = {}
    clean: dict[int, int] = {}
    for raw_id, raw_qty in quantities.items():
        try:
            line_id = int(raw_id)
        except (TypeError, ValueError):
            errors[f"{field}.{raw_id}"] = ["Unknown line."]
            continue
        line = by_id.get(line_id)
        if line is None:
            errors[f"{field}.{raw_id}"] = ["Unknown line."]
        elif isinstance(raw_qty, bool) or not isinstance(raw_qty, int) or raw_qty < 1:
            errors[f"{field}.{raw_id}"] = ["A whole number of at least 1 is required."]
        elif raw_qty > available(line):
            errors[f"{field}.{raw_id}"] = [f"At most {available(line)} for line {line.line_number} ({line.sku})."]
        else:
            clean[line_id] = raw_qty
    if errors:
        raise ValidationError("The quantities are not valid.", code="invalid_quantities", fields=errors)
    if not clean:
        raise ValidationError("Nothing to record.", code="nothing_to_record", fields={field: ["Nothing to record."]})
    return clean


def _unit_gross(line: OrderLine, quantity: int, currency: str) -> Decimal:
    """What `quantity` units of the line cost the customer (discount included), rounded half-up."""
    return quantize(line.total_gross * quantity / line.quantity, currency)
