"""Re-apply the roles once the billing and returns permissions exist."""

from django.db import migrations

from oms.cockpit.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [
        ("cockpit", "0003_roles_fulfillment"),
        ("billing", "0001_initial"),
        ("returns", "0001_initial"),
    ]

    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
