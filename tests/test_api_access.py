"""Who reaches what through the API: every operation of /api/schema/ tried by every API client role,
and another client's orders (and everything hanging off them) answering 404 and writing nothing.

Two channels, each served by its own API clients: `web` (the client under test) and `market` (the
other client). The same world is built on each, as the system user: orders in the states the
operations need, their parcels, a wave, a short pick, invoices, a credit note, a refund, a dispute,
returns, an export and a case. Every request runs in a savepoint rolled back afterwards, so each one
starts from the same world.

`OPERATIONS` names, for each operation of the schema, the API roles that may call it; a new endpoint
without an entry fails `test_every_operation_of_the_schema_has_an_expectation`.
"""

import datetime
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from billing.models import Payment
from billing.services import disputes as dispute_services
from billing.services import exports as export_services
from billing.services import invoices as invoice_services
from billing.services import refunds as refund_services
from billing.services.payments import payments_backfill_for_order
from fulfillment import services as fulfillment
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import World, make_two_locations
from inventory.models import Location
from inventory.services import count_submit, stock_receive
from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import cases
from orders import services as orders
from orders.choices import CaseKind, OrderStatus
from orders.models import ApiClient, Channel, Order
from orders.tests.api_fixtures import token_client
from orders.tests.factories import ChannelFactory, make_api_client, make_catalog, make_user, order_payload
from orders.tests.states import order_in_state
from returns import services as return_services

pytestmark = pytest.mark.django_db

SF, TPL, PAY, ERP, RO = (
    roles.API_STORE_FRONT,
    roles.API_3PL,
    roles.API_PAYMENT_PROVIDER,
    roles.API_ERP,
    roles.API_READ_ONLY,
)
ROLE_CODES = {SF: "store_front", TPL: "3pl", PAY: "payment_provider", ERP: "erp", RO: "read_only"}
NONE: frozenset = frozenset()
READERS = frozenset({SF, TPL, ERP, RO})  # orders, parcels and returns
EVERYONE = READERS | {PAY}
BILLING_READERS = frozenset({SF, ERP, RO})  # invoices and credit notes
STOCK_READERS = frozenset({SF, TPL, RO})

OURS, THEIRS = "web", "market"
MUG_AND_BOOK = [
    {"sku": "MUG-1", "name": "Mug", "quantity": 2, "unit_price": "12.00", "tax_rate": "0.20"},
    {"sku": "BOOK-1", "name": "Book", "quantity": 1, "unit_price": "10.55", "tax_rate": "0.055"},
]
ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]


# --- the world: the same objects on each channel ------------------------------------------------------


@dataclass
class Side:
    """One channel's orders and what hangs off them, by what an operation needs."""

    channel: str
    orders: dict[str, Order] = field(default_factory=dict)
    hold_id: int = 0
    shipments: dict[str, Shipment] = field(default_factory=dict)
    short_pick: ShortPick | None = None
    wave: object = None
    invoice: object = None
    credit_note: object = None
    refund: object = None
    dispute: object = None
    returns: dict = field(default_factory=dict)
    export: object = None
    case: object = None
    count_id: int = 0  # a submitted cycle count (inventory is shared by the channels)

    def numbers(self) -> set[str]:
        """Every number of this side that another client must never read in a response."""
        found = {o.number for o in self.orders.values()} | {s.number for s in self.shipments.values()}
        found |= {r.number for r in self.returns.values()}
        found |= {self.wave.number, self.invoice.number, self.credit_note.number, self.refund.number}
        found.add(self.case.number)
        return found


def _order(state, channel, *, lines=MUG_AND_BOOK, **overrides) -> Order:
    return order_in_state(state, actor=get_system_user(), channel=channel, lines=lines, **overrides)


def _prepared(channel, *, lines=MUG_AND_BOOK, **overrides) -> tuple[Order, Shipment]:
    """An order in preparation with its one parcel, pending."""
    system = get_system_user()
    order, _ = orders.order_create(actor=system, **order_payload(channel=channel, lines=lines, **overrides))
    order = orders.order_start_preparation(order=order, actor=system)
    return order, Shipment.objects.get(order=order)


def _picked(shipment, *, short: bool = False) -> Shipment:
    picked = {
        line.pk: line.quantity - (1 if short and index == 0 else 0)
        for index, line in enumerate(shipment.lines.order_by("pk"))
    }
    return fulfillment.shipment_confirm_picks(shipment=shipment, actor=get_system_user(), picked=picked)


