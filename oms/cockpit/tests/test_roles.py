"""Roles are groups created by a migration and kept exactly in line with oms/cockpit/roles.py."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from oms.cockpit import roles
from orders.choices import ApiClientRole
from orders.models import ApiClient, Channel
from orders.tests.factories import ChannelFactory


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.prefetch_related("permissions")
    }


def expected_permissions() -> dict[str, set[str]]:
    available = list(Permission.objects.values_list("content_type__app_label", "codename"))
    return {
        name: {f"{app}.{code}" for app, code in roles.resolve(patterns, available)}
        for name, patterns in roles.ROLES.items()
    }


@pytest.mark.django_db(transaction=True)
def test_the_roles_migration_creates_every_group_with_its_permissions():
    # Run the migration again on a database without the groups and without the orders permissions
    # (the executor sends no post_migrate signal: the migration must create the permissions itself).
    executor = MigrationExecutor(connection)
    executor.migrate([("cockpit", None)])
    Group.objects.all().delete()
    Permission.objects.filter(content_type__app_label="orders").delete()

    executor = MigrationExecutor(connection)
    executor.migrate([("cockpit", "0001_roles")])

    actual = group_permissions()
    assert set(actual) == set(roles.ROLES)
    assert actual == expected_permissions()
    assert all(actual[name] for name in roles.ROLES), "every role has permissions"
    assert "orders.cancel_order" in actual[roles.SUPPORT_L1]
    assert "orders.cancel_paid_order" not in actual[roles.SUPPORT_L1]
    assert "orders.cancel_paid_order" in actual[roles.SUPPORT_L2]
    assert "orders.release_hold" in actual[roles.SUPPORT_L2]
    assert "orders.start_preparation_order" in actual[roles.WAREHOUSE]
    assert "orders.cancel_order" not in actual[roles.WAREHOUSE]
    assert "orders.record_payment_order" in actual[roles.FINANCE]
    assert "integrations.view_outboxmessage" in actual[roles.FINANCE]
    assert "orders.import_order" in actual[roles.API_STORE_FRONT]
    assert "auth.change_user" in actual[roles.ADMINISTRATOR]


@pytest.mark.django_db
def test_sync_roles_is_idempotent():
    call_command("sync_roles", stdout=StringIO())
    first = group_permissions()

    call_command("sync_roles", stdout=StringIO())

    assert group_permissions() == first == expected_permissions()
    assert Group.objects.filter(name__in=roles.ROLES).count() == len(roles.ROLES)


@pytest.mark.django_db
def test_sync_roles_restores_a_removed_permission_and_removes_an_extra_one():
    call_command("sync_roles", stdout=StringIO())
    support2 = Group.objects.get(name=roles.SUPPORT_L2)
    release = Permission.objects.get(content_type__app_label="orders", codename="release_hold")
    delete_order = Permission.objects.get(content_type__app_label="orders", codename="delete_order")
    support2.permissions.remove(release)
    support2.permissions.add(delete_order)

    out = StringIO()
    call_command("sync_roles", stdout=out)

    permissions = set(support2.permissions.all())
    assert release in permissions
    assert delete_order not in permissions
    assert f"{roles.SUPPORT_L2}: {len(permissions)} permissions" in out.getvalue()


@pytest.mark.django_db
def test_sync_roles_recreates_a_deleted_group():
    Group.objects.filter(name=roles.WAREHOUSE).delete()

    call_command("sync_roles", stdout=StringIO())

    assert group_permissions()[roles.WAREHOUSE] == expected_permissions()[roles.WAREHOUSE]


# --- API clients: one role per job ---------------------------------------------------------------

# What each API role may do beyond reading, and what none may: a job's rights and nothing else.
API_WRITES = {
    roles.API_STORE_FRONT: {
        "orders.import_order",
        "orders.submit_order",
        "orders.change_address_order",
        "orders.cancel_order",
        "orders.add_note",
        "orders.tag_order",
        "returns.add_returnrequest",
    },
    roles.API_3PL: {
        "orders.start_preparation_order",
        "orders.ship_order",
        "orders.deliver_order",
        "fulfillment.pick_shipment",
        "fulfillment.pack_shipment",
        "fulfillment.dispatch_shipment",
        "fulfillment.track_shipment",
        "fulfillment.hand_over_shipment",
        "inventory.receive_stock",
        "inventory.add_cyclecount",
        "inventory.change_cyclecount",
        "returns.receive_returnrequest",
        "returns.inspect_returnrequest",
        # what an inspection does next: credit the resellable units and ask for their refund
        "billing.issue_invoice",
        "billing.issue_creditnote",
        "billing.request_refund",
    },
    roles.API_PAYMENT_PROVIDER: {"orders.record_payment_order", "billing.add_paymentevent"},
    roles.API_ERP: {"billing.export_invoice"},
    roles.API_READ_ONLY: set(),
}
NO_API_ROLE_HOLDS = {
    "inventory.adjust_stock",
    "inventory.approve_cyclecount",
    "orders.cancel_paid_order",
    "orders.release_hold",
    "orders.release_fraud_hold",
    "orders.approve_order",
    "billing.approve_refund",
    "billing.approve_large_refund",
    "auth.change_user",
}


@pytest.mark.django_db
def test_each_api_role_holds_its_jobs_writes_and_otherwise_only_views():
    call_command("sync_roles", stdout=StringIO())
    actual = group_permissions()

    assert set(API_WRITES) == set(roles.API_ROLES)
    for role, writes in API_WRITES.items():
        granted = actual[role]
        assert {p for p in granted if ".view_" not in p} == writes, role
        assert not granted & NO_API_ROLE_HOLDS, role
        assert not {p for p in granted if p.endswith("_case") or p.startswith("integrations.")}, role
    # Only the payment provider records payments and posts payment events.
    payers = {role for role in roles.API_ROLES if "orders.record_payment_order" in actual[role]}
    assert payers == {roles.API_PAYMENT_PROVIDER}
    assert {role for role in roles.API_ROLES if "billing.add_paymentevent" in actual[role]} == payers


@pytest.mark.django_db
def test_sync_roles_deletes_the_retired_api_client_group():
    retired = Group.objects.create(name="API client")
    retired.permissions.set(Permission.objects.filter(codename__in=["adjust_stock", "cancel_paid_order"]))
    member = User.objects.create_user(username="old-shop")
    member.groups.add(retired)

    out = StringIO()
    call_command("sync_roles", stdout=out)

    assert not Group.objects.filter(name="API client").exists()
    member = User.objects.get(username="old-shop")
    assert not member.groups.exists()
    assert not member.has_perm("inventory.adjust_stock")
    assert not member.has_perm("orders.cancel_paid_order")
    assert "API client" not in out.getvalue()
    assert set(group_permissions()) == set(roles.ROLES)


@pytest.mark.django_db(transaction=True)
def test_the_split_migration_makes_each_old_api_client_a_store_front_on_every_channel():
    # Back to before the split: the old group with two members, a staff user beside them.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # whatever an earlier test left unapplied
    executor = MigrationExecutor(connection)
    executor.migrate([("orders", "0007_notification_stops_for_canceled_orders")])  # and cockpit 0006 with it
    web, amazon = ChannelFactory(code="web"), ChannelFactory(code="amazon-fr", name="Amazon")
    retired = Group.objects.create(name="API client")
    retired.permissions.set(Permission.objects.filter(codename__in=["import_order", "adjust_stock"]))
    shop = User.objects.create_user(username="shop-eu")
    wms = User.objects.create_user(username="wms")
    for user in (shop, wms):
        user.groups.add(retired)
    agent = User.objects.create_user(username="lea", is_staff=True)
    agent.groups.add(Group.objects.get(name=roles.SUPPORT_L1))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert not Group.objects.filter(name="API client").exists()
    for user in (shop, wms):
        client = ApiClient.objects.get(user=user)
        assert client.role == ApiClientRole.STORE_FRONT
        assert set(client.channels.all()) == {web, amazon}
        assert "retired" in client.description
        assert list(user.groups.values_list("name", flat=True)) == [roles.API_STORE_FRONT]
        fresh = User.objects.get(pk=user.pk)
        assert fresh.has_perm("orders.import_order")  # it keeps what a store front needs
        assert not fresh.has_perm("inventory.adjust_stock")  # and loses the rest
    assert not ApiClient.objects.filter(user=agent).exists()
    assert list(agent.groups.values_list("name", flat=True)) == [roles.SUPPORT_L1]
    assert Channel.objects.count() == 2
