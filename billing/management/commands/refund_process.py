"""`manage.py refund_process RFD-2026-000001 --as alice`: pay an approved refund out (once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing.services.refunds import refund_process
from oms.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Process an approved refund, acting as the named user."

    def add_arguments(self, parser):
        parser.add_argument("number", help="The refund's number.")
        parser.add_argument("--as", dest="username", required=True, help="The acting user's username.")

    def handle(self, *args, number, username, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        try:
            refund = refund_process(refund=number, actor=user)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        if refund.status == "failed":
            raise CommandError(f"Refund {refund.number} failed: {refund.failure_reason}")
        self.stdout.write(f"Refund {refund.number}: {refund.get_status_display()} ({refund.provider_reference}).")
