"""Production: everything from the environment, nothing insecure by default.

These are the settings of every process that does not choose others: oms.wsgi, oms.celery and
manage.py default to them, so a server or worker started without DJANGO_SETTINGS_MODULE runs here
(or refuses to start) rather than on the development settings and their public key.
`manage.py check --deploy` passes with no warning once SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL
are given real values.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from oms.settings.base import *  # noqa: F403
from oms.settings.base import DEVELOPMENT_SECRET_KEY, env_bool, env_list

# The key signs sessions and the customers' tracking links: a known or guessable key lets anyone
# forge a link to another customer's order. The same bounds as Django's deploy check (security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
_GENERATE_KEY = 'Generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(50))"'
_DEVELOPMENT_HINT = "For development, choose DJANGO_SETTINGS_MODULE=oms.settings.dev, as `make run` does."


def production_secret_key(value: str) -> str:
    """The key, or ImproperlyConfigured when it is missing, public or weak."""
    if not value:
        raise ImproperlyConfigured(f"SECRET_KEY must be set in production. {_GENERATE_KEY}. {_DEVELOPMENT_HINT}")
    if value == DEVELOPMENT_SECRET_KEY or value.startswith("django-insecure"):
        raise ImproperlyConfigured(f"SECRET_KEY is a public development key, refused in production. {_GENERATE_KEY}.")
    if len(value) < SECRET_KEY_MIN_LENGTH or len(set(value)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak for production (at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different). {_GENERATE_KEY}."
        )
    return value


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = production_secret_key(os.environ.get("SECRET_KEY", ""))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured("DATABASE_URL must be set in production (PostgreSQL).")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
