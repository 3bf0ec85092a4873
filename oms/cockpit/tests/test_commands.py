from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from oms.cockpit import roles
from oms.cockpit.dashboard import cockpit_dashboard
from orders import services
from orders.choices import HoldReason, OrderStatus
from orders.tests.factories import ensure_roles, make_user

pytestmark = pytest.mark.django_db


def test_create_api_client_creates_a_token_user_once():
    ensure_roles()
    first, second = StringIO(), StringIO()

    call_command("create_api_client", "--username", "shop-eu", stdout=first)
    call_command("create_api_client", "--username", "shop-eu", stdout=second)

    user = User.objects.get(username="shop-eu")
    token = Token.objects.get(user=user)
    assert list(user.groups.values_list("name", flat=True)) == [roles.API_CLIENT]
    assert not user.has_usable_password()
    assert user.has_perm("orders.import_order")
    assert f"Token {token.key}" in first.getvalue()
    assert f"Token {token.key}" in second.getvalue()
    assert "Created" in first.getvalue() and "Found" in second.getvalue()


def test_create_api_client_needs_a_username():
    ensure_roles()
    with pytest.raises(CommandError):
        call_command("create_api_client", "--username", " ", stdout=StringIO())


def test_dashboard_counts_open_orders_and_active_holds(make_order, admin_user_role):
    confirmed = make_order()
    make_order(payment={"status": "unpaid"})
    make_order(is_test=True)  # test orders never count
    services.order_hold(order=confirmed, actor=admin_user_role, reason=HoldReason.ADDRESS_CHECK)

    dashboard = cockpit_dashboard(user=make_user(roles.SUPPORT_L1))

    counts = {item["value"]: item["count"] for item in dashboard["statuses"]}
    assert counts[OrderStatus.CONFIRMED] == 1
    assert counts[OrderStatus.AWAITING_PAYMENT] == 1
    assert dashboard["open_total"] == 2
    assert [(h["label"], h["count"]) for h in dashboard["holds"]] == [("Address to check", 1)]
    assert dashboard["dead_letters"] is None  # Support L1 does not see the outbox


def test_dashboard_is_empty_for_users_without_order_access():
    assert cockpit_dashboard(user=make_user()) is None
