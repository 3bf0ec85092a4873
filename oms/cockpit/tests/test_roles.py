"""Roles are groups created by a migration and kept exactly in line with oms/cockpit/roles.py."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from oms.cockpit import roles


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
    assert "orders.import_order" in actual[roles.API_CLIENT]
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
