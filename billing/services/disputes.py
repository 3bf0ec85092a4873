"""Disputes (chargebacks) on a payment, with the deadline to answer and one PDF of evidence.

The evidence pack gathers what a provider asks for: the order and what was sold, its invoices and
credit notes, each parcel with its carrier tracking events and proof of delivery, and the messages
the customer was sent. It is one WeasyPrint rendering of templates/billing/disputes/evidence_pack.html,
stored on the dispute (a later pack replaces it) and returned as bytes.
"""

import datetime
import functools
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone, translation

from billing.models import CreditNote, Dispute, DisputeStatus, Invoice, Payment, PaymentStatus
from fulfillment.models import Shipment, ShipmentLine, TrackingUpdate
from integrations.models import Notification
from integrations.services import notification_render
from oms.core.actors import get_system_user
from oms.core.documents import address_lines, page_counter_css, render_pdf
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.history import stamp
from oms.core.logging import set_order
from oms.core.money import amount_parse, quantize
from oms.core.permissions import require_perm
from orders.choices import OrderEventType
from orders.events import event_record
from orders.locks import order_lock
from orders.services import order_record_refund

DISPUTE_OPENED = OrderEventType.DISPUTE_OPENED
EVIDENCE_PACK_GENERATED = OrderEventType.DISPUTE_EVIDENCE_GENERATED
EVIDENCE_TEMPLATE = "billing/disputes/evidence_pack.html"


@transaction.atomic
def dispute_open(
    *,
    payment: Payment | int,
    provider_reference: str,
    reason: str,
    amount: Decimal | str | None,
    respond_by: datetime.datetime,
    actor=None,
) -> tuple[Dispute, bool]:
    """Record a dispute once per (payment, provider reference): a provider repeating itself changes
    nothing. Returns (dispute, created). Automation (provider events) acts as the system user."""
    actor = actor or get_system_user()
    require_perm(actor, "billing.add_dispute", "record disputes")
    payment = Payment.objects.select_related("order").filter(pk=getattr(payment, "pk", payment)).first()
    if payment is None:
        raise NotFoundError("Payment not found.", code="payment_not_found")
    errors: dict[str, list[str]] = {}
    provider_reference = (provider_reference or "").strip()[:128]
    if not provider_reference:
        errors["provider_reference"] = ["This field is required."]
    if respond_by is None or timezone.is_naive(respond_by):
        errors["respond_by"] = ["A timezone-aware date and time is required."]
    value = payment.amount_captured
    if amount not in (None, ""):
        try:
            value = amount_parse(amount, currency=payment.currency, field="amount", minimum=None)
        except ValidationError as exc:
            errors.update(exc.extra["fields"])
        else:
            if value <= 0 or value > payment.amount_captured:
                errors["amount"] = [f"Between 0 and {payment.amount_captured} {payment.currency}."]
    if errors:
        raise ValidationError("The dispute is not valid.", code="invalid_dispute", fields=errors)
    existing = Dispute.objects.filter(payment=payment, provider_reference=provider_reference).first()
    if existing is not None:
        return existing, False
    dispute = Dispute(
        payment=payment,
        order=payment.order,
        provider_reference=provider_reference,
        reason=(reason or "unknown").strip()[:64],
        amount=value,
        currency=payment.currency,
        respond_by=respond_by,
    )
    stamp(dispute, actor=actor, reason=f"Dispute {provider_reference} opened")
    try:
        with transaction.atomic():
            dispute.save(force_insert=True)
    except IntegrityError:  # the same notification, delivered twice at once
        return Dispute.objects.get(payment=payment, provider_reference=provider_reference), False
    set_order(payment.order.number)
    event_record(
        order=payment.order,
        actor=actor,
        type=DISPUTE_OPENED,
        reason=dispute.reason,
        payload={
            "dispute": provider_reference,
            "payment": str(payment),
            "amount": str(value),
            "respond_by": respond_by.isoformat(),
        },
    )
    return dispute, True


def _message_text(notification: Notification) -> tuple[str, str]:
    """(subject, body) as the customer got it, or as it will read for one not yet sent."""
    if notification.body:
        return notification.subject, notification.body
    try:
        subject, text, _html = notification_render(notification)
    except Exception:  # noqa: BLE001 - an unknown kind or a broken template: show what is stored
        return notification.subject or notification.kind, ""
    return subject, text


