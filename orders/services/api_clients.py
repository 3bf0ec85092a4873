"""API clients: an integration's user, its job (a role group) and the channels whose orders it reaches."""

from django.contrib.auth.models import Group
from django.db import transaction

from oms.core.errors import ConflictError, ValidationError
from oms.core.history import stamp
from oms.core.permissions import require_perm
from orders.choices import API_CLIENT_GROUPS, ApiClientRole
from orders.models import ApiClient, Channel


@transaction.atomic
def api_client_save(*, user, role: str, channels, actor, description: str | None = None) -> ApiClient:
    """Make `user` an API client with `role` on exactly `channels` (channel rows or codes).

    The user ends up in its role's group and in no other API role group (staff groups are left
    alone). At least one channel: a client with none would reach nothing.
    """
    client = ApiClient.objects.select_for_update().filter(user=user).first()
    require_perm(actor, "orders.change_apiclient" if client else "orders.add_apiclient", "manage API clients")
    errors: dict[str, list[str]] = {}
    if role not in ApiClientRole.values:
        errors["role"] = [f"One of: {', '.join(ApiClientRole.values)}."]
    codes = [c.code if isinstance(c, Channel) else str(c).strip() for c in channels or []]
    found = {channel.code: channel for channel in Channel.objects.filter(code__in=codes)}
    if not codes:
        errors["channels"] = ["At least one channel."]
    elif unknown := sorted({code for code in codes if code not in found}):
        errors["channels"] = [f"Unknown channel {code}." for code in unknown]
    if errors:
        raise ValidationError("The API client is not valid.", code="invalid", fields=errors)
    group = Group.objects.filter(name=API_CLIENT_GROUPS[role]).first()
    if group is None:
        raise ConflictError(
            f"The {API_CLIENT_GROUPS[role]!r} group does not exist: run `manage.py migrate` (or sync_roles).",
            code="role_group_missing",
        )
    if client is None:
        client = ApiClient(user=user)
    client.role = role
    if description is not None:
        client.description = description[:200]
    stamp(client, actor=actor, reason=f"API client: {role} on {', '.join(sorted(found))}")
    client.save()
    client.channels.set(found.values())
    others = [name for name in API_CLIENT_GROUPS.values() if name != group.name]
    user.groups.remove(*Group.objects.filter(name__in=others))
    user.groups.add(group)
    return client
