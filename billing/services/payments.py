"""Payments of an order: recorded, captured, failed, and the provider's notifications applied once.

Lock order (the project's): the order first, then its payment rows. Money on the order itself
(amount paid, authorized) moves only through `orders.services.order_mark_paid`, which confirms an
order awaiting payment once it is covered. Provider events are stored once per (provider, event id)
in the transaction that applies them: a replay finds the row and changes nothing.
"""

import datetime
import logging
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Dispute, Payment, PaymentEvent, PaymentStatus, Refund
from billing.providers.base import ProviderEvent, get_provider
from billing.services.credits import intake_payment_debit
from billing.services.disputes import dispute_close, dispute_open
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.history import stamp
from oms.core.money import ZERO, amount_parse, quantize
from oms.core.permissions import require_perm
from orders import services as orders
from orders.events import event_record
from orders.locks import order_lock
from orders.models import Order
from orders.selectors import channel_scope, orders_visible

logger = logging.getLogger(__name__)

# Order timeline entries written here (strings until orders.choices lists them).
EVENT_PAYMENT_FAILED = "payment_failed"
EVENT_PAYMENT_REFUNDED_AT_PROVIDER = "payment_refunded"

DISPUTE_RESPONSE_DAYS = 7


def _lock_payment(payment: Payment | int) -> tuple[Order, Payment]:
    """The payment's order, then the payment (the project's lock order)."""
    pk = payment.pk if isinstance(payment, Payment) else payment
    order_id = Payment.objects.filter(pk=pk).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("Payment not found.", code="payment_not_found")
    order = order_lock(order_id)
    return order, Payment.objects.select_for_update().get(pk=pk)


def _amount(value, currency: str, *, field: str = "amount") -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        raise ValidationError("The amount is not valid.", fields={field: ["A positive amount is required."]})
    try:
        number = amount_parse(value, currency=currency, field=field, minimum=None)
    except ValidationError as exc:
        raise ValidationError("The amount is not valid.", fields=exc.extra["fields"]) from None
    if number <= 0:
        raise ValidationError("The amount is not valid.", fields={field: ["Must be positive."]})
    return number


def _clean_text(value, *, field: str, max_length: int, required: bool = True) -> str:
    value = (value or "").strip() if isinstance(value, str) else value
    if not isinstance(value, str) or (required and not value) or len(value) > max_length:
        raise ValidationError(
            "The payment is not valid.", code="invalid_payment", fields={field: [f"1 to {max_length} characters."]}
        )
    return value


def _save(payment: Payment, *, actor, reason: str, fields: list[str] | None = None) -> None:
    stamp(payment, actor=actor, reason=reason)
    if fields is None:
        payment.save()
    else:
        payment.save(update_fields=fields)


def _create(
    *, order: Order, actor, method: str, provider: str, provider_reference: str, amount: Decimal, captured: bool
) -> tuple[Payment, bool]:
    """The payment row (order locked by the caller); (existing, False) for a known (provider, reference)."""
    existing = Payment.objects.select_for_update().filter(provider=provider, provider_reference=provider_reference)
    existing = existing.first()
    if existing is not None:
        if existing.order_id != order.pk:
            raise ConflictError(
                f"Payment {provider}:{provider_reference} belongs to another order.",
                code="payment_reference_conflict",
            )
        return existing, False
    now = timezone.now()
    payment = Payment(
        order=order,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        currency=order.currency,
        amount_authorized=amount,
        amount_captured=amount if captured else Decimal("0"),
        status=PaymentStatus.CAPTURED if captured else PaymentStatus.AUTHORIZED,
        captured_at=now if captured else None,
    )
    stamp(payment, actor=actor, reason="Payment captured" if captured else "Payment authorized")
    payment.save(force_insert=True)
    return payment, True


