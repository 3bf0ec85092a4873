"""Cases: one numbered record per problem that needs a person, opened and closed where it is detected.

Detectors are of two kinds:
- event detectors (`cases_on_events`), run by `orders.events.events_record` in the transaction of
  the change: a hold placed opens its case and its release closes it, a short pick opens one and its
  resolution closes it, a parcel lost, a dispute opened, a fraud flag…;
- sweeps (`cases_sweep`, a beat task): the internal SLAs, overdue invoices and dead-lettered
  outbox messages, which are found by time rather than by an event. The apps above orders answer
  for what they own through orders.hooks: billing opens its refund SLA breaches (SLA_SWEEP) and its
  overdue invoices (CASES_SWEEP) in billing.cases.

Whether a case's source is still open is answered here for orders' own sources (holds, fraud
reviews) and by the owning app for the others (CASE_SOURCE_OPEN: fulfillment's short picks).

Detecting the same problem again finds the open case (the partial unique constraint on
`source_key`): a replayed event, or two workers detecting at once, never open a second case.
Every change to a case is a service here, with its permission, FSM transition, history row and an
event on the order's timeline.
"""

import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.models import OutboxMessage
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.fsm import run_transition
from oms.core.history import stamp
from oms.core.numbering import format_number, next_unique
from orders.choices import (
    CASE_TEAMS,
    CaseDecision,
    CaseKind,
    CaseLevel,
    CaseStatus,
    CaseTeam,
    HoldReason,
    OrderEventType,
    OrderStatus,
)
from orders.events import events_record
from orders.hooks import CASE_SOURCE_OPEN, CASES_SWEEP, SLA_SWEEP
from orders.models import Case, Customer, Order, SlaPolicy

logger = logging.getLogger("orders.cases")

MAX_TEXT = 5_000
TEAM_PERMISSIONS = {
    CaseTeam.SUPPORT: "orders.work_support_case",
    CaseTeam.FRAUD: "orders.work_fraud_case",
    CaseTeam.WAREHOUSE: "orders.work_warehouse_case",
    CaseTeam.FINANCE: "orders.work_finance_case",
    CaseTeam.INTEGRATION: "orders.work_integration_case",
}
L2_PERMISSION = "orders.work_l2_case"

# The hold reasons that are a problem for someone (a manual hold is already someone's decision).
HOLD_CASES = {
    HoldReason.FRAUD_REVIEW: CaseKind.FRAUD_REVIEW,
    HoldReason.ADDRESS_CHECK: CaseKind.ADDRESS_CHECK,
    HoldReason.CREDIT_LIMIT: CaseKind.CREDIT_HOLD,
    HoldReason.PAYMENT_OVERDUE: CaseKind.PAYMENT_OVERDUE,
    HoldReason.STOCK_SHORTAGE: CaseKind.STOCK_SHORTAGE,
    HoldReason.SUPPLIER_DELAY: CaseKind.STOCK_SHORTAGE,
    HoldReason.UNKNOWN_PRODUCT: CaseKind.INTEGRATION_FAILURE,
}
PARCEL_CASES = {
    "lost": CaseKind.LOST_PARCEL,
    "damaged": CaseKind.DAMAGED_PARCEL,
    "returned_to_sender": CaseKind.LOST_PARCEL,
}
SHORT_PICK_DECISIONS = {
    OrderEventType.LINE_SUBSTITUTED: CaseDecision.FIXED,
    OrderEventType.DELIVERY_DELAYED: CaseDecision.CUSTOMER_CONTACTED,
    OrderEventType.LINES_CANCELED: CaseDecision.REFUNDED,
}
SLA_STAGES = {
    "preparation": "payment_to_preparation",
    "dispatch": "preparation_to_dispatch",
    "refund": "refund",
}


# --- who may see and work which cases -----------------------------------------------------------


def user_case_scope(user) -> tuple[list[str], list[str]]:
    """The kinds and levels of case `user` works: their queues (empty when none)."""
    if user is None or not user.is_active:
        return [], []
    teams = {team for team, perm in TEAM_PERMISSIONS.items() if user.has_perm(perm)}
    kinds = [kind.value for kind in CaseKind if CASE_TEAMS[kind] in teams]
    levels = [CaseLevel.L1.value] + ([CaseLevel.L2.value] if user.has_perm(L2_PERMISSION) else [])
    return (kinds, levels) if kinds else ([], [])


