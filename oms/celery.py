import os

from celery import Celery

# Production unless the caller chose other settings: the development settings (`make run`) sign with
# a public key, so no process falls back to them (it refuses to start without a real SECRET_KEY).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings.production")

app = Celery("oms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["oms.core"])
