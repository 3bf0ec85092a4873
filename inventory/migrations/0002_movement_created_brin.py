from django.db import migrations


def create_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS movement_created_brin ON inventory_stockmovement USING brin (created_at)"
        )


def drop_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS movement_created_brin")


class Migration(migrations.Migration):
    """The ledger is append-only and in time order: a BRIN index serves time ranges for almost nothing."""

    dependencies = [("inventory", "0001_initial")]

    operations = [migrations.RunPython(create_brin, drop_brin)]
