"""`manage.py refund_process RFD-2026-000001 [--as finance]`: pay an approved refund out (once),
as the staff account this shell proves (oms.core.shell, as for refund_approve)."""

from django.core.management.base import CommandError

from billing.services.refunds import refund_process
from oms.core.errors import ApplicationError
from oms.core.shell import ActingCommand


class Command(ActingCommand):
    help = "Process an approved refund as the staff account this shell proves."

    def add_arguments(self, parser):
        parser.add_argument("number", help="The refund's number.")
        super().add_arguments(parser)

    def handle(self, *args, number, **options):
        identity = self.acting_identity(options)
        try:
            refund = refund_process(refund=number, actor=identity.user, via=identity.via)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        if refund.status == "failed":
            raise CommandError(f"Refund {refund.number} failed: {refund.failure_reason}")
        self.stdout.write(f"Refund {refund.number}: {refund.get_status_display()} ({refund.provider_reference}).")