def _delivered(channel, world: World) -> Order:
    """Shipped from Paris with the sandbox carrier's label, delivered just now, its payment recorded."""
    system = get_system_user()
    order, shipment = _prepared(channel)
    _picked(shipment)
    fulfillment.shipment_pack(shipment=shipment, actor=system)
    shipment = fulfillment.shipment_dispatch(shipment=shipment, actor=system)
    fulfillment.carrier_webhook_receive(
        carrier="sandbox",
        payload={
            "events": [
                {
                    "id": f"{shipment.tracking_number}-DELIVERED",
                    "tracking_number": shipment.tracking_number,
                    "status": "DELIVERED",
                    "occurred_at": (timezone.now() - datetime.timedelta(minutes=1)).isoformat(),
                }
            ]
        },
        actor=system,
    )
    payments_backfill_for_order(order=order, actor=system)
    order.refresh_from_db()
    return order


def build_side(channel: str, world: World, store: Location) -> Side:
    system = get_system_user()
    S = OrderStatus
    side = Side(channel=channel)
    o = side.orders
    for state in (S.DRAFT, S.PENDING_APPROVAL, S.AWAITING_PAYMENT, S.UNDER_REVIEW, S.CONFIRMED, S.SHIPPED):
        o[state] = _order(state, channel)
    o["delivered"] = _order(S.DELIVERED, channel)
    o["in_preparation"] = _order(S.IN_PREPARATION, channel)
    o["fraud"] = orders.order_create(
        actor=system, **order_payload(channel=channel, lines=MUG_AND_BOOK, risk={"score": 99, "facts": ["IP"]})
    )[0]
    o["held"] = _order(S.CONFIRMED, channel)
    side.hold_id = orders.order_hold(order=o["held"], actor=system, reason="manual").pk
    # parcels at each step a 3PL reports
    o["to_pick"], side.shipments["pending"] = _prepared(channel)
    o["to_pack"], shipment = _prepared(channel)
    side.shipments["picked"] = _picked(shipment)
    o["to_dispatch"], shipment = _prepared(channel)
    _picked(shipment)
    side.shipments["packed"] = fulfillment.shipment_pack(shipment=shipment, actor=system)
    o["dispatched"], shipment = _prepared(channel)
    _picked(shipment)
    fulfillment.shipment_pack(shipment=shipment, actor=system)
    side.shipments["dispatched"] = fulfillment.shipment_dispatch(shipment=shipment, actor=system)  # labelled here
    pickup = {"method": "click & collect", "pickup_location": store.code}
    o["pickup"], shipment = _prepared(channel, lines=ONE_MUG, shipping=pickup)
    side.shipments["pickup_picked"] = _picked(shipment)
    o["pickup_ready"], shipment = _prepared(channel, lines=ONE_MUG, shipping=pickup)
    _picked(shipment)
    side.shipments["pickup_ready"] = fulfillment.shipment_ready_for_pickup(shipment=shipment, actor=system)
    o["short"], shipment = _prepared(channel)
    _picked(shipment, short=True)
    side.short_pick = ShortPick.objects.get(shipment=shipment)
    o["waved"], shipment = _prepared(channel)
    side.wave = fulfillment.wave_create(location=world.paris, actor=system, shipment_ids=[shipment.pk])
    side.shipments["waved"] = shipment
    # money: an invoiced, delivered order with a credit note, a refund awaiting approval and a dispute
    billed = o["billed"] = _delivered(channel, world)
    side.invoice = invoice_services.invoice_issue(order=billed, actor=system)
    side.credit_note = invoice_services.credit_note_issue(
        invoice=side.invoice, actor=system, reason="goodwill", amount=Decimal("1.00")
    )
    side.refund = refund_services.refund_request(order=billed, actor=system, amount=Decimal("2.00"), reason="goodwill")
    payment = Payment.objects.filter(order=billed).get()
    side.dispute, _ = dispute_services.dispute_open(
        payment=payment,
        provider_reference=f"dp-{channel}",
        reason="fraudulent",
        amount=Decimal("5.00"),
        respond_by=timezone.now() + datetime.timedelta(days=7),
        actor=system,
    )
    today = timezone.localdate()
    side.export = export_services.export_request(
        kind="invoices_csv",
        period_start=today - datetime.timedelta(days=1),
        period_end=today,
        channel=Channel.objects.get(code=channel),
        actor=system,
    )
    side.export = export_services.export_run(export=side.export)
    # returns: one requested, one approved (its label printed), one received; and an order to return
    returned = o["returned"] = _delivered(channel, world)
    lines = {line.sku: line for line in returned.lines.all()}

    def rma(line, **extra):
        return return_services.return_request(
            order=returned, actor=system, lines=[{"line": line, "quantity": 1}], reason="changed_mind", **extra
        )

    side.returns["requested"] = rma(lines["MUG-1"])
    side.returns["approved"] = return_services.return_approve(request=rma(lines["MUG-1"]), actor=system)
    received = return_services.return_approve(request=rma(lines["BOOK-1"]), actor=system)
    side.returns["received"] = return_services.return_receive(request=received, actor=system)
    o["returnable"] = _delivered(channel, world)
    side.case, _ = cases.case_open(
        kind=CaseKind.ADDRESS_CHECK,
        source_key=f"access:{channel}",
        title="Is this address right?",
        actor=system,
        order=o[S.CONFIRMED],
    )
    for key, shipment in side.shipments.items():
        side.shipments[key] = Shipment.objects.get(pk=shipment.pk)
    return side


