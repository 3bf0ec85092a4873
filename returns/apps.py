from django.apps import AppConfig


class ReturnsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "returns"

    def ready(self):
        # The hooks of the apps below that returns reacts to (oms.core.hooks; `manage.py hooks`).
        from orders.hooks import CUSTOMER_MERGED  # noqa: PLC0415 (an app's modules load once the registry is ready)
        from returns import services  # noqa: PLC0415 (same)

        CUSTOMER_MERGED.subscribe(services.returns_merge_customers)
