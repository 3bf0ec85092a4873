"""Re-apply the roles once the case, rule and customer-merge permissions exist."""

from django.db import migrations

from oms.cockpit.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [
        ("cockpit", "0004_roles_billing_returns"),
        ("orders", "0006_cases_rules_sla_identity"),
    ]

    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
