"""Every transition from every status: allowed ones change the order and say who did it; refused
ones raise a 409-class error and change nothing."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from integrations.models import OutboxMessage
from oms.cockpit import roles
from oms.core.errors import ConflictError, ValidationError
from orders import services
from orders.choices import FulfillmentStatus, OrderEventType, OrderStatus, PaymentStatus
from orders.exceptions import TransitionRefused
from orders.models import Customer, Order, OrderEvent
from orders.tests.factories import make_user, order_payload
from orders.tests.states import order_in_state

S = OrderStatus


def _complete(order, actor):
    with time_machine.travel(timezone.now() + datetime.timedelta(days=15), tick=True):
        return services.order_complete(order=order, actor=actor)


# action → (call, {source status: expected status after}, event type written)
ACTIONS = {
    "submit": (
        lambda o, a: services.order_submit(order=o, actor=a),
        {S.DRAFT: S.AWAITING_PAYMENT},
        OrderEventType.SUBMITTED,
    ),
    "approve": (
        lambda o, a: services.order_approve(order=o, actor=a),
        {S.PENDING_APPROVAL: S.AWAITING_PAYMENT},
        OrderEventType.APPROVED,
    ),
    "accept_on_terms": (
        lambda o, a: services.order_accept_on_terms(order=o, actor=a),
        {S.AWAITING_PAYMENT: S.CONFIRMED},
        OrderEventType.ACCEPTED_ON_TERMS,
    ),
    "flag_for_review": (
        lambda o, a: services.order_flag_for_review(order=o, actor=a, reason="Velocity rule"),
        {S.AWAITING_PAYMENT: S.UNDER_REVIEW, S.CONFIRMED: S.UNDER_REVIEW},
        OrderEventType.FLAGGED_FOR_REVIEW,
    ),
    "accept": (
        lambda o, a: services.order_accept(order=o, actor=a, reason="Customer verified"),
        {S.UNDER_REVIEW: S.AWAITING_PAYMENT},  # unpaid: back to awaiting payment
        OrderEventType.REVIEW_ACCEPTED,
    ),
    "start_preparation": (
        lambda o, a: services.order_start_preparation(order=o, actor=a),
        {S.CONFIRMED: S.IN_PREPARATION},
        OrderEventType.PREPARATION_STARTED,
    ),
    "record_shipment": (
        lambda o, a: services.order_record_shipment(order=o, actor=a),
        {S.IN_PREPARATION: S.SHIPPED, S.PARTIALLY_SHIPPED: S.SHIPPED},
        OrderEventType.SHIPMENT_RECORDED,
    ),
    "mark_delivered": (
        lambda o, a: services.order_mark_delivered(order=o, actor=a),
        # Part of a partially shipped order arrived: still partially shipped.
        {S.PARTIALLY_SHIPPED: S.PARTIALLY_SHIPPED, S.SHIPPED: S.DELIVERED},
        OrderEventType.DELIVERED,
    ),
    "complete": (_complete, {S.DELIVERED: S.COMPLETED}, OrderEventType.COMPLETED),
    "cancel": (
        lambda o, a: services.order_cancel(order=o, actor=a, reason_code="customer_request", reason="Asked by phone"),
        {
            S.DRAFT: S.CANCELED,
            S.PENDING_APPROVAL: S.CANCELED,
            S.AWAITING_PAYMENT: S.CANCELED,
            S.UNDER_REVIEW: S.CANCELED,
            S.CONFIRMED: S.CANCELED,
            S.IN_PREPARATION: S.CANCELED,
        },
        OrderEventType.CANCELED,
    ),
}

CASES = [(action, status) for action in ACTIONS for status in S.values]


@pytest.fixture
def administrator(db):
    return make_user(roles.ADMINISTRATOR, username="boss")


def _state_of(order: Order) -> tuple:
    fresh = Order.objects.get(pk=order.pk)
    return (
        fresh.status,
        fresh.payment_status,
        fresh.fulfillment_status,
        fresh.events.count(),
        fresh.history.count(),
        sum(line.history.count() for line in fresh.lines.all()),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "status"), CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_transition_from_every_status(action, status, administrator, channel):
    call, allowed, event_type = ACTIONS[action]
    order = order_in_state(status, actor=administrator)
    Customer.objects.filter(pk=order.customer_id).update(payment_terms_days=30)
    before = _state_of(order)
    last_event_id = order.events.order_by("-id").values_list("id", flat=True).first()
    actor = make_user(roles.ADMINISTRATOR)

    if status in allowed:
        result = call(order, actor)

        fresh = Order.objects.get(pk=order.pk)
        assert result.status == fresh.status == allowed[status]
        new_events = list(fresh.events.filter(id__gt=last_event_id).order_by("id"))
        assert new_events[0].type == event_type
        assert {event.actor for event in new_events} == {actor}
        latest = fresh.history.order_by("-history_id").first()
        assert latest.history_user == actor
        assert latest.status == fresh.status
    else:
        with pytest.raises(TransitionRefused) as excinfo:
            call(order, actor)
        assert isinstance(excinfo.value, ConflictError)
        assert excinfo.value.status_code == 409
        assert _state_of(order) == before


@pytest.mark.django_db
def test_import_paid_order_is_confirmed_with_each_step_audited(api_user, channel):
    order = order_in_state(S.CONFIRMED, actor=api_user)

    assert order.number.startswith(f"ORD-{timezone.localdate().year}-")
    assert order.status == S.CONFIRMED
    assert order.payment_status == PaymentStatus.PAID
    assert order.fulfillment_status == FulfillmentStatus.UNFULFILLED
    assert list(order.events.values_list("type", "actor")) == [
        (OrderEventType.IMPORTED, api_user.pk),
        (OrderEventType.SUBMITTED, api_user.pk),
        (OrderEventType.PAYMENT_RECORDED, api_user.pk),
        (OrderEventType.CONFIRMED, api_user.pk),
        (OrderEventType.STOCK_ALLOCATED, api_user.pk),
    ]
    history = list(order.history.order_by("history_id"))
    assert [h.history_type for h in history] == ["+", "~"]
    assert [h.status for h in history] == [S.DRAFT, S.CONFIRMED]
    assert all(h.history_user == api_user for h in history)
    assert all(line.history.get().history_user == api_user for line in order.lines.all())


@pytest.mark.django_db
def test_order_totals_are_recomputed_from_lines_with_half_up_rounding(api_user, channel):
    order = order_in_state(S.CONFIRMED, actor=api_user)

    # 2 × 12.00 @20% incl. → 24.00 (4.00 tax); 25.00 @20% → 25.00 (4.17); 10.55 @5.5% → 10.55 (0.55);
    # shipping 4.90 @20% → 4.90 (0.82).
    assert [(line.total_gross, line.tax_amount) for line in order.lines.order_by("line_number")] == [
        (Decimal("24.00"), Decimal("4.00")),
        (Decimal("25.00"), Decimal("4.17")),
        (Decimal("10.55"), Decimal("0.55")),
    ]
    assert order.shipping_tax == Decimal("0.82")
    assert order.total_gross == Decimal("64.45")
    assert order.total_tax == Decimal("9.54")
    assert order.total_net == Decimal("54.91")
    assert order.amount_paid == order.total_gross


@pytest.mark.django_db
def test_tax_exclusive_prices_add_tax_on_top(api_user, channel):
    order, _ = services.order_create(
        actor=api_user,
        **_payload(
            prices_include_tax=False,
            lines=[
                {"sku": "A", "name": "A", "quantity": 3, "unit_price": "0.35", "tax_rate": "0.2", "discount": "0.05"}
            ],
            shipping=None,
        ),
    )
    line = order.lines.get()
    assert (line.total_net, line.tax_amount, line.total_gross) == (Decimal("1.00"), Decimal("0.20"), Decimal("1.20"))
    assert order.total_gross == Decimal("1.20")
    assert order.discount_total == Decimal("0.05")


def _payload(**overrides):
    return order_payload(**overrides)


@pytest.mark.django_db
def test_submit_with_approval_required_goes_to_pending_approval(api_user, channel):
    order = order_in_state(S.DRAFT, actor=api_user, requires_approval=True)
    order = services.order_submit(order=order, actor=api_user)
    assert order.status == S.PENDING_APPROVAL


@pytest.mark.django_db
def test_partial_payment_then_balance_confirms(api_user, channel):
    finance = make_user(roles.FINANCE)
    order = order_in_state(S.AWAITING_PAYMENT, actor=api_user)

    order = services.order_mark_paid(order=order, actor=finance, amount="20.00", reference="p1")
    assert (order.status, order.payment_status) == (S.AWAITING_PAYMENT, PaymentStatus.PARTIALLY_PAID)
    order = services.order_mark_paid(order=order, actor=finance, reference="p2")
    assert (order.status, order.payment_status) == (S.CONFIRMED, PaymentStatus.PAID)
    assert order.amount_paid == order.total_gross
    assert list(order.events.order_by("id").values_list("type", flat=True))[-4:] == [
        OrderEventType.PAYMENT_RECORDED,
        OrderEventType.PAYMENT_RECORDED,
        OrderEventType.CONFIRMED,
        OrderEventType.STOCK_ALLOCATED,
    ]


@pytest.mark.django_db
def test_overpayment_is_refused_and_changes_nothing(api_user, channel):
    finance = make_user(roles.FINANCE)
    order = order_in_state(S.AWAITING_PAYMENT, actor=api_user)
    before = _state_of(order)

    with pytest.raises(ValidationError) as excinfo:
        services.order_mark_paid(order=order, actor=finance, amount="1000.00")
    assert excinfo.value.code == "overpayment"
    assert _state_of(order) == before


@pytest.mark.django_db
def test_authorization_confirms_without_capture(api_user, channel):
    order = order_in_state(S.AWAITING_PAYMENT, actor=api_user)
    provider = make_user(roles.API_PAYMENT_PROVIDER)
    order = services.order_mark_paid(order=order, actor=provider, captured=False, reference="auth-1")
    assert (order.status, order.payment_status) == (S.CONFIRMED, PaymentStatus.AUTHORIZED)
    assert order.amount_paid == 0


@pytest.mark.django_db
def test_accept_after_review_of_paid_order_confirms(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    order = services.order_flag_for_review(order=order, actor=administrator, reason="High risk", risk_score=91)
    assert order.risk_score == 91
    order = services.order_accept(order=order, actor=administrator, reason="Called the customer")
    assert order.status == S.CONFIRMED


@pytest.mark.django_db
def test_active_hold_blocks_preparation_until_released(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    hold = services.order_hold(order=order, actor=administrator, reason="address_check", note="Flat number missing")

    with pytest.raises(TransitionRefused) as excinfo:
        services.order_start_preparation(order=order, actor=administrator)
    assert "hold" in excinfo.value.message
    assert excinfo.value.extra["conditions"] == ["has_no_active_hold"]

    services.order_release_hold(hold=hold, actor=administrator, note="Customer gave the flat number")
    order = services.order_start_preparation(order=order, actor=administrator)
    assert order.status == S.IN_PREPARATION
    hold.refresh_from_db()
    assert hold.released_by == administrator
    assert hold.history.order_by("-history_id").first().history_user == administrator
    assert list(order.events.filter(type__startswith="hold").values_list("type", flat=True)) == [
        OrderEventType.HOLD_PLACED,
        OrderEventType.HOLD_RELEASED,
    ]


@pytest.mark.django_db
def test_same_hold_reason_twice_is_a_conflict(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    services.order_hold(order=order, actor=administrator, reason="manual")
    with pytest.raises(ConflictError):
        services.order_hold(order=order, actor=administrator, reason="manual")
    assert order.holds.count() == 1


@pytest.mark.django_db
def test_cancel_releases_holds_and_cancels_open_quantities(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    services.order_hold(order=order, actor=administrator, reason="fraud_review")

    order = services.order_cancel(order=order, actor=administrator, reason_code="fraud", reason="Chargeback risk")

    assert order.status == S.CANCELED
    assert order.fulfillment_status == FulfillmentStatus.CANCELED
    assert order.cancel_reason == "fraud"
    assert all(line.quantity_canceled == line.quantity for line in order.lines.all())
    assert not order.holds.filter(released_at__isnull=True).exists()
    event = order.events.get(type=OrderEventType.CANCELED)
    assert event.payload["refund_due"] == str(order.total_gross)
    assert event.reason == "Chargeback risk"


@pytest.mark.django_db
def test_cannot_ship_more_than_ordered(channel, administrator):
    order = order_in_state(S.IN_PREPARATION, actor=administrator)
    line = order.lines.order_by("line_number").first()
    with pytest.raises(ValidationError) as excinfo:
        services.order_record_shipment(order=order, actor=administrator, quantities={line.pk: line.quantity + 1})
    assert f"quantities.{line.pk}" in excinfo.value.extra["fields"]
    line.refresh_from_db()
    assert line.quantity_shipped == 0


@pytest.mark.django_db
def test_address_change_before_shipping_is_audited_and_refused_after(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    new = {"name": "Ann Lee", "line1": "2 quai Saint-Antoine", "postal_code": "69002", "city": "Lyon", "country": "fr"}

    order = services.order_change_address(
        order=order, actor=administrator, kind="shipping", address=new, reason="Customer moved"
    )

    assert order.shipping_address["city"] == "Lyon"
    assert order.shipping_address["country"] == "FR"
    event = order.events.get(type=OrderEventType.ADDRESS_CHANGED)
    assert event.payload["before"]["city"] == "Paris"
    assert event.payload["after"]["city"] == "Lyon"
    diff = order.history.order_by("-history_id").first().diff_against(order.history.order_by("-history_id")[1])
    assert [change.field for change in diff.changes] == ["shipping_address"]

    shipped = order_in_state(S.PARTIALLY_SHIPPED, actor=administrator)
    with pytest.raises(TransitionRefused):
        services.order_change_address(order=shipped, actor=administrator, kind="shipping", address=new)


@pytest.mark.django_db
def test_bad_address_is_a_validation_error_with_fields(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)
    with pytest.raises(ValidationError) as excinfo:
        services.order_change_address(
            order=order,
            actor=administrator,
            kind="billing",
            address={"name": "", "line1": "x", "city": "y", "country": "XX"},
        )
    assert set(excinfo.value.extra["fields"]["address"]) == {"name", "country"}


@pytest.mark.django_db
def test_tags_and_notes_are_events(api_user, channel, administrator):
    order = order_in_state(S.CONFIRMED, actor=api_user)

    assert services.order_tag(order=order, actor=administrator, tag="VIP") is True
    assert services.order_tag(order=order, actor=administrator, tag="vip") is False
    services.order_add_note(order=order, actor=administrator, body="Wants delivery after 6 pm")
    assert services.order_untag(order=order, actor=administrator, tag="vip") is True

    assert list(order.events.order_by("id").values_list("type", flat=True))[-3:] == [
        OrderEventType.TAG_ADDED,
        OrderEventType.NOTE_ADDED,
        OrderEventType.TAG_REMOVED,
    ]
    assert order.notes.get().author == administrator
    assert not order.tags.exists()


@pytest.mark.django_db
def test_completed_only_after_return_window(channel, administrator):
    order = order_in_state(S.DELIVERED, actor=administrator)
    with pytest.raises(TransitionRefused) as excinfo:
        services.order_complete(order=order, actor=administrator)
    assert excinfo.value.extra["conditions"] == ["return_window_elapsed"]

    with time_machine.travel(timezone.now() + datetime.timedelta(days=15), tick=True):
        system = make_user(roles.ADMINISTRATOR, username="automation")
        assert services.orders_complete_due(actor=system) == 1
    assert Order.objects.get(pk=order.pk).status == S.COMPLETED


@pytest.mark.django_db
def test_order_numbers_are_unique_and_increasing(api_user, channel):
    numbers = [order_in_state(S.CONFIRMED, actor=api_user).number for _ in range(3)]
    values = [int(number.rsplit("-", 1)[1]) for number in numbers]
    assert values == sorted(values)
    assert len(set(numbers)) == 3


@pytest.mark.django_db
def test_refused_events_are_not_published(api_user, channel, administrator):
    order = order_in_state(S.CANCELED, actor=api_user)
    before = OutboxMessage.objects.count()
    with pytest.raises(TransitionRefused):
        services.order_start_preparation(order=order, actor=administrator)
    assert OutboxMessage.objects.count() == before
    assert OrderEvent.objects.filter(order=order, type=OrderEventType.PREPARATION_STARTED).count() == 0
