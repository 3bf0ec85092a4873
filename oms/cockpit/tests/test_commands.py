from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from oms.cockpit import roles
from oms.cockpit.dashboard import cockpit_dashboard
from orders import services
from orders.choices import ApiClientRole, HoldReason, OrderStatus
from orders.models import ApiClient
from orders.tests.factories import ChannelFactory, ensure_roles, make_user

pytestmark = pytest.mark.django_db


def test_create_api_client_creates_a_token_user_once_in_its_role_on_its_channels():
    ensure_roles()
    ChannelFactory(code="web")
    ChannelFactory(code="amazon-fr", name="Amazon")
    ChannelFactory(code="app", name="App")
    first, second = StringIO(), StringIO()

    call_command(
        "create_api_client", "--username", "shop-eu", "--role", "store_front", "--channel", "web", stdout=first
    )
    call_command(
        "create_api_client",
        *("--username", "shop-eu", "--role", "store_front"),
        *("--channel", "web", "--channel", "amazon-fr"),
        stdout=second,
    )

    user = User.objects.get(username="shop-eu")
    token = Token.objects.get(user=user)
    assert list(user.groups.values_list("name", flat=True)) == [roles.API_STORE_FRONT]
    assert not user.has_usable_password()
    assert not user.is_staff
    assert user.has_perm("orders.import_order")
    assert not user.has_perm("orders.cancel_paid_order")
    client = ApiClient.objects.get(user=user)
    assert client.role == ApiClientRole.STORE_FRONT
    assert sorted(client.channels.values_list("code", flat=True)) == ["amazon-fr", "web"]
    assert f"Token {token.key}" in first.getvalue()
    assert f"Token {token.key}" in second.getvalue()
    assert "Created" in first.getvalue() and "Updated" in second.getvalue()
    assert "API: store front on amazon-fr, web" in second.getvalue()
    # who gave it its role and channels is on record: the command acts as the system user
    latest = client.history.first()
    assert sorted(latest.channels.values_list("channel__code", flat=True)) == ["amazon-fr", "web"]
    assert {row.history_user.get_username() for row in client.history.all()} == {settings.OMS_SYSTEM_USERNAME}


def test_create_api_client_changes_the_role_and_leaves_the_old_role_group():
    ensure_roles()
    ChannelFactory(code="web")
    call_command("create_api_client", "--username", "wms", "--role", "read_only", "--channel", "web", stdout=StringIO())

    call_command("create_api_client", "--username", "wms", "--role", "3pl", "--channel", "web", stdout=StringIO())

    user = User.objects.get(username="wms")
    assert list(user.groups.values_list("name", flat=True)) == [roles.API_3PL]
    assert ApiClient.objects.get(user=user).role == ApiClientRole.THREE_PL


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--username", " ", "--role", "store_front", "--channel", "web"], "--username must not be empty"),
        (["--username", "x", "--role", "store_front", "--channel", "nope"], "Unknown channel nope"),
        (["--username", "x", "--role", "store_front"], "--channel"),
        (["--username", "x", "--channel", "web"], "--role"),
        (["--username", "x", "--role", "admin", "--channel", "web"], "invalid choice"),
    ],
    ids=["blank-username", "unknown-channel", "no-channel", "no-role", "unknown-role"],
)
def test_create_api_client_refuses_bad_arguments_and_creates_nothing(arguments, message):
    ensure_roles()
    ChannelFactory(code="web")

    with pytest.raises(CommandError, match=message):
        call_command("create_api_client", *arguments, stdout=StringIO())

    assert not ApiClient.objects.exists()
    assert not Token.objects.exists()
    assert not User.objects.filter(username="x").exists()


def test_create_api_client_refuses_to_turn_a_staff_user_into_a_client():
    ChannelFactory(code="web")
    make_user(roles.SUPPORT_L1, username="lea")

    with pytest.raises(CommandError, match="staff user"):
        call_command("create_api_client", "--username", "lea", "--role", "3pl", "--channel", "web", stdout=StringIO())

    assert not ApiClient.objects.exists()
    assert list(User.objects.get(username="lea").groups.values_list("name", flat=True)) == [roles.SUPPORT_L1]


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