def case_scope_q(user) -> Q:
    kinds, levels = user_case_scope(user)
    if not kinds:
        return Q(pk__in=[])
    return Q(kind__in=kinds, level__in=levels)


def can_work(user, case: Case) -> bool:
    kinds, levels = user_case_scope(user)
    return case.kind in kinds and case.level in levels


def _require_work(actor, case: Case, perm: str | None, action: str) -> None:
    if perm and not actor.has_perm(perm):
        raise PermissionDeniedError(f"You are not allowed to {action}.")
    if not can_work(actor, case):
        raise PermissionDeniedError(
            f"You do not work the {case.get_kind_display().lower()} ({case.get_level_display()}) queue."
        )


# --- due times ----------------------------------------------------------------------------------


def case_due_at(kind: str, level: str, *, now: datetime.datetime | None = None) -> datetime.datetime:
    hours = settings.OMS_CASE_DUE_HOURS.get(f"{kind}:{level}") or settings.OMS_CASE_DUE_HOURS.get(kind)
    if hours is None:
        hours = settings.OMS_CASE_DUE_HOURS["default" if level == CaseLevel.L1 else "default:l2"]
    return (now or timezone.now()) + datetime.timedelta(hours=hours)


# --- opening, working, resolving -------------------------------------------------------------------


def _record(case: Case, event_type: str, *, actor, reason: str = "", **extra) -> None:
    if case.order_id is None:
        return
    order = case.order
    payload = {"case": case.number, "kind": case.kind, "level": case.level, "status": case.status, **extra}
    events_record(order=order, actor=actor, events=[(event_type, reason, payload)])


@transaction.atomic
def case_open(
    *,
    kind: str,
    source_key: str,
    title: str,
    actor,
    order: Order | None = None,
    customer: Customer | None = None,
    level: str = CaseLevel.L1,
    facts: dict | None = None,
    due_at: datetime.datetime | None = None,
    by_hand: bool = False,
) -> tuple[Case, bool]:
    """Open the case for `source_key`, or return the one already open. Returns (case, created).

    Detectors call it with `by_hand=False` (the detection is the authority); a person opening a
    case by hand needs `orders.open_case` and to work the queue it lands in.
    """
    errors = {}
    if kind not in CaseKind.values:
        errors["kind"] = [f"One of: {', '.join(CaseKind.values)}."]
    if level not in CaseLevel.values:
        errors["level"] = [f"One of: {', '.join(CaseLevel.values)}."]
    title = (title or "").strip()
    if not title or len(title) > 255:
        errors["title"] = ["1 to 255 characters."]
    if errors:
        raise ValidationError("The case is not valid.", code="invalid_case", fields=errors)
    actor = actor or get_system_user()
    if order is not None and customer is None:
        customer = order.customer
    case = Case(
        kind=kind,
        level=level,
        source_key=source_key[:120],
        title=title,
        facts=facts or {},
        order=order,
        customer=customer,
        due_at=due_at or case_due_at(kind, level),
        opened_by=actor,
        is_test=bool(order and order.is_test),
    )
    if by_hand:
        _require_work(actor, case, "orders.open_case", "open cases")
    existing = Case.objects.filter(source_key=case.source_key).exclude(status=CaseStatus.RESOLVED).first()
    if existing is not None:
        return existing, False
    now = timezone.now()
    case.number = format_number("CASE", now.year, next_unique("case", now.year))
    stamp(case, actor=actor, reason=title)
    try:
        with transaction.atomic():
            case.save(force_insert=True)
    except IntegrityError:  # detected at the same moment by another transaction
        return Case.objects.exclude(status=CaseStatus.RESOLVED).get(source_key=case.source_key), False
    logger.info("case opened", extra={"case": case.number, "kind": kind, "source": case.source_key})
    _record(case, OrderEventType.CASE_OPENED, actor=actor, reason=title, title=title)
    return case, True


def _lock(case: Case | int | str) -> Case:
    if isinstance(case, Case):
        case = case.pk
    lookup = {"number": case} if isinstance(case, str) and not case.isdigit() else {"pk": int(case)}
    try:
        return Case.objects.select_for_update(of=("self",)).select_related("order").get(**lookup)
    except Case.DoesNotExist:
        raise NotFoundError("Case not found.", code="case_not_found") from None


