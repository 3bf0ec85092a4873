"""Who may do what: each action tried by every role, on an order where the action is possible.

A role without the permission gets PermissionDeniedError (403) and the order is left untouched.
"""

import datetime

import pytest
import time_machine
from django.utils import timezone

from oms.cockpit import roles
from oms.core.errors import PermissionDeniedError
from orders import services
from orders.choices import OrderStatus
from orders.models import Customer, Order
from orders.tests.factories import make_user, order_payload
from orders.tests.states import order_in_state

S = OrderStatus
L1, L2, WH, FIN, FM, ADM = (
    roles.SUPPORT_L1,
    roles.SUPPORT_L2,
    roles.WAREHOUSE,
    roles.FINANCE,
    roles.FINANCE_MANAGER,
    roles.ADMINISTRATOR,
)
# The API clients' roles, one per job.
SF, TPL, PAY, ERP, RO = (
    roles.API_STORE_FRONT,
    roles.API_3PL,
    roles.API_PAYMENT_PROVIDER,
    roles.API_ERP,
    roles.API_READ_ONLY,
)
ALL_ROLES = [L1, L2, WH, FIN, FM, ADM, SF, TPL, PAY, ERP, RO]


def _complete(order, actor):
    with time_machine.travel(timezone.now() + datetime.timedelta(days=15), tick=True):
        return services.order_complete(order=order, actor=actor)


def _release(order, actor):
    return services.order_release_hold(hold=order.holds.get(), actor=actor, note="Checked")


# action → (status to start from, call, roles that may do it)
MATRIX = {
    "submit": (S.DRAFT, lambda o, a: services.order_submit(order=o, actor=a), {L1, L2, ADM, SF}),
    "approve": (S.PENDING_APPROVAL, lambda o, a: services.order_approve(order=o, actor=a), {L2, FM, ADM}),
    "mark_paid": (S.AWAITING_PAYMENT, lambda o, a: services.order_mark_paid(order=o, actor=a), {FIN, FM, ADM, PAY}),
    "accept_on_terms": (
        S.AWAITING_PAYMENT,
        lambda o, a: services.order_accept_on_terms(order=o, actor=a),
        {FIN, FM, ADM},
    ),
    "flag_for_review": (
        S.CONFIRMED,
        lambda o, a: services.order_flag_for_review(order=o, actor=a, reason="Rule 7"),
        {L2, ADM},
    ),
    "accept": (S.UNDER_REVIEW, lambda o, a: services.order_accept(order=o, actor=a), {L2, ADM}),
    "start_preparation": (
        S.CONFIRMED,
        lambda o, a: services.order_start_preparation(order=o, actor=a),
        {WH, ADM, TPL},
    ),
    "record_shipment": (
        S.IN_PREPARATION,
        lambda o, a: services.order_record_shipment(order=o, actor=a),
        {WH, ADM, TPL},
    ),
    "mark_delivered": (S.SHIPPED, lambda o, a: services.order_mark_delivered(order=o, actor=a), {WH, ADM, TPL}),
    "complete": (S.DELIVERED, _complete, {FIN, FM, ADM}),
    "cancel_unpaid": (
        S.AWAITING_PAYMENT,
        lambda o, a: services.order_cancel(order=o, actor=a, reason_code="customer_request"),
        {L1, L2, FM, ADM, SF},
    ),
    "cancel_paid": (
        S.CONFIRMED,
        lambda o, a: services.order_cancel(order=o, actor=a, reason_code="customer_request"),
        {L2, FM, ADM},
    ),
    "hold": (
        S.CONFIRMED,
        lambda o, a: services.order_hold(order=o, actor=a, reason="manual"),
        {L1, L2, WH, FIN, FM, ADM},
    ),
    "release_hold": ("held", _release, {L2, FM, ADM}),
    "add_note": (
        S.CONFIRMED,
        lambda o, a: services.order_add_note(order=o, actor=a, body="Called back"),
        {L1, L2, WH, FIN, FM, ADM, SF},
    ),
    "tag": (S.CONFIRMED, lambda o, a: services.order_tag(order=o, actor=a, tag="vip"), {L1, L2, ADM, SF}),
    "change_address": (
        S.CONFIRMED,
        lambda o, a: services.order_change_address(
            order=o,
            actor=a,
            kind="shipping",
            address={"name": "B", "line1": "3 rue X", "city": "Lille", "country": "FR"},
        ),
        {L1, L2, ADM, SF},
    ),
}

CASES = [(action, role) for action in MATRIX for role in ALL_ROLES]


def _snapshot(order):
    fresh = Order.objects.get(pk=order.pk)
    return (
        fresh.status,
        fresh.payment_status,
        fresh.shipping_address,
        fresh.events.count(),
        fresh.history.count(),
        fresh.holds.filter(released_at__isnull=True).count(),
        fresh.notes.count(),
        fresh.tags.count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a}-as-{r}" for a, r in CASES])
def test_each_role_may_do_exactly_its_actions(action, role, channel):
    start, call, allowed_roles = MATRIX[action]
    boss = make_user(ADM)
    if start == "held":
        order = order_in_state(S.CONFIRMED, actor=boss)
        services.order_hold(order=order, actor=boss, reason="fraud_review")
    else:
        order = order_in_state(start, actor=boss)
    Customer.objects.filter(pk=order.customer_id).update(payment_terms_days=30)
    user = make_user(role)
    before = _snapshot(order)

    if role in allowed_roles:
        call(order, user)
        assert _snapshot(order) != before
        last = Order.objects.get(pk=order.pk).events.order_by("-id").first()
        assert last.actor == user
    else:
        with pytest.raises(PermissionDeniedError) as excinfo:
            call(order, user)
        assert excinfo.value.status_code == 403
        assert _snapshot(order) == before


@pytest.mark.django_db
def test_user_without_any_role_cannot_create_orders(channel):
    nobody = make_user()
    with pytest.raises(PermissionDeniedError):
        services.order_create(actor=nobody, **order_payload())
    assert Order.objects.count() == 0
    assert Customer.objects.count() == 0
