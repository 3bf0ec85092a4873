"""What the customer hears about their order, from its events (run by `orders.events.events_record`
in the transaction of the change; the messages leave after the grouping window, after commit).

The parcel, pickup and delay messages are queued by fulfillment (through `order_notify`, which adds
the phone to text) and the seller cancellation by billing, where those changes are made; this module
adds the confirmation, the cancellation, the delivery, the return and the refund messages, and stops
what a cancellation makes pointless. A message carries what it prints (integrations never reads the
order): the phone number, and each parcel's carrier name and tracking link.

Group keys decide what one burst of changes merges into (integrations.services.notification_queue):
- a confirmation ("confirmed:<n>") is taken over by the next message about the order in the window,
  whatever its group: confirmed then dispatched (or delayed, or ready for pickup) is one message;
  confirmed then canceled is the cancellation only;
- a delivery has its own group ("delivered:<n>"): two parcels delivered together are one message,
  and a dispatch and a delivery reported together by a carrier stay two (both are news);
- a refund joins the pending cancellation or return message of the order when there is one (its
  amount is told in it), else its own group ("refund:<n>");
- a return approved and received together is one message ("return:<n>").
Each channel has its own group (the text messages are "sms:<group>").
"""

from decimal import Decimal

from integrations.models import Notification
from integrations.services import (
    CANCELED_ORDER_KINDS,
    SMS_KINDS,
    notification_queue,
    notifications_skip_for_order,
    notifications_stop_for_order,
    outbox_publish,
)
from oms.core.money import quantize
from orders.choices import OrderEventType, OrderStatus
from orders.identity import phone_key

E = OrderEventType

MARKETING_SUPPRESS_TOPIC = "marketing.suppress"
# Pending messages a refund is told in, when the order has one (else it gets its own message).
REFUND_JOINS = ("order_canceled", "seller_cancellation", "return_received", "return_approved")


def notifications_on_events(*, order, events, actor) -> None:
    by_type: dict[str, list] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    if E.CANCELED in by_type:
        _on_canceled(order, by_type)
    if not order.email:
        return
    accepted = any((e.payload or {}).get("to") == OrderStatus.CONFIRMED for e in by_type.get(E.REVIEW_ACCEPTED, []))
    if E.CONFIRMED in by_type or E.ACCEPTED_ON_TERMS in by_type or accepted:
        order_notify(
            order=order, kind="order_confirmed", group="confirmed", data={"confirmation": _confirmation(order)}
        )
    if E.DELIVERED in by_type:
        complete = order.status in (OrderStatus.DELIVERED, OrderStatus.COMPLETED)
        order_notify(order=order, kind="order_delivered", group="delivered", data={"complete": complete})
    for event_type, kind in ((E.RETURN_APPROVED, "return_approved"), (E.RETURN_RECEIVED, "return_received")):
        for event in by_type.get(event_type, []):
            payload = event.payload or {}
            data = {
                "return": str(payload.get("return") or ""),
                "return_tracking_number": str(payload.get("tracking_number") or ""),
                "return_tracking_url": str(payload.get("tracking_url") or ""),
            }
            if payload.get("items"):
                data["items"] = payload["items"]
            if kind == "return_received":
                data["return_received"] = True
            order_notify(order=order, kind=kind, group="return", data={k: v for k, v in data.items() if v})
    refunds = [_refund(event) for event in by_type.get(E.REFUND_PROCESSED, [])]
    if refunds:
        order_notify(
            order=order,
            kind="refund_processed",
            group=_refund_group(order),
            data={"refunds": refunds},
            merge=("refunds",),
        )


def order_notify(*, order, kind: str, group: str, data: dict, merge: tuple[str, ...] = ()) -> None:
    """Queue a message to the order's customer, in the caller's transaction (nothing without an
    email): in the order's language, grouped by `group` (":<number>" added unless it has one), and
    texted too for the kinds in SMS_KINDS when the order has a phone number."""
    if not order.email:
        return
    notification_queue(
        kind=kind,
        recipient=order.email,
        group_key=group if ":" in group else f"{group}:{order.number}",
        data={"order": order.number, **data},
        locale=order.locale,
        order_number=order.number,
        is_test=order.is_test,
        merge=merge,
        phone=order_sms_phone(order) if kind in SMS_KINDS else None,
    )


def order_sms_phone(order) -> str:
    """The number to text about an order: the customer's phone, else the shipping address's, in
    international form ("+33612345678"); "" when there is none."""
    address = order.shipping_address if isinstance(order.shipping_address, dict) else {}
    billing = order.billing_address if isinstance(order.billing_address, dict) else {}
    country = str(address.get("country") or billing.get("country") or "")
    key = phone_key(order.customer.phone or str(address.get("phone") or ""), country=country)
    return f"+{key}" if key else ""


def _confirmation(order) -> dict:
    items = [
        {"sku": line.sku, "name": line.name, "quantity": line.quantity}
        for line in order.lines.order_by("line_number")
        if line.quantity
    ]
    return {"items": items, "total": str(order.total_gross), "currency": order.currency}


def _refund(event) -> dict:
    payload = event.payload or {}
    return {
        "refund": str(payload.get("refund") or ""),
        "amount": str(payload.get("amount") or ""),
        "currency": str(payload.get("currency") or ""),
        "method": str(payload.get("method") or "original"),
    }


def _refund_group(order) -> str:
    """The pending cancellation or return message of the order, if any: the refund is told in it."""
    pending = (
        Notification.objects.filter(
            order_number=order.number, channel="email", status=Notification.Status.PENDING, kind__in=REFUND_JOINS
        )
        .order_by("-pk")
        .values_list("group_key", flat=True)
        .first()
    )
    return pending or f"refund:{order.number}"


def _is_seller_cancellation(by_type) -> bool:
    # billing.seller_cancel_lines tells the customer itself (its own message, with the refund).
    return any((event.payload or {}).get("seller_cancellation") for event in by_type.get(E.LINES_CANCELED, []))


def _on_canceled(order, by_type) -> None:
    """Nothing else is worth telling about a canceled order: its pending messages are skipped and
    those queued later will be (the cancellation, the seller's and the refunds excepted), marketing
    stops its follow-ups (an outbox message, in this transaction), and the customer gets the
    cancellation."""
    notifications_skip_for_order(
        order_number=order.number,
        reason="Order canceled before this message was sent.",
        keep_kinds=CANCELED_ORDER_KINDS,
    )
    notifications_stop_for_order(
        order_number=order.number,
        reason="Order canceled: only the cancellation and its refunds are sent.",
        keep_kinds=CANCELED_ORDER_KINDS,
    )
    if order.email:
        outbox_publish(
            topic=MARKETING_SUPPRESS_TOPIC,
            payload={"order": order.number, "email": order.email, "reason": "order_canceled"},
            key=order.number,
            is_test=order.is_test,
        )
    if not order.email or _is_seller_cancellation(by_type):
        return
    [event] = by_type[E.CANCELED][-1:]
    payload = event.payload or {}
    data = {"reason_code": str(payload.get("reason_code") or ""), "currency": order.currency}
    try:
        refund_due = quantize(Decimal(str(payload.get("refund_due") or "0")), order.currency)
    except ArithmeticError:
        refund_due = Decimal("0")
    if refund_due > 0:
        data["refund_due"] = str(refund_due)
    order_notify(order=order, kind="order_canceled", group="cancel", data=data)
