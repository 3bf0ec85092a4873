import gc
import os

from django.core.wsgi import get_wsgi_application

# Production unless the caller chose other settings: the development settings (`make run`) sign with
# a public key, so no process falls back to them (it refuses to start without a real SECRET_KEY).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings.production")
application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules) lives as long as the worker: moved out
# of the collector's reach, it is no longer walked by every full collection, which otherwise pauses
# about one request in sixteen for 100-150 ms (measured by bench/cockpit.py).
gc.collect()
gc.freeze()
