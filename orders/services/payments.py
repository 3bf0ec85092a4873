"""Money counted on the order: payments and authorizations (which confirm it), refunds (billing's
refund_process calls in).
"""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from oms.core.errors import ValidationError
from oms.core.money import quantize
from oms.core.permissions import require_perm
from orders.choices import (
    OrderEventType,
    OrderStatus,
)
from orders.events import events_record
from orders.exceptions import TransitionRefused
from orders.locks import order_lock
from orders.models import Order
from orders.services._common import _announce_confirmed, _decimal, _run_transition, _save, derive_payment_status
from orders.services.allocation import _allocate_stock


@transaction.atomic
def order_mark_paid(
    *,
    order: Order | int,
    actor,
    amount: Decimal | str | None = None,
    captured: bool = True,
    method: str = "",
    reference: str = "",
    reason: str = "",
) -> Order:
    """Record a payment (captured) or an authorization; confirms the order once it is covered."""
    order = order_lock(order)
    require_perm(actor, "orders.record_payment_order", "record payments")
    if order.status in {OrderStatus.DRAFT, OrderStatus.CANCELED, OrderStatus.COMPLETED}:
        raise TransitionRefused(
            f"Cannot record a payment on order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"status": order.status},
        )
    already = order.amount_paid if captured else order.amount_authorized
    if amount in (None, "") and order.total_gross - already <= 0:
        # The default amount is the balance: with nothing due it would record a payment of 0.
        raise TransitionRefused(
            f"Nothing is due on order {order.number}.", code="nothing_due", extra={"status": order.status}
        )
    errors: dict[str, list[str]] = {}
    value = _decimal(errors, "amount", amount, default=order.total_gross - already, minimum=Decimal("0.0001"))
    if errors:
        raise ValidationError("The payment is not valid.", code="invalid_payment", fields=errors)
    value = quantize(value, order.currency)
    if already + value > order.total_gross:
        raise ValidationError(
            f"The payment exceeds what is due ({order.total_gross - already} {order.currency}).",
            code="overpayment",
            fields={"amount": ["Exceeds the amount due."]},
        )
    if captured:
        order.amount_paid += value
        order.paid_at = timezone.now()
    else:
        order.amount_authorized += value
    order.payment_method = (method or order.payment_method)[:40]
    order.payment_reference = (reference or order.payment_reference)[:128]
    order.payment_status = derive_payment_status(order)
    events = [
        (
            OrderEventType.PAYMENT_RECORDED,
            reason,
            {"amount": str(value), "captured": captured, "method": method, "reference": reference},
        )
    ]
    if order.status == OrderStatus.AWAITING_PAYMENT and order.is_paid_or_authorized():
        _run_transition(order, "pay", actor=actor)
        events.append((OrderEventType.CONFIRMED, reason, {}))
        events += _allocate_stock(order, actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Payment recorded",
        fields=[
            "status",
            "payment_status",
            "amount_paid",
            "amount_authorized",
            "paid_at",
            "payment_method",
            "payment_reference",
            "confirmed_at",
        ],
    )
    events_record(order=order, actor=actor, events=events)
    _announce_confirmed(order, actor=actor)
    return order


@transaction.atomic
def order_record_refund(*, order: Order | int, actor, amount: Decimal, reference: str = "") -> Order:
    """Count money given back on the order (called by billing's refund_process, which checks the
    refund's approval and records its own event in the same transaction). Never above what was paid:
    the order's check constraint refuses it too."""
    order = order_lock(order)
    value = quantize(Decimal(amount), order.currency)
    if value <= 0 or order.amount_refunded + value > order.amount_paid:
        raise ValidationError(
            f"A refund of {value} {order.currency} exceeds what was paid on order {order.number}.",
            code="refund_exceeds_paid",
            fields={"amount": [f"At most {order.amount_paid - order.amount_refunded} {order.currency}."]},
        )
    order.amount_refunded += value
    order.payment_status = derive_payment_status(order)
    _save(order, actor=actor, reason=f"Refund {reference}".strip(), fields=["amount_refunded", "payment_status"])
    return order
