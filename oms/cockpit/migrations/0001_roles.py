"""The role groups and their permissions (oms/cockpit/roles.py); `manage.py sync_roles` re-applies them."""

from django.db import migrations

from oms.cockpit.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("core", "0002_system_user"),
        ("orders", "0001_initial"),
        ("integrations", "0001_initial"),
    ]

    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
