"""`manage.py refund_approve RFD-2026-000001 --as alice`: approve a refund as that user.

The same service as the cockpit and the API: the requester never approves their own refund, and
above the threshold the user needs billing.approve_large_refund.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing.services.refunds import refund_approve
from oms.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Approve a refund, acting as the named user (the same rules as everywhere else)."

    def add_arguments(self, parser):
        parser.add_argument("number", help="The refund's number, e.g. RFD-2026-000001.")
        parser.add_argument("--as", dest="username", required=True, help="The approving user's username.")
        parser.add_argument("--note", default="", help="Kept on the refund's history.")

    def handle(self, *args, number, username, note, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        try:
            refund = refund_approve(refund=number, actor=user, note=note)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"Refund {refund.number} approved by {user.get_username()}.")