@transaction.atomic
def payment_record(
    *,
    order: Order | int,
    actor,
    method: str,
    provider: str,
    provider_reference: str,
    amount,
    captured: bool,
    reason: str = "",
) -> Payment:
    """Record a payment (captured) or an authorization at a provider, and count it on the order.

    Idempotent by (provider, reference): recording the same payment again returns the first row
    and counts nothing twice. The order is confirmed once covered (orders.services.order_mark_paid).
    """
    require_perm(actor, "orders.record_payment_order", "record payments")
    order = order_lock(order)
    method = _clean_text(method, field="method", max_length=40, required=False)
    provider = _clean_text(provider, field="provider", max_length=40)
    provider_reference = _clean_text(provider_reference, field="provider_reference", max_length=128)
    value = _amount(amount, order.currency)
    payment, created = _create(
        order=order,
        actor=actor,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        amount=value,
        captured=bool(captured),
    )
    if created:
        orders.order_mark_paid(
            order=order,
            actor=actor,
            amount=value,
            captured=bool(captured),
            method=method,
            reference=provider_reference,
            reason=reason or f"Payment {provider}:{provider_reference}",
        )
    return payment


def payment_intake_record(*, order: Order, actor, payment: dict) -> Payment | None:
    """The payment an order arrived with (order_create's `payment`), as a Payment row.

    Called by order_create inside its transaction, after it counted the money on the order: this
    adds the row only (no second count), under order_create's own permission check.
    """
    state = payment.get("status", "unpaid")
    amount = order.amount_paid if state == "paid" else order.amount_authorized
    if state not in {"paid", "authorized"} or amount <= 0:
        return None
    method = str(payment.get("method") or "")[:40]
    # Store credit and vouchers are their own "provider" (their ledgers are the money's record).
    default = method if method in {"store_credit", "voucher"} else settings.OMS_PAYMENT_DEFAULT_PROVIDER
    provider = str(payment.get("provider") or default)[:40]
    reference = str(payment.get("reference") or f"{order.number}-intake")[:128]
    if Payment.objects.filter(provider=provider, provider_reference=reference).exclude(order=order).exists():
        # One checkout paying several orders (a marketplace split): one row per order, never a refusal.
        reference = f"{reference[: 127 - len(order.number)]}/{order.number}"
    row, _created = _create(
        order=order,
        actor=actor,
        method=method,
        provider=provider,
        provider_reference=reference,
        amount=amount,
        captured=state == "paid",
    )
    return row


def payments_backfill_for_order(*, order: Order | int, actor) -> Payment | None:
    """A Payment row for an order recorded before payments had rows (from its payment fields)."""
    with transaction.atomic():
        order = order_lock(order)
        if order.payments.exists() or (order.amount_paid <= 0 and order.amount_authorized <= 0):
            return None
        return payment_intake_record(
            order=order,
            actor=actor,
            payment={
                "status": "paid" if order.amount_paid > 0 else "authorized",
                "method": order.payment_method,
                "reference": order.payment_reference,
            },
        )


@transaction.atomic
def payment_capture(*, payment: Payment | int, actor, amount=None, reason: str = "") -> Payment:
    """Capture an authorization (all of what is left by default); the order counts it paid."""
    require_perm(actor, "orders.record_payment_order", "capture payments")
    order, payment = _lock_payment(payment)
    if payment.status != PaymentStatus.AUTHORIZED:
        raise ConflictError(
            f"Payment {payment} is {payment.get_status_display().lower()}: only an authorization is captured.",
            code="payment_not_authorized",
            extra={"status": payment.status},
        )
    left = payment.amount_authorized - payment.amount_captured
    value = left if amount in (None, "") else _amount(amount, payment.currency)
    if value > left:
        raise ValidationError(
            f"At most {left} {payment.currency} is left to capture.",
            code="capture_exceeds_authorization",
            fields={"amount": ["Exceeds the authorization."]},
        )
    payment.amount_captured += value
    payment.status = PaymentStatus.CAPTURED
    payment.captured_at = timezone.now()
    _save(
        payment, actor=actor, reason=reason or "Payment captured", fields=["amount_captured", "status", "captured_at"]
    )
    orders.order_mark_paid(
        order=order,
        actor=actor,
        amount=value,
        captured=True,
        method=payment.method,
        reference=payment.provider_reference,
        reason=reason or f"Capture of {payment}",
    )
    return payment


