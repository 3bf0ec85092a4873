"""End to end through a real Celery worker on the real Redis broker (database 15)."""

import time

import pytest
from celery import Celery
from celery import current_app as current_celery_app
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from integrations.models import OutboxMessage
from integrations.services import outbox_publish
from integrations.tests.factories import WebhookEndpointFactory

BROKER_URL = "redis://127.0.0.1:6379/15"


class _Rollback(Exception):
    pass


@pytest.fixture
def worker_app(monkeypatch):
    """A Celery app like the project's, on a Redis database of its own, made current for the test."""
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")  # the worker would re-run Django's system checks
    previous = current_celery_app._get_current_object()
    app = Celery("oms-outbox-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=BROKER_URL,
        task_always_eager=False,
        result_backend=None,
        beat_schedule={},
        worker_hijack_root_logger=False,
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=False,
    )
    app.control.purge()
    try:
        yield app
    finally:
        app.control.purge()
        app.close()
        previous.set_current()
        previous.set_default()


def _wait_until(predicate, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_delivers_committed_messages_and_nothing_of_rolled_back_ones(receiver, worker_app):
    WebhookEndpointFactory(url=receiver.url)

    with start_worker(worker_app, perform_ping_check=False, pool="solo", shutdown_timeout=20):
        with pytest.raises(_Rollback), transaction.atomic():
            outbox_publish(topic="order.created", payload={"n": 1}, key="ORD-2026-000001")
            raise _Rollback
        with transaction.atomic():
            [committed] = outbox_publish(topic="order.created", payload={"n": 2}, key="ORD-2026-000002")

        receiver.wait_for(1, timeout=20)
        _wait_until(
            lambda: OutboxMessage.objects.filter(pk=committed.pk, status=OutboxMessage.Status.DELIVERED).exists(),
            timeout=20,
        )
        time.sleep(0.5)  # room for a stray delivery to show up, if there were one

    [request] = receiver.requests
    assert (request.status, request.json()["id"], request.json()["key"]) == (200, str(committed.id), "ORD-2026-000002")
    assert list(OutboxMessage.objects.values_list("id", "status", "attempts")) == [(committed.id, "delivered", 1)]
    assert worker_app.control.purge() == 0  # nothing else was ever enqueued
