"""Test data for the refund, credit and dispute tests: finance users and paid orders with payments."""

import datetime
import itertools

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from billing.models import Payment, PaymentStatus
from billing.services.invoices import invoice_issue
from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from oms.core.actors import get_system_user
from orders import services as orders
from orders.tests.factories import ChannelFactory, make_catalog, order_payload

REQUESTER = ("billing.request_refund", "billing.view_refund")
APPROVER = ("billing.approve_refund", "billing.view_refund", "billing.issue_creditnote")
MANAGER = (*APPROVER, "billing.approve_large_refund")
_seq = itertools.count(1)


def finance_user(*perms: str, username: str | None = None) -> User:
    user = User.objects.create_user(username=username or f"fin{next(_seq)}", password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


def ensure_payment(order) -> Payment:
    """The order's captured payment (made here when the intake did not record one)."""
    payment = order.payments.first()
    if payment is None:
        payment = Payment.objects.create(
            order=order,
            method=order.payment_method or "card",
            provider="sandbox",
            provider_reference=order.payment_reference or f"{order.number}-pay",
            currency=order.currency,
            amount_authorized=order.amount_paid,
            amount_captured=order.amount_paid,
            status=PaymentStatus.CAPTURED,
            captured_at=timezone.now(),
        )
    return payment


def paid_order(**overrides):
    """A paid, confirmed order of order_payload (64.45 EUR) with its captured payment."""
    make_catalog()
    ChannelFactory()
    order, _created = orders.order_create(actor=get_system_user(), **order_payload(**overrides))
    ensure_payment(order)
    order.refresh_from_db()
    return order


def _ship(shipment, actor):
    fulfillment.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    fulfillment.shipment_pack(shipment=shipment, actor=actor)
    return fulfillment.shipment_dispatch(shipment=shipment, actor=actor)


def delivered_order_with_invoice():
    """Two parcels shipped and tracked to the door, an invoice, and the dispatch messages."""
    make_two_locations()
    system = get_system_user()
    order = prepared_order()
    payment = ensure_payment(order)
    start = timezone.now()
    for shipment in Shipment.objects.filter(order=order).order_by("pk"):
        shipment = _ship(shipment, system)
        events = [
            {
                "id": f"{shipment.tracking_number}-{code}",
                "tracking_number": shipment.tracking_number,
                "status": code,
                "occurred_at": (start + datetime.timedelta(hours=hours)).isoformat(),
            }
            for code, hours in (("IN_TRANSIT", 2), ("DELIVERED", 20))
        ]
        fulfillment.carrier_webhook_receive(carrier="sandbox", payload={"events": events}, actor=system)

    invoice = invoice_issue(order=order, actor=system)
    order.refresh_from_db()
    return order, payment, invoice
