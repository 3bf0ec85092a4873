"""`manage.py seed_demo`: a realistic, reproducible demo made only through the services."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db.models import Count
from rest_framework.authtoken.models import Token

from integrations.models import OutboxMessage
from oms.cockpit import roles
from oms.cockpit.management.commands.seed_demo import PASSWORD, STAFF
from orders.choices import OrderEventType, OrderStatus
from orders.models import Channel, Customer, Order, OrderEvent, OrderHold, OrderLine, OrderNote, Tag

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


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
    assert actors_of(OrderEventType.IMPORTED) == {"api-client"}
    assert actors_of(OrderEventType.CREATED) == {"support1"}
    assert actors_of(OrderEventType.PREPARATION_STARTED) == {"warehouse"}
    assert actors_of(OrderEventType.SHIPMENT_RECORDED) == {"warehouse"}
    assert actors_of(OrderEventType.COMPLETED) == {"finance"}
    assert actors_of(OrderEventType.CANCELED) <= {"support1", "support2"}
    assert actors_of(OrderEventType.PAYMENT_RECORDED) <= {"api-client", "support1", "finance"}  # phone: card by phone
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

    # the output: the summary table and the demo users, clearly labelled
    text = out.getvalue()
    assert "DEMO ONLY" in text
    token = Token.objects.get(user__username="api-client")
    assert f"Token {token.key}" in text
    for username, _role, _first, _last in STAFF:
        assert PASSWORD.format(username=username) in text

    # the users log in to the cockpit with the printed passwords, each in its role
    for username, role, _first, _last in STAFF:
        assert client.login(username=username, password=PASSWORD.format(username=username)), username
        assert client.get("/admin/orders/order/").status_code == 200
        assert User.objects.get(username=username).groups.filter(name=role).exists()
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="api-client").groups.filter(name=roles.API_CLIENT).exists()

    # a second run creates nothing and prints the users again
    before = snapshot()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert snapshot() == before
    assert "nothing created" in again.getvalue()
    assert f"Token {token.key}" in again.getvalue()
