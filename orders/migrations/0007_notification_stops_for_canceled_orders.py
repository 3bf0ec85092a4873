"""Orders canceled before integrations kept its own record of stopped messages get one, so that a
message about them is skipped at send time as it was when the sender read the order's status."""

from django.db import migrations

CANCELED_ORDER_KINDS = ["order_canceled", "refund_processed", "seller_cancellation"]
REASON = "Order canceled: only the cancellation and its refunds are sent."


def record_stops(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    NotificationStop = apps.get_model("integrations", "NotificationStop")
    numbers = Order.objects.filter(status="canceled").order_by("pk").values_list("number", flat=True)
    batch = []
    for number in numbers.iterator(chunk_size=2000):
        batch.append(NotificationStop(order_number=number, reason=REASON, keep_kinds=CANCELED_ORDER_KINDS))
        if len(batch) == 2000:
            NotificationStop.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        NotificationStop.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_cases_rules_sla_identity"),
        ("integrations", "0003_notificationstop"),
    ]

    operations = [migrations.RunPython(record_stops, migrations.RunPython.noop)]
