"""The order's plain lifecycle steps: submit, approve, accept on terms, review, start preparation, complete."""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from oms.core.errors import PermissionDeniedError, ValidationError
from orders.choices import (
    OrderEventType,
    OrderStatus,
)
from orders.events import event_record, events_record
from orders.exceptions import TransitionRefused
from orders.locks import order_lock
from orders.models import Order
from orders.services._common import _announce_confirmed, _plan_shipments, _run_transition, _save, derive_payment_status
from orders.services.allocation import _allocate_stock


def _simple_transition(
    *, order, actor, name: str, event_type: str, reason: str, fields: list[str], payload=None, **kwargs
) -> Order:
    order = order_lock(order)
    before = order.status
    _run_transition(order, name, actor=actor, **kwargs)
    _save(order, actor=actor, reason=reason or str(event_type.label), fields=["status", *fields])
    event_record(
        order=order,
        actor=actor,
        type=event_type,
        reason=reason,
        payload={"from": before, "to": order.status, **(payload or {})},
    )
    return order


@transaction.atomic
def order_submit(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order, actor=actor, name="submit", event_type=OrderEventType.SUBMITTED, reason=reason, fields=[]
    )


@transaction.atomic
def order_approve(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order, actor=actor, name="approve", event_type=OrderEventType.APPROVED, reason=reason, fields=[]
    )


@transaction.atomic
def order_accept_on_terms(*, order: Order | int, actor, reason: str = "") -> Order:
    order = order_lock(order)
    before = order.status
    _run_transition(order, "accept_on_terms", actor=actor)
    order.payment_status = derive_payment_status(order)
    events = [
        (
            OrderEventType.ACCEPTED_ON_TERMS,
            reason,
            {"from": before, "to": order.status, "terms_days": order.customer.payment_terms_days},
        )
    ]
    events += _allocate_stock(order, actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Accepted on payment terms",
        fields=["status", "on_payment_terms", "payment_status", "confirmed_at", "promised_at"],
    )
    events_record(order=order, actor=actor, events=events)
    _announce_confirmed(order, actor=actor)
    return order


@transaction.atomic
def order_flag_for_review(*, order: Order | int, actor, reason: str, risk_score: int | None = None) -> Order:
    if not (reason or "").strip():
        raise ValidationError("A reason is required.", code="reason_required", fields={"reason": ["Required."]})
    if risk_score is not None and (
        isinstance(risk_score, bool) or not isinstance(risk_score, int) or not 0 <= risk_score <= 100
    ):
        raise ValidationError("Risk score must be 0 to 100.", fields={"risk_score": ["A whole number from 0 to 100."]})
    order = order_lock(order)
    before = order.status
    _run_transition(order, "flag_for_review", actor=actor)
    fields = ["status"]
    if risk_score is not None:
        order.risk_score = risk_score
        fields.append("risk_score")
    _save(order, actor=actor, reason=reason, fields=fields)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.FLAGGED_FOR_REVIEW,
        reason=reason,
        payload={"from": before, "to": order.status, "risk_score": risk_score},
    )
    return order


@transaction.atomic
def order_accept(*, order: Order | int, actor, reason: str = "") -> Order:
    """Accept an order under review: confirmed when settled, otherwise back to awaiting payment."""
    order = order_lock(order)
    before = order.status
    _run_transition(order, "accept", actor=actor)
    events = [(OrderEventType.REVIEW_ACCEPTED, reason, {"from": before, "to": order.status})]
    if order.status == OrderStatus.CONFIRMED:
        events += _allocate_stock(order, actor=actor)
    _save(order, actor=actor, reason=reason or "Review accepted", fields=["status", "confirmed_at", "promised_at"])
    events_record(order=order, actor=actor, events=events)
    _announce_confirmed(order, actor=actor)
    return order


@transaction.atomic
def order_start_preparation(*, order: Order | int, actor, reason: str = "") -> Order:
    """Start picking. Lines reserved "hard" (at picking) are reserved now: all of them, or nothing."""
    order = order_lock(order)
    before = order.status
    _run_transition(order, "start_preparation", actor=actor)
    order.preparation_started_at = order.preparation_started_at or timezone.now()
    events = [(OrderEventType.PREPARATION_STARTED, reason, {"from": before, "to": order.status})]
    events += _allocate_stock(order, actor=actor, hard=True)
    _save(order, actor=actor, reason=reason or "Preparation started", fields=["status", "preparation_started_at"])
    events_record(order=order, actor=actor, events=events)
    _plan_shipments(order, actor=actor)
    return order


@transaction.atomic
def order_complete(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order,
        actor=actor,
        name="complete",
        event_type=OrderEventType.COMPLETED,
        reason=reason,
        fields=["completed_at"],
    )


def orders_complete_due(*, actor, limit: int = 500) -> int:
    """Close delivered orders whose return window has elapsed (the periodic task calls this)."""
    cutoff = timezone.now() - datetime.timedelta(days=settings.OMS_RETURN_WINDOW_DAYS)
    ids = list(
        Order.objects.filter(status=OrderStatus.DELIVERED, delivered_at__lte=cutoff)
        .order_by("delivered_at")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for order_id in ids:
        try:
            order_complete(order=order_id, actor=actor, reason="Return window elapsed")
            done += 1
        except (TransitionRefused, PermissionDeniedError):
            continue
    return done