def evidence_pack_context(dispute: Dispute) -> dict:
    order = dispute.order
    invoices = list(Invoice.objects.filter(order=order).prefetch_related("lines", "taxes").order_by("issued_at", "pk"))
    credit_notes = list(CreditNote.objects.filter(order=order).select_related("invoice").order_by("issued_at", "pk"))
    shipments = list(
        Shipment.objects.filter(order=order)
        .select_related("location")
        .prefetch_related(
            Prefetch("lines", queryset=ShipmentLine.objects.select_related("order_line").order_by("pk")),
            Prefetch("tracking_updates", queryset=TrackingUpdate.objects.order_by("occurred_at", "pk")),
        )
        .order_by("created_at", "pk")
    )
    notifications = list(Notification.objects.filter(order_number=order.number).order_by("created_at", "pk"))
    messages = []
    for notification in notifications:
        subject, body = _message_text(notification)
        messages.append({"notification": notification, "subject": subject, "body": body})
    return {
        "dispute": dispute,
        "payment": dispute.payment,
        "order": order,
        "lines": list(order.lines.order_by("line_number")),
        "billing_address": address_lines(order.billing_address or {}),
        "shipping_address": address_lines(order.shipping_address or {}),
        "invoices": invoices,
        "credit_notes": credit_notes,
        "shipments": shipments,
        "messages": messages,
        "generated_at": timezone.now(),
        "page_counter": page_counter_css(),
    }


def evidence_pack_pdf(dispute: Dispute) -> bytes:
    with translation.override(dispute.order.locale if dispute.order.locale in {"en", "fr"} else "en"):
        html = render_to_string(EVIDENCE_TEMPLATE, evidence_pack_context(dispute))
        return render_pdf(html)


def dispute_evidence_pack(*, dispute: Dispute | int, actor) -> bytes:
    """Render the evidence pack, store it on the dispute and return it."""
    require_perm(actor, "billing.change_dispute", "prepare dispute evidence")
    dispute_id = getattr(dispute, "pk", dispute)
    current = Dispute.objects.select_related("order", "payment").filter(pk=dispute_id).first()
    if current is None:
        raise NotFoundError("Dispute not found.", code="dispute_not_found")
    if current.status in {DisputeStatus.WON, DisputeStatus.LOST}:
        raise ConflictError(
            f"Dispute {current.provider_reference} is closed ({current.get_status_display().lower()}).",
            code="dispute_closed",
        )
    pdf = evidence_pack_pdf(current)  # rendered outside the transaction: WeasyPrint takes its time
    with transaction.atomic():
        locked = Dispute.objects.select_for_update(of=("self",)).select_related("order").get(pk=dispute_id)
        set_order(locked.order.number)
        old = locked.evidence.name if locked.evidence else ""
        locked.evidence.save(f"evidence-{locked.provider_reference}.pdf", ContentFile(pdf), save=False)
        stamp(locked, actor=actor, reason="Evidence pack generated")
        locked.save(update_fields=["evidence"])
        event_record(
            order=locked.order,
            actor=actor,
            type=EVIDENCE_PACK_GENERATED,
            payload={"dispute": locked.provider_reference, "bytes": len(pdf)},
        )
        if old and old != locked.evidence.name:
            transaction.on_commit(functools.partial(locked.evidence.storage.delete, old))
    return pdf


# --- outcomes ------------------------------------------------------------------------------------

# Timeline types of the dispute's outcome (orders.choices.OrderEventType has no member for them yet;
# the event type column takes any short text).
EVIDENCE_SUBMITTED = "dispute_evidence_submitted"
DISPUTE_WON = "dispute_won"
DISPUTE_LOST = "dispute_lost"
CLOSED_STATUSES = (DisputeStatus.WON, DisputeStatus.LOST)
MAX_NOTE = 2_000


class DisputeRefused(ConflictError):
    default_code = "dispute_refused"