@transaction.atomic
def payment_fail(*, payment: Payment | int, actor, reason: str = "") -> Payment:
    """An authorization that failed or was declined (nothing was captured)."""
    require_perm(actor, "orders.record_payment_order", "record payment failures")
    order, payment = _lock_payment(payment)
    if payment.status == PaymentStatus.FAILED:
        return payment
    if payment.status != PaymentStatus.AUTHORIZED or payment.amount_captured > 0:
        raise ConflictError(
            f"Payment {payment} is {payment.get_status_display().lower()}: it can no longer fail.",
            code="payment_not_failable",
            extra={"status": payment.status},
        )
    payment.status = PaymentStatus.FAILED
    payment.failure_reason = reason or ""
    _save(payment, actor=actor, reason=reason or "Payment failed", fields=["status", "failure_reason"])
    event_record(
        order=order,
        actor=actor,
        type=EVENT_PAYMENT_FAILED,
        reason=reason,
        payload={"payment": str(payment), "amount": str(payment.amount_authorized)},
    )
    return payment


# --- provider notifications -----------------------------------------------------------------------


@transaction.atomic
def payment_event_receive(*, provider: str, payload, actor) -> tuple[PaymentEvent, bool]:
    """Store a provider's notification once per (provider, event id) and apply it to the payment.

    Returns (event, applied): a replay returns the stored event and False, and changes nothing.
    An event about a payment we do not know, with no order to attach it to, is kept unapplied.
    """
    require_perm(actor, "billing.add_paymentevent", "receive payment events")
    adapter = get_provider(provider)
    event = adapter.parse_event(payload)
    _refuse_outside_scope(adapter.code, event, actor=actor)
    row = PaymentEvent(
        provider=adapter.code,
        event_id=event.event_id,
        kind=event.kind,
        amount=event.amount or Decimal("0"),
        payload=event.raw,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        # The same notification again (or at the same moment, and the other one committed first).
        return PaymentEvent.objects.get(provider=adapter.code, event_id=event.event_id), False
    payment = _apply(adapter.code, event, actor=actor)
    if payment is not None:
        row.payment = payment
        row.save(update_fields=["payment"])
    else:
        logger.warning("payment event for an unknown payment", extra={"event": event.event_id, "kind": event.kind})
    return row, payment is not None


def _refuse_outside_scope(provider: str, event: ProviderEvent, *, actor) -> None:
    """An API client's event about an order it may not reach (another channel's, by the payment or
    the order it names) is refused before anything is stored: 404, as for an order that does not exist."""
    if channel_scope(actor) is None:
        return
    order_ids = set(
        Payment.objects.filter(provider=provider, provider_reference=event.payment_reference).values_list(
            "order_id", flat=True
        )
    )
    if event.order_number:
        order_ids |= set(Order.objects.filter(number=event.order_number).values_list("pk", flat=True))
    if order_ids and orders_visible(actor).filter(pk__in=order_ids).count() < len(order_ids):
        raise NotFoundError("Order not found.", code="order_not_found")


def _apply(provider: str, event: ProviderEvent, *, actor) -> Payment | None:
    known = Payment.objects.filter(provider=provider, provider_reference=event.payment_reference)
    payment_id = known.values_list("pk", flat=True).first()
    if payment_id is None:
        return _apply_to_new(provider, event, actor=actor)
    order, payment = _lock_payment(payment_id)
    kind = event.kind
    if kind == "authorized":
        return payment  # we knew of it already
    if kind == "captured":
        if payment.status == PaymentStatus.AUTHORIZED:
            return payment_capture(payment=payment, actor=actor, amount=event.amount, reason=event.reason)
        return payment  # captured at intake or by an earlier event
    if kind == "failed":
        if payment.status == PaymentStatus.AUTHORIZED and payment.amount_captured == 0:
            return payment_fail(payment=payment, actor=actor, reason=event.reason or "Declined by the provider")
        return payment
    if kind == "refunded":
        return _apply_refund(order, payment, event, actor=actor)
    if kind == "dispute_opened":
        return _apply_dispute(order, payment, event, actor=actor)
    if kind in {"dispute_won", "dispute_lost"}:
        return _apply_dispute_outcome(payment, event)
    return payment


def _apply_to_new(provider: str, event: ProviderEvent, *, actor) -> Payment | None:
    if event.kind not in {"authorized", "captured"} or not event.order_number or event.amount is None:
        return None
    order = Order.objects.filter(number=event.order_number).first()
    if order is None:
        return None
    if event.currency and event.currency != order.currency:
        raise ValidationError(
            "The payment's currency is not the order's.",
            code="currency_mismatch",
            fields={"currency": [f"Expected {order.currency}."]},
        )
    return payment_record(
        order=order,
        actor=actor,
        method=event.method,
        provider=provider,
        provider_reference=event.payment_reference,
        amount=event.amount,
        captured=event.kind == "captured",
        reason=event.reason,
    )


def _apply_refund(order: Order, payment: Payment, event: ProviderEvent, *, actor) -> Payment:
    """A refund the provider reports. Ours (a Refund with that reference) is already counted."""
    if event.refund_reference and Refund.objects.filter(provider_reference=event.refund_reference).exists():
        return payment
    amount = event.amount if event.amount is not None else payment.refundable
    amount = quantize(amount, payment.currency)
    if amount <= 0 or amount > payment.refundable:
        raise ValidationError(
            "The refund exceeds what is left of the payment.",
            code="refund_exceeds_captured",
            fields={"amount": [f"At most {payment.refundable} {payment.currency}."]},
        )
    payment.amount_refunded += amount
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.amount_refunded >= payment.amount_captured
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    _save(payment, actor=actor, reason=event.reason or "Refunded at the provider", fields=["amount_refunded", "status"])
    event_record(
        order=order,
        actor=actor,
        type=EVENT_PAYMENT_REFUNDED_AT_PROVIDER,
        reason=event.reason,
        payload={"payment": str(payment), "amount": str(amount), "event": event.event_id},
    )
    return payment


def _apply_dispute(order: Order, payment: Payment, event: ProviderEvent, *, actor) -> Payment:
    """A chargeback: recorded once per (payment, dispute reference) by the disputes service, acting
    as the system user (automation), with the provider's deadline or a week."""
    dispute_open(
        payment=payment,
        provider_reference=event.dispute_reference or event.event_id,
        reason=event.reason or "unknown",
        amount=event.amount,
        respond_by=event.respond_by or timezone.now() + datetime.timedelta(days=DISPUTE_RESPONSE_DAYS),
    )
    return payment


def _apply_dispute_outcome(payment: Payment, event: ProviderEvent) -> Payment:
    """The provider's verdict on a dispute of this payment, applied by the disputes service as the
    system user. A dispute we never heard of is recorded first (its deadline already past)."""
    reference = event.dispute_reference or event.event_id
    dispute = Dispute.objects.filter(payment=payment, provider_reference=reference[:128]).first()
    if dispute is None:
        dispute, _created = dispute_open(
            payment=payment,
            provider_reference=reference,
            reason=event.reason or "unknown",
            amount=event.amount,
            respond_by=event.respond_by or timezone.now(),
        )
    dispute_close(
        dispute=dispute,
        actor=get_system_user(),
        won=event.kind == "dispute_won",
        note=event.reason or f"Provider event {event.event_id}",
    )
    return payment


def payments_on_order_placed(*, order: Order, payment: dict, actor) -> None:
    """Hook `order.placed`, in the intake transaction: store credit or a voucher is debited (or the
    order refused with a field error), then the payment the order arrived with becomes a row."""
    amount = payment.get("amount") or ZERO
    intake_payment_debit(order=order, actor=actor, payment=payment, amount=amount)
    if amount > 0:
        payment_intake_record(order=order, actor=actor, payment=payment)
