"""The order timeline: typed events written in the service's transaction, then published.

Every event is also published to the outbox as topic `order.<type>` keyed by the order number, in
the same transaction, so integrations and notifications hear of it at least once and never of a
change that rolled back. Then `orders.hooks.ORDER_EVENTS_RECORDED` lets the case detectors, the
automation rules and the customer notifications react, in the same transaction (subscribed in that
order by OrdersConfig.ready()).
"""

import logging

from integrations.services import outbox_publish_many
from oms.core.logging import set_order
from orders.hooks import ORDER_EVENTS_RECORDED
from orders.models import Order, OrderEvent

logger = logging.getLogger("orders.events")


def order_snapshot(order: Order) -> dict:
    return {
        "number": order.number,
        "channel": order.channel.code,
        "external_id": order.external_id,
        "status": order.status,
        "payment_status": order.payment_status,
        "fulfillment_status": order.fulfillment_status,
        "currency": order.currency,
        "total_gross": str(order.total_gross),
        "is_test": order.is_test,
    }


def events_record(*, order: Order, actor, events: list[tuple[str, str, dict]]) -> list[OrderEvent]:
    """Write (type, reason, payload) events for one order and publish them. One INSERT, one publish."""
    set_order(order.number)
    rows = OrderEvent.objects.bulk_create(
        [
            OrderEvent(order=order, type=event_type, actor=actor, reason=reason or "", payload=payload or {})
            for event_type, reason, payload in events
        ]
    )
    snapshot = order_snapshot(order)
    actor_name = actor.get_username() if actor is not None else None
    outbox_publish_many(
        items=[
            (
                f"order.{row.type}",
                {"event": row.type, "order": snapshot, "actor": actor_name, "reason": row.reason, "data": row.payload},
            )
            for row in rows
        ],
        key=order.number,
        is_test=order.is_test,
    )
    for row in rows:
        logger.info("order %s", row.type, extra={"event": row.type, "actor": actor_name, "status": order.status})
    ORDER_EVENTS_RECORDED.emit(order=order, events=rows, actor=actor)
    return rows


def event_record(*, order: Order, actor, type: str, reason: str = "", payload: dict | None = None) -> OrderEvent:  # noqa: A002
    return events_record(order=order, actor=actor, events=[(type, reason, payload or {})])[0]
