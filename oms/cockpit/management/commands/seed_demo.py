"""`manage.py seed_demo`: the demo data set of `oms.cockpit.demo` (role users, channels, customers
and ~250 orders in every status, their parcels, money and returns), built by its builders in a fixed
order so that the random draws, and so the data, are the same on every run. Idempotent: when the demo
orders exist, nothing is created again; the users are (re)printed.

DEMO ONLY: the passwords are deterministic and printed. Never run this against production.
"""

import logging
import random

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from oms.cockpit.demo.billing import billing_showcase
from oms.cockpit.demo.catalog import catalog_create, channels_create
from oms.cockpit.demo.cockpit import cockpit_showcase
from oms.cockpit.demo.context import SEED, Demo
from oms.cockpit.demo.customers import customers_build, customers_create
from oms.cockpit.demo.fulfillment import fulfillment_showcase
from oms.cockpit.demo.orders import order_create, order_drive, orders_plan
from oms.cockpit.demo.users import (
    API_3PL_USERNAME,
    API_USERNAME,
    PASSWORD,
    STAFF,
    api_client_role,
    api_clients_scope,
    api_users_create,
    roles_sync,
    staff_create,
)
from orders.choices import OrderStatus
from orders.models import Customer, Order

# One event log line per step would bury the summary: quiet while seeding.
QUIET_LOGGERS = (
    "orders.events",
    "orders.cases",
    "orders.automation",
    "inventory",
    "fulfillment",
    "billing",
    "returns",
    "weasyprint",
)


class Command(BaseCommand):
    help = (
        "Create demo users, channels, customers, ~250 orders in every status and their parcels in every state "
        "(DEMO ONLY; idempotent)."
    )

    def handle(self, *args, **options):
        started = timezone.now()
        roles_sync()
        users, created_users = staff_create()
        api_users = api_users_create()
        demo = Demo(
            users=users,
            api_client=api_users[API_USERNAME][0],
            third_party=api_users[API_3PL_USERNAME][0],
            rng=random.Random(SEED),
        )
        customers = customers_build(demo.rng)
        if Customer.objects.filter(email__in=[c.email for c in customers]).exists():
            self.stdout.write("Demo data already present: nothing created.")
        else:
            quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
            levels = [logger.level for logger in quiet]
            for logger in quiet:
                logger.setLevel(logging.WARNING)
            try:
                # The automatic invoicing waits for the commit: the demo issues its invoices itself.
                with override_settings(OMS_INVOICE_AUTO=False), transaction.atomic():
                    channels_create(users["admin"])
                    api_clients_scope(api_users)
                    catalog_create(users["admin"])
                    customers_create(customers, users["admin"])
                    for spec in orders_plan(demo, customers):
                        order = order_create(demo, spec)
                        order_drive(demo, order, spec)
                    fulfillment_showcase(demo, customers, users["admin"])
                    billing_showcase(demo, users["admin"])
                    cockpit_showcase(demo, users["admin"])
            finally:
                for logger, level in zip(quiet, levels, strict=True):
                    logger.setLevel(level)
            seconds = (timezone.now() - started).total_seconds()
            self.stdout.write(self.style.SUCCESS(f"Demo data created in {seconds:.1f} s."))
        self._print_summary(created_users, api_users)

    def _print_summary(self, created_users, api_users) -> None:
        out = self.stdout
        counts = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
        out.write("")
        out.write("Orders per status")
        out.write("-" * 34)
        for status in OrderStatus:
            out.write(f"  {status.label:<22}{counts.get(status.value, 0):>8}")
        out.write("-" * 34)
        out.write(f"  {'Total':<22}{sum(counts.values()):>8}")
        out.write("")
        out.write(self.style.WARNING("DEMO ONLY — these accounts and passwords are public. Never in production."))
        out.write(f"  {'user':<17}{'role':<17}password")
        for username, role, _first, _last in STAFF:
            note = "" if username in created_users else "  (set when the user was created)"
            out.write(f"  {username:<17}{role:<17}{PASSWORD.format(username=username)}{note}")
        for username, (_user, token) in api_users.items():
            out.write(f"  {username:<17}{api_client_role(username):<23}Authorization: Token {token.key}")
        out.write("  Cockpit: http://127.0.0.1:8000/admin/")
        if settings.DEBUG is False:
            out.write(self.style.WARNING("DEBUG is off: is this really a demo machine?"))
