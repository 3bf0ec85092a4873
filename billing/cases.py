"""Billing's cases found by time: refunds not processed within their SLA, and overdue invoices.

Orders runs the sweeps (orders.cases: `sla_sweep`, `cases_sweep`, every 5 minutes) and owns the
cases; billing owns what is late, so it answers through orders.hooks (subscribed in
BillingConfig.ready()): `refunds_sla_sweep` to SLA_SWEEP, `cases_on_sweep` to CASES_SWEEP.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, Refund, RefundStatus
from billing.services.invoices import invoice_list
from oms.core.actors import get_system_user
from orders.cases import case_open, cases_resolve_sources, sla_breach_open
from orders.choices import CaseDecision, CaseKind, CaseStatus
from orders.models import Case


def refunds_sla_sweep(*, actor, now: datetime.datetime, default_sla, channel_slas: dict, limit: int) -> int:
    """An SLA-breach case for each refund still open past its channel's refund limit. Returns how many."""
    shortest = min([default_sla.refund] + [policy.refund for policy in channel_slas.values()])
    open_statuses = [RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.FAILED]
    refunds = (
        Refund.objects.filter(status__in=open_statuses, requested_at__lt=now - shortest, order__is_test=False)
        .select_related("order", "order__customer")
        .order_by("requested_at")[:limit]
    )
    opened = 0
    for refund in refunds:
        policy = channel_slas.get(refund.order.channel_id, default_sla)
        if refund.requested_at >= now - policy.refund:
            continue
        with transaction.atomic():
            opened += sla_breach_open(
                refund.order,
                stage="refund",
                key=f"sla:refund:{refund.number}",
                since=refund.requested_at,
                limit=policy.refund,
                actor=actor,
                extra={"refund": refund.number, "amount": str(refund.amount)},
            )
    return opened


def overdue_sweep(*, actor=None, today: datetime.date | None = None) -> tuple[int, int]:
    """A case per overdue invoice; closed when payments cover it again. Returns (opened, closed)."""
    actor = actor or get_system_user()
    overdue = {
        invoice.number: invoice
        for invoice in invoice_list(overdue=True, today=today).select_related("order", "order__customer")
    }
    opened = closed = 0
    for number, invoice in overdue.items():
        with transaction.atomic():
            _, created = case_open(
                kind=CaseKind.PAYMENT_OVERDUE,
                source_key=f"overdue:{number}",
                title=f"Invoice {number} overdue since {invoice.due_at}",
                actor=actor,
                order=invoice.order,
                facts={"invoice": number, "due_at": str(invoice.due_at), "gross": str(invoice.total_gross)},
            )
            opened += created
    still_open = Case.objects.filter(kind=CaseKind.PAYMENT_OVERDUE, source_key__startswith="overdue:").exclude(
        status=CaseStatus.RESOLVED
    )
    paid = [key for key in still_open.values_list("source_key", flat=True) if key.split(":", 1)[1] not in overdue]
    if paid:
        numbers = [key.split(":", 1)[1] for key in paid]
        with transaction.atomic():
            closed = len(
                cases_resolve_sources(
                    source_keys=paid,
                    actor=actor,
                    decision=CaseDecision.RESOLVED_UPSTREAM,
                    resolution="Paid",
                    evidence={
                        "invoices": sorted(Invoice.objects.filter(number__in=numbers).values_list("number", flat=True))
                    },
                )
            )
    return opened, closed


def cases_on_sweep(*, actor, now: datetime.datetime | None) -> dict[str, int]:
    """Billing's part of the periodic case sweep: the overdue invoices (as of `now`'s local date)."""
    opened, closed = overdue_sweep(actor=actor, today=timezone.localdate(now) if now else None)
    return {"overdue_opened": opened, "overdue_closed": closed}
