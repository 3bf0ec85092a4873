"""The demo's staff, one user per role, and one API client per job (DEMO ONLY: the passwords are public)."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token

from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders.choices import API_CLIENT_GROUPS, ApiClientRole
from orders.models import Channel
from orders.services import api_client_save

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
# The integrations, one per job, each on the channels it serves (None: every demo channel). The
# read-only one, a marketplace analytics tool, shows the scoping: it sees Amazon's orders only.
API_CLIENTS = [
    # username, role, channels, what it is
    ("api-store-front", ApiClientRole.STORE_FRONT, None, "The web store, app and marketplace connectors"),
    ("api-3pl", ApiClientRole.THREE_PL, None, "The 3PL's WMS (Paris 3PL warehouse) and its carrier account"),
    ("api-payments", ApiClientRole.PAYMENT_PROVIDER, None, "The payment provider's webhooks"),
    ("api-erp", ApiClientRole.ERP, None, "The ERP: invoices, credit notes and the accounting export"),
    ("api-read-only", ApiClientRole.READ_ONLY, ["amazon-fr"], "Marketplace analytics: Amazon only"),
]
API_USERNAME = "api-store-front"
API_3PL_USERNAME = "api-3pl"


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


def api_users_create() -> dict:
    """The API clients' users (no password: each signs in with its token) by username, with their
    tokens: {username: (user, token)}. Their roles and channels come with `api_clients_scope`, once
    the channels exist."""
    found = {}
    for username, _role, _channels, _description in API_CLIENTS:
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"first_name": "API"})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        found[username] = (user, token)
    return found


def api_clients_scope(api_users: dict) -> None:
    """Each API client in its job's role, on its channels (the demo's channels must exist)."""
    every_channel = list(Channel.objects.order_by("code").values_list("code", flat=True))
    system = get_system_user()
    for username, role, channels, description in API_CLIENTS:
        user, _token = api_users[username]
        api_client_save(user=user, role=role, channels=channels or every_channel, actor=system, description=description)


def api_client_role(username: str) -> str:
    """The role group name of a demo API client, for the printed summary."""
    return next(API_CLIENT_GROUPS[role] for name, role, _c, _d in API_CLIENTS if name == username)
