"""`manage.py seed_demo`: a realistic, reproducible demo made only through the services."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db.models import Count
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import (
    BillingPolicy,
    CreditNote,
    Dispute,
    Invoice,
    InvoiceTrigger,
    Payment,
    PaymentTerms,
    Refund,
    RefundMethod,
    RefundStatus,
    StoreCreditEntry,
    Voucher,
)
from billing.services.invoices import invoice_list
from billing.services.refunds import second_approver_threshold
from fulfillment.choices import HANDED_OVER_STATUSES, ShipmentKind, ShipmentStatus, ShortPickResolution, WaveRender
from fulfillment.models import ConsolidationRule, Shipment, ShipmentLine, ShortPick, TrackingUpdate, Wave
from integrations.models import OutboxMessage
from inventory.models import Location, StockItem
from oms.cockpit.demo.users import API_CLIENTS
from oms.cockpit.management.commands.seed_demo import PASSWORD, STAFF
from orders.cases import case_scope_q
from orders.choices import API_CLIENT_GROUPS, FulfillmentStatus, OrderEventType, OrderStatus
from orders.identity import customer_duplicate_groups
from orders.models import (
    ApiClient,
    AutomationRule,
    Case,
    Channel,
    Customer,
    Order,
    OrderEvent,
    OrderHold,
    OrderLine,
    OrderNote,
    RuleFiring,
    SlaPolicy,
    Tag,
)
from returns.choices import ReturnStatus
from returns.models import ReturnRequest

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # labels and pick lists, not in var/


def snapshot() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "order history": Order.history.count(),
        "lines": OrderLine.objects.count(),
        "line history": OrderLine.history.count(),
        "events": OrderEvent.objects.count(),
        "holds": OrderHold.objects.count(),
        "notes": OrderNote.objects.count(),
        "customers": Customer.objects.count(),
        "channels": Channel.objects.count(),
        "tags": Tag.objects.count(),
        "users": User.objects.count(),
        "tokens": Token.objects.count(),
        "groups": Group.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "shipments": Shipment.objects.count(),
        "shipment history": Shipment.history.count(),
        "short picks": ShortPick.objects.count(),
        "tracking updates": TrackingUpdate.objects.count(),
        "waves": Wave.objects.count(),
        "consolidation rules": ConsolidationRule.objects.count(),
        "payments": Payment.objects.count(),
        "invoices": Invoice.objects.count(),
        "credit notes": CreditNote.objects.count(),
        "refunds": Refund.objects.count(),
        "vouchers": Voucher.objects.count(),
        "disputes": Dispute.objects.count(),
        "returns": ReturnRequest.objects.count(),
    }


def actors_of(event_type: str) -> set[str]:
    return set(OrderEvent.objects.filter(type=event_type).values_list("actor__username", flat=True))


def test_seed_demo_builds_every_status_through_the_services_and_runs_once(client):
    out = StringIO()
    call_command("seed_demo", stdout=out)

    # ≥ 240 orders, every status
    assert Order.objects.count() >= 240
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    per_status = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
    assert min(per_status.values()) >= 5

    # every order has its timeline and its history, every event an actor
    order_ids = set(Order.objects.values_list("pk", flat=True))
    assert set(OrderEvent.objects.values_list("order_id", flat=True)) == order_ids
    assert set(Order.history.values_list("id", flat=True)) == order_ids
    assert not OrderEvent.objects.filter(actor__isnull=True).exists()
    assert not Order.history.filter(history_user__isnull=True).exists()

    # each step by the role that does it
    assert actors_of(OrderEventType.IMPORTED) == {"api-store-front"}
    assert actors_of(OrderEventType.CREATED) == {"support1"}
    assert actors_of(OrderEventType.PREPARATION_STARTED) == {"warehouse"}
    # parcels leave our sites by the warehouse, a 3PL's through the API
    assert actors_of(OrderEventType.SHIPMENT_RECORDED) == {"warehouse", "api-3pl"}
    assert actors_of(OrderEventType.COMPLETED) == {"finance"}
    # the system: the expiry job releases a store pickup nobody collected
    assert actors_of(OrderEventType.CANCELED) <= {"support1", "support2", "system"}
    assert actors_of(OrderEventType.PARCEL_UPDATED) == {"system"}  # the carrier's webhook
    assert actors_of(OrderEventType.PAYMENT_RECORDED) <= {
        "api-store-front",
        "support1",
        "finance",
    }  # phone: card by phone
    assert "finance" in actors_of(OrderEventType.PAYMENT_RECORDED)

    # the variety the cockpit needs to be shown
    assert OrderHold.objects.filter(released_at__isnull=True).exists()
    assert OrderHold.objects.filter(released_at__isnull=False, released_by__isnull=False).exists()
    assert OrderNote.objects.exists()
    assert {"vip", "gift", "supplier-delay"} <= set(
        Tag.objects.filter(orders__isnull=False).values_list("name", flat=True)
    )
    assert Order.objects.filter(is_test=True).exists()
    assert {"EUR", "GBP", "USD", "CHF"} <= set(Order.objects.values_list("currency", flat=True))
    assert Customer.objects.count() >= 60
    assert Customer.objects.filter(payment_terms_days=30).exists()
    assert Order.objects.filter(status=OrderStatus.CONFIRMED, payment_status="on_terms").exists()
    assert Channel.objects.count() == 7
    assert not Order.objects.filter(status=OrderStatus.COMPLETED, completed_at__isnull=True).exists()

    assert_fulfillment_in_every_state()
    assert_billing_and_returns()

    # the output: the summary table and the demo users, clearly labelled
    text = out.getvalue()
    assert "DEMO ONLY" in text
    token = Token.objects.get(user__username="api-store-front")
    for username, _role, _channels, _description in API_CLIENTS:
        assert f"Token {Token.objects.get(user__username=username).key}" in text
    for username, _role, _first, _last in STAFF:
        assert PASSWORD.format(username=username) in text

    # the users log in to the cockpit with the printed passwords, each in its role, and every page
    # they work from answers (their queues, a case, an order, the search, the home page)
    assert_cockpit_cases()
    some_order = Order.objects.filter(cases__isnull=False).first()
    for username, role, _first, _last in STAFF:
        assert client.login(username=username, password=PASSWORD.format(username=username)), username
        assert client.get("/admin/orders/order/").status_code == 200
        assert User.objects.get(username=username).groups.filter(name=role).exists()
        assert client.get("/admin/").status_code == 200, username
        assert client.get("/admin/orders/case/").status_code == 200, username
        assert client.get(f"/admin/orders/order/{some_order.pk}/change/").status_code == 200, username
        assert client.get(f"/admin/search/?q={some_order.number}").status_code == 302, username
        user = User.objects.get(username=username)
        workable = Case.objects.filter(case_scope_q(user)).first()
        if workable is not None:
            assert client.get(f"/admin/orders/case/{workable.pk}/change/").status_code == 200, username
    assert User.objects.get(username="admin").is_superuser
    # one API client per job, each in its role on its channels: the read-only one sees Amazon's only
    for username, role, channels, _description in API_CLIENTS:
        client = ApiClient.objects.get(user__username=username)
        assert client.role == role
        assert list(client.user.groups.values_list("name", flat=True)) == [API_CLIENT_GROUPS[role]]
        expected = channels or list(Channel.objects.order_by("code").values_list("code", flat=True))
        assert sorted(client.channels.values_list("code", flat=True)) == sorted(expected)
    analytics = APIClient()
    analytics.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user__username='api-read-only').key}")
    listed = analytics.get("/api/v1/orders/?page_size=200").json()["results"]
    assert listed and {order["channel"] for order in listed} == {"amazon-fr"}

    # a second run creates nothing and prints the users again
    before = snapshot()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert snapshot() == before
    assert "nothing created" in again.getvalue()
    assert f"Token {token.key}" in again.getvalue()


def assert_cockpit_cases() -> None:
    """Cases in the queues of every team, in every state, opened by the detectors and by hand."""
    kinds = set(Case.objects.values_list("kind", flat=True))
    assert {
        "fraud_review",
        "address_check",
        "stock_shortage",
        "short_pick",
        "sla_breach",
        "lost_parcel",
        "damaged_parcel",
        "credit_hold",
        "payment_overdue",
        "dispute",
        "escalation",
    } <= kinds
    assert set(Case.objects.values_list("status", flat=True)) == {"open", "in_progress", "escalated", "resolved"}
    assert Case.objects.filter(level="l2").exists()
    assert Case.objects.filter(decision="false_positive").exists()
    assert Case.objects.filter(decision="force_majeure").exists()
    assert Case.objects.filter(kind="escalation", opened_by__username="support1").count() == 3
    # one fraud case per order, however many fraud signals it has
    assert not Case.objects.filter(kind="fraud_review").values("order").annotate(n=Count("pk")).filter(n__gt=1)
    assert not Case.history.filter(history_user__isnull=True).exists()
    assert AutomationRule.objects.count() == 4 and RuleFiring.objects.exists()
    assert SlaPolicy.objects.filter(channel__isnull=True).exists()
    assert [group["reason"] for group in customer_duplicate_groups()] == ["phone", "address"]


def assert_fulfillment_in_every_state() -> None:
    """Parcels in every state, each reached through the fulfillment services."""
    assert set(Shipment.objects.values_list("status", flat=True)) == set(ShipmentStatus.values)
    assert not Shipment.history.filter(history_user__isnull=True).exists()
    assert not StockItem.objects.filter(bin_location="").exists()
    lyon = Location.objects.get(code="lyon-store")
    assert lyon.store_pickup and lyon.ships_from_store

    # Shipped orders shipped through their parcels: each handed-over parcel has a tracking number,
    # the recent ones a sandbox label, and the carrier's events moved them on.
    handed_over = Shipment.objects.filter(status__in=HANDED_OVER_STATUSES, kind=ShipmentKind.DELIVERY)
    assert handed_over.count() >= 100
    assert not handed_over.filter(tracking_number="").exists()
    labelled = handed_over.exclude(label="")
    assert labelled.count() >= 5
    assert all(parcel.label.storage.exists(parcel.label.name) for parcel in labelled)
    assert TrackingUpdate.objects.filter(applied=True, shipment__isnull=False).count() >= 100
    assert Shipment.objects.get(status=ShipmentStatus.LOST).order.status == OrderStatus.SHIPPED
    for order in Order.objects.filter(status=OrderStatus.DELIVERED, is_test=False):
        assert set(order.shipments.exclude(status=ShipmentStatus.CANCELED).values_list("status", flat=True)) <= {
            ShipmentStatus.DELIVERED,
            ShipmentStatus.PICKED_UP,
        }, order.number

    # This morning's wave at the Paris warehouse, its pick list printed.
    wave = Wave.objects.get(location__code="paris-wh")
    assert wave.render_status == WaveRender.READY and wave.pick_list.storage.exists(wave.pick_list.name)
    assert wave.shipments.count() >= 10
    assert {ShipmentStatus.PICKING, ShipmentStatus.PACKED, ShipmentStatus.SHORT_PICKED} <= set(
        wave.shipments.values_list("status", flat=True)
    )

    # Short picks: one open, one resolved each way with the customer's consent recorded.
    open_short = ShortPick.objects.get(resolved_at__isnull=True)
    assert open_short.shipment.status == ShipmentStatus.SHORT_PICKED
    resolved = ShortPick.objects.filter(resolved_at__isnull=False)
    assert sorted(resolved.values_list("resolution", flat=True)) == sorted(ShortPickResolution.values)
    for short in resolved:
        assert short.consent_channel and short.consent_note and short.consent_at, short.resolution
        assert short.resolved_by.username in {"support1", "support2"}
    substituted = resolved.get(resolution=ShortPickResolution.SUBSTITUTE)
    assert substituted.substitute_line.substitute_for_id == substituted.order_line_id
    assert resolved.get(resolution=ShortPickResolution.CANCEL_LINE).order_line.quantity_canceled > 0
    assert resolved.get(resolution=ShortPickResolution.DELAY).order_line.promised_at is not None

    # Store pickup at the Lyon store: one on the shelf, one collected, one not collected in time.
    pickups = Shipment.objects.filter(kind=ShipmentKind.PICKUP, location=lyon)
    assert pickups.get(status=ShipmentStatus.READY_FOR_PICKUP).pickup_expires_at is not None
    assert pickups.get(status=ShipmentStatus.PICKED_UP).order.status == OrderStatus.DELIVERED
    assert pickups.get(status=ShipmentStatus.PICKUP_EXPIRED).order.cancel_reason == "pickup_expired"

    # Two web orders of one customer in one parcel, recorded on both.
    assert ConsolidationRule.objects.get(is_active=True).channel.code == "web"
    consolidated = [
        shipment
        for shipment in Shipment.objects.all()
        if len(set(ShipmentLine.objects.filter(shipment=shipment).values_list("order_line__order", flat=True))) > 1
    ]
    assert len(consolidated) == 1
    orders = Order.objects.filter(lines__shipment_lines__shipment=consolidated[0]).distinct()
    assert orders.count() == 2
    assert all(order.events.filter(type=OrderEventType.CONSOLIDATED).exists() for order in orders)

    # A three-line order sourced from two locations: one parcel on its way, the other being prepared.
    split = [
        order
        for order in Order.objects.filter(status=OrderStatus.PARTIALLY_SHIPPED)
        if order.lines.count() == 3 and order.shipments.values("location").distinct().count() == 2
    ]
    assert split
    order = split[0]
    assert order.fulfillment_status == FulfillmentStatus.PARTIALLY_SHIPPED
    parcels = order.shipments.order_by("status")
    assert [parcel.status in HANDED_OVER_STATUSES for parcel in parcels].count(True) == 1
    assert {parcel.status for parcel in parcels if parcel.status not in HANDED_OVER_STATUSES} == {
        ShipmentStatus.PENDING
    }
    assert parcels.exclude(tracking_number="").count() == 1


def assert_billing_and_returns() -> None:
    """Money and returns in each state, each reached through the billing and returns services."""
    # Every order that took money has its payment row.
    assert not Order.objects.filter(amount_paid__gt=0, payments__isnull=True).exists()
    assert not Payment.history.filter(history_user__isnull=True).exists()

    # Policies: the web store per parcel, paid at order; the EDI accounts per order, net 30.
    web = BillingPolicy.objects.get(channel__code="web")
    assert (web.trigger, web.payment_terms) == (InvoiceTrigger.SHIPMENT, PaymentTerms.IMMEDIATE)
    edi = BillingPolicy.objects.get(channel__code="edi-reseller")
    assert (edi.trigger, edi.payment_terms) == (InvoiceTrigger.ORDER, PaymentTerms.NET_30)

    # Every shipped order is invoiced, web orders per parcel, account orders per order.
    shipped = [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED]
    assert not Order.objects.filter(status__in=shipped, invoices__isnull=True).exists()
    assert Invoice.objects.count() >= 100
    web_invoices = Invoice.objects.filter(order__channel__code="web")
    assert web_invoices.filter(shipment__isnull=False).count() >= 30
    # Without a parcel only what was shipped by hand (a test order, a line sent ahead).
    for invoice in web_invoices.filter(shipment__isnull=True).select_related("order"):
        assert invoice.order.is_test or invoice.order.status == OrderStatus.PARTIALLY_SHIPPED, invoice.number
    assert not Invoice.objects.filter(order__channel__code="edi-reseller", shipment__isnull=False).exists()
    assert set(Invoice.objects.values_list("issued_by__username", flat=True)) == {"system"}
    per_year: dict[str, list[int]] = {}
    for number in Invoice.objects.values_list("number", flat=True):  # INV-<year>-<n>
        _series, year, sequence = number.split("-")
        per_year.setdefault(year, []).append(int(sequence))
    assert all(sorted(seq) == list(range(1, len(seq) + 1)) for seq in per_year.values())  # no gap
    (overdue,) = invoice_list(overdue=True)
    assert overdue.payment_terms == PaymentTerms.NET_30 and overdue.order.channel.code == "edi-reseller"

    # Credit notes: by lines (a pricing error), by amount (goodwill), and a return's.
    by_lines = CreditNote.objects.get(reason="pricing_error")
    assert by_lines.lines.filter(invoice_line__isnull=False).count() == 1
    by_amount = CreditNote.objects.get(reason="goodwill")
    assert not by_amount.lines.filter(invoice_line__isnull=False).exists()
    assert by_amount.total_gross < by_amount.invoice.total_gross

    # Refunds: processed (to the card, to store credit, a compensation voucher), one awaiting a
    # finance manager, one a return requested.
    processed = Refund.objects.filter(status=RefundStatus.PROCESSED)
    assert {RefundMethod.ORIGINAL, RefundMethod.STORE_CREDIT, RefundMethod.VOUCHER} <= set(
        processed.values_list("method", flat=True)
    )
    assert processed.get(reason="goodwill").credit_note == by_amount
    assert processed.get(method=RefundMethod.STORE_CREDIT).credit_note == by_lines
    assert StoreCreditEntry.objects.filter(amount=by_lines.total_gross).exists()
    assert Voucher.objects.filter(refund__reason="compensation").exists()
    large = Refund.objects.get(status=RefundStatus.REQUESTED, requested_by__username="finance")
    assert large.amount > second_approver_threshold()
    assert Refund.objects.filter(status=RefundStatus.REQUESTED, reason="return").exists()
    for refund in processed:
        assert refund.approved_by_id and refund.approved_by_id != refund.requested_by_id

    # A dispute on a delivered order's card payment, its evidence pack generated.
    dispute = Dispute.objects.get()
    assert dispute.order.status == OrderStatus.DELIVERED
    assert dispute.evidence and dispute.evidence.storage.exists(dispute.evidence.name)
    assert dispute.order.events.filter(type=OrderEventType.DISPUTE_EVIDENCE_GENERATED).exists()

    # Returns: requested, approved with its label, inspected (2 of 3 lines resellable: credited and
    # refund requested) and refused.
    statuses = set(ReturnRequest.objects.values_list("status", flat=True))
    assert {ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.INSPECTED, ReturnStatus.REFUSED} <= statuses
    approved = ReturnRequest.objects.get(status=ReturnStatus.APPROVED)
    assert approved.tracking_number and approved.label.storage.exists(approved.label.name)
    inspected = ReturnRequest.objects.get(status=ReturnStatus.INSPECTED)
    lines = list(inspected.lines.order_by("pk"))
    assert len(lines) == 3
    assert [line.quantity_resellable == line.quantity for line in lines].count(True) == 2
    (credit_note,) = inspected.settlement["credit_notes"]
    assert CreditNote.objects.get(number=credit_note).reason == "return"
    (refund,) = inspected.settlement["refunds"]
    assert Refund.objects.get(number=refund).status == RefundStatus.REQUESTED
    assert ReturnRequest.objects.get(status=ReturnStatus.REFUSED).refusal_reason
