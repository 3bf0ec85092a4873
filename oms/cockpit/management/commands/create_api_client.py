from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from oms.core.actors import get_system_user
from oms.core.errors import ApplicationError
from orders.choices import API_CLIENT_GROUPS, ApiClientRole
from orders.services import api_client_save


class Command(BaseCommand):
    help = (
        "Create (or update) an API client: a token-only user with one job's role, reaching the orders of "
        "the channels named and no other. Prints its token."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="e.g. shopify-eu, amazon-fr, edi-reseller")
        parser.add_argument(
            "--role",
            required=True,
            choices=ApiClientRole.values,
            help="; ".join(f"{role}: {API_CLIENT_GROUPS[role]}" for role in ApiClientRole),
        )
        parser.add_argument(
            "--channel",
            action="append",
            required=True,
            dest="channels",
            help="A channel code whose orders it reaches; repeat for several. Replaces the channels it had.",
        )
        parser.add_argument("--description", default=None, help="What the integration is, for the cockpit.")

    @transaction.atomic
    def handle(self, *args, username: str, role: str, channels: list[str], description: str | None, **options):
        username = username.strip()
        if not username:
            raise CommandError("--username must not be empty.")
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()  # token only: no cockpit login
            user.save(update_fields=["password"])
        elif user.is_staff or user.is_superuser:
            raise CommandError(f"{username!r} is a staff user: an API client is a user of its own.")
        try:
            client = api_client_save(
                user=user, role=role, channels=channels, actor=get_system_user(), description=description
            )
        except ApplicationError as exc:
            fields = exc.extra.get("fields") or {}
            details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from None
        token, _ = Token.objects.get_or_create(user=user)
        channel_codes = ", ".join(sorted(client.channels.values_list("code", flat=True)))
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} API client {username!r}: {API_CLIENT_GROUPS[role]} on {channel_codes}.")
        self.stdout.write(f"Authorization: Token {token.key}")
