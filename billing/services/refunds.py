"""Refunds: requested with a reason, approved by someone else, processed once, tied to a credit note.

The rules every entry point (cockpit, API, command, returns, seller cancellation) goes through:

- `refund_request`: billing.request_refund; the amount is positive and, with every refund of the
  order still open or processed, never above what was captured on the order's payments. The order
  and then its Payment rows are locked FOR UPDATE first, so two requests at the same moment are
  checked one after the other (the second sees the first).
- `refund_approve`: billing.approve_refund; the approver is never the requester (the database also
  refuses it), and above settings.OMS_REFUND_SECOND_APPROVER_ABOVE the approver also holds
  billing.approve_large_refund. The amount held against that limit is never one refund alone (a
  split would dodge it) but the sum of the order's refunds requested within
  OMS_REFUND_SECOND_APPROVER_WINDOW_DAYS of it, and separately the sum of the customer's refunds
  requested that calendar day in the shop's time zone: `approval_limits` computes both, and
  `refund_can_approve` (the cockpit, the API's flag, the request's event) and `refund_approve` ask
  the same `_approval_refusal`. Every refund not rejected counts, whatever its method (store credit
  and compensation vouchers too), and requested ones count before anyone approves them: the answer
  does not depend on which refund is approved first, nor on two approvals running at once.
- `refund_process`: the money moves once. To the original method through the provider adapter
  (the refund number is the idempotency key, so a retry after a crash is not paid twice); to store
  credit or a voucher through the ledgers. Processing a processed refund is a no-op; a provider
  failure is recorded on the refund (status failed, reason), which can be processed again.

A compensation paid as a voucher is a gift, not money back: it is not counted against what was
captured, does not change the order's refunded amount and is not credited on an invoice.

Lock order (the project's, oms.core.locks): the order, then its payments (by id), then the refund.
"""

import datetime
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import CreditNote, Invoice, Payment, PaymentStatus, Refund, RefundMethod, RefundReason, RefundStatus
from billing.providers.base import get_provider
from billing.services.credits import store_credit_add, voucher_issue
from billing.services.invoices import credit_note_issue
from integrations.services import notification_queue
from oms.core.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.history import stamp
from oms.core.logging import set_order
from oms.core.money import ZERO, amount_parse, quantize
from oms.core.numbering import format_number, next_unique
from oms.core.permissions import require_perm
from orders.choices import CancelReason, OrderEventType, OrderStatus
from orders.events import event_record
from orders.locks import order_lock
from orders.models import Order
from orders.services import order_cancel_lines, order_record_refund

# Order event types of the refund's life (integrations hear them as `order.<type>`).
REFUND_REQUESTED = OrderEventType.REFUND_REQUESTED
REFUND_APPROVED = OrderEventType.REFUND_APPROVED
REFUND_REJECTED = OrderEventType.REFUND_REJECTED
REFUND_PROCESSED = OrderEventType.REFUND_PROCESSED
REFUND_FAILED = OrderEventType.REFUND_FAILED

# Refunds that hold part of what was captured: everything not rejected.
COMMITTED_STATUSES = (RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.PROCESSED, RefundStatus.FAILED)
PROCESSABLE_STATUSES = (RefundStatus.APPROVED, RefundStatus.FAILED)
REJECTABLE_STATUSES = (RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.FAILED)
MAX_NOTE = 2_000


class RefundRefused(ConflictError):
    default_code = "refund_refused"


# --- building blocks ---------------------------------------------------------------------------


def is_gift(refund: Refund) -> bool:
    """A compensation voucher: given on top, not paid back from what was captured."""
    return refund.reason == RefundReason.COMPENSATION and refund.method == RefundMethod.VOUCHER


def _gift_q() -> Q:
    return Q(reason=RefundReason.COMPENSATION, method=RefundMethod.VOUCHER)


def _order(order: Order | int | str) -> Order:
    if isinstance(order, Order):
        return order
    lookup = {"number": order} if isinstance(order, str) and not order.isdigit() else {"pk": int(order)}
    found = Order.objects.filter(**lookup).first()
    if found is None:
        raise NotFoundError("Order not found.", code="order_not_found")
    return found


