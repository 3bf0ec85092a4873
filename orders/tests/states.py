"""Reach any order status through the real services, as an administrator would."""

import datetime

import time_machine
from django.utils import timezone

from orders import services
from orders.choices import OrderStatus
from orders.models import Order
from orders.tests.factories import order_payload

UNPAID = {"status": "unpaid"}


def order_in_state(state: str, *, actor, **overrides) -> Order:
    def create(**kw):
        payload = order_payload(**{**kw, **overrides})
        return services.order_create(actor=actor, **payload)[0]

    if state == OrderStatus.DRAFT:
        return create(payment=UNPAID, submit=False)
    if state == OrderStatus.PENDING_APPROVAL:
        return create(payment=UNPAID, requires_approval=True)
    if state == OrderStatus.AWAITING_PAYMENT:
        return create(payment=UNPAID)
    if state == OrderStatus.UNDER_REVIEW:
        order = create(payment=UNPAID)
        return services.order_flag_for_review(order=order, actor=actor, reason="Mismatched addresses", risk_score=80)
    if state == OrderStatus.CONFIRMED:
        return create()
    if state == OrderStatus.CANCELED:
        order = create(payment=UNPAID)
        return services.order_cancel(order=order, actor=actor, reason_code="customer_request")
    order = services.order_start_preparation(order=create(), actor=actor)
    if state == OrderStatus.IN_PREPARATION:
        return order
    first_line = order.lines.order_by("line_number").first()
    order = services.order_record_shipment(order=order, actor=actor, quantities={first_line.pk: first_line.quantity})
    if state == OrderStatus.PARTIALLY_SHIPPED:
        return order
    order = services.order_record_shipment(order=order, actor=actor)
    if state == OrderStatus.SHIPPED:
        return order
    order = services.order_mark_delivered(order=order, actor=actor)
    if state == OrderStatus.DELIVERED:
        return order
    if state == OrderStatus.COMPLETED:
        with time_machine.travel(timezone.now() + datetime.timedelta(days=15), tick=True):
            return services.order_complete(order=order, actor=actor)
    raise ValueError(state)
