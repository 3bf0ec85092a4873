"""Preflight for the test suite: PostgreSQL and Redis must answer, or the run stops with a plain message.

The suite runs on PostgreSQL (row locks, concurrent connections, check constraints) and the Celery
delivery tests need Redis. Without them every test would fail with a long traceback, so this checks
first and says what to do. It runs from pytest (bare `pytest` too) and, as a script, from `make test`:

    .venv/bin/python tests/conftest.py

There is no skip switch: a test run without the database would prove nothing (CI=true included).
"""

import os
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/oms"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT_SECONDS = 5
PREFLIGHT_EXIT_CODE = 3


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def check_postgresql(url: str) -> str | None:
    """None when the server answers, else the message to print."""
    message = (
        f"PostgreSQL is needed for the test suite and could not be reached at {_redact(url)}. "
        "Start it, or point DATABASE_URL at one, e.g. "
        "DATABASE_URL=postgres://user:pass@host:5432/oms make test"
    )
    if urlsplit(url).scheme not in {"postgres", "postgresql", "pgsql", "postgis"}:
        return f"{message}\n(DATABASE_URL is not a PostgreSQL URL.)"

    # The test database (test_<name>) is created by pytest-django, and <name> itself need not exist:
    # try the maintenance database first, as Django does to create the test database.
    errors = []
    for dbname in ("postgres", None):
        conninfo = make_conninfo(url, dbname=dbname) if dbname else url
        try:
            with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                conn.execute("SELECT 1")
            return None
        except psycopg.Error as exc:
            errors.append(str(exc).strip())
    return f"{message}\n({errors[0]})"


def check_redis(url: str) -> str | None:
    message = (
        f"Redis is needed for the test suite (Celery delivery tests) and could not be reached at "
        f"{_redact(url)}. Start it, or point REDIS_URL at one, e.g. REDIS_URL=redis://host:6379/0 make test"
    )

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
        )
        try:
            if client.ping():
                return None
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"{message}\n({exc})"
    return message


def preflight() -> list[str]:
    return [error for error in (check_postgresql(database_url()), check_redis(redis_url())) if error]


def pytest_sessionstart(session):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller has checked already
    errors = preflight()
    if errors:
        pytest.exit("\n".join(errors), returncode=PREFLIGHT_EXIT_CODE)


@pytest.fixture(scope="session")
def redis_url_for_tests() -> str:
    """The Redis the suite checked at start (REDIS_URL, default redis://127.0.0.1:6379/0)."""
    return redis_url()


if __name__ == "__main__":
    problems = preflight()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(PREFLIGHT_EXIT_CODE if problems else 0)


from tests.browser import browser  # noqa: E402,F401 (the Chromium fixture of the browser tests)