def _refuse_resolved(case: Case, action: str) -> None:
    if case.status == CaseStatus.RESOLVED:
        raise ConflictError(f"Case {case.number} is resolved: it cannot be {action}.", code="case_resolved")


@transaction.atomic
def case_assign(*, case, actor, assignee=None) -> Case:
    """Take a case (assignee omitted) or give it to someone who works its queue."""
    case = _lock(case)
    _refuse_resolved(case, "assigned")
    _require_work(actor, case, None, "assign cases")
    assignee = assignee or actor
    if assignee != actor and not can_work(assignee, case):
        raise ValidationError(
            f"{assignee.get_username()} does not work this queue.",
            code="assignee_cannot_work",
            fields={"assignee": ["Not in this queue's team or level."]},
        )
    if case.assignee_id == assignee.pk and case.status == CaseStatus.IN_PROGRESS:
        return case
    run_transition(case, "assign", actor=actor, noun="case", messages={}, check_permission=False, assignee=assignee)
    stamp(case, actor=actor, reason=f"Assigned to {assignee.get_username()}")
    case.save()
    _record(case, OrderEventType.CASE_ASSIGNED, actor=actor, assignee=assignee.get_username())
    return case


@transaction.atomic
def case_escalate(*, case, actor, reason: str) -> Case:
    """L1 → L2, with the reason; the case leaves its assignee and gets the L2 due time."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_TEXT:
        raise ValidationError(
            "A reason is required to escalate.", code="reason_required", fields={"reason": ["Required."]}
        )
    case = _lock(case)
    _refuse_resolved(case, "escalated")
    _require_work(actor, case, "orders.escalate_case", "escalate cases")
    if case.level == CaseLevel.L2:
        raise ConflictError(f"Case {case.number} is already at level 2.", code="already_escalated")
    run_transition(
        case,
        "escalate",
        actor=actor,
        noun="case",
        messages={},
        check_permission=False,
        reason=reason,
        due_at=case_due_at(case.kind, CaseLevel.L2),
    )
    stamp(case, actor=actor, reason=reason)
    case.save()
    _record(case, OrderEventType.CASE_ESCALATED, actor=actor, reason=reason)
    return case


def _clean_decision(decision: str) -> str:
    if decision not in CaseDecision.values:
        raise ValidationError(
            "Unknown decision.",
            code="invalid_decision",
            fields={"decision": [f"One of: {', '.join(CaseDecision.values)}."]},
        )
    return decision


def _resolve(case: Case, *, actor, decision: str, resolution: str, evidence: dict | None) -> Case:
    run_transition(
        case,
        "resolve",
        actor=actor,
        noun="case",
        messages={},
        check_permission=False,
        by=actor,
        decision=decision,
        resolution=resolution,
        evidence=evidence or {},
    )
    stamp(case, actor=actor, reason=resolution or CaseDecision(decision).label)
    case.save()
    _record(case, OrderEventType.CASE_RESOLVED, actor=actor, reason=resolution, decision=decision)
    return case


@transaction.atomic
def case_resolve(*, case, actor, decision: str, resolution: str, evidence: dict | None = None) -> Case:
    """A person closes a case: the decision and what it rests on are kept as evidence.

    Cases that a service keeps open (an active hold, an open short pick) are closed by fixing the
    problem there: resolving the case by hand is refused while its source is still open.
    """
    decision = _clean_decision(decision)
    resolution = (resolution or "").strip()
    if not resolution or len(resolution) > MAX_TEXT:
        raise ValidationError(
            "Say how the case was resolved.", code="resolution_required", fields={"resolution": ["Required."]}
        )
    case = _lock(case)
    _refuse_resolved(case, "resolved again")
    _require_work(actor, case, "orders.resolve_case", "resolve cases")
    blocker = case_source_open(case)
    if blocker:
        raise ConflictError(blocker, code="source_still_open")
    return _resolve(case, actor=actor, decision=decision, resolution=resolution, evidence=evidence)


def case_source_open(case: Case) -> str:
    """Why the case cannot be resolved by hand ("" when it can): its source is still open. Orders
    answers for holds and fraud reviews; the app that owns any other source answers through
    CASE_SOURCE_OPEN (fulfillment: short picks)."""
    kind, _, ident = case.source_key.partition(":")
    if kind == "hold" and case.order_id:
        if case.order.holds.filter(pk=ident, released_at__isnull=True).exists():
            return "The hold is still active: release it (the case closes with it)."
        return ""
    if kind == "fraud" and case.order_id:
        if case.order.status == OrderStatus.UNDER_REVIEW:
            return "The order is still under review: accept it or cancel it."
        if case.order.holds.filter(reason=HoldReason.FRAUD_REVIEW, released_at__isnull=True).exists():
            return "The fraud-review hold is still active: clear it (the case closes with it)."
        return ""
    return next(iter(CASE_SOURCE_OPEN.collect(case=case)), "")


def cases_resolve_sources(
    *, source_keys, actor, decision: str, resolution: str = "", evidence: dict | None = None
) -> list[Case]:
    """The detector's side: the problem is gone where it was detected, so its open cases close."""
    keys = list(dict.fromkeys(source_keys))
    if not keys:
        return []
    resolved = []
    cases = Case.objects.select_for_update(of=("self",)).select_related("order").filter(source_key__in=keys)
    for case in cases.exclude(status=CaseStatus.RESOLVED).order_by("pk"):
        resolved.append(_resolve(case, actor=actor, decision=decision, resolution=resolution, evidence=evidence))
    return resolved