@dataclass
class Everything:
    world: World
    ours: Side
    theirs: Side


@pytest.fixture
def everything(settings, tmp_path) -> Everything:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0
    settings.OMS_INVOICE_AUTO = False
    world = make_two_locations(mug=500, tee=50, book=500, cup=50)
    ChannelFactory(code=THEIRS, name="Marketplace", kind="marketplace")
    store = Location.objects.create(
        code="lyon-store", name="Lyon store", kind="store", country="FR", city="Lyon", store_pickup=True, priority=5
    )
    stock_receive(product=world.mug, location=store, quantity=20, actor=get_system_user())
    count = count_submit(location=world.paris, lines=[(world.cup, 49)], actor=get_system_user(), reference="C-1")
    ours, theirs = build_side(OURS, world, store), build_side(THEIRS, world, store)
    ours.count_id = theirs.count_id = count.pk
    return Everything(world=world, ours=ours, theirs=theirs)


# --- what each operation is called with, and who may call it ------------------------------------------

TODAY = datetime.date.today().isoformat()
ADDRESS = {"name": "Ann Lee", "line1": "3 rue X", "postal_code": "59000", "city": "Lille", "country": "FR"}


def _return_results(side: Side) -> dict:
    received = side.returns["received"]
    return {"results": {str(line.pk): {"resellable": line.quantity} for line in received.lines.all()}}


def _tracking(side: Side) -> dict:
    shipment = side.shipments["dispatched"]
    at = (timezone.now() + datetime.timedelta(minutes=5)).isoformat()
    event = {"id": f"{shipment.tracking_number}-T", "tracking_number": shipment.tracking_number}
    return {"events": [{**event, "status": "IN_TRANSIT", "occurred_at": at}]}


def _payment_event(side: Side) -> dict:
    order = side.orders[OrderStatus.AWAITING_PAYMENT]
    return {
        "id": f"evt-{side.channel}",
        "type": "captured",
        "payment_reference": f"psp-{side.channel}",
        "amount": str(order.total_gross),
        "currency": "EUR",
        "order": order.number,
    }


def _order_payload(side: Side) -> dict:
    return order_payload(channel=side.channel, lines=MUG_AND_BOOK, external_id=f"new-{side.channel}")


def _line_one(order: Order) -> str:
    return str(order.lines.order_by("line_number").first().line_number)


