import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0002_notification"),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationStop",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("order_number", models.CharField(max_length=32, unique=True, verbose_name="order")),
                ("reason", models.CharField(max_length=255, verbose_name="reason")),
                ("keep_kinds", models.JSONField(blank=True, default=list, verbose_name="kinds still sent")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="created at")),
            ],
            options={
                "verbose_name": "notification stop",
                "verbose_name_plural": "notification stops",
            },
        ),
    ]
