from django.apps import AppConfig

# A hooks module declares hooks only (no models), so it loads before the app registry is ready.
from orders.hooks import CASE_SOURCE_OPEN, ORDER_CANCELED, ORDER_UNITS_TO_PLAN


class FulfillmentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fulfillment"

    def ready(self):
        # The hooks of the apps below that fulfillment reacts to (oms.core.hooks; `manage.py hooks`).
        from fulfillment import services  # noqa: PLC0415 (an app's modules load once the registry is ready)

        ORDER_UNITS_TO_PLAN.subscribe(services.shipments_plan)
        ORDER_CANCELED.subscribe(services.shipments_cancel_for_order)
        CASE_SOURCE_OPEN.subscribe(services.short_pick_case_source_open)
