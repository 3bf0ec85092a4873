"""The services the suite relies on are the ones it claims: PostgreSQL through Django, and Redis."""

import uuid

import psycopg
import pytest
import redis
from django.db import connection


@pytest.mark.django_db
def test_django_runs_on_a_postgresql_test_database():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    assert int(version) >= 150000, f"PostgreSQL 15+ is required, the server is {version}"
    # pytest-django's own database (test_oms, or test_oms_gw0… under xdist), never the real one.
    assert database.startswith("test_"), database
    assert database == connection.settings_dict["NAME"]


@pytest.mark.django_db(transaction=True)
def test_a_second_connection_sees_committed_rows():
    """Concurrency tests open their own connections: they must reach the same test database."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE preflight_probe (token text)")
        token = uuid.uuid4().hex
        cursor.execute("INSERT INTO preflight_probe VALUES (%s)", [token])
    try:
        settings = connection.settings_dict
        params = {
            "dbname": settings["NAME"],
            "user": settings["USER"],
            "password": settings["PASSWORD"],
            "host": settings["HOST"],
            "port": settings["PORT"],
        }
        with psycopg.connect(**{key: value for key, value in params.items() if value}, connect_timeout=5) as other:
            rows = other.execute("SELECT token FROM preflight_probe").fetchall()
        assert rows == [(token,)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE preflight_probe")


def test_redis_answers(redis_url_for_tests):
    client = redis.Redis.from_url(redis_url_for_tests, socket_connect_timeout=5, socket_timeout=5)
    try:
        assert client.ping() is True
        key = f"oms:test:preflight:{uuid.uuid4().hex}"
        assert client.set(key, "ok", ex=60) is True
        assert client.get(key) == b"ok"
        assert client.delete(key) == 1
    finally:
        client.close()