# --- event detectors -------------------------------------------------------------------------------


def _fraud_facts(order: Order) -> dict:
    return {"risk_score": order.risk_score, "risk_facts": order.risk_facts}


def cases_on_events(*, order: Order, events, actor) -> None:
    """Open and close cases from an order's new events (called by events_record, same transaction)."""
    for event in events:
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(order, event, actor or get_system_user())


def _on_hold_placed(order, event, actor):
    kind = HOLD_CASES.get(event.payload.get("reason"))
    if kind is None:
        return
    if kind == CaseKind.FRAUD_REVIEW:
        _open_fraud_case(order, actor, title=f"Fraud review: {event.reason}" if event.reason else "Fraud review")
        return
    title = f"{HoldReason(event.payload['reason']).label}: {event.reason}" if event.reason else str(kind.label)
    case_open(
        kind=kind,
        source_key=f"hold:{event.payload.get('hold')}",
        title=title[:255],
        actor=actor,
        order=order,
        facts={"hold": event.payload.get("hold"), "note": event.reason},
    )


def _on_hold_released(order, event, actor):
    if event.payload.get("reason") == HoldReason.FRAUD_REVIEW:
        _close_fraud_case_if_clear(order, event, actor)
        return
    cases_resolve_sources(
        source_keys=[f"hold:{event.payload.get('hold')}"],
        actor=actor,
        decision=event.payload.get("decision") or CaseDecision.RESOLVED_UPSTREAM,
        resolution=event.reason,
        evidence={"hold_released_by": actor.get_username(), "note": event.reason},
    )


# One fraud case per order, whether the order was flagged for review, held for fraud, or both: it
# closes when neither is left.
def _open_fraud_case(order, actor, *, title: str) -> None:
    case_open(
        kind=CaseKind.FRAUD_REVIEW,
        source_key=f"fraud:{order.pk}",
        title=title[:255],
        actor=actor,
        order=order,
        facts=_fraud_facts(order),
    )


def _close_fraud_case_if_clear(order, event, actor) -> None:
    if (
        order.status == OrderStatus.UNDER_REVIEW
        or order.holds.filter(reason=HoldReason.FRAUD_REVIEW, released_at__isnull=True).exists()
    ):
        return
    cases_resolve_sources(
        source_keys=[f"fraud:{order.pk}"],
        actor=actor,
        decision=event.payload.get("decision") or CaseDecision.FALSE_POSITIVE,
        resolution=event.reason or str(event.get_type_display()),
        evidence={"cleared_by": actor.get_username(), "note": event.reason, "event": event.type},
    )


def _on_canceled(order, event, actor):
    keys = [f"hold:{pk}" for pk in event.payload.get("holds_released", [])]
    keys += [f"fraud:{order.pk}", f"sla:preparation:{order.pk}", f"sla:dispatch:{order.pk}"]
    fraud = event.payload.get("reason_code") == "fraud"
    cases_resolve_sources(
        source_keys=keys,
        actor=actor,
        decision=CaseDecision.CONFIRMED_FRAUD if fraud else CaseDecision.RESOLVED_UPSTREAM,
        resolution=event.reason or "Order canceled",
        evidence={"canceled_by": actor.get_username(), "reason_code": event.payload.get("reason_code")},
    )


