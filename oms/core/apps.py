from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "oms.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        # The schema's extensions register themselves on import (drf-spectacular reads them when
        # it generates /api/schema/).
        from oms.core import schema  # noqa: F401, PLC0415 (AppConfig.ready: the apps are loaded)
