from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        from orders import automation, cases, events, notify

        # Order matters: cases first (a rule's condition may read them), then the rules, then
        # what the customer hears.
        events.react(cases.cases_on_events)
        events.react(automation.rules_on_events)
        events.react(notify.notifications_on_events)