def _on_flagged(order, event, actor):
    _open_fraud_case(order, actor, title=f"Under review: {event.reason}")


def _on_review_accepted(order, event, actor):
    _close_fraud_case_if_clear(order, event, actor)


def _on_short_picked(order, event, actor):
    payload = event.payload
    case_open(
        kind=CaseKind.SHORT_PICK,
        source_key=f"short_pick:{payload.get('short_pick')}",
        title=f"Short pick: {payload.get('missing')} × {payload.get('sku')} ({payload.get('shipment')})",
        actor=actor,
        order=order,
        facts={key: payload.get(key) for key in ("shipment", "short_pick", "sku", "missing", "line")},
    )


def _on_short_pick_resolved(order, event, actor):
    if not event.payload.get("short_pick"):
        return
    cases_resolve_sources(
        source_keys=[f"short_pick:{event.payload['short_pick']}"],
        actor=actor,
        decision=SHORT_PICK_DECISIONS[event.type],
        resolution=f"{event.get_type_display()}: {event.reason}".strip(": "),
        evidence={"consent": event.payload.get("consent"), "event": event.type},
    )


def _on_parcel_exception(order, event, actor):
    kind = PARCEL_CASES.get(event.payload.get("status"))
    if kind is None:
        return
    shipment = event.payload.get("shipment")
    case_open(
        kind=kind,
        source_key=f"parcel:{shipment}",
        title=f"{kind.label}: {shipment} ({event.reason or event.payload.get('status')})"[:255],
        actor=actor,
        order=order,
        facts={
            "shipment": shipment,
            "status": event.payload.get("status"),
            "carrier": event.payload.get("carrier_status"),
        },
    )


def _parcel_keys(order: Order) -> list[str]:
    return list(
        Case.objects.filter(order=order, kind__in=[CaseKind.LOST_PARCEL, CaseKind.DAMAGED_PARCEL])
        .exclude(status=CaseStatus.RESOLVED)
        .values_list("source_key", flat=True)
    )


def _on_delivered(order, event, actor):
    cases_resolve_sources(
        source_keys=_parcel_keys(order),
        actor=actor,
        decision=CaseDecision.RESOLVED_UPSTREAM,
        resolution="Delivered after all",
        evidence={"event": event.type, "data": event.payload},
    )


def _on_dispute_opened(order, event, actor):
    respond_by = event.payload.get("respond_by")
    due = parse_datetime(respond_by) if respond_by else None
    case_open(
        kind=CaseKind.DISPUTE,
        source_key=f"dispute:{event.payload.get('dispute')}",
        title=f"Dispute {event.payload.get('dispute')}: {event.payload.get('amount')} ({event.reason})"[:255],
        actor=actor,
        order=order,
        facts={key: event.payload.get(key) for key in ("dispute", "payment", "amount", "respond_by")},
        due_at=due,
    )


def _on_dispute_closed(order, event, actor):
    won = event.type == OrderEventType.DISPUTE_WON
    cases_resolve_sources(
        source_keys=[f"dispute:{event.payload.get('dispute')}"],
        actor=actor,
        decision=CaseDecision.RESOLVED_UPSTREAM if won else CaseDecision.REFUNDED,
        resolution=f"{event.get_type_display()}. {event.reason}".strip(),
        evidence={"outcome": event.type, "data": event.payload},
    )


def _on_preparation_started(order, event, actor):
    cases_resolve_sources(
        source_keys=[f"sla:preparation:{order.pk}"],
        actor=actor,
        decision=CaseDecision.RESOLVED_UPSTREAM,
        resolution="Preparation started",
    )


def _on_shipped(order, event, actor):
    cases_resolve_sources(
        source_keys=[f"sla:dispatch:{order.pk}"],
        actor=actor,
        decision=CaseDecision.RESOLVED_UPSTREAM,
        resolution="Shipped",
    )


