"""Thin Celery tasks around the billing services, and the hooks that queue them after a commit.

Automatic invoicing: orders.services calls `invoice_when_confirmed` when an order is confirmed,
fulfillment.services calls `invoice_when_shipped` when a parcel leaves (or is picked up). Each
queues `invoice_auto` once the change commits; the task issues what the billing policy asks for,
at most once (a redelivered task finds the invoice and does nothing).
"""

import functools

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction

from billing.exports.tasks import export_run_task  # noqa: F401 (registered with the worker from here)
from oms.core.actors import get_system_user
from oms.core.logging import set_order


def invoice_when_confirmed(order) -> None:
    """Called in the transaction that confirmed `order`: invoice it after commit (per-order policy)."""
    if settings.OMS_INVOICE_AUTO and order.status == "confirmed":
        transaction.on_commit(functools.partial(invoice_auto.delay, order_id=order.pk))


def invoice_when_shipped(shipment) -> None:
    """Called in the transaction that shipped `shipment`: invoice the parcel after commit (per-shipment policy)."""
    if settings.OMS_INVOICE_AUTO:
        transaction.on_commit(functools.partial(invoice_auto.delay, shipment_id=shipment.pk))


@shared_task(
    name="billing.tasks.invoice_auto",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def invoice_auto(*, order_id: int | None = None, shipment_id: int | None = None) -> list[str]:
    """Issue the invoices the policy asks for after a confirmation (order) or a dispatch (shipment)."""
    from billing.services.invoices import invoice_for_policy
    from fulfillment.models import ShipmentLine

    set_order(None)
    actor = get_system_user()
    if shipment_id is None:
        invoice = invoice_for_policy(order=order_id, actor=actor)
        return [invoice.number] if invoice else []
    order_ids = sorted(
        set(ShipmentLine.objects.filter(shipment_id=shipment_id).values_list("order_line__order_id", flat=True))
    )
    numbers = []
    for each in order_ids:
        invoice = invoice_for_policy(order=each, actor=actor, shipment=shipment_id)
        if invoice is not None:
            numbers.append(invoice.number)
    return numbers
