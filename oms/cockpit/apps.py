from django.apps import AppConfig


class CockpitConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "oms.cockpit"
    label = "cockpit"
    verbose_name = "Cockpit"

    def ready(self):
        from oms.cockpit import login  # noqa: PLC0415 (an app's modules load once the registry is ready)

        login.connect()