def _on_refund_done(order, event, actor):
    keys = [f"sla:refund:{event.payload.get('refund')}"]
    if event.type == OrderEventType.REFUND_PROCESSED:
        keys += _parcel_keys(order)
    cases_resolve_sources(
        source_keys=keys,
        actor=actor,
        decision=CaseDecision.REFUNDED if event.type == OrderEventType.REFUND_PROCESSED else CaseDecision.NO_ACTION,
        resolution=f"{event.get_type_display()} ({event.payload.get('refund')})",
        evidence={"refund": event.payload.get("refund"), "amount": event.payload.get("amount")},
    )


_HANDLERS = {
    OrderEventType.HOLD_PLACED: _on_hold_placed,
    OrderEventType.HOLD_RELEASED: _on_hold_released,
    OrderEventType.CANCELED: _on_canceled,
    OrderEventType.FLAGGED_FOR_REVIEW: _on_flagged,
    OrderEventType.REVIEW_ACCEPTED: _on_review_accepted,
    OrderEventType.SHORT_PICKED: _on_short_picked,
    OrderEventType.LINE_SUBSTITUTED: _on_short_pick_resolved,
    OrderEventType.DELIVERY_DELAYED: _on_short_pick_resolved,
    OrderEventType.LINES_CANCELED: _on_short_pick_resolved,
    OrderEventType.PARCEL_EXCEPTION: _on_parcel_exception,
    OrderEventType.DELIVERED: _on_delivered,
    OrderEventType.DISPUTE_OPENED: _on_dispute_opened,
    OrderEventType.DISPUTE_WON: _on_dispute_closed,
    OrderEventType.DISPUTE_LOST: _on_dispute_closed,
    OrderEventType.PREPARATION_STARTED: _on_preparation_started,
    OrderEventType.SHIPMENT_RECORDED: _on_shipped,
    OrderEventType.REFUND_PROCESSED: _on_refund_done,
    OrderEventType.REFUND_REJECTED: _on_refund_done,
}


# --- sweeps: what is found by time ------------------------------------------------------------------


def sla_policies() -> tuple[SlaPolicy, dict[int, SlaPolicy]]:
    """The default policy (unsaved defaults when there is no row) and the per-channel ones."""
    rows = list(SlaPolicy.objects.all())
    default = next((row for row in rows if row.channel_id is None), None) or SlaPolicy()
    return default, {row.channel_id: row for row in rows if row.channel_id is not None}


def sla_breach_open(order: Order, *, stage: str, key: str, since: datetime.datetime, limit, actor, extra=None) -> bool:
    """Open the SLA-breach case `key` for `order` (late at `stage` since `since`, past `limit`) and put
    the breach on its timeline. In the caller's transaction; True when the case is new."""
    hours = round(limit.total_seconds() / 3600, 1)
    title = {
        "preparation": f"Not in preparation {hours} h after payment",
        "dispatch": f"Not shipped {hours} h after preparation started",
        "refund": f"Refund not processed after {hours} h",
    }[stage]
    case, created = case_open(
        kind=CaseKind.SLA_BREACH,
        source_key=key,
        title=title,
        actor=actor,
        order=order,
        facts={"stage": stage, "since": since.isoformat(), "limit_hours": hours, **(extra or {})},
    )
    if created:
        events_record(
            order=order,
            actor=actor,
            events=[
                (
                    OrderEventType.SLA_BREACHED,
                    title,
                    {"stage": stage, "case": case.number, "since": since.isoformat(), "limit_hours": hours},
                )
            ],
        )
    return created


def sla_sweep(*, actor=None, now: datetime.datetime | None = None, limit: int = 500) -> int:
    """Open an SLA-breach case for each order (or refund) past its channel's limits. Returns how many."""
    actor = actor or get_system_user()
    now = now or timezone.now()
    default, per_channel = sla_policies()
    opened = 0
    stages = [
        ("preparation", OrderStatus.CONFIRMED, "confirmed_at", "payment_to_preparation"),
        ("dispatch", OrderStatus.IN_PREPARATION, "preparation_started_at", "preparation_to_dispatch"),
    ]
    for stage, status, since_field, limit_field in stages:
        # One query per stage: the shortest limit finds every candidate, each is then checked
        # against its own channel's limit.
        shortest = min([getattr(default, limit_field)] + [getattr(p, limit_field) for p in per_channel.values()])
        candidates = (
            Order.objects.filter(status=status, is_test=False, **{f"{since_field}__lt": now - shortest})
            .exclude(pk__in=Case.objects.filter(source_key__startswith=f"sla:{stage}:").values("order_id"))
            .select_related("customer", "channel")
            .order_by(since_field)[:limit]
        )
        for order in candidates:
            policy = per_channel.get(order.channel_id, default)
            since = getattr(order, since_field)
            if since is None or since >= now - getattr(policy, limit_field):
                continue
            with transaction.atomic():
                opened += sla_breach_open(
                    order,
                    stage=stage,
                    key=f"sla:{stage}:{order.pk}",
                    since=since,
                    limit=getattr(policy, limit_field),
                    actor=actor,
                )
    opened += sum(SLA_SWEEP.collect(actor=actor, now=now, default_sla=default, channel_slas=per_channel, limit=limit))
    return opened