def _lock_payments(order_id: int) -> list[Payment]:
    return list(Payment.objects.select_for_update().filter(order_id=order_id).order_by("pk"))


def _refund_id(refund: Refund | int | str) -> int:
    if isinstance(refund, Refund):
        return refund.pk
    if isinstance(refund, str) and not refund.isdigit():
        pk = Refund.objects.filter(number=refund).values_list("pk", flat=True).first()
        if pk is None:
            raise NotFoundError(f"Refund {refund} not found.", code="refund_not_found")
        return pk
    return int(refund)


def _lock_refund(refund_id: int) -> Refund:
    try:
        refund = Refund.objects.select_for_update(of=("self",)).select_related("order").get(pk=refund_id)
    except Refund.DoesNotExist:
        raise NotFoundError("Refund not found.", code="refund_not_found") from None
    set_order(refund.order.number)
    return refund


def _save(refund: Refund, *, actor, reason: str, fields: list[str]) -> None:
    stamp(refund, actor=actor, reason=reason)
    refund.save(update_fields=fields)


def _payload(refund: Refund, **extra) -> dict:
    return {
        "refund": refund.number,
        "amount": str(refund.amount),
        "currency": refund.currency,
        "method": refund.method,
        "reason": refund.reason,
        "status": refund.status,
        **extra,
    }


