from django.apps import AppConfig

# A hooks module declares hooks only (no models), so it loads before the app registry is ready.
from orders.hooks import CUSTOMER_MERGED


class ReturnsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "returns"

    def ready(self):
        # The hooks of the apps below that returns reacts to (oms.core.hooks; `manage.py hooks`).
        from returns import services  # noqa: PLC0415 (an app's modules load once the registry is ready)

        CUSTOMER_MERGED.subscribe(services.returns_merge_customers)