def dead_letter_sweep(*, actor=None, limit: int = 500) -> tuple[int, int]:
    """A case per dead-lettered outbox message; closed once it is delivered (replayed). (opened, closed)"""
    actor = actor or get_system_user()
    known = Case.objects.filter(kind=CaseKind.INTEGRATION_FAILURE, source_key__startswith="outbox:")
    dead = (
        OutboxMessage.objects.filter(status=OutboxMessage.Status.DEAD)
        .exclude(
            pk__in=[
                key.split(":", 1)[1]
                for key in known.exclude(status=CaseStatus.RESOLVED).values_list("source_key", flat=True)
            ]
        )
        .order_by("-created_at")[:limit]
    )
    opened = closed = 0
    for message in dead:
        order = Order.objects.filter(number=message.key).first() if message.key else None
        with transaction.atomic():
            _, created = case_open(
                kind=CaseKind.INTEGRATION_FAILURE,
                source_key=f"outbox:{message.pk}",
                title=f"Undeliverable: {message.topic} to {message.endpoint or message.destination}"[:255],
                actor=actor,
                order=order,
                facts={
                    "message": str(message.pk),
                    "topic": message.topic,
                    "attempts": message.attempts,
                    "error": message.last_error[:500],
                },
            )
            opened += created
    open_keys = list(known.exclude(status=CaseStatus.RESOLVED).values_list("source_key", flat=True))
    ids = [key.split(":", 1)[1] for key in open_keys]
    delivered = OutboxMessage.objects.filter(pk__in=ids).exclude(status=OutboxMessage.Status.DEAD)
    keys = [f"outbox:{pk}" for pk in delivered.values_list("pk", flat=True)]
    if keys:
        with transaction.atomic():
            closed = len(
                cases_resolve_sources(
                    source_keys=keys, actor=actor, decision=CaseDecision.FIXED, resolution="Delivered after replay"
                )
            )
    return opened, closed


def cases_sweep(*, actor=None, now: datetime.datetime | None = None) -> dict[str, int]:
    """Every time-based detector, for the beat task: the SLAs, then the other apps' sweeps
    (CASES_SWEEP: billing's overdue invoices), then the dead letters."""
    actor = actor or get_system_user()
    counts = {"sla_breaches": sla_sweep(actor=actor, now=now)}
    for answer in CASES_SWEEP.collect(actor=actor, now=now):
        counts.update(answer)
    dead_opened, dead_closed = dead_letter_sweep(actor=actor)
    counts.update(dead_letters_opened=dead_opened, dead_letters_closed=dead_closed)
    return counts


# --- selectors --------------------------------------------------------------------------------------


def case_queue_counts(*, user) -> list[dict]:
    """Open cases per (kind, level) that `user` works, with how many are overdue: the home page."""
    kinds, levels = user_case_scope(user)
    if not kinds:
        return []
    now = timezone.now()
    rows = (
        Case.objects.filter(kind__in=kinds, level__in=levels, is_test=False)
        .exclude(status=CaseStatus.RESOLVED)
        .values("kind", "level")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
        .order_by()
    )
    counts = {(row["kind"], row["level"]): row for row in rows}
    out = []
    for kind in kinds:
        for level in levels:
            row = counts.get((kind, level), {"open": 0, "overdue": 0})
            out.append(
                {
                    "kind": kind,
                    "kind_label": CaseKind(kind).label,
                    "level": level,
                    "level_label": CaseLevel(level).label,
                    "open": row["open"],
                    "overdue": row["overdue"],
                }
            )
    return out
