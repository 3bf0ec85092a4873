"""Who did it. Every service takes an `actor`; automation acts as the system user."""

from django.conf import settings
from django.contrib.auth import get_user_model


def get_system_user():
    """The user that Celery tasks, commands and automation act as (created by a migration)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=settings.OMS_SYSTEM_USERNAME,
        defaults={"is_active": True, "is_superuser": True, "first_name": "System"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def actor_display(actor) -> str:
    if actor is None:
        return "anonymous"
    full_name = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    return full_name or actor.get_username()
