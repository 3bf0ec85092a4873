from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from oms.cockpit.roles import sync_roles


class Command(BaseCommand):
    help = "Create the role groups and set their permissions to exactly what oms/cockpit/roles.py says."

    def handle(self, *args, **options):
        for app_config in apps.get_app_configs():
            create_permissions(app_config, verbosity=0)
        for name, count in sync_roles(Group, Permission).items():
            self.stdout.write(f"{name}: {count} permissions")
