"""`python manage.py hooks`: every hook the apps emit, with its subscribers in the order they run."""

from django.core.management.base import BaseCommand

from oms.core.hooks import hooks_table


class Command(BaseCommand):
    help = "List every hook (oms.core.hooks) with its subscribers, in the order they run."

    def handle(self, *args, **options):
        self.stdout.write(hooks_table(), ending="")
