"""The demo's staff, one user per role, and the API client (DEMO ONLY: the passwords are public)."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token

from oms.cockpit import roles

PASSWORD = "demo-{username}-2026"

STAFF = [
    # username, role, first name, last name
    ("support1", roles.SUPPORT_L1, "Léa", "Moreau"),
    ("support2", roles.SUPPORT_L2, "Tom", "Baker"),
    ("warehouse", roles.WAREHOUSE, "Karim", "Benali"),
    ("finance", roles.FINANCE, "Claire", "Dubois"),
    ("finance-manager", roles.FINANCE_MANAGER, "Sarah", "Collins"),
    ("admin", roles.ADMINISTRATOR, "Alex", "Admin"),
]
API_USERNAME = "api-client"


def roles_sync() -> None:
    """The role groups with their permissions, also on a database migrated before a new permission."""
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    roles.sync_roles(Group, Permission)


def staff_create() -> tuple[dict, set[str]]:
    """The staff users by username, and the usernames created now (an existing user keeps its
    password)."""
    user_model = get_user_model()
    users, created_users = {}, set()
    for username, role, first, last in STAFF:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@oms.example",
                "is_staff": True,
                "is_superuser": role == roles.ADMINISTRATOR,
            },
        )
        if created:
            user.set_password(PASSWORD.format(username=username))
            user.save(update_fields=["password"])
            created_users.add(username)
        user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return users, created_users


def api_client_create():
    """The channels' API client (no password: it signs in with its token) and its token."""
    user, created = get_user_model().objects.get_or_create(username=API_USERNAME, defaults={"first_name": "API"})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=roles.API_CLIENT))
    token, _ = Token.objects.get_or_create(user=user)
    return user, token
