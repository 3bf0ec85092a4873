from django.conf import settings
from django.db import migrations


def create_system_user(apps, schema_editor):
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    # Active (inactive users have no permissions) but with an unusable password: nobody logs in
    # as it. Automation (Celery tasks, periodic jobs) acts as this user.
    user_model.objects.get_or_create(
        username=settings.OMS_SYSTEM_USERNAME,
        defaults={"is_active": True, "is_superuser": True, "first_name": "System", "password": "!"},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create_system_user, migrations.RunPython.noop)]
