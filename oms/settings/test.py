"""The test suite runs on PostgreSQL (DATABASE_URL, default: the local server)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oms")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")

from oms.settings.base import *  # noqa: E402,F403
from oms.settings.base import DATABASES, DEVELOPMENT_SECRET_KEY  # noqa: E402

# Tests sign with the public development key whatever the environment holds (a production key
# exported in the shell never signs test data).
SECRET_KEY = DEVELOPMENT_SECRET_KEY

DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_oms")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
OMS_OUTBOX_BACKOFF_BASE_SECONDS = 0.0
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # no scan of an (absent) STATIC_ROOT at start-up
# Django's test client logs in without a request, which axes refuses: the login throttling is off
# here and on in the tests that exercise it (oms/cockpit/tests/test_login_throttling.py).
AXES_ENABLED = False
