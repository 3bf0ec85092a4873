"""Must show: each detector opens its case, and closes it when the problem is resolved where it was
detected. Plus the rules of working a case: scoping by team and level, escalation, resolution."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from billing import cases as billing_cases
from billing.models import BillingPolicy, InvoiceTrigger, PaymentTerms
from billing.services import invoices
from billing.services.disputes import dispute_close, dispute_open
from billing.tests.refund_support import delivered_order_with_invoice
from fulfillment import services as fulfillment
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from integrations.models import OutboxMessage
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, PermissionDeniedError, ValidationError
from oms.core.testing import run_together
from orders import cases, services
from orders.choices import CaseDecision, CaseKind, CaseLevel, CaseStatus, OrderEventType, OrderStatus
from orders.labels import order_customer_label
from orders.models import Case, Channel, SlaPolicy
from orders.tests.factories import make_user, order_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


@pytest.fixture
def world(db):
    return make_two_locations()


def the_case(**filters) -> Case:
    return Case.objects.get(**filters)


def timeline(order) -> list[str]:
    return list(order.events.order_by("id").values_list("type", flat=True))


# --- holds: fraud, address, stock, credit ---------------------------------------------------------------


def test_a_risky_order_is_held_its_fraud_case_shows_the_facts_and_the_customer_reads_a_neutral_label(world):
    system = get_system_user()
    order, _ = services.order_create(
        actor=system, **order_payload(risk={"score": 91, "facts": ["IP country differs", "3 cards tried"]})
    )
    case = the_case(order=order)
    assert (case.kind, case.level, case.status) == (CaseKind.FRAUD_REVIEW, CaseLevel.L1, CaseStatus.OPEN)
    assert case.number.startswith(f"CASE-{timezone.now().year}-")
    assert case.facts["risk_score"] == 91
    assert [fact["fact"] for fact in case.facts["risk_facts"]] == ["IP country differs", "3 cards tried"]
    assert case.due_at == pytest.approx(case.opened_at + datetime.timedelta(hours=4), abs=datetime.timedelta(seconds=5))
    assert order.status == OrderStatus.CONFIRMED
    assert order_customer_label(order) == "Being processed"
    assert order_customer_label(order, "fr") != "Confirmée"
    # Hidden from preparation while the hold is on.
    with pytest.raises(ConflictError):
        services.order_start_preparation(order=order, actor=system)
    assert [t for t in timeline(order) if t in {"hold_placed", "case_opened"}] == ["hold_placed", "case_opened"]


def test_a_score_under_the_threshold_is_kept_but_holds_nothing(world):
    order, _ = services.order_create(actor=get_system_user(), **order_payload(risk={"score": 40, "facts": ["new"]}))
    assert order.risk_score == 40 and order.risk_facts == [{"source": "channel", "fact": "new"}]
    assert not Case.objects.exists() and order.holds.count() == 0


def test_a_bad_risk_assessment_is_a_field_error_and_nothing_is_kept(world):
    with pytest.raises(ValidationError) as caught:
        services.order_create(actor=get_system_user(), **order_payload(risk={"score": 101, "facts": [""]}))
    assert set(caught.value.extra["fields"]) == {"risk.score", "risk.facts"}
    assert not Case.objects.exists()


def test_clearing_a_false_positive_needs_its_permission_and_a_reason_and_closes_the_case(world):
    order, _ = services.order_create(
        actor=get_system_user(), **order_payload(risk={"score": 95, "facts": ["velocity"]})
    )
    l1, l2 = make_user(roles.SUPPORT_L1), make_user(roles.SUPPORT_L2)

    with pytest.raises(PermissionDeniedError):
        services.order_clear_fraud(order=order, actor=l1, reason="Customer called")
    with pytest.raises(ValidationError):
        services.order_clear_fraud(order=order, actor=l2, reason="  ")
    assert the_case(order=order).status == CaseStatus.OPEN

    services.order_clear_fraud(order=order, actor=l2, reason="Called the cardholder: genuine")
    order.refresh_from_db()
    case = the_case(order=order)
    assert (case.status, case.decision, case.resolved_by) == (CaseStatus.RESOLVED, CaseDecision.FALSE_POSITIVE, l2)
    assert case.resolution == "Called the cardholder: genuine"
    assert case.evidence["note"] == "Called the cardholder: genuine"
    assert order.holds.filter(released_at__isnull=True).count() == 0
    assert order_customer_label(order) == "Confirmed"
    tail = [t for t in timeline(order) if t in {"hold_released", "fraud_cleared", "case_resolved"}]
    assert tail == ["hold_released", "fraud_cleared", "case_resolved"]
    assert case.history.latest().history_user == l2
    # Nothing left to clear.
    with pytest.raises(ConflictError):
        services.order_clear_fraud(order=order, actor=l2, reason="again")
    services.order_start_preparation(order=order, actor=get_system_user())


def test_flag_for_review_opens_a_fraud_case_that_accepting_closes(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload(payment={"status": "unpaid"}))
    services.order_flag_for_review(order=order, actor=system, reason="Address on a watch list", risk_score=80)
    case = the_case(order=order, kind=CaseKind.FRAUD_REVIEW)
    assert case.source_key == f"fraud:{order.pk}" and case.facts["risk_score"] == 80
    # Resolving it by hand while the order is still under review is refused: fix it where it lives.
    l2 = make_user(roles.SUPPORT_L2)
    with pytest.raises(ConflictError):
        cases.case_resolve(case=case, actor=l2, decision="no_action", resolution="looks fine")
    services.order_accept(order=order, actor=system, reason="Documents received")
    case.refresh_from_db()
    assert (case.status, case.decision, case.resolution) == ("resolved", "false_positive", "Documents received")


def test_an_address_hold_opens_a_support_case_and_its_release_closes_it(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload())
    hold = services.order_hold(order=order, actor=system, reason="address_check", note="No street number")
    case = the_case(order=order)
    assert (case.kind, case.source_key, case.title) == (
        CaseKind.ADDRESS_CHECK,
        f"hold:{hold.pk}",
        "Address to check: No street number",
    )
    services.order_release_hold(hold=hold, actor=system, note="Customer confirmed: 12 bis")
    case.refresh_from_db()
    assert (case.status, case.decision, case.resolution) == (
        "resolved",
        "resolved_upstream",
        "Customer confirmed: 12 bis",
    )
    # A manual hold is someone's decision already: no case.
    services.order_hold(order=order, actor=system, reason="manual", note="wait")
    assert Case.objects.filter(order=order).count() == 1


def test_a_stock_shortage_at_intake_opens_a_warehouse_case(world):
    order, _ = services.order_create(
        actor=get_system_user(),
        **order_payload(lines=[{"sku": "CUP-1", "name": "Cup", "quantity": 50, "unit_price": "5.00"}]),
    )
    case = the_case(order=order)
    assert case.kind == CaseKind.STOCK_SHORTAGE and case.team == "warehouse"


def test_canceling_for_fraud_closes_its_cases_as_confirmed_fraud(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload(risk={"score": 99, "facts": ["stolen card"]}))
    services.order_cancel(order=order, actor=system, reason_code="fraud", reason="Chargeback risk confirmed")
    case = the_case(order=order)
    assert (case.status, case.decision) == ("resolved", "confirmed_fraud")
    assert case.evidence["reason_code"] == "fraud"


# --- short picks, parcels, disputes -------------------------------------------------------------------------


def test_a_short_pick_opens_its_case_and_each_resolution_closes_it(world):
    order = prepared_order()
    shipment = Shipment.objects.get(order=order, location=world.paris)
    fulfillment.shipment_start_picking(shipment=shipment, actor=world.warehouse)
    mug = shipment.lines.get(order_line__sku="MUG-1")
    book = shipment.lines.get(order_line__sku="BOOK-1")
    fulfillment.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1})
    short = ShortPick.objects.get(shipment=shipment)
    case = the_case(order=order)
    assert (case.kind, case.source_key) == (CaseKind.SHORT_PICK, f"short_pick:{short.pk}")
    assert case.facts["missing"] == 1 and case.facts["sku"] == "MUG-1"

    fulfillment.short_pick_delay(
        short_pick=short,
        actor=world.support,
        promised_at=timezone.now() + datetime.timedelta(days=5),
        consent_channel="phone",
        consent_note="Supplier strike: the customer agreed to wait",
    )
    case.refresh_from_db()
    assert (case.status, case.decision) == ("resolved", "customer_contacted")


def test_a_lost_parcel_opens_a_case_and_a_late_delivery_closes_it(world):
    order = prepared_order()
    system = get_system_user()
    lyon = Shipment.objects.get(order=order, location=world.lyon)
    fulfillment.shipment_confirm_picks(
        shipment=lyon, actor=system, picked={line.pk: line.quantity for line in lyon.lines.all()}
    )
    fulfillment.shipment_pack(shipment=lyon, actor=system)
    lyon = fulfillment.shipment_dispatch(shipment=lyon, actor=system)
    now = timezone.now()

    def webhook(*events):
        return {
            "events": [
                {
                    "id": f"{lyon.tracking_number}-{code}",
                    "tracking_number": lyon.tracking_number,
                    "status": code,
                    "occurred_at": (now + datetime.timedelta(minutes=minutes)).isoformat(),
                }
                for code, minutes in events
            ]
        }

    fulfillment.carrier_webhook_receive(carrier="sandbox", payload=webhook(("LOST", 5)), actor=system)
    case = the_case(order=order)
    assert (case.kind, case.source_key, case.status) == (CaseKind.LOST_PARCEL, f"parcel:{lyon.number}", "open")
    # The same carrier event again: still one case.
    fulfillment.carrier_webhook_receive(carrier="sandbox", payload=webhook(("LOST", 5)), actor=system)
    assert Case.objects.filter(order=order).count() == 1


def test_a_dispute_opens_a_finance_case_due_at_the_reply_deadline_and_its_outcome_closes_it(db):
    order, payment, _invoice = delivered_order_with_invoice()
    respond_by = timezone.now() + datetime.timedelta(days=6)
    dispute, _ = dispute_open(
        payment=payment, provider_reference="dp_9", reason="not_received", amount="20.00", respond_by=respond_by
    )
    case = the_case(kind=CaseKind.DISPUTE)
    assert (case.order, case.source_key, case.team) == (order, "dispute:dp_9", "finance")
    assert case.due_at == respond_by
    finance = make_user(roles.FINANCE_MANAGER)
    dispute_close(dispute=dispute, actor=finance, won=True, note="Proof of delivery accepted")
    case.refresh_from_db()
    assert (case.status, case.decision) == ("resolved", "resolved_upstream")
    assert case.evidence["outcome"] == "dispute_won"


# --- sweeps: SLAs, overdue invoices, dead letters ------------------------------------------------------------


def test_sla_breaches_open_once_per_stage_respect_the_channels_limit_and_close_when_the_order_moves(world):
    system = get_system_user()
    SlaPolicy.objects.create(payment_to_preparation=datetime.timedelta(hours=24))
    market = Channel.objects.create(code="market", name="Marketplace", kind="marketplace")
    SlaPolicy.objects.create(channel=market, payment_to_preparation=datetime.timedelta(hours=2))
    start = timezone.now()
    with time_machine.travel(start - datetime.timedelta(hours=5), tick=False):
        web_order, _ = services.order_create(actor=system, **order_payload())
        market_order, _ = services.order_create(actor=system, **order_payload(channel="market"))

    assert cases.sla_sweep(actor=system, now=start) == 1  # 5 h: late on the marketplace (2 h), not on the web (24 h)
    assert cases.sla_sweep(actor=system, now=start) == 0  # swept again: still one case
    case = the_case(order=market_order)
    assert (case.kind, case.source_key, case.facts["stage"]) == (
        "sla_breach",
        f"sla:preparation:{market_order.pk}",
        "preparation",
    )
    assert OrderEventType.SLA_BREACHED in timeline(market_order)
    assert not Case.objects.filter(order=web_order).exists()

    services.order_start_preparation(order=market_order, actor=system)
    case.refresh_from_db()
    assert (case.status, case.decision) == ("resolved", "resolved_upstream")

    # Dispatch: 48 h by default after preparation started.
    market_order.refresh_from_db()
    later = market_order.preparation_started_at + datetime.timedelta(hours=49)
    assert cases.sla_sweep(actor=system, now=later) >= 1
    dispatch = the_case(source_key=f"sla:dispatch:{market_order.pk}")
    for shipment in Shipment.objects.filter(order=market_order):
        fulfillment.shipment_confirm_picks(
            shipment=shipment, actor=system, picked={line.pk: line.quantity for line in shipment.lines.all()}
        )
        fulfillment.shipment_pack(shipment=shipment, actor=system)
        fulfillment.shipment_dispatch(shipment=shipment, actor=system)
        break
    dispatch.refresh_from_db()
    assert dispatch.status == "resolved" and dispatch.resolution == "Shipped"


def test_test_orders_never_breach_an_sla(world):
    system = get_system_user()
    with time_machine.travel(timezone.now() - datetime.timedelta(days=3), tick=False):
        services.order_create(actor=system, **order_payload(is_test=True))
    assert cases.sla_sweep(actor=system) == 0


def test_an_overdue_invoice_opens_a_finance_case_that_the_payment_closes(world):
    system = get_system_user()
    BillingPolicy.objects.create(
        trigger=InvoiceTrigger.ORDER, payment_terms=PaymentTerms.NET_30, channel=Channel.objects.get(code="web")
    )
    order, _ = services.order_create(actor=system, **order_payload(payment={"status": "unpaid"}))
    order.customer.payment_terms_days = 30
    order.customer.save(update_fields=["payment_terms_days"])
    order = services.order_accept_on_terms(order=order, actor=system)
    invoice = order.invoices.get() if order.invoices.exists() else invoices.invoice_issue(order=order, actor=system)
    after = invoice.due_at + datetime.timedelta(days=1)

    assert billing_cases.overdue_sweep(actor=system, today=invoice.due_at) == (0, 0)
    assert billing_cases.overdue_sweep(actor=system, today=after) == (1, 0)
    assert billing_cases.overdue_sweep(actor=system, today=after) == (0, 0)
    case = the_case(kind=CaseKind.PAYMENT_OVERDUE)
    assert (case.order, case.source_key) == (order, f"overdue:{invoice.number}")

    services.order_mark_paid(order=order, actor=system)
    assert billing_cases.overdue_sweep(actor=system, today=after) == (0, 1)
    case.refresh_from_db()
    assert (case.status, case.resolution) == ("resolved", "Paid")


def test_a_dead_letter_opens_an_integration_case_that_a_successful_replay_closes(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload())
    # The ERP answered 500 until the outbox gave up (the outbox's own tests cover how it gets there).
    message = OutboxMessage.objects.create(
        topic="order.created", key=order.number, status=OutboxMessage.Status.DEAD, last_error="HTTP 500 from the ERP"
    )
    assert cases.dead_letter_sweep(actor=system) == (1, 0)
    assert cases.dead_letter_sweep(actor=system) == (0, 0)
    case = the_case(kind=CaseKind.INTEGRATION_FAILURE, source_key=f"outbox:{message.pk}")
    assert case.order == order and "HTTP 500" in case.facts["error"]

    message.status = OutboxMessage.Status.DELIVERED
    message.delivered_at = timezone.now()
    message.save()
    assert cases.dead_letter_sweep(actor=system) == (0, 1)
    case.refresh_from_db()
    assert (case.status, case.decision) == ("resolved", "fixed")


# --- one case per problem, under concurrency ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_problem_detected_at_once_by_four_connections_is_one_case():
    make_two_locations()
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload())

    def detect(_i):
        return cases.case_open(
            kind=CaseKind.ESCALATION, source_key=f"vip:{order.pk}", title="VIP call-back", actor=system, order=order
        )[1]

    created = run_together(4, detect)
    assert not [result for result in created if isinstance(result, Exception)], created
    assert sorted(created) == [False, False, False, True]
    assert Case.objects.filter(source_key=f"vip:{order.pk}").count() == 1


# --- working a case -----------------------------------------------------------------------------------------


def test_queues_are_scoped_by_team_and_level_and_escalation_moves_a_case_to_level_2(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload())
    hold = services.order_hold(order=order, actor=system, reason="address_check", note="Flat number missing")
    case = the_case(order=order)
    l1, l2, warehouse = make_user(roles.SUPPORT_L1), make_user(roles.SUPPORT_L2), make_user(roles.WAREHOUSE)

    assert Case.objects.filter(cases.case_scope_q(l1)).count() == 1
    assert Case.objects.filter(cases.case_scope_q(warehouse)).count() == 0
    with pytest.raises(PermissionDeniedError):
        cases.case_assign(case=case, actor=warehouse)

    cases.case_assign(case=case, actor=l1)
    case.refresh_from_db()
    assert (case.status, case.assignee) == ("in_progress", l1)
    with pytest.raises(ValidationError):
        cases.case_escalate(case=case, actor=l1, reason="")
    cases.case_escalate(case=case, actor=l1, reason="Customer threatens a chargeback")
    case.refresh_from_db()
    assert (case.status, case.level, case.assignee, case.escalation_reason) == (
        "escalated",
        "l2",
        None,
        "Customer threatens a chargeback",
    )
    assert case.due_at > timezone.now()
    # Out of the L1 queue, into the L2 one.
    assert Case.objects.filter(cases.case_scope_q(l1)).count() == 0
    assert Case.objects.filter(cases.case_scope_q(l2)).count() == 1
    with pytest.raises(PermissionDeniedError):
        cases.case_assign(case=case, actor=l1)
    with pytest.raises(ConflictError):
        cases.case_escalate(case=case, actor=l2, reason="again")
    cases.case_assign(case=case, actor=l2)
    event = order.events.filter(type=OrderEventType.CASE_ESCALATED).get()
    assert (event.actor, event.reason, event.payload["case"]) == (l1, "Customer threatens a chargeback", case.number)

    services.order_release_hold(hold=hold, actor=l2, note="Fixed with the customer")
    case.refresh_from_db()
    assert case.status == "resolved"
    with pytest.raises(ConflictError):
        cases.case_assign(case=case, actor=l2)


def test_an_escalation_case_opened_by_hand_is_resolved_with_its_decision_as_evidence(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload())
    l1 = make_user(roles.SUPPORT_L1)
    warehouse = make_user(roles.WAREHOUSE)
    with pytest.raises(PermissionDeniedError):
        cases.case_open(kind=CaseKind.ESCALATION, source_key="x", title="t", actor=warehouse, order=order, by_hand=True)
    case, created = cases.case_open(
        kind=CaseKind.ESCALATION,
        source_key=f"escalation:{order.pk}:medical",
        title="Medical emergency: insulin cooler",
        actor=l1,
        order=order,
        facts={"subtype": "medical"},
        by_hand=True,
    )
    assert created and case.due_at <= timezone.now() + datetime.timedelta(hours=2, seconds=5)
    with pytest.raises(ValidationError):
        cases.case_resolve(case=case, actor=l1, decision="force_majeure", resolution="")
    with pytest.raises(ValidationError):
        cases.case_resolve(case=case, actor=l1, decision="bogus", resolution="x")
    cases.case_resolve(
        case=case,
        actor=l1,
        decision="force_majeure",
        resolution="Courier strike; sent by taxi",
        evidence={"notice": "Strike notice 2026-11-20"},
    )
    case.refresh_from_db()
    assert (case.decision, case.evidence, case.resolved_by) == (
        "force_majeure",
        {"notice": "Strike notice 2026-11-20"},
        l1,
    )
    assert order.events.filter(type=OrderEventType.CASE_RESOLVED, payload__decision="force_majeure").exists()
    with pytest.raises(ConflictError):
        cases.case_resolve(case=case, actor=l1, decision="no_action", resolution="again")


def test_queue_counts_show_only_the_users_queues_with_overdue_ones(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload(risk={"score": 90, "facts": ["x"]}))
    services.order_hold(order=order, actor=system, reason="address_check", note="n")
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=10), tick=False):
        l1_counts = {
            (row["kind"], row["level"]): row for row in cases.case_queue_counts(user=make_user(roles.SUPPORT_L1))
        }
        l2_counts = {
            (row["kind"], row["level"]): row for row in cases.case_queue_counts(user=make_user(roles.SUPPORT_L2))
        }
    assert ("fraud_review", "l1") not in l1_counts and ("address_check", "l2") not in l1_counts
    assert (l1_counts["address_check", "l1"]["open"], l1_counts["address_check", "l1"]["overdue"]) == (1, 1)
    assert (l2_counts["fraud_review", "l1"]["open"], l2_counts["fraud_review", "l1"]["overdue"]) == (1, 1)


def test_a_flagged_order_that_is_also_held_for_fraud_has_one_case_closed_when_both_are_cleared(world):
    system = get_system_user()
    order, _ = services.order_create(actor=system, **order_payload(payment={"status": "unpaid"}))
    services.order_flag_for_review(order=order, actor=system, reason="Velocity rule", risk_score=75)
    hold = services.order_hold(order=order, actor=system, reason="fraud_review", note="Waiting for the 3-D Secure log")
    case = the_case(order=order)  # one problem, one case
    assert case.source_key == f"fraud:{order.pk}" and case.title == "Under review: Velocity rule"
    services.order_accept(order=order, actor=system, reason="Review done")
    case.refresh_from_db()
    assert case.status == "open"  # the hold is still on
    services.order_release_hold(hold=hold, actor=system, note="3-D Secure log received: genuine")
    case.refresh_from_db()
    assert (case.status, case.decision, case.resolution) == (
        "resolved",
        "false_positive",
        "3-D Secure log received: genuine",
    )
