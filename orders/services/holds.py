"""Holds: placed and released with who and why; the fraud false-positive protocol."""

from django.db import transaction
from django.utils import timezone

from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.history import stamp
from oms.core.permissions import require_perm
from orders.choices import (
    HoldReason,
    OrderEventType,
    OrderStatus,
)
from orders.events import event_record, events_record
from orders.exceptions import TransitionRefused
from orders.locks import order_lock
from orders.models import Order, OrderHold
from orders.services._common import (
    MAX_TEXT,
    TERMINAL_OR_SHIPPED,
    _announce_confirmed,
    _hold_place,
    _run_transition,
    _save,
)
from orders.services.allocation import _allocate_stock


@transaction.atomic
def order_hold(*, order: Order | int, actor, reason: str, note: str = "") -> OrderHold:
    if reason not in HoldReason.values:
        raise ValidationError(
            "Unknown hold reason.",
            code="invalid_reason",
            fields={"reason": [f"One of: {', '.join(HoldReason.values)}."]},
        )
    if len(note or "") > MAX_TEXT:
        raise ValidationError("The note is too long.", fields={"note": [f"At most {MAX_TEXT} characters."]})
    order = order_lock(order)
    require_perm(actor, "orders.place_hold", "place holds")
    if order.status in TERMINAL_OR_SHIPPED:
        raise TransitionRefused(
            f"Cannot hold order {order.number}: it is {order.get_status_display().lower()}.",
            code="hold_not_allowed",
            extra={"status": order.status},
        )
    if order.holds.filter(reason=reason, released_at__isnull=True).exists():
        raise ConflictError(
            f"Order {order.number} already has an active {HoldReason(reason).label.lower()} hold.", code="hold_exists"
        )
    hold, event = _hold_place(order, reason=reason, note=note, actor=actor)
    events_record(order=order, actor=actor, events=[event])
    return hold


@transaction.atomic
def order_release_hold(*, hold: OrderHold | int, actor, note: str) -> OrderHold:
    hold_id = hold.pk if isinstance(hold, OrderHold) else hold
    order_id = OrderHold.objects.filter(pk=hold_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("Hold not found.", code="hold_not_found")
    if not (note or "").strip():
        raise ValidationError(
            "A reason is required to release a hold.", code="reason_required", fields={"note": ["Required."]}
        )
    order = order_lock(order_id)  # lock order: order first, then its holds
    require_perm(actor, "orders.release_hold", "release holds")
    hold = OrderHold.objects.select_for_update().get(pk=hold_id)
    if hold.released_at is not None:
        raise ConflictError("This hold was already released.", code="hold_already_released")
    _release(hold, actor=actor, note=note)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.HOLD_RELEASED,
        reason=note,
        payload={"hold": hold.pk, "reason": hold.reason},
    )
    return hold


def _release(hold: OrderHold, *, actor, note: str) -> None:
    hold.released_at = timezone.now()
    hold.released_by = actor
    hold.release_note = note
    stamp(hold, actor=actor, reason=note)
    hold.save(update_fields=["released_at", "released_by", "release_note"])


def _release_all_holds(*, order: Order, actor, note: str) -> list[int]:
    released = []
    for hold in OrderHold.objects.select_for_update().filter(order=order, released_at__isnull=True).order_by("pk"):
        _release(hold, actor=actor, note=note)
        released.append(hold.pk)
    return released


@transaction.atomic
def order_clear_fraud(*, order: Order | int, actor, reason: str) -> Order:
    """The false-positive protocol: one action, its own permission, a reason required.

    Releases the active fraud-review hold, accepts the review when the order is under review
    (confirmed when settled), and records the decision on the timeline; the fraud case closes as
    a false positive with the reason as its evidence.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_TEXT:
        raise ValidationError(
            "A reason is required to clear a fraud review.", code="reason_required", fields={"reason": ["Required."]}
        )
    order = order_lock(order)
    require_perm(actor, "orders.release_fraud_hold", "clear fraud reviews")
    holds = list(
        OrderHold.objects.select_for_update().filter(
            order=order, reason=HoldReason.FRAUD_REVIEW, released_at__isnull=True
        )
    )
    if not holds and order.status != OrderStatus.UNDER_REVIEW:
        raise ConflictError(f"Order {order.number} is not under fraud review.", code="not_under_review")
    events = []
    for hold in holds:
        _release(hold, actor=actor, note=reason)
        events.append(
            (
                OrderEventType.HOLD_RELEASED,
                reason,
                {"hold": hold.pk, "reason": hold.reason, "decision": "false_positive"},
            )
        )
    before = order.status
    if order.status == OrderStatus.UNDER_REVIEW:
        # The permission to clear fraud includes accepting the review it caused.
        _run_transition(order, "accept", actor=actor, check_permission=False)
        events.append(
            (OrderEventType.REVIEW_ACCEPTED, reason, {"from": before, "to": order.status, "decision": "false_positive"})
        )
        if order.status == OrderStatus.CONFIRMED:
            events += _allocate_stock(order, actor=actor)
        _save(order, actor=actor, reason=reason, fields=["status", "confirmed_at", "promised_at"])
    events.append(
        (OrderEventType.FRAUD_CLEARED, reason, {"holds_released": [hold.pk for hold in holds], "from": before})
    )
    events_record(order=order, actor=actor, events=events)
    _announce_confirmed(order, actor=actor)
    return order
