"""`manage.py refund_approve RFD-2026-000001 [--as finance]`: approve a refund from a shell.

The command acts as the staff account the shell proves (oms.core.shell): the OS user mapped to it
in OMS_SHELL_OPERATORS, or the account named with --as whose password is given. The same service
as the cockpit and the API: the requester never approves their own refund, and above the limit
(the order's refunds within the window, the customer's that day) the account needs
billing.approve_large_refund. How the identity was established is kept on the event and history.
"""

from django.core.management.base import CommandError

from billing.services.refunds import refund_approve
from oms.core.errors import ApplicationError
from oms.core.shell import ActingCommand


class Command(ActingCommand):
    help = "Approve a refund as the staff account this shell proves (the same rules as everywhere else)."

    def add_arguments(self, parser):
        parser.add_argument("number", help="The refund's number, e.g. RFD-2026-000001.")
        super().add_arguments(parser)
        parser.add_argument("--note", default="", help="Kept on the refund's history.")

    def handle(self, *args, number, note, **options):
        identity = self.acting_identity(options)
        try:
            refund = refund_approve(refund=number, actor=identity.user, note=note, via=identity.via)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"Refund {refund.number} approved by {identity.user.get_username()} ({identity.via}).")
