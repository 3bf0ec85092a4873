"""The single "API client" role splits into one role per job, each API client limited to its channels.

Each member of the old group becomes a store front API client (orders.ApiClient) scoped to every
channel that exists now, so that it keeps what it needs to import and follow orders; its rights to
adjust stock, cancel paid orders, post payment events or move parcels are gone (give it another API
client user for such a job). Then the old group is deleted and the roles are applied again.
"""

from django.db import migrations

from oms.cockpit.roles import migrate_roles

RETIRED_GROUP = "API client"
STORE_FRONT_ROLE = "store_front"
STORE_FRONT_GROUP = "API: store front"
MIGRATED_NOTE = "Was in the retired 'API client' role: store front on every channel."


def api_clients_from_retired_role(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    ApiClient = apps.get_model("orders", "ApiClient")
    Channel = apps.get_model("orders", "Channel")
    retired = Group.objects.filter(name=RETIRED_GROUP).first()
    if retired is None:
        return
    store_front, _ = Group.objects.get_or_create(name=STORE_FRONT_GROUP)
    channels = list(Channel.objects.order_by("pk"))
    for user in retired.user_set.order_by("pk"):
        client, created = ApiClient.objects.get_or_create(
            user=user, defaults={"role": STORE_FRONT_ROLE, "description": MIGRATED_NOTE}
        )
        if created:
            client.channels.set(channels)
            user.groups.add(store_front)
    retired.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cockpit", "0005_roles_cases"),
        ("orders", "0008_api_client"),
    ]

    operations = [
        migrations.RunPython(api_clients_from_retired_role, migrations.RunPython.noop),
        migrations.RunPython(migrate_roles, migrations.RunPython.noop),
    ]
