"""Money after the parcels, each step by its role and through the billing services: payment rows,
the billing policies, invoices (one overdue), credit notes, refunds in each state, a compensation
voucher and a dispute with its evidence pack; then the returns (`returns.returns_showcase`)."""

import datetime

from billing.models import BillingPolicy, InvoiceTrigger, PaymentTerms
from billing.services import disputes, invoices, payments, refunds
from fulfillment.choices import ShipmentStatus
from fulfillment.models import Shipment
from oms.cockpit.demo.context import Demo, backdated
from oms.cockpit.demo.returns import returns_showcase
from oms.core.history import stamp
from orders.choices import OrderStatus
from orders.models import Channel, Order


def billing_showcase(demo: Demo, admin) -> dict:
    """Returns the showcase's documents by key."""
    u, finance = demo.users, demo.users["finance"]

    # Payment rows for the orders paid before they had rows (bank transfers recorded by finance).
    paid = Order.objects.filter(payments__isnull=True).filter(amount_paid__gt=0).order_by("pk")
    for order in paid.distinct():
        payments.payments_backfill_for_order(order=order, actor=finance)

    # Billing policies (configuration; no service writes them): the web store invoices each parcel
    # when it ships, paid at order; the EDI reseller's accounts are invoiced per order, net 30.
    for code, trigger, terms in (
        ("web", InvoiceTrigger.SHIPMENT, PaymentTerms.IMMEDIATE),
        ("edi-reseller", InvoiceTrigger.ORDER, PaymentTerms.NET_30),
    ):
        channel = Channel.objects.get(code=code)
        if not BillingPolicy.objects.filter(channel=channel).exists():
            policy = BillingPolicy(channel=channel, trigger=trigger, payment_terms=terms)
            stamp(policy, actor=admin, reason="Demo data")
            policy.save()

    # Invoices, as the automatic invoicing issues them (the system user). The oldest account
    # order was invoiced when it was confirmed, weeks ago: net 30 has passed, it is overdue.
    shown: dict = {}
    b2b = list(
        Order.objects.filter(channel__code="edi-reseller", status__in=invoices.INVOICEABLE_STATUSES).order_by(
            "placed_at", "pk"
        )
    )
    for index, order in enumerate(b2b):
        if index == 0:
            with backdated(order.placed_at + datetime.timedelta(days=1)):
                shown["overdue"] = invoices.invoice_for_policy(order=order, actor=demo.system)
        else:
            invoices.invoice_for_policy(order=order, actor=demo.system)
    shipped = [OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED]
    for order in Order.objects.filter(status__in=shipped).exclude(channel__code="edi-reseller").order_by("pk"):
        parcels = (
            Shipment.objects.filter(lines__order_line__order=order, shipped_at__isnull=False)
            .exclude(status=ShipmentStatus.CANCELED)
            .distinct()
            .order_by("shipped_at", "pk")
        )
        for parcel in parcels:
            invoices.invoice_for_policy(order=order, actor=demo.system, shipment=parcel)
        if not order.invoices.exists():
            # Shipped by hand (a test order, a line sent ahead): its shipped units.
            invoices.invoice_issue(order=order, actor=demo.system)

    # Delivered web orders paid by card, each used once below.
    candidates = [
        order
        for order in Order.objects.filter(
            status=OrderStatus.DELIVERED, channel__code__in=["web", "app", "phone"], is_test=False, currency="EUR"
        )
        .prefetch_related("lines")
        .order_by("pk")
        if order.invoices.exists()
        and order.payments.filter(amount_captured__gt=0).exists()
        and not order.shipments.filter(kind="pickup").exists()
    ]

    def take(predicate=lambda order: True) -> Order:
        for order in candidates:
            if predicate(order):
                candidates.remove(order)
                return order
        raise RuntimeError("The demo plan has no order left for the billing showcase.")

    def settle(refund, approver=None):
        approver = approver or (u["finance-manager"] if refunds.needs_second_approver(refund) else u["finance"])
        refunds.refund_approve(refund=refund, actor=approver, note="Checked against the order.")
        return refunds.refund_process(refund=refund, actor=approver)

    # Kept for the return inspected line by line: an order of three lines or more.
    to_inspect = take(lambda o: len([line for line in o.lines.all() if line.quantity_shipped]) >= 3)

    # A pricing error, credited by lines and refunded to store credit.
    order = take(lambda o: len(o.lines.all()) >= 2)
    invoice = order.invoices.order_by("pk").first()
    line = invoice.lines.filter(order_line__isnull=False).order_by("position").first()
    shown["credit_by_lines"] = invoices.credit_note_issue(
        invoice=invoice,
        actor=finance,
        reason="pricing_error",
        lines={line.pk: 1},
        note="The promotion price was not applied to one unit.",
    )
    settle(
        refunds.refund_request(
            order=order,
            actor=u["support1"],
            amount=shown["credit_by_lines"].total_gross,
            reason="pricing_error",
            method="store_credit",
            credit_note=shown["credit_by_lines"],
            note="Customer prefers store credit.",
        )
    )

    # A goodwill gesture for a late parcel: a credit note by amount, refunded to the card.
    order = take()
    shown["credit_by_amount"] = invoices.credit_note_issue(
        invoice=order.invoices.order_by("pk").first(),
        actor=finance,
        reason="goodwill",
        amount="8.00",
        note="Parcel arrived three days late.",
    )
    shown["goodwill"] = settle(
        refunds.refund_request(
            order=order,
            actor=u["support2"],
            amount="8.00",
            reason="goodwill",
            credit_note=shown["credit_by_amount"],
            note="Parcel arrived three days late.",
        )
    )

    # A compensation voucher for a damaged item (on top of what was paid).
    order = take()
    settle(
        refunds.refund_request(
            order=order,
            actor=u["support2"],
            amount="15.00",
            reason="compensation",
            method="voucher",
            note="Mug chipped on arrival; customer keeps it.",
        )
    )

    # A large refund finance asked for: a finance manager has to approve it.
    threshold = refunds.second_approver_threshold()
    order = take(lambda o: o.amount_paid - o.amount_refunded > threshold + 10)
    shown["large_refund"] = refunds.refund_request(
        order=order,
        actor=finance,
        amount=min(order.amount_paid - order.amount_refunded, threshold + 50),
        reason="seller_cancellation",
        note="Wrong colour sent; customer keeps the goods at our expense.",
    )

    # The customer's bank disputes a delivered order's card payment: the evidence pack answers it.
    order = take(lambda o: o.shipments.filter(delivered_at__isnull=False, tracking_updates__isnull=False).exists())
    payment = order.payments.filter(amount_captured__gt=0).order_by("pk").first()
    shown["dispute"], _created = disputes.dispute_open(
        payment=payment,
        provider_reference=f"dp_demo_{order.number[-6:]}",
        reason="product_not_received",
        amount=None,
        respond_by=demo.now + datetime.timedelta(days=10),
        actor=demo.system,
    )
    disputes.dispute_evidence_pack(dispute=shown["dispute"], actor=finance)

    shown.update(returns_showcase(demo, take, to_inspect))
    return shown
