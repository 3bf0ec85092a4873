from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fulfillment"

    def ready(self):
        # The hooks of the apps below that fulfillment reacts to (oms.core.hooks; `manage.py hooks`).
        from fulfillment import services  # noqa: PLC0415 (an app's modules load once the registry is ready)
        from orders.hooks import CASE_SOURCE_OPEN, ORDER_CANCELED, ORDER_UNITS_TO_PLAN  # noqa: PLC0415 (same)

        ORDER_UNITS_TO_PLAN.subscribe(services.shipments_plan)
        ORDER_CANCELED.subscribe(services.shipments_cancel_for_order)
        CASE_SOURCE_OPEN.subscribe(services.short_pick_case_source_open)
