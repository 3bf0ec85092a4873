from django.apps import AppConfig


class CockpitConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "oms.cockpit"
    label = "cockpit"
    verbose_name = "Cockpit"
