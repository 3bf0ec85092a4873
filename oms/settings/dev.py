"""Development: the demo that `make run` serves on 127.0.0.1, chosen explicitly.

DEBUG is on and, without SECRET_KEY in the environment, the public development key signs sessions
and tracking links. Nothing else falls back to these settings: oms.wsgi, oms.celery and manage.py
default to oms.settings.production, so a server started without DJANGO_SETTINGS_MODULE refuses to
start instead of signing with a key anyone can read. A worker for `make run` with a real broker:
`DJANGO_SETTINGS_MODULE=oms.settings.dev .venv/bin/celery -A oms worker -l info`.
"""

import os

from oms.settings.base import *  # noqa: F403
from oms.settings.base import DEVELOPMENT_SECRET_KEY, env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
