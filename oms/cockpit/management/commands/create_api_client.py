from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from oms.cockpit.roles import API_CLIENT


class Command(BaseCommand):
    help = "Create (or find) an API client user in the 'API client' group and print its token."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="e.g. shopify-eu, amazon-fr, edi-reseller")

    @transaction.atomic
    def handle(self, *args, username: str, **options):
        username = username.strip()
        if not username:
            raise CommandError("--username must not be empty.")
        group = Group.objects.filter(name=API_CLIENT).first()
        if group is None:
            raise CommandError(f"The {API_CLIENT!r} group does not exist: run `manage.py migrate` (or sync_roles).")
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()  # token only: no cockpit login
            user.save(update_fields=["password"])
        user.groups.add(group)
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"{'Created' if created else 'Found'} API client {username!r}.")
        self.stdout.write(f"Authorization: Token {token.key}")