def refund_ceiling(order: Order, payments: list[Payment] | None = None) -> dict[str, Decimal]:
    """What was captured, what open and processed refunds hold, and what is left to request."""
    if payments is None:
        payments = list(Payment.objects.filter(order=order))
    captured = sum((p.amount_captured for p in payments), ZERO)
    committed = (
        Refund.objects.filter(order=order, status__in=COMMITTED_STATUSES)
        .exclude(_gift_q())
        .aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    captured, committed = quantize(captured, order.currency), quantize(committed, order.currency)
    return {"captured": captured, "committed": committed, "available": max(captured - committed, ZERO)}


def _payment_for(payments: list[Payment], amount: Decimal, order: Order) -> Payment:
    """The captured payment that still covers the amount (oldest first), net of refunds open on it."""
    open_by_payment = dict(
        Refund.objects.filter(
            order=order, payment__isnull=False, status__in=PROCESSABLE_STATUSES + (RefundStatus.REQUESTED,)
        )
        .values("payment")
        .annotate(total=Sum("amount"))
        .values_list("payment", "total")
    )
    for payment in payments:
        if payment.amount_captured - payment.amount_refunded - open_by_payment.get(payment.pk, ZERO) >= amount:
            return payment
    raise ValidationError(
        "No single payment of the order covers this amount: split the refund.",
        code="refund_split_required",
        fields={"amount": ["No single payment covers this amount; request one refund per payment."]},
    )


# --- the second-approver limit -----------------------------------------------------------------

# Refunds held against the limit: every one not rejected. A failed refund counts: it is processed
# again without a new approval.
LIMIT_STATUSES = COMMITTED_STATUSES
NAMED_IN_REASON = 5  # refunds a refusal names; the rest are counted


def second_approver_threshold() -> Decimal:
    return Decimal(str(settings.OMS_REFUND_SECOND_APPROVER_ABOVE))


def second_approver_window() -> datetime.timedelta:
    return datetime.timedelta(days=int(settings.OMS_REFUND_SECOND_APPROVER_WINDOW_DAYS))


def _shop_zone() -> zoneinfo.ZoneInfo:
    # The shop's calendar, not the timezone a cockpit user may have activated for the request.
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _names(numbers: tuple[str, ...]) -> str:
    shown = ", ".join(numbers[:NAMED_IN_REASON])
    more = len(numbers) - NAMED_IN_REASON
    return f"{shown} and {more} more" if more > 0 else shown


@dataclass(frozen=True)
class ApprovalLimit:
    """The sums the second-approver rule holds against one refund, and the refunds in them."""

    refund: str
    currency: str
    threshold: Decimal
    window_days: int
    order_total: Decimal
    order_others: tuple[str, ...]
    day: datetime.date
    customer_total: Decimal
    customer_others: tuple[str, ...]

    @property
    def needs_second_approver(self) -> bool:
        return self.order_total > self.threshold or self.customer_total > self.threshold

    def reason(self) -> str:
        """Why a finance manager must approve it (empty when no one needs to)."""
        above = f"above {self.threshold} {self.currency}"
        why = []
        if self.order_total > self.threshold:
            why.append(
                f"together with {_names(self.order_others)} on this order makes {self.order_total} {self.currency} "
                f"within {self.window_days} days, {above}"
                if self.order_others
                else f"is {self.order_total} {self.currency}, {above}"
            )
        # The customer's day adds something only when it holds refunds of other orders.
        if self.customer_total > max(self.threshold, self.order_total if why else ZERO):
            why.append(
                f"together with {_names(self.customer_others)} of the same customer makes "
                f"{self.customer_total} {self.currency} on {self.day.isoformat()}, {above}"
            )
        if not why:
            return ""
        return (
            f"Refund {self.refund} {'; and '.join(why)}: it needs a finance manager's approval "
            "(billing.approve_large_refund)."
        )

    def as_extra(self) -> dict:
        return {
            "refund": self.refund,
            "threshold": str(self.threshold),
            "window_days": self.window_days,
            "order_total": str(self.order_total),
            "order_refunds": list(self.order_others),
            "day": self.day.isoformat(),
            "customer_total": str(self.customer_total),
            "customer_refunds": list(self.customer_others),
        }


def approval_limits(refunds) -> dict[int, ApprovalLimit]:
    """The second-approver sums of each refund, by id, in two queries however many refunds (the
    cockpit's queue and the API's list ask for a whole page at once).

    A refund's order sum is its own amount plus the order's other refunds requested within the
    window either side of it; its customer sum, its own amount plus the customer's other refunds in
    its currency requested the same day (the shop's calendar), on any order."""
    refunds = list(refunds)
    if not refunds:
        return {}
    zone, window = _shop_zone(), second_approver_window()
    customer_of = dict(
        Order.objects.filter(pk__in={r.order_id for r in refunds}).values_list("pk", "customer_id").order_by()
    )
    day_of = {r.pk: r.requested_at.astimezone(zone).date() for r in refunds}
    first_day = datetime.datetime.combine(min(day_of.values()), datetime.time.min, tzinfo=zone)
    after_last_day = datetime.datetime.combine(
        max(day_of.values()) + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone
    )
    rows = list(
        Refund.objects.filter(status__in=LIMIT_STATUSES)
        .filter(
            Q(
                order_id__in=customer_of.keys(),
                requested_at__gte=min(r.requested_at for r in refunds) - window,
                requested_at__lte=max(r.requested_at for r in refunds) + window,
            )
            | Q(
                order__customer_id__in=set(customer_of.values()),
                requested_at__gte=first_day,
                requested_at__lt=after_last_day,
            )
        )
        .order_by("requested_at", "pk")
        .values_list("pk", "number", "order_id", "order__customer_id", "currency", "amount", "requested_at")
    )
    limits = {}
    for refund in refunds:
        day = day_of[refund.pk]
        same_order = [
            row
            for row in rows
            if row[0] != refund.pk and row[2] == refund.order_id and abs(row[6] - refund.requested_at) <= window
        ]
        same_day = [
            row
            for row in rows
            if row[0] != refund.pk
            and row[3] == customer_of[refund.order_id]
            and row[4] == refund.currency
            and row[6].astimezone(zone).date() == day
        ]
        limits[refund.pk] = ApprovalLimit(
            refund=refund.number,
            currency=refund.currency,
            threshold=second_approver_threshold(),
            window_days=window.days,
            order_total=quantize(refund.amount + sum((row[5] for row in same_order), ZERO), refund.currency),
            order_others=tuple(row[1] for row in same_order),
            day=day,
            customer_total=quantize(refund.amount + sum((row[5] for row in same_day), ZERO), refund.currency),
            customer_others=tuple(row[1] for row in same_day),
        )
    return limits


def approval_limit(refund: Refund) -> ApprovalLimit:
    return approval_limits([refund])[refund.pk]


def needs_second_approver(refund: Refund) -> bool:
    """Whether only a holder of billing.approve_large_refund may approve it (the sums, not the refund alone)."""
    return approval_limit(refund).needs_second_approver


def _approval_refusal(refund: Refund, actor, limit: ApprovalLimit | None = None) -> ApplicationError | None:
    """The one decision on who may approve a refund now: None, or the error that says why not.
    `refund_can_approve` shows its message, `refund_approve` raises it."""
    if actor is None or not actor.has_perm("billing.approve_refund"):
        return PermissionDeniedError(
            "You do not have permission to approve refunds.",
            code="permission_denied",
            extra={"permission": "billing.approve_refund"},
        )
    if refund.requested_by_id == actor.pk:
        return PermissionDeniedError(
            f"Refund {refund.number} was requested by you: another person must approve it.",
            code="approver_is_requester",
            extra={"refund": refund.number},
        )
    if not actor.has_perm("billing.approve_large_refund"):
        limit = limit or approval_limit(refund)
        if limit.needs_second_approver:
            return PermissionDeniedError(limit.reason(), code="second_approver_required", extra=limit.as_extra())
    if refund.status != RefundStatus.REQUESTED:
        return RefundRefused(
            f"Cannot approve refund {refund.number}: it is {refund.get_status_display().lower()}.",
            code="refund_not_awaiting_approval",
            extra={"status": refund.status},
        )
    return None


# --- request -----------------------------------------------------------------------------------


@transaction.atomic
def refund_request(
    *,
    order: Order | int | str,
    actor,
    amount,
    reason: str,
    method: str = RefundMethod.ORIGINAL,
    credit_note: CreditNote | None = None,
    note: str = "",
) -> Refund:
    require_perm(actor, "billing.request_refund", "request refunds")
    order = _order(order)
    errors: dict[str, list[str]] = {}
    if reason not in RefundReason.values:
        errors["reason"] = [f"One of: {', '.join(RefundReason.values)}."]
    if method not in RefundMethod.values:
        errors["method"] = [f"One of: {', '.join(RefundMethod.values)}."]
    try:
        value = amount_parse(amount, currency=order.currency, field="amount", minimum=None)
    except ValidationError as exc:
        errors.update(exc.extra["fields"])
        value = ZERO
    else:
        if value <= 0:
            errors["amount"] = ["Must be greater than 0."]
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        errors["note"] = [f"At most {MAX_NOTE} characters."]
    if credit_note is not None and credit_note.order_id != order.pk:
        errors["credit_note"] = ["This credit note belongs to another order."]
    if errors:
        raise ValidationError("The refund is not valid.", code="invalid_refund", fields=errors)

    # The order, then its payments (the project's lock order): a second request on the same order
    # waits here and then sees the first.
    order = order_lock(order)
    payments = _lock_payments(order.pk)
    gift = reason == RefundReason.COMPENSATION and method == RefundMethod.VOUCHER
    payment = None
    if not gift:
        ceiling = refund_ceiling(order, payments)
        if value > ceiling["available"]:
            raise ValidationError(
                f"Refunds of order {order.number} would exceed what was captured: {ceiling['available']} "
                f"{order.currency} is left to refund ({ceiling['captured']} captured, "
                f"{ceiling['committed']} already requested or refunded).",
                code="refund_exceeds_captured",
                fields={"amount": [f"At most {ceiling['available']} {order.currency}."]},
                extra={k: str(v) for k, v in ceiling.items()},
            )
        if method == RefundMethod.ORIGINAL:
            payment = _payment_for([p for p in payments if p.amount_captured > 0], value, order)
    if credit_note is not None:
        credited = (
            Refund.objects.filter(credit_note=credit_note, status__in=COMMITTED_STATUSES).aggregate(
                total=Sum("amount")
            )["total"]
            or ZERO
        )
        left = quantize(credit_note.total_gross - credited, order.currency)
        if value > left:
            raise ValidationError(
                f"Credit note {credit_note.number} has {left} {order.currency} left to refund.",
                code="refund_exceeds_credit_note",
                fields={"amount": [f"At most {left} {order.currency}."]},
            )
    year = timezone.localdate().year
    refund = Refund(
        number=format_number("RFD", year, next_unique("refund", year)),
        order=order,
        payment=payment,
        credit_note=credit_note,
        amount=value,
        currency=order.currency,
        method=method,
        reason=reason,
        note=note,
        status=RefundStatus.REQUESTED,
        requested_by=actor,
    )
    refund.full_clean(exclude=["number"])
    stamp(refund, actor=actor, reason=note or str(RefundReason(reason).label))
    refund.save(force_insert=True)
    event_record(
        order=order,
        actor=actor,
        type=REFUND_REQUESTED,
        reason=note,
        payload=_payload(refund, second_approver=approval_limit(refund).needs_second_approver),
    )
    return refund


# --- approval ----------------------------------------------------------------------------------


def refund_can_approve(refund: Refund, actor) -> tuple[bool, str]:
    """Whether `actor` may approve this refund now, and why not (the cockpit shows the reason)."""
    refusal = _approval_refusal(refund, actor)
    return (True, "") if refusal is None else (False, refusal.message)


@transaction.atomic
def refund_approve(*, refund: Refund | int | str, actor, note: str = "", via: str = "") -> Refund:
    """Approve as `actor`; `via` says how a caller outside a login established who that is (a shell
    command), kept on the event and the history."""
    require_perm(actor, "billing.approve_refund", "approve refunds")
    refund = _lock_refund(_refund_id(refund))
    # Counted from the refunds requested, not the ones approved: two approvals at the same moment
    # see the same sums, so neither needs to wait for the other.
    limit = approval_limit(refund)
    refusal = _approval_refusal(refund, actor, limit)
    if refusal is not None:
        raise refusal
    refund.status = RefundStatus.APPROVED
    refund.approved_by = actor
    refund.approved_at = timezone.now()
    _save(
        refund, actor=actor, reason=_with_via(note or "Approved", via), fields=["status", "approved_by", "approved_at"]
    )
    event_record(
        order=refund.order,
        actor=actor,
        type=REFUND_APPROVED,
        reason=note,
        payload=_payload(
            refund,
            second_approver=limit.needs_second_approver,
            order_total=str(limit.order_total),
            customer_total=str(limit.customer_total),
            **({"via": via} if via else {}),
        ),
    )
    return refund


def _with_via(reason: str, via: str) -> str:
    return f"{reason} ({via})" if via else reason


@transaction.atomic
def refund_reject(*, refund: Refund | int | str, actor, reason: str = "") -> Refund:
    """Refused by finance (any approver, the requester included: withdrawing is always allowed)."""
    refund = _lock_refund(_refund_id(refund))
    if actor is None or not (
        actor.has_perm("billing.approve_refund")
        or (actor.pk == refund.requested_by_id and actor.has_perm("billing.request_refund"))
    ):
        raise PermissionDeniedError("You do not have permission to reject refunds.", code="permission_denied")
    if refund.status not in REJECTABLE_STATUSES:
        raise RefundRefused(
            f"Cannot reject refund {refund.number}: it is {refund.get_status_display().lower()}.",
            code="refund_not_rejectable",
            extra={"status": refund.status},
        )
    reason = (reason or "").strip()[:MAX_NOTE]
    refund.status = RefundStatus.REJECTED
    refund.failure_reason = reason or refund.failure_reason
    _save(refund, actor=actor, reason=reason or "Rejected", fields=["status", "failure_reason"])
    event_record(order=refund.order, actor=actor, type=REFUND_REJECTED, reason=reason, payload=_payload(refund))
    return refund


# --- processing --------------------------------------------------------------------------------


def _provider_refund(payment: Payment, amount: Decimal, idempotency_key: str) -> str:
    """The payment provider's refund (a boundary: the adapter talks to the provider or its sandbox)."""
    return get_provider(payment.provider).refund(payment, amount, idempotency_key)


def _invoice_to_credit(order: Order, amount: Decimal) -> Invoice | None:
    """The newest invoice of the order with at least `amount` left to credit."""
    invoices = Invoice.objects.filter(order=order).annotate(credited=Sum("credit_notes__total_gross"))
    for invoice in invoices.order_by("-issued_at", "-pk"):
        if invoice.total_gross - (invoice.credited or ZERO) >= amount:
            return invoice
    return None


def _credit_note_for(refund: Refund, *, actor) -> CreditNote | None:
    """The refund's credit note: the one given at request, or one issued now by amount when the
    order has an invoice with enough left on it (nothing invoiced yet: nothing to credit)."""
    if refund.credit_note_id or is_gift(refund):
        return refund.credit_note
    invoice = _invoice_to_credit(refund.order, refund.amount)
    if invoice is None:
        return None
    return credit_note_issue(
        invoice=invoice, actor=actor, reason=refund.reason, amount=refund.amount, note=f"{refund.number} {refund.note}"
    )


@transaction.atomic
def refund_process(*, refund: Refund | int | str, actor, via: str = "") -> Refund:
    """Pay an approved refund out (or retry a failed one). A processed refund is returned unchanged.
    `via`, as for refund_approve, is kept on the event and the history."""
    require_perm(actor, "billing.approve_refund", "process refunds")
    refund_id = _refund_id(refund)
    order_id = Refund.objects.filter(pk=refund_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("Refund not found.", code="refund_not_found")
    order = order_lock(order_id)
    payments = {p.pk: p for p in _lock_payments(order_id)}
    refund = _lock_refund(refund_id)
    if refund.status == RefundStatus.PROCESSED:
        return refund
    if refund.status not in PROCESSABLE_STATUSES:
        raise RefundRefused(
            f"Cannot process refund {refund.number}: it is {refund.get_status_display().lower()}.",
            code="refund_not_approved",
            extra={"status": refund.status},
        )
    refund.order = order
    if not refund.credit_note_id and not is_gift(refund) and Invoice.objects.filter(order=order).exists():
        # Checked before any money moves: the credit note is issued after the payout, as this actor.
        require_perm(actor, "billing.issue_creditnote", "issue the refund's credit note")
    fields = ["status", "processed_at", "provider_reference", "failure_reason", "credit_note"]
    if refund.method == RefundMethod.ORIGINAL:
        payment = payments.get(refund.payment_id)
        if payment is None or payment.refundable < refund.amount:
            return _fail(refund, actor=actor, why="The payment no longer covers this refund.", fields=fields, via=via)
        if payment.method in ("store_credit", "voucher"):
            # Paid from a ledger: the money goes back to the ledger it came from.
            reference = _to_ledger(refund, order, method=payment.method, actor=actor)
        else:
            try:
                # Inside a savepoint: a failure of the adapter's own bookkeeping leaves ours intact.
                with transaction.atomic():
                    reference = _provider_refund(payment, refund.amount, refund.number)
            except Exception as exc:  # noqa: BLE001 - the provider is a boundary: any failure is recorded
                return _fail(refund, actor=actor, why=f"{type(exc).__name__}: {exc}", fields=fields, via=via)
        payment.amount_refunded += refund.amount
        payment.status = (
            PaymentStatus.REFUNDED
            if payment.amount_refunded >= payment.amount_captured
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        stamp(payment, actor=actor, reason=f"Refund {refund.number}")
        payment.save(update_fields=["amount_refunded", "status"])
        refund.provider_reference = str(reference or "")[:128]
    else:
        refund.provider_reference = _to_ledger(refund, order, method=refund.method, actor=actor)
    refund.credit_note = _credit_note_for(refund, actor=actor)
    if not is_gift(refund):
        order_record_refund(order=order, actor=actor, amount=refund.amount, reference=refund.number)
    refund.status = RefundStatus.PROCESSED
    refund.processed_at = timezone.now()
    refund.failure_reason = ""
    _save(refund, actor=actor, reason=_with_via("Processed", via), fields=fields)
    event_record(
        order=order,
        actor=actor,
        type=REFUND_PROCESSED,
        payload=_payload(
            refund,
            provider_reference=refund.provider_reference,
            credit_note=refund.credit_note.number if refund.credit_note_id else None,
            **({"via": via} if via else {}),
        ),
    )
    return refund


def _to_ledger(refund: Refund, order: Order, *, method: str, actor) -> str:
    """Credit the customer's store credit, or issue a voucher; returns the reference to keep."""
    if method == RefundMethod.STORE_CREDIT:
        entry = store_credit_add(
            customer=order.customer,
            currency=refund.currency,
            amount=refund.amount,
            actor=actor,
            refund=refund,
            order=order,
        )
        return f"store-credit:{entry.pk}"
    voucher = voucher_issue(
        customer=order.customer, currency=refund.currency, amount=refund.amount, actor=actor, refund=refund, order=order
    )
    return voucher.code


def _fail(refund: Refund, *, actor, why: str, fields: list[str], via: str = "") -> Refund:
    refund.status = RefundStatus.FAILED
    refund.failure_reason = why[:2000]
    _save(refund, actor=actor, reason=_with_via(f"Failed: {why}"[:500], via), fields=fields)
    event_record(
        order=refund.order,
        actor=actor,
        type=REFUND_FAILED,
        reason=why[:500],
        payload=_payload(refund, **({"via": via} if via else {})),
    )
    return refund


# --- reads -------------------------------------------------------------------------------------


def refund_list(*, status: str | list[str] | None = None, order: Order | None = None):
    refunds = Refund.objects.select_related("order", "payment", "credit_note", "requested_by", "approved_by")
    if status:
        refunds = refunds.filter(status__in=[status] if isinstance(status, str) else status)
    if order is not None:
        refunds = refunds.filter(order=order)
    return refunds


# --- seller cancellation -----------------------------------------------------------------------

SELLER_CANCELLATION_NOTIFICATION = "seller_cancellation"


@dataclass
class SellerCancellation:
    order: Order
    refund: Refund | None
    compensation: Refund | None


@transaction.atomic
def seller_cancel_lines(
    *, order: Order | int | str, actor, quantities: dict, compensation: Decimal | None = None, reason: str = ""
) -> SellerCancellation:
    """A confirmed stock-out after payment: the lines are canceled (stock released by the orders
    service), their price is requested back to the original payment (the shipping fee too when
    nothing is left to ship), a compensation voucher is requested on top when given, and the
    customer is told. Nothing is approved here: the refunds wait in the finance queue."""
    require_perm(actor, "billing.request_refund", "cancel paid items and refund them")
    order = _order(order)
    if order.amount_paid <= 0:
        raise RefundRefused(
            f"Order {order.number} is not paid: cancel its items without a refund.", code="order_not_paid"
        )
    if compensation not in (None, ""):
        try:
            compensation = amount_parse(compensation, currency=order.currency, field="compensation", minimum=None)
        except ValidationError as exc:
            raise ValidationError("The compensation is not valid.", fields=exc.extra["fields"]) from None
        if compensation < 0:
            raise ValidationError("The compensation is not valid.", fields={"compensation": ["Must be at least 0."]})
    before = {line.pk: line.quantity_canceled for line in order.lines.all()}
    order = order_cancel_lines(
        order=order,
        actor=actor,
        quantities=quantities,
        reason_code=CancelReason.OUT_OF_STOCK,
        reason=reason or "Seller cancellation: out of stock",
        payload={"seller_cancellation": True},
    )
    lines = list(order.lines.order_by("line_number"))
    items, due = [], ZERO
    for line in lines:
        canceled = line.quantity_canceled - before.get(line.pk, 0)
        if canceled > 0:
            items.append({"sku": line.sku, "name": line.name, "quantity": canceled})
            due += quantize(line.total_gross * canceled / line.quantity, order.currency)
    if order.status == OrderStatus.CANCELED:
        due = None  # nothing ships at all: everything still refundable goes back, shipping included
    available = refund_ceiling(order)["available"]
    amount = available if due is None else min(due, available)
    refund = None
    if amount > 0:
        refund = refund_request(
            order=order,
            actor=actor,
            amount=amount,
            reason=RefundReason.SELLER_CANCELLATION,
            method=RefundMethod.ORIGINAL,
            note=reason,
        )
    gift = None
    if compensation:
        gift = refund_request(
            order=order,
            actor=actor,
            amount=compensation,
            reason=RefundReason.COMPENSATION,
            method=RefundMethod.VOUCHER,
            note=reason or "Compensation for canceled items",
        )
    notification_queue(
        kind=SELLER_CANCELLATION_NOTIFICATION,
        recipient=order.email,
        group_key=f"seller_cancellation:{order.number}",
        data={
            "order": order.number,
            "items": items,
            "refund_amount": str(refund.amount) if refund else "",
            "compensation_amount": str(gift.amount) if gift else "",
            "currency": order.currency,
        },
        locale=order.locale,
        order_number=order.number,
        is_test=order.is_test,
        merge=("items",),
    )
    return SellerCancellation(order=order, refund=refund, compensation=gift)
