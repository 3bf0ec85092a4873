"""Settings read from the environment, shared by dev.py (`make run`), test.py and production.py.

With nothing set, the OMS runs embedded: SQLite in WAL mode with immediate transactions and Celery
tasks run eagerly, so that `make run` works on a machine with nothing installed. Set
`DATABASE_URL` and `CELERY_BROKER_URL` (or `REDIS_URL`) to use PostgreSQL and a real broker.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("OMS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# The key that signs sessions, CSRF tokens and the customers' tracking links. Nothing here gives one:
# without SECRET_KEY in the environment Django refuses to sign. Only the development and test
# settings, chosen explicitly, fall back to the development key below, which is public (it is in
# this repository); production refuses it.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "simple_history",
    "django_countries",
    "oms.core",
    "orders",
    "inventory",
    "fulfillment",
    "returns",
    "billing",
    "integrations",
    "oms.cockpit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "oms.core.middleware.RequestGuardMiddleware",
    "oms.core.logging.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]
if env_bool("OMS_COUNT_QUERIES"):
    # Benchmarks read the per-request statement count from a response header.
    MIDDLEWARE.insert(0, "oms.core.logging.QueryCountMiddleware")

ROOT_URLCONF = "oms.urls"
WSGI_APPLICATION = "oms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DEFAULT_SQLITE = f"sqlite:///{VAR_DIR / 'oms.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_SQLITE),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the cockpit read while a write runs; IMMEDIATE takes the write lock at BEGIN so
        # two writers queue instead of failing half-way with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "admin:login"

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "orders@oms.example")

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
# No broker configured means the embedded mode: tasks run in-process, right after commit.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = False
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Keep Django's JSON logging (with the order number) in workers too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "outbox-dispatch": {"task": "integrations.tasks.outbox_dispatch", "schedule": 10.0},
    "idempotency-purge": {"task": "oms.core.tasks.idempotency_purge", "schedule": 3600.0},
    "orders-complete-due": {"task": "orders.tasks.orders_complete_due", "schedule": 3600.0},
    "products-switch-off": {"task": "inventory.tasks.products_switch_off_expired", "schedule": 900.0},
    "coverage-alerts": {"task": "inventory.tasks.coverage_alerts_refresh", "schedule": 3600.0},
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "oms.core.api.exception_handler",
    # JSON only, and only JSON that can be stored (oms.core.parsers).
    "DEFAULT_PARSER_CLASSES": ["oms.core.parsers.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OMS API",
    "DESCRIPTION": "Order intake, lookup and lifecycle actions. Write endpoints accept an `Idempotency-Key` header.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The errors every operation can answer, and its path ids' bounds (oms.core.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "oms.core.schema.document_common_errors",
    ],
}

# --- OMS ------------------------------------------------------------------------------------
# An in-progress Idempotency-Key older than this is taken to belong to a crashed request.
OMS_IDEMPOTENCY_LOCK_SECONDS = int(os.environ.get("OMS_IDEMPOTENCY_LOCK_SECONDS", "120"))
OMS_IDEMPOTENCY_RETENTION_HOURS = int(os.environ.get("OMS_IDEMPOTENCY_RETENTION_HOURS", "96"))
OMS_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OMS_OUTBOX_MAX_ATTEMPTS", "8"))
OMS_OUTBOX_BACKOFF_BASE_SECONDS = float(os.environ.get("OMS_OUTBOX_BACKOFF_BASE_SECONDS", "30"))
OMS_OUTBOX_BACKOFF_MAX_SECONDS = float(os.environ.get("OMS_OUTBOX_BACKOFF_MAX_SECONDS", "21600"))
OMS_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("OMS_WEBHOOK_TIMEOUT_SECONDS", "5"))
# Days after delivery before an order may be closed (the return window).
OMS_RETURN_WINDOW_DAYS = int(os.environ.get("OMS_RETURN_WINDOW_DAYS", "14"))
OMS_SYSTEM_USERNAME = "system"
# An imported line whose SKU is not in the catalog: "hold" keeps the order on an unknown-product
# hold (nothing is lost), "refuse" answers 400, "accept" takes it as a line without stock.
OMS_UNKNOWN_SKU = os.environ.get("OMS_UNKNOWN_SKU", "hold")

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "oms.core.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        # WeasyPrint logs every rendering step at INFO (and its stylesheets at import).
        "weasyprint": {"level": "WARNING"},
    },
}

# --- fulfillment and notifications ---------------------------------------------------------------
OMS_DEFAULT_CARRIER = os.environ.get("OMS_DEFAULT_CARRIER", "sandbox")
OMS_DEFAULT_CARRIER_SERVICE = os.environ.get("OMS_DEFAULT_CARRIER_SERVICE", "standard")
# Pick lists with more rows than this render in the background (the cockpit shows progress).
OMS_PICKLIST_SYNC_ROWS = int(os.environ.get("OMS_PICKLIST_SYNC_ROWS", "60"))
# A background render not finished after this long (its worker died) may be requested again.
OMS_PICKLIST_STALE_MINUTES = int(os.environ.get("OMS_PICKLIST_STALE_MINUTES", "15"))
OMS_PICKUP_HOLD_DAYS = int(os.environ.get("OMS_PICKUP_HOLD_DAYS", "7"))
OMS_PICKUP_REMINDER_DAYS = int(os.environ.get("OMS_PICKUP_REMINDER_DAYS", "2"))
# Customer notifications wait this long so that what happens together is told together.
OMS_NOTIFICATION_GROUP_SECONDS = int(os.environ.get("OMS_NOTIFICATION_GROUP_SECONDS", "120"))
OMS_NOTIFICATION_FROM = os.environ.get("OMS_NOTIFICATION_FROM", "orders@oms.invalid")
CELERY_BEAT_SCHEDULE.update(
    {
        "notifications-send": {"task": "integrations.tasks.notifications_send_due", "schedule": 30.0},
        "tracking-poll": {"task": "fulfillment.tasks.tracking_poll", "schedule": 1800.0},
        "pickups-expire": {"task": "fulfillment.tasks.pickups_remind_and_expire", "schedule": 3600.0},
    }
)
# Where customers reach this OMS: links in their emails (the parcel tracking page) start with it.
OMS_PUBLIC_URL = os.environ.get("OMS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# --- accounting exports ----------------------------------------------------------------------------
# The chart of accounts the FEC journal is written with (French PCG). Sales and VAT accounts are
# chosen per tax rate, keyed by the rate in percent as written here ("20", "5.5"); a rate not listed
# goes to the default account.
OMS_ACCOUNTING = {
    "siren": os.environ.get("OMS_ACCOUNTING_SIREN", "000000000"),
    "currency": "EUR",  # the books' currency: other currencies fill Montantdevise / Idevise
    "journal_code": "VE",
    "journal_label": "Ventes",
    "customer_account": "411000",
    "customer_account_label": "Clients",
    "customer_aux_prefix": "C",  # CompAuxNum = prefix + the customer's id
    "sales_accounts": {"20": "706200", "10": "706100", "5.5": "706055", "2.1": "706021", "0": "706000"},
    "sales_account_default": "706000",
    "sales_account_label": "Ventes de marchandises",
    "vat_accounts": {"20": "445712", "10": "445711", "5.5": "445710", "2.1": "445702"},
    "vat_account_default": "445700",
    "vat_account_label": "TVA collectée",
    "fec_encoding": "utf-8",
}
# Exports of up to this many documents download at once (streamed); larger ones run in the background.
OMS_EXPORT_STREAM_ROWS = int(os.environ.get("OMS_EXPORT_STREAM_ROWS", "5000"))

# --- refunds, store credit, vouchers -------------------------------------------------------------
# A refund above this amount (in the order's currency) needs a second person holding
# billing.approve_large_refund; the requester never approves their own refund, whatever the amount.
OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal(os.environ.get("OMS_REFUND_SECOND_APPROVER_ABOVE", "100.00"))
# The amount held against that limit is not each refund alone but the sum of the order's refunds
# requested within this many days of it (either side), and separately the sum of the customer's
# refunds requested the same calendar day (TIME_ZONE): splitting a refund does not dodge the limit.
OMS_REFUND_SECOND_APPROVER_WINDOW_DAYS = int(os.environ.get("OMS_REFUND_SECOND_APPROVER_WINDOW_DAYS", "30"))
# Who may act from a shell (refund_approve, refund_process): "os_user=staff_username,…". A mapped
# operating-system user acts as that account; anyone else names an account with --as and types its
# password. Example: OMS_SHELL_OPERATORS="alice=finance-manager,bob=finance".
OMS_SHELL_OPERATORS = os.environ.get("OMS_SHELL_OPERATORS", "")
# Vouchers issued as refunds or compensation stay valid this many days.
OMS_VOUCHER_VALID_DAYS = int(os.environ.get("OMS_VOUCHER_VALID_DAYS", "365"))

# --- billing: invoices and payments ------------------------------------------------------------------
# The seller's legal details, printed on every invoice and credit note (a snapshot at issue).
OMS_SELLER = {
    "name": os.environ.get("OMS_SELLER_NAME", "OMS Demo SAS"),
    "address": [
        line
        for line in os.environ.get("OMS_SELLER_ADDRESS", "12 rue du Commerce|75015 Paris|France").split("|")
        if line
    ],
    "vat_number": os.environ.get("OMS_SELLER_VAT_NUMBER", "FR40123456789"),
    "siret": os.environ.get("OMS_SELLER_SIRET", "12345678900017"),
    "legal_form": os.environ.get("OMS_SELLER_LEGAL_FORM", "SAS au capital de 10 000 €"),
    "registration": os.environ.get("OMS_SELLER_REGISTRATION", "RCS Paris 123 456 789"),
    "iban": os.environ.get("OMS_SELLER_IBAN", "FR76 3000 6000 0112 3456 7890 189"),
    "bic": os.environ.get("OMS_SELLER_BIC", "AGRIFRPP"),
    "email": os.environ.get("OMS_SELLER_EMAIL", "billing@oms.invalid"),
}
# Without a billing policy for the customer or the channel: "shipment" (an invoice per parcel, when it
# ships) or "order" (one invoice when the order is confirmed); "immediate" terms.
OMS_INVOICE_DEFAULT_TRIGGER = os.environ.get("OMS_INVOICE_DEFAULT_TRIGGER", "shipment")
# Invoices are issued by themselves (a Celery task after the commit that confirms or ships).
OMS_INVOICE_AUTO = env_bool("OMS_INVOICE_AUTO", True)
# The provider of payments that arrive with an order and name none.
OMS_PAYMENT_DEFAULT_PROVIDER = os.environ.get("OMS_PAYMENT_DEFAULT_PROVIDER", "sandbox")
OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = env_bool("OMS_PAYMENT_SANDBOX_FAIL_REFUNDS", False)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["ExportKindEnum"] = "billing.models.ExportKind"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "RefundReasonEnum": "billing.models.RefundReason",
        "RefundMethodEnum": "billing.models.RefundMethod",
        "RefundStatusEnum": "billing.models.RefundStatus",
        "ReturnReasonEnum": "returns.choices.ReturnReason",
        "ReturnMethodEnum": "returns.choices.ReturnMethod",
        "ReturnStatusEnum": "returns.choices.ReturnStatus",
        "OrderStatusEnum": "orders.choices.OrderStatus",
        "ShipmentKindEnum": "fulfillment.choices.ShipmentKind",
        "ShipmentStatusEnum": "fulfillment.choices.ShipmentStatus",
        "TrackingStatusEnum": "fulfillment.carriers.choices.TrackingStatus",
    }
)

# --- cases, SLAs, fraud, SMS (issue 6) ---
# Hours from opening to the case's due time, per kind (and "kind:l2" after escalation).
OMS_CASE_DUE_HOURS = {
    "default": 24,
    "default:l2": 8,
    "fraud_review": 4,
    "fraud_review:l2": 2,
    "address_check": 8,
    "short_pick": 4,
    "stock_shortage": 24,
    "sla_breach": 4,
    "lost_parcel": 24,
    "damaged_parcel": 24,
    "credit_hold": 8,
    "payment_overdue": 72,
    "integration_failure": 8,
    "escalation": 2,
    "escalation:l2": 1,
}
# A channel's risk score at or above this holds the order for a fraud review.
CELERY_BEAT_SCHEDULE["cases-sweep"] = {"task": "orders.tasks.cases_sweep", "schedule": 300.0}
OMS_FRAUD_REVIEW_SCORE = int(os.environ.get("OMS_FRAUD_REVIEW_SCORE", "70"))
OMS_SMS_BACKEND = os.environ.get("OMS_SMS_BACKEND", "integrations.adapters.sms.FileSmsBackend")
OMS_SMS_DIR = Path(os.environ.get("OMS_SMS_DIR", VAR_DIR / "sms"))
OMS_SMS_FROM = os.environ.get("OMS_SMS_FROM", "OMS")

# --- cockpit logins: throttling (django-axes) and the client's address (issue 12) ---------------------
# The address a request came from (oms.core.client_ip): REMOTE_ADDR, unless a reverse proxy in front
# sets the header named here (X-Forwarded-For, X-Real-IP). Never name one without such a proxy:
# clients could then choose their address. With proxies in a row, how many of ours append to it.
OMS_CLIENT_IP_HEADER = os.environ.get("OMS_CLIENT_IP_HEADER", "").strip()
OMS_CLIENT_IP_PROXY_COUNT = int(os.environ.get("OMS_CLIENT_IP_PROXY_COUNT", "1"))
INSTALLED_APPS.append("axes")
# Last, as axes asks: it turns a refused login into the lockout page.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# The first backend refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Failures are counted per username and address together: a guesser is locked out of that account
# from that address while its owner, elsewhere, still logs in, and nobody can lock out everyone.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("OMS_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("OMS_LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "oms.core.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "oms.cockpit.login.lockout_response"
# Successful logins are in the JSON log (oms.cockpit.login), not in an ever-growing table.
AXES_DISABLE_ACCESS_LOG = True
# oms.cockpit.login logs each failure with the username and address; axes's own lines mask both.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
