from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from orders.hooks import ORDER_EVENTS_RECORDED


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        from orders import automation, cases, notify  # noqa: PLC0415 (an app's modules load once the registry is ready)

        # Order matters: cases first (a rule's condition may read them), then the rules, then
        # what the customer hears.
        ORDER_EVENTS_RECORDED.subscribe(cases.cases_on_events)
        ORDER_EVENTS_RECORDED.subscribe(automation.rules_on_events)
        ORDER_EVENTS_RECORDED.subscribe(notify.notifications_on_events)
