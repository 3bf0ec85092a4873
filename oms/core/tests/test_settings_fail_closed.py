"""No process signs with the public development key unless the development settings were chosen.

Each test starts a fresh interpreter, as gunicorn, a Celery worker or an operator's manage.py
would, with the environment a careless deployment has: no DJANGO_SETTINGS_MODULE, no SECRET_KEY.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from integrations.links import tracking_token_for_number
from oms.settings.base import DEVELOPMENT_SECRET_KEY

ROOT = Path(__file__).resolve().parents[3]
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oms")
ORDER_NUMBER = "OMS-424242"


def careless_environment(**extra: str) -> dict[str, str]:
    """This environment without any settings module or key, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY"}}
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def forged_token() -> str:
    # The test settings sign with the development key, as an attacker who read the repository would.
    assert settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY
    return tracking_token_for_number(ORDER_NUMBER)


READ_FORGED_TOKEN = """
{start}
from django.conf import settings
from integrations.links import order_number_from_token
print("settings:", settings.SETTINGS_MODULE, "debug:", settings.DEBUG)
print("token opens:", order_number_from_token({token!r}))
"""


def test_wsgi_started_without_settings_or_key_refuses_to_start_and_never_reads_a_forged_link():
    code = READ_FORGED_TOKEN.format(start="import oms.wsgi", token=forged_token())

    result = run_python(code, careless_environment(DATABASE_URL=DATABASE_URL))

    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr
    assert "oms.settings.dev" in result.stderr  # says how to run the demo instead
    assert "token opens" not in result.stdout


def test_celery_worker_started_without_settings_or_key_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "oms", "report"],
        cwd=ROOT,
        env=careless_environment(DATABASE_URL=DATABASE_URL),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "SECRET_KEY must be set in production" in result.stdout + result.stderr
    assert "oms.settings.base" not in result.stdout
    assert "SETTINGS_MODULE" not in result.stdout  # no configuration was printed: none was loaded


def test_manage_py_without_settings_refuses_to_start_without_a_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=careless_environment(DATABASE_URL=DATABASE_URL),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_a_process_with_a_real_key_and_no_settings_module_runs_production_and_refuses_the_forged_link():
    real_key = secrets.token_urlsafe(50)
    code = READ_FORGED_TOKEN.format(start="import oms.wsgi", token=forged_token())

    result = run_python(code, careless_environment(SECRET_KEY=real_key, DATABASE_URL=DATABASE_URL))

    assert result.returncode == 0, result.stderr
    assert "settings: oms.settings.production debug: False" in result.stdout
    assert "token opens: None" in result.stdout


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (DEVELOPMENT_SECRET_KEY, "public development key"),
        ("django-insecure-" + secrets.token_urlsafe(50), "public development key"),
        ("short-but-random-" + secrets.token_hex(8), "too weak"),
        ("ab" * 40, "too weak"),
    ],
    ids=["development key", "django-insecure", "short", "few characters"],
)
def test_production_refuses_a_public_or_weak_key(key, message):
    env = careless_environment(
        DJANGO_SETTINGS_MODULE="oms.settings.production", SECRET_KEY=key, DATABASE_URL=DATABASE_URL
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert message in result.stderr
    assert key not in result.stderr  # the refusal does not print the key it refused


def test_base_settings_alone_hold_no_key_to_sign_with():
    code = "from django.core import signing\nprint(signing.Signer(salt='order-tracking').sign('x'))"

    result = run_python(code, careless_environment(DJANGO_SETTINGS_MODULE="oms.settings.base"))

    assert result.returncode != 0
    assert "The SECRET_KEY setting must not be empty" in result.stderr


def test_development_settings_run_the_demo_on_a_fresh_machine(tmp_path):
    # `make run` with nothing set: the development settings, SQLite in var/, tasks in-process.
    env = {
        k: v
        for k, v in careless_environment().items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}
    }
    env.update(DJANGO_SETTINGS_MODULE="oms.settings.dev", OMS_VAR_DIR=str(tmp_path))
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)\n"
        f"print(settings.SECRET_KEY == {DEVELOPMENT_SECRET_KEY!r})\n"
    )

    result = run_python(code, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3", "True", "True"]
