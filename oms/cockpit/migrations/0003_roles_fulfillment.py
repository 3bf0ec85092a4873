"""Re-apply the roles once the fulfillment permissions exist."""

from django.db import migrations

from oms.cockpit.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [
        ("cockpit", "0002_roles_inventory"),
        ("fulfillment", "0001_initial"),
    ]

    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
