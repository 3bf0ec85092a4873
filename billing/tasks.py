"""Thin Celery tasks around the billing services, and the hooks that queue them after a commit.

Automatic invoicing: billing subscribes (BillingConfig.ready) after commit to the hooks
`order.confirmed` (orders) and `shipment.shipped` (fulfillment, a parcel left or was picked up). Each
queues `invoice_auto`; the task issues what the billing policy asks for,
at most once (a redelivered task finds the invoice and does nothing).
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from billing.exports.tasks import export_run_task  # noqa: F401 (registered with the worker from here)
from billing.services.invoices import invoice_for_policy
from fulfillment.models import ShipmentLine
from oms.core.actors import get_system_user
from oms.core.logging import set_order


def invoice_on_order_confirmed(*, order_id: int, actor_id: int | None) -> None:
    """After the commit that confirmed the order (hook `order.confirmed`): invoice it (per-order policy)."""
    if settings.OMS_INVOICE_AUTO:
        invoice_auto.delay(order_id=order_id)


def invoice_on_shipment_shipped(*, shipment_id: int, actor_id: int | None) -> None:
    """After the commit that shipped the parcel (hook `shipment.shipped`): invoice it (per-shipment policy)."""
    if settings.OMS_INVOICE_AUTO:
        invoice_auto.delay(shipment_id=shipment_id)


@shared_task(
    name="billing.tasks.invoice_auto",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def invoice_auto(*, order_id: int | None = None, shipment_id: int | None = None) -> list[str]:
    """Issue the invoices the policy asks for after a confirmation (order) or a dispatch (shipment)."""
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
