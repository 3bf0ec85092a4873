"""The role groups and their permissions (oms/cockpit/roles.py); `manage.py sync_roles` re-applies them."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from oms.cockpit.roles import sync_roles


def create_roles(apps, schema_editor):
    # Permissions are normally created after the whole migrate run (post_migrate): create them now,
    # for every app, so that the groups get them on a fresh database too.
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("core", "0002_system_user"),
        ("orders", "0001_initial"),
        ("integrations", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
