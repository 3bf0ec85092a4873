"""How the order page reads an order's events: tones per status, money in payloads, one line per event."""

from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from oms.core.admin import (
    money,
)
from orders.addresses import format_address
from orders.choices import (
    CancelReason,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
)
from orders.fraud_details import can_see_fraud_details, event_is_fraud, plain_payload
from orders.models import OrderEvent

STATUS_TONES = {
    OrderStatus.DRAFT: "muted",
    OrderStatus.PENDING_APPROVAL: "warn",
    OrderStatus.AWAITING_PAYMENT: "warn",
    OrderStatus.UNDER_REVIEW: "alert",
    OrderStatus.CONFIRMED: "info",
    OrderStatus.IN_PREPARATION: "info",
    OrderStatus.PARTIALLY_SHIPPED: "teal",
    OrderStatus.SHIPPED: "teal",
    OrderStatus.DELIVERED: "ok",
    OrderStatus.COMPLETED: "done",
    OrderStatus.CANCELED: "void",
}


PAYMENT_TONES = {
    PaymentStatus.UNPAID: "warn",
    PaymentStatus.AUTHORIZED: "info",
    PaymentStatus.ON_TERMS: "info",
    PaymentStatus.PARTIALLY_PAID: "warn",
    PaymentStatus.PAID: "ok",
    PaymentStatus.PARTIALLY_REFUNDED: "purple",
    PaymentStatus.REFUNDED: "purple",
}


FULFILLMENT_TONES = {
    FulfillmentStatus.UNFULFILLED: "muted",
    FulfillmentStatus.PARTIALLY_SHIPPED: "teal",
    FulfillmentStatus.SHIPPED: "teal",
    FulfillmentStatus.PARTIALLY_DELIVERED: "ok",
    FulfillmentStatus.DELIVERED: "ok",
    FulfillmentStatus.CANCELED: "void",
}


EVENT_TONES = {
    OrderEventType.CANCELED: "void",
    OrderEventType.FLAGGED_FOR_REVIEW: "alert",
    OrderEventType.HOLD_PLACED: "alert",
    OrderEventType.HOLD_RELEASED: "ok",
    OrderEventType.PAYMENT_RECORDED: "ok",
    OrderEventType.CONFIRMED: "info",
    OrderEventType.SHIPPED: "teal",
    OrderEventType.SHIPMENT_RECORDED: "teal",
    OrderEventType.DELIVERED: "ok",
    OrderEventType.COMPLETED: "done",
    OrderEventType.NOTE_ADDED: "muted",
}


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


MONEY_KEYS = {"amount", "refund_due", "total_gross"}


def _payload_money(value, event: OrderEvent) -> str:
    try:
        return money(Decimal(str(value)), event.order.currency)
    except (ArithmeticError, ValueError, TypeError):
        return str(value)


def payload_summary(event: OrderEvent, *, limit: int = 220, payload: dict | None = None) -> str:
    """One line that says what an event's payload (or `payload` in its place) holds, in words support reads."""
    payload = dict(event.payload or {}) if payload is None else dict(payload)
    parts = []
    before, after = payload.pop("from", None), payload.pop("to", None)
    if before and after:
        parts.append(f"{_label(OrderStatus, before)} → {_label(OrderStatus, after)}")
    elif before:
        parts.append(_("from %(status)s") % {"status": _label(OrderStatus, before)})
    for key in ("hold", "note"):  # row ids: the holds and notes are shown on the page
        if isinstance(payload.get(key), int):
            payload.pop(key)
    if event.type == OrderEventType.ADDRESS_CHANGED and isinstance(payload.get("after"), dict):
        payload.pop("before", None)
        after_address = payload.pop("after")
        parts.append(f"{payload.pop('kind', '')}: {format_address(after_address).replace(chr(10), ', ')}")
    for key, value in payload.items():
        if value in (None, "", [], {}, False):
            continue
        if value is True:
            parts.append(key.replace("_", " "))
            continue
        if key == "lines" and isinstance(value, list):
            value = ", ".join(
                f"{line.get('sku', '?')} × {line.get('quantity', '?')}" if isinstance(line, dict) else str(line)
                for line in value
            )
        elif key == "lines" and isinstance(value, dict):
            key, value = "items", sum(q for q in value.values() if isinstance(q, int))
        elif key == "holds_released" and isinstance(value, list):
            value = len(value)
        elif key in MONEY_KEYS:
            value = _payload_money(value, event)
        elif key == "currency":
            continue  # shown with the amounts
        elif key == "reason_code":
            value = _label(CancelReason, value)
        elif key == "reason" and event.type in {OrderEventType.HOLD_PLACED, OrderEventType.HOLD_RELEASED}:
            value = _label(HoldReason, value)
        elif key in {"status", "fulfillment_status"}:
            value = _label(OrderStatus if key == "status" else FulfillmentStatus, value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The order page shows this many of the newest events; the rest are one click away.
TIMELINE_EVENTS = 100


def event_for(user, event: OrderEvent, *, limit: int = 220) -> tuple[str, str, bool]:
    """(reason, payload summary, withheld) of an event as `user` may read it: a fraud event's reason
    and details only for those who work fraud (orders.fraud_details); others read the plain part."""
    if event_is_fraud(event.type, event.payload) and not can_see_fraud_details(user):
        return "", payload_summary(event, limit=limit, payload=plain_payload(event.payload)), True
    return event.reason, payload_summary(event, limit=limit), False
