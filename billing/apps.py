from django.apps import AppConfig
from django.db.models.signals import pre_save


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"

    def ready(self):
        from billing import guards  # noqa: PLC0415 (an app's modules load once the registry is ready)

        for model in guards.IMMUTABLE_MODELS:
            pre_save.connect(guards.refuse_update, sender=model, dispatch_uid=guards.dispatch_uid(model))