# operationId → (the roles that may call it, how: side → (path, body or query))
ORD, FUL, BIL, RET = "/api/v1/orders/", "/api/v1/fulfillment/", "/api/v1/billing/", "/api/v1/returns/"
S = OrderStatus
OPERATIONS = {
    # orders
    "v1_orders_list": (EVERYONE, lambda s: (ORD, {})),
    "v1_orders_create": ({SF}, lambda s: (ORD, _order_payload(s))),
    "v1_orders_retrieve": (EVERYONE, lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/", {})),
    "v1_orders_submit_create": ({SF}, lambda s: (f"{ORD}{s.orders[S.DRAFT].number}/submit/", {})),
    "v1_orders_approve_create": (NONE, lambda s: (f"{ORD}{s.orders[S.PENDING_APPROVAL].number}/approve/", {})),
    "v1_orders_mark_paid_create": ({PAY}, lambda s: (f"{ORD}{s.orders[S.AWAITING_PAYMENT].number}/mark-paid/", {})),
    "v1_orders_accept_on_terms_create": (
        NONE,
        lambda s: (f"{ORD}{s.orders[S.AWAITING_PAYMENT].number}/accept-on-terms/", {}),
    ),
    "v1_orders_flag_for_review_create": (
        NONE,
        lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/flag-for-review/", {"reason": "Rule 7"}),
    ),
    "v1_orders_accept_create": (NONE, lambda s: (f"{ORD}{s.orders[S.UNDER_REVIEW].number}/accept/", {})),
    "v1_orders_clear_fraud_create": (
        NONE,
        lambda s: (f"{ORD}{s.orders['fraud'].number}/clear-fraud/", {"reason": "Called the cardholder"}),
    ),
    "v1_orders_start_preparation_create": (
        {TPL},
        lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/start-preparation/", {}),
    ),
    "v1_orders_record_shipment_create": (
        {TPL},
        lambda s: (f"{ORD}{s.orders['in_preparation'].number}/record-shipment/", {}),
    ),
    "v1_orders_mark_delivered_create": ({TPL}, lambda s: (f"{ORD}{s.orders[S.SHIPPED].number}/mark-delivered/", {})),
    "v1_orders_complete_create": (NONE, lambda s: (f"{ORD}{s.orders['delivered'].number}/complete/", {})),
    "v1_orders_cancel_create": (
        {SF},
        lambda s: (f"{ORD}{s.orders[S.AWAITING_PAYMENT].number}/cancel/", {"reason_code": "customer_request"}),
    ),
    "v1_orders_hold_create": (NONE, lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/hold/", {"reason": "manual"})),
    "v1_orders_holds_release_create": (
        NONE,
        lambda s: (f"{ORD}{s.orders['held'].number}/holds/{s.hold_id}/release/", {"note": "Checked"}),
    ),
    "v1_orders_notes_create": ({SF}, lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/notes/", {"body": "Gift wrap"})),
    "v1_orders_tags_add_create": ({SF}, lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/tags/add/", {"tag": "vip"})),
    "v1_orders_tags_remove_create": (
        {SF},
        lambda s: (f"{ORD}{s.orders[S.CONFIRMED].number}/tags/remove/", {"tag": "vip"}),
    ),
    "v1_orders_change_address_create": (
        {SF},
        lambda s: (
            f"{ORD}{s.orders[S.CONFIRMED].number}/change-address/",
            {"kind": "shipping", "address": ADDRESS, "reason": "Customer moved"},
        ),
    ),
    "v1_orders_shipments_retrieve": (READERS, lambda s: (f"{ORD}{s.orders['dispatched'].number}/shipments/", {})),
    # cases: the cockpit's queues, no API client's
    "v1_cases_list": (NONE, lambda s: ("/api/v1/cases/", {})),
    "v1_cases_retrieve": (NONE, lambda s: (f"/api/v1/cases/{s.case.number}/", {})),
    "v1_cases_assign_create": (NONE, lambda s: (f"/api/v1/cases/{s.case.number}/assign/", {})),
    "v1_cases_escalate_create": (NONE, lambda s: (f"/api/v1/cases/{s.case.number}/escalate/", {"reason": "L2"})),
    "v1_cases_resolve_create": (
        NONE,
        lambda s: (f"/api/v1/cases/{s.case.number}/resolve/", {"decision": "fixed", "resolution": "Done"}),
    ),
    # fulfillment
    "v1_fulfillment_shipments_list": (READERS, lambda s: (f"{FUL}shipments/", {})),
    "v1_fulfillment_shipments_retrieve": (
        READERS,
        lambda s: (f"{FUL}shipments/{s.shipments['dispatched'].number}/", {}),
    ),
    "v1_fulfillment_shipments_label_retrieve": (
        READERS,
        lambda s: (f"{FUL}shipments/{s.shipments['dispatched'].number}/label.pdf", {}),
    ),
    "v1_fulfillment_shipments_packing_slip_retrieve": (
        READERS,
        lambda s: (f"{FUL}shipments/{s.shipments['packed'].number}/packing-slip.pdf", {}),
    ),
    "v1_fulfillment_shipments_picks_create": (
        {TPL},
        lambda s: (
            f"{FUL}shipments/{s.shipments['pending'].number}/picks/",
            {"picked": {str(line.pk): line.quantity for line in s.shipments["pending"].lines.all()}},
        ),
    ),
    "v1_fulfillment_shipments_pack_create": (
        {TPL},
        lambda s: (f"{FUL}shipments/{s.shipments['picked'].number}/pack/", {}),
    ),
    "v1_fulfillment_shipments_dispatch_create": (
        {TPL},
        lambda s: (
            f"{FUL}shipments/{s.shipments['packed'].number}/dispatch/",
            {"carrier": "sandbox", "tracking_number": f"3PL-{s.channel}"},
        ),
    ),
    "v1_fulfillment_shipments_ready_for_pickup_create": (
        {TPL},
        lambda s: (f"{FUL}shipments/{s.shipments['pickup_picked'].number}/ready-for-pickup/", {}),
    ),
    "v1_fulfillment_shipments_hand_over_create": (
        {TPL},
        lambda s: (f"{FUL}shipments/{s.shipments['pickup_ready'].number}/hand-over/", {}),
    ),
    "v1_fulfillment_shipments_cancel_create": (
        NONE,
        lambda s: (f"{FUL}shipments/{s.shipments['pending'].number}/cancel/", {"reason": "Customer called"}),
    ),
    "v1_fulfillment_short_picks_substitute_create": (
        NONE,
        lambda s: (
            f"{FUL}short-picks/{s.short_pick.pk}/substitute/",
            {"sku": "CUP-1", "consent_channel": "phone", "consent_note": "Agreed"},
        ),
    ),
    "v1_fulfillment_short_picks_delay_create": (
        NONE,
        lambda s: (
            f"{FUL}short-picks/{s.short_pick.pk}/delay/",
            {"promised_at": (timezone.now() + datetime.timedelta(days=5)).isoformat()},
        ),
    ),
    "v1_fulfillment_short_picks_cancel_line_create": (
        NONE,
        lambda s: (
            f"{FUL}short-picks/{s.short_pick.pk}/cancel-line/",
            {"consent_channel": "phone", "consent_note": "Agreed"},
        ),
    ),
    "v1_fulfillment_waves_list": (NONE, lambda s: (f"{FUL}waves/", {})),
    "v1_fulfillment_waves_create": (
        NONE,
        lambda s: (f"{FUL}waves/", {"location": "paris-wh", "shipments": [s.shipments["pending"].number]}),
    ),
    "v1_fulfillment_waves_retrieve": (NONE, lambda s: (f"{FUL}waves/{s.wave.number}/", {})),
    "v1_fulfillment_waves_print_create": (NONE, lambda s: (f"{FUL}waves/{s.wave.number}/print/", {})),
    "v1_fulfillment_waves_pick_list_retrieve": (NONE, lambda s: (f"{FUL}waves/{s.wave.number}/pick-list.pdf", {})),
    "v1_fulfillment_carriers_tracking_create": ({TPL}, lambda s: (f"{FUL}carriers/sandbox/tracking/", _tracking(s))),
    # inventory: not channel-scoped (stock is shared), permissions only
    "v1_inventory_products_atp_retrieve": (STOCK_READERS, lambda s: ("/api/v1/inventory/products/MUG-1/atp/", {})),
    "v1_inventory_feed_list": (STOCK_READERS, lambda s: ("/api/v1/inventory/feed/", {"channel": s.channel})),
    "v1_inventory_receipts_create": (
        {TPL},
        lambda s: (
            "/api/v1/inventory/receipts/",
            {"location": "paris-wh", "reference": f"R-{s.channel}", "lines": [{"sku": "CUP-1", "quantity": 5}]},
        ),
    ),
    "v1_inventory_adjustments_create": (
        NONE,
        lambda s: (
            "/api/v1/inventory/adjustments/",
            {"location": "paris-wh", "sku": "CUP-1", "delta": -1, "note": "Broken", "reference": "A-1"},
        ),
    ),
    "v1_inventory_counts_create": (
        {TPL},
        lambda s: (
            "/api/v1/inventory/counts/",
            {"location": "paris-wh", "reference": f"C-{s.channel}", "lines": [{"sku": "CUP-1", "counted": 50}]},
        ),
    ),
    "v1_inventory_counts_apply_create": (NONE, lambda s: (f"/api/v1/inventory/counts/{s.count_id}/apply/", {})),
    # billing
    "v1_billing_invoices_list": (BILLING_READERS, lambda s: (f"{BIL}invoices/", {})),
    "v1_billing_invoices_retrieve": (BILLING_READERS, lambda s: (f"{BIL}invoices/{s.invoice.number}/", {})),
    "v1_billing_invoices_pdf_retrieve": (BILLING_READERS, lambda s: (f"{BIL}invoices/{s.invoice.number}/pdf/", {})),
    "v1_billing_credit_notes_retrieve": (BILLING_READERS, lambda s: (f"{BIL}credit-notes/{s.credit_note.number}/", {})),
    "v1_billing_credit_notes_pdf_retrieve": (
        BILLING_READERS,
        lambda s: (f"{BIL}credit-notes/{s.credit_note.number}/pdf/", {}),
    ),
    "v1_billing_orders_invoices_create": (
        {TPL},
        lambda s: (f"{BIL}orders/{s.orders['dispatched'].number}/invoices/", {}),
    ),
    "v1_billing_invoices_credit_notes_create": (
        {TPL},
        lambda s: (f"{BIL}invoices/{s.invoice.number}/credit-notes/", {"reason": "goodwill", "amount": "1.00"}),
    ),
    "v1_billing_payments_events_create": ({PAY}, lambda s: (f"{BIL}payments/sandbox/events/", _payment_event(s))),
    "v1_billing_orders_refunds_create": (
        {TPL},
        lambda s: (f"{BIL}orders/{s.orders['billed'].number}/refunds/", {"amount": "1.00", "reason": "goodwill"}),
    ),
    "v1_billing_orders_seller_cancellation_create": (
        NONE,
        lambda s: (
            f"{BIL}orders/{s.orders[S.CONFIRMED].number}/seller-cancellation/",
            {"quantities": {_line_one(s.orders[S.CONFIRMED]): 1}},
        ),
    ),
    "v1_billing_refunds_list": ({ERP, RO}, lambda s: (f"{BIL}refunds/", {})),
    "v1_billing_refunds_retrieve": ({ERP, RO}, lambda s: (f"{BIL}refunds/{s.refund.number}/", {})),
    "v1_billing_refunds_approve_create": (NONE, lambda s: (f"{BIL}refunds/{s.refund.number}/approve/", {})),
    "v1_billing_refunds_reject_create": (NONE, lambda s: (f"{BIL}refunds/{s.refund.number}/reject/", {})),
    "v1_billing_refunds_process_create": (NONE, lambda s: (f"{BIL}refunds/{s.refund.number}/process/", {})),
    "v1_billing_disputes_submit_create": (NONE, lambda s: (f"{BIL}disputes/{s.dispute.pk}/submit/", {})),
    "v1_billing_disputes_close_create": (NONE, lambda s: (f"{BIL}disputes/{s.dispute.pk}/close/", {"won": True})),
    "v1_billing_exports_create": (
        {ERP},
        lambda s: (
            f"{BIL}exports/",
            {"kind": "invoices_csv", "period_start": TODAY, "period_end": TODAY, "channel": s.channel},
        ),
    ),
    "v1_billing_exports_download_retrieve": (
        {ERP},
        lambda s: (
            f"{BIL}exports/download/",
            {"kind": "invoices_csv", "period_start": TODAY, "period_end": TODAY, "channel": s.channel},
        ),
    ),
    "v1_billing_exports_retrieve": ({ERP}, lambda s: (f"{BIL}exports/{s.export.pk}/", {})),
    "v1_billing_exports_file_retrieve": ({ERP}, lambda s: (f"{BIL}exports/{s.export.pk}/file/", {})),
    # returns
    "v1_returns_create": (
        {SF},
        lambda s: (
            RET,
            {
                "order": s.orders["returnable"].number,
                "reason": "changed_mind",
                "lines": [{"line": 1, "quantity": 1}],
            },
        ),
    ),
    "v1_returns_retrieve": (READERS, lambda s: (f"{RET}{s.returns['approved'].number}/", {})),
    "v1_returns_label.pdf_retrieve": (READERS, lambda s: (f"{RET}{s.returns['approved'].number}/label.pdf", {})),
    "v1_returns_approve_create": (NONE, lambda s: (f"{RET}{s.returns['requested'].number}/approve/", {})),
    "v1_returns_refuse_create": (
        NONE,
        lambda s: (f"{RET}{s.returns['requested'].number}/refuse/", {"reason": "Outside the window"}),
    ),
    "v1_returns_cancel_create": (
        NONE,
        lambda s: (f"{RET}{s.returns['requested'].number}/cancel/", {"reason": "Customer kept it"}),
    ),
    "v1_returns_receive_create": ({TPL}, lambda s: (f"{RET}{s.returns['approved'].number}/receive/", {})),
    "v1_returns_inspect_create": (
        {TPL},
        lambda s: (f"{RET}{s.returns['received'].number}/inspect/", _return_results(s)),
    ),
    "v1_returns_close_create": (NONE, lambda s: (f"{RET}{s.returns['received'].number}/close/", {})),
}


def schema_operations() -> dict[str, str]:
    """operationId → HTTP method, for every operation of /api/schema/."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {op["operationId"]: method.upper() for ops in schema["paths"].values() for method, op in ops.items()}


def api_client_of(role: str, channel: str) -> APIClient:
    return token_client(make_api_client(ROLE_CODES[role], channel))


def send(client: APIClient, method: str, path: str, data: dict):
    """One request in a savepoint rolled back after it: returns (status, body text, rows written)."""
    with transaction.atomic():
        before = table_counts()
        if method == "GET":
            response = client.get(path, data)
        else:
            response = client.post(path, data, format="json")
        content = b"".join(response.streaming_content) if response.streaming else response.content
        after = table_counts()
        transaction.set_rollback(True)
    written = {table: after[table] - before[table] for table in before if after[table] != before[table]}
    return response.status_code, content.decode("utf-8", "replace"), written


def leaks(numbers: set[str], body: str, path: str, data: dict) -> list[str]:
    """The other channel's numbers in an answer, but for those the request named itself ("Order …
    not found" repeats what was asked)."""
    asked = path + json.dumps(data, default=str)
    return sorted(number for number in numbers if number in body and number not in asked)


_TABLES: list[str] = []


def table_counts() -> dict[str, int]:
    """Rows in every table of the apps, histories included, in one query."""
    if not _TABLES:
        labels = {"orders", "fulfillment", "billing", "returns", "inventory", "integrations"}
        _TABLES.extend(sorted(m._meta.db_table for m in apps.get_models() if m._meta.app_label in labels))
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{table}")' for table in _TABLES)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip(_TABLES, cursor.fetchone(), strict=True))


# --- the tests -------------------------------------------------------------------------------------------


def test_every_operation_of_the_schema_has_an_expectation():
    assert set(OPERATIONS) == set(schema_operations())


def test_each_api_role_reaches_exactly_its_operations_on_its_channel(everything):
    """Allowed: answered (2xx); not allowed: 403 and nothing written. No answer names the other channel."""
    methods = schema_operations()
    theirs = everything.theirs.numbers()
    mismatches = []
    for role in roles.API_ROLES:
        client = api_client_of(role, OURS)
        for operation, (allowed, build) in OPERATIONS.items():
            path, data = build(everything.ours)
            status, body, written = send(client, methods[operation], path, data)
            if role in allowed:
                ok = 200 <= status < 300
            else:
                ok = status == 403 and not written
            leaked = leaks(theirs, body, path, data)
            if not ok or leaked:
                mismatches.append((role, operation, status, leaked, body[:300]))
    assert not mismatches, "\n".join(map(str, mismatches))


def test_another_clients_orders_and_what_hangs_off_them_are_not_found_and_nothing_is_written(everything):
    """Every operation aimed at the other channel's objects, by a client of each role: 404 for what is
    in the path (400 for an order or channel named in the body or the query, as for an unknown one),
    403 when the role may not call it at all; never a write, never the other channel's numbers."""
    methods = schema_operations()
    theirs = everything.theirs.numbers()
    mismatches = []
    for role in roles.API_ROLES:
        client = api_client_of(role, OURS)
        for operation, (allowed, build) in OPERATIONS.items():
            if operation in UNSCOPED:
                continue
            path, data = build(everything.theirs)
            status, body, written = send(client, methods[operation], path, data)
            expected = FOREIGN.get(operation, {404}) if role in allowed else {403} | FOREIGN.get(operation, {404})
            leaked = leaks(theirs, body, path, data)
            if status not in expected or written or leaked:
                mismatches.append((role, operation, status, written, leaked, body[:300]))
    assert not mismatches, "\n".join(map(str, mismatches))


# Operations with nothing of a channel in them: stock is shared, and the lists are filtered (the test
# above checks that no answer names the other channel's objects).
UNSCOPED = {
    "v1_inventory_products_atp_retrieve",
    "v1_inventory_feed_list",
    "v1_inventory_receipts_create",
    "v1_inventory_adjustments_create",
    "v1_inventory_counts_create",
    "v1_inventory_counts_apply_create",
    "v1_orders_list",
    "v1_cases_list",
    "v1_fulfillment_shipments_list",
    "v1_fulfillment_waves_list",
    "v1_billing_invoices_list",
    "v1_billing_refunds_list",
}
# What the other channel's objects answer when the body or the query names them (not the path).
FOREIGN = {
    "v1_orders_create": {400},  # a channel the client does not serve is an unknown channel
    "v1_returns_create": {400},  # an unknown order
    "v1_fulfillment_waves_create": {400},  # unknown shipments
    "v1_billing_exports_create": {400},  # an unknown channel
    "v1_billing_exports_download_retrieve": {400},
}


# --- the edges of the scope, on small worlds ------------------------------------------------------


@pytest.fixture
def two_channels(db):
    """An order on each channel, paid and confirmed."""
    make_catalog()
    ChannelFactory(code=OURS)
    ChannelFactory(code=THEIRS, name="Marketplace", kind="marketplace")
    system = get_system_user()
    ours = orders.order_create(actor=system, **order_payload(channel=OURS))[0]
    theirs = orders.order_create(actor=system, **order_payload(channel=THEIRS))[0]
    return ours, theirs


def _listed(client) -> set[str]:
    response = client.get(ORD)
    assert response.status_code == 200, response.content
    return {order["number"] for order in response.json()["results"]}


def test_an_api_client_lists_only_its_channels_orders_and_staff_see_every_channel(two_channels):
    ours, theirs = two_channels
    both = make_api_client("read_only", OURS, THEIRS)
    staff = APIClient()
    staff.force_login(make_user(roles.SUPPORT_L1))  # a cockpit user calling the API with its session

    assert _listed(api_client_of(RO, OURS)) == {ours.number}
    assert _listed(api_client_of(RO, THEIRS)) == {theirs.number}
    assert _listed(token_client(both)) == {ours.number, theirs.number}
    assert _listed(staff) == {ours.number, theirs.number}
    assert staff.get(f"{ORD}{theirs.number}/").status_code == 200


def test_an_api_client_without_channels_or_without_its_record_reaches_nothing(two_channels):
    ours, _theirs = two_channels
    no_channel = make_api_client("read_only", OURS)
    ApiClient.objects.get(user=no_channel).channels.clear()
    no_record = make_api_client("store_front", OURS)
    ApiClient.objects.filter(user=no_record).delete()  # still in the "API: store front" group

    for user in (no_channel, no_record):
        client = token_client(user)
        assert _listed(client) == set()
        assert client.get(f"{ORD}{ours.number}/").status_code == 404
    before = table_counts()
    response = token_client(no_record).post(ORD, order_payload(channel=OURS), format="json")
    assert (response.status_code, list(response.json()["extra"]["fields"])) == (400, ["channel"])
    assert table_counts() == before


def test_a_store_front_creates_orders_only_in_its_channels(two_channels):
    client = api_client_of(SF, OURS)
    before = table_counts()

    refused = client.post(ORD, order_payload(channel=THEIRS), format="json")
    unknown = client.post(ORD, order_payload(channel="nowhere"), format="json")

    assert refused.status_code == unknown.status_code == 400
    assert refused.json() == unknown.json()  # another client's channel reads as one that does not exist
    assert refused.json()["extra"]["fields"] == {"channel": ["Unknown or inactive channel."]}
    assert table_counts() == before
    assert client.post(ORD, order_payload(channel=OURS), format="json").status_code == 201


def test_no_api_role_cancels_a_paid_order(two_channels):
    ours, _theirs = two_channels
    for role in roles.API_ROLES:
        response = api_client_of(role, OURS).post(
            f"{ORD}{ours.number}/cancel/", {"reason_code": "customer_request"}, format="json"
        )
        assert response.status_code == 403, role
    assert Order.objects.get(pk=ours.pk).status == OrderStatus.CONFIRMED


def test_list_filters_naming_another_clients_order_or_channel_are_refused(two_channels):
    ours, theirs = two_channels
    client = api_client_of(RO, OURS)
    for path, query, named in (
        (f"{FUL}shipments/", {"order": theirs.number}, "order"),
        (f"{BIL}invoices/", {"order": theirs.number}, "order"),
        (f"{BIL}invoices/", {"channel": THEIRS}, "channel"),
        (f"{BIL}refunds/", {"order": theirs.number}, "order"),
    ):
        response = client.get(path, query)
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()["extra"]["fields"]) == [named]
    assert client.get(f"{FUL}shipments/", {"order": ours.number}).status_code == 200


def test_an_erp_export_names_one_of_its_channels(two_channels):
    client = api_client_of(ERP, OURS)
    period = {"kind": "invoices_csv", "period_start": TODAY, "period_end": TODAY}
    before = table_counts()

    every_channel = client.post(f"{BIL}exports/", period, format="json")
    theirs = client.post(f"{BIL}exports/", {**period, "channel": THEIRS}, format="json")
    streamed = client.get(f"{BIL}exports/download/", period)

    for response in (every_channel, theirs, streamed):
        assert response.status_code == 400
        assert list(response.json()["extra"]["fields"]) == ["channel"]
    assert table_counts() == before
    assert client.post(f"{BIL}exports/", {**period, "channel": OURS}, format="json").status_code == 202