def _lock_dispute(dispute) -> Dispute:
    dispute_id = getattr(dispute, "pk", dispute)
    try:
        dispute_id = int(dispute_id)
    except (TypeError, ValueError):
        raise NotFoundError("Dispute not found.", code="dispute_not_found") from None
    order_id = Dispute.objects.filter(pk=dispute_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("Dispute not found.", code="dispute_not_found")
    # The project's lock order: the order, then its payments, then the dispute.
    order_lock(order_id)
    list(Payment.objects.select_for_update().filter(order_id=order_id).order_by("pk"))
    return Dispute.objects.select_for_update(of=("self",)).select_related("order", "payment").get(pk=dispute_id)


def _dispute_payload(dispute: Dispute, **extra) -> dict:
    return {
        "dispute": dispute.provider_reference,
        "payment": str(dispute.payment),
        "amount": str(dispute.amount),
        "currency": dispute.currency,
        "status": dispute.status,
        **extra,
    }


@transaction.atomic
def dispute_submit_evidence(*, dispute: Dispute | int, actor, note: str = "") -> Dispute:
    """Open → evidence submitted, once the evidence pack was generated. Submitting again is a no-op."""
    require_perm(actor, "billing.change_dispute", "submit dispute evidence")
    dispute = _lock_dispute(dispute)
    if dispute.status == DisputeStatus.EVIDENCE_SUBMITTED:
        return dispute
    if dispute.status != DisputeStatus.OPEN:
        raise DisputeRefused(
            f"Dispute {dispute.provider_reference} is closed ({dispute.get_status_display().lower()}).",
            code="dispute_closed",
            extra={"status": dispute.status},
        )
    if not dispute.evidence:
        raise DisputeRefused(
            f"Generate the evidence pack of dispute {dispute.provider_reference} before submitting it.",
            code="evidence_pack_missing",
        )
    note = (note or "").strip()[:MAX_NOTE]
    dispute.status = DisputeStatus.EVIDENCE_SUBMITTED
    stamp(dispute, actor=actor, reason=note or "Evidence submitted")
    dispute.save(update_fields=["status"])
    event_record(
        order=dispute.order, actor=actor, type=EVIDENCE_SUBMITTED, reason=note, payload=_dispute_payload(dispute)
    )
    return dispute


def _record_chargeback(dispute: Dispute, *, actor) -> Decimal:
    """The disputed amount counts as refunded on the payment and the order (never above captured,
    nor above what the order still counts as paid). Returns the amount counted."""
    payment = Payment.objects.select_for_update().get(pk=dispute.payment_id)
    order = dispute.order
    order.refresh_from_db(fields=["amount_paid", "amount_refunded"])
    amount = min(
        dispute.amount,
        payment.amount_captured - payment.amount_refunded,
        order.amount_paid - order.amount_refunded,
    )
    amount = quantize(max(amount, Decimal("0")), payment.currency)
    if amount <= 0:
        return amount
    payment.amount_refunded += amount
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.amount_refunded >= payment.amount_captured
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    stamp(payment, actor=actor, reason=f"Chargeback {dispute.provider_reference}")
    payment.save(update_fields=["amount_refunded", "status"])
    order_record_refund(order=order, actor=actor, amount=amount, reference=f"chargeback {dispute.provider_reference}")
    return amount


@transaction.atomic
def dispute_close(*, dispute: Dispute | int, actor, won: bool, note: str = "") -> Dispute:
    """The provider's verdict. Won: no money moves. Lost: the chargeback counts as refunded on the
    payment and the order (the same bookkeeping as a processed refund), never above what was captured.
    Closing a dispute again with the same outcome is a no-op; with the other one it is refused."""
    require_perm(actor, "billing.change_dispute", "close disputes")
    dispute = _lock_dispute(dispute)
    target = DisputeStatus.WON if won else DisputeStatus.LOST
    if dispute.status == target:
        return dispute
    if dispute.status in CLOSED_STATUSES:
        raise DisputeRefused(
            f"Dispute {dispute.provider_reference} is already closed ({dispute.get_status_display().lower()}).",
            code="dispute_closed",
            extra={"status": dispute.status},
        )
    note = (note or "").strip()[:MAX_NOTE]
    charged = None
    if not won:
        charged = _record_chargeback(dispute, actor=actor)
    dispute.status = target
    stamp(dispute, actor=actor, reason=note or str(target.label))
    dispute.save(update_fields=["status"])
    extra = {} if charged is None else {"charged_back": str(charged)}
    event_record(
        order=dispute.order,
        actor=actor,
        type=DISPUTE_WON if won else DISPUTE_LOST,
        reason=note,
        payload=_dispute_payload(dispute, **extra),
    )
    return dispute
