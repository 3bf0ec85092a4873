"""Cockpit logins: repeated failures lock that account from that address, and every failure is logged.

The test settings switch django-axes off (Django's test client logs in without a request); these
tests switch it on and log in through the real login form.
"""

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from pythonjsonlogger.json import JsonFormatter

from oms.cockpit import roles
from oms.core.client_ip import client_ip
from orders.tests.factories import make_user

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery staple"
ATTACKER = "198.51.100.7"
OWNER = "203.0.113.9"
LIMIT = 5


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


@pytest.fixture
def agent(db):
    user = make_user(roles.SUPPORT_L1, username="agent")
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def log_in(client: Client, username: str, password: str, **headers):
    return client.post(reverse("admin:login"), {"username": username, "password": password}, **headers)


def logged_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


def test_repeated_failures_lock_the_account_from_that_address_and_the_right_password_is_then_refused(throttled, agent):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT - 1):
        response = log_in(attacker, "agent", "guess")
        assert response.status_code == 200  # the login form again, with its error
        assert b"Login locked" not in response.content

    locking = log_in(attacker, "agent", "guess")
    right_password = log_in(attacker, "agent", PASSWORD)

    assert locking.status_code == 429
    assert right_password.status_code == 429
    page = right_password.content.decode()
    assert "Login locked" in page
    assert "5 failed logins in a row" in page
    assert "Try again in 15 minutes" in page
    assert "OMS cockpit" in page  # the cockpit's own header, not axes's bare text
    assert right_password["Retry-After"] == str(15 * 60)
    assert logged_in_as(attacker) is None


def test_a_locked_account_still_logs_in_from_another_address_and_other_accounts_from_the_first(throttled, agent):
    colleague = make_user(roles.SUPPORT_L1, username="colleague")
    colleague.set_password(PASSWORD)
    colleague.save(update_fields=["password"])
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT):
        log_in(attacker, "agent", "guess")

    owner = Client(REMOTE_ADDR=OWNER)
    owner_response = log_in(owner, "agent", PASSWORD)
    same_office = Client(REMOTE_ADDR=ATTACKER)
    colleague_response = log_in(same_office, "colleague", PASSWORD)

    assert owner_response.status_code == 302
    assert logged_in_as(owner) == "agent"
    assert colleague_response.status_code == 302
    assert logged_in_as(same_office) == "colleague"


def test_a_forwarded_for_header_is_ignored_unless_a_proxy_is_configured(throttled, agent):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT):
        log_in(attacker, "agent", "guess")

    dodge = log_in(attacker, "agent", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.55")

    assert dodge.status_code == 429
    assert logged_in_as(attacker) is None


def test_behind_the_configured_proxy_the_address_it_saw_is_locked_and_not_the_proxy(throttled, agent):
    throttled.OMS_CLIENT_IP_HEADER = "X-Forwarded-For"
    proxy = "10.0.0.2"
    attacker = Client(REMOTE_ADDR=proxy)
    for attempt in range(LIMIT):
        # The client writes what it likes on the left; our proxy appends the address it saw.
        log_in(attacker, "agent", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}, {ATTACKER}")

    spoofed = log_in(attacker, "agent", PASSWORD, HTTP_X_FORWARDED_FOR=f"192.0.2.99, {ATTACKER}")
    owner = Client(REMOTE_ADDR=proxy)
    owner_response = log_in(owner, "agent", PASSWORD, HTTP_X_FORWARDED_FOR=OWNER)

    assert spoofed.status_code == 429
    assert owner_response.status_code == 302
    assert logged_in_as(owner) == "agent"


def test_the_lock_ends_after_the_cool_off(throttled, agent):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT):
        log_in(attacker, "agent", "guess")

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = log_in(attacker, "agent", PASSWORD)

    assert response.status_code == 302
    assert logged_in_as(attacker) == "agent"


def test_every_failed_login_and_the_lockout_are_logged_with_the_username_and_address(throttled, agent, caplog):
    attacker = Client(REMOTE_ADDR=ATTACKER)

    with caplog.at_level(logging.INFO, logger="oms.cockpit.login"):
        for _ in range(LIMIT):
            log_in(attacker, "agent", "guess")

    records = [r for r in caplog.records if r.name == "oms.cockpit.login"]
    failures = [r for r in records if r.getMessage().startswith("Login failed")]
    lockouts = [r for r in records if r.getMessage().startswith("Login locked out")]
    assert len(failures) == LIMIT
    assert len(lockouts) == 1
    assert all(r.levelno == logging.WARNING for r in failures + lockouts)
    line = json.loads(JsonFormatter("%(levelname)s %(name)s %(message)s").format(failures[0]))
    assert line["username"] == "agent"
    assert line["client_ip"] == ATTACKER
    assert line["path"] == reverse("admin:login")
    assert "guess" not in json.dumps(line)  # the password tried is never logged
    assert (lockouts[0].username, lockouts[0].client_ip) == ("agent", ATTACKER)


def test_a_failed_login_is_logged_even_with_the_throttling_off(agent, caplog):
    with caplog.at_level(logging.WARNING, logger="oms.cockpit.login"):
        log_in(Client(REMOTE_ADDR=OWNER), "agent", "typo")

    (record,) = [r for r in caplog.records if r.name == "oms.cockpit.login"]
    assert (record.username, record.client_ip) == ("agent", OWNER)


@pytest.mark.parametrize(
    ("header", "proxies", "meta", "expected"),
    [
        ("", 1, {"HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "10.0.0.2"),
        ("X-Forwarded-For", 1, {"HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.7"}, "198.51.100.7"),
        ("X-Forwarded-For", 2, {"HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.7, 10.0.0.9"}, "198.51.100.7"),
        ("X-Forwarded-For", 2, {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}, "10.0.0.2"),
        ("X-Forwarded-For", 1, {"HTTP_X_FORWARDED_FOR": "not-an-address"}, "10.0.0.2"),
        ("X-Forwarded-For", 1, {}, "10.0.0.2"),
        ("X-Real-IP", 1, {"HTTP_X_REAL_IP": "2001:db8::1"}, "2001:db8::1"),
    ],
    ids=["no header configured", "one proxy", "two proxies", "too short", "garbage", "missing", "x-real-ip"],
)
def test_client_ip_reads_only_the_configured_header_from_our_proxies(settings, header, proxies, meta, expected):
    settings.OMS_CLIENT_IP_HEADER = header
    settings.OMS_CLIENT_IP_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", **meta)

    assert client_ip(request) == expected


def test_production_settings_throttle_logins():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="oms.settings.production",
        SECRET_KEY="k9$Zq-2vVx!c7pLr0wQ8e#tYb5nH3mJ1sD6fG4hK2aP9uE7iO0zX",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oms"),
    )
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "print(settings.AXES_ENABLED, settings.AUTHENTICATION_BACKENDS[0], settings.MIDDLEWARE[-1],\n"
        "      settings.AXES_LOCKOUT_PARAMETERS, settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True axes.backends.AxesStandaloneBackend axes.middleware.AxesMiddleware [['username', 'ip_address']] 5 0:15:00"
    )
