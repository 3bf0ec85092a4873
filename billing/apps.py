from django.apps import AppConfig
from django.db.models.signals import pre_save

# A hooks module declares hooks only (no models), so it loads before the app registry is ready.
from fulfillment.hooks import SHIPMENT_SHIPPED
from orders.hooks import CASES_SWEEP, CUSTOMER_MERGED, ORDER_CONFIRMED, ORDER_PLACED, SLA_SWEEP


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"

    def ready(self):
        from billing import guards  # noqa: PLC0415 (an app's modules load once the registry is ready)

        for model in guards.IMMUTABLE_MODELS:
            pre_save.connect(guards.refuse_update, sender=model, dispatch_uid=guards.dispatch_uid(model))

        # The hooks of the apps below that billing reacts to (oms.core.hooks; `manage.py hooks`).
        from billing import cases, tasks  # noqa: PLC0415 (an app's modules load once the registry is ready)
        from billing.services import credits, payments  # noqa: PLC0415 (same)

        ORDER_PLACED.subscribe(payments.payments_on_order_placed)
        ORDER_CONFIRMED.subscribe(tasks.invoice_on_order_confirmed, after_commit=True)
        SHIPMENT_SHIPPED.subscribe(tasks.invoice_on_shipment_shipped, after_commit=True)
        CUSTOMER_MERGED.subscribe(credits.credits_merge_customers)
        SLA_SWEEP.subscribe(cases.refunds_sla_sweep)
        CASES_SWEEP.subscribe(cases.cases_on_sweep)
