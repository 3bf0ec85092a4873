import datetime
import logging
import threading

import pytest
import time_machine
from django.db import connection, transaction
from django.test import override_settings

from integrations import tasks
from integrations.adapters.webhooks import verify_signature
from integrations.models import OutboxMessage
from integrations.services import DeliveryOutcome, outbox_deliver, outbox_dispatch, outbox_publish, outbox_publish_many
from integrations.tests.factories import WebhookEndpointFactory
from oms.core.logging import ContextFilter

KEY = "ORD-2026-000001"
PAYLOAD = {"event": "created", "order": {"number": KEY, "total_gross": "12.50"}}
T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


def _state(message: OutboxMessage) -> tuple:
    message.refresh_from_db()
    return message.status, message.attempts


@pytest.mark.django_db
def test_delivery_posts_signed_json_that_carries_the_message_id(receiver):
    WebhookEndpointFactory(url=receiver.url, secret="s3cret")
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)

    outcome = outbox_deliver(message_id=message.id)

    assert outcome == DeliveryOutcome.DELIVERED
    [request] = receiver.requests
    assert request.path == "/hooks/oms"
    assert request.json() == {
        "id": str(message.id),
        "topic": "order.created",
        "key": KEY,
        "created_at": message.created_at.isoformat(),
        "payload": PAYLOAD,
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-oms-message-id"] == str(message.id)
    assert request.headers["x-oms-topic"] == "order.created"
    signature = request.headers["x-oms-signature"]
    assert signature.startswith("sha256=")
    assert verify_signature("s3cret", request.body, signature)
    assert verify_signature("s3cret", request.body.decode(), signature)
    assert not verify_signature("another secret", request.body, signature)
    assert not verify_signature("s3cret", request.body + b" ", signature)
    assert not verify_signature("s3cret", request.body, None)
    assert not verify_signature("s3cret", request.body, "sha256=00")
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("delivered", 1, "")
    assert message.delivered_at is not None


@pytest.mark.django_db
def test_a_delivered_message_is_not_sent_again(receiver):
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.DELIVERED
    message.refresh_from_db()
    delivered_at = message.delivered_at

    assert outbox_dispatch() == 0
    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.SKIPPED
    assert tasks.outbox_deliver(str(message.id)) == "skipped"  # a redelivered Celery task
    assert tasks.outbox_dispatch() == 0

    assert len(receiver.requests) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts, message.delivered_at) == ("delivered", 1, delivered_at)


@pytest.mark.django_db
@override_settings(OMS_OUTBOX_BACKOFF_BASE_SECONDS=60, OMS_OUTBOX_BACKOFF_MAX_SECONDS=3600, OMS_OUTBOX_MAX_ATTEMPTS=5)
def test_a_failed_delivery_is_retried_with_growing_backoff_under_the_same_id(receiver):
    WebhookEndpointFactory(url=receiver.url)
    receiver.fail_next(2)

    with time_machine.travel(T0, tick=False) as clock:
        [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)

        assert outbox_deliver(message_id=message.id) == DeliveryOutcome.RETRY_SCHEDULED
        assert _state(message) == ("pending", 1)
        assert "HTTP 500" in message.last_error
        first_retry_at = message.next_attempt_at
        # Equal jitter: between half and all of base * 2**0.
        assert T0 + datetime.timedelta(seconds=30) <= first_retry_at <= T0 + datetime.timedelta(seconds=60)

        # Not due yet: neither the task nor the sweeper sends it.
        clock.move_to(first_retry_at - datetime.timedelta(seconds=1))
        assert outbox_deliver(message_id=message.id) == DeliveryOutcome.SKIPPED
        assert outbox_dispatch() == 0
        assert len(receiver.requests) == 1

        clock.move_to(first_retry_at)
        assert outbox_dispatch() == 0
        assert _state(message) == ("pending", 2)
        second_retry_at = message.next_attempt_at
        assert (
            first_retry_at + datetime.timedelta(seconds=60)
            <= second_retry_at
            <= first_retry_at + datetime.timedelta(seconds=120)
        )

        clock.move_to(second_retry_at)
        assert outbox_dispatch() == 1
        assert _state(message) == ("delivered", 3)
        assert message.delivered_at == second_retry_at

    assert [r.status for r in receiver.requests] == [500, 500, 200]
    # The same message, byte for byte, on every attempt: receivers deduplicate on its id.
    assert {r.headers["x-oms-message-id"] for r in receiver.requests} == {str(message.id)}
    assert {r.json()["id"] for r in receiver.requests} == {str(message.id)}
    assert len({r.body for r in receiver.requests}) == 1


@pytest.mark.django_db
@override_settings(OMS_OUTBOX_MAX_ATTEMPTS=3, OMS_OUTBOX_BACKOFF_BASE_SECONDS=0)
def test_a_message_that_keeps_failing_is_dead_lettered_after_max_attempts(receiver, caplog):
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    receiver.fail_next(100)
    caplog.set_level(logging.INFO, logger="integrations")
    caplog.handler.addFilter(ContextFilter())  # what the JSON log handler adds: the order number

    outcomes = [outbox_deliver(message_id=message.id) for _ in range(4)]

    assert outcomes == [
        DeliveryOutcome.RETRY_SCHEDULED,
        DeliveryOutcome.RETRY_SCHEDULED,
        DeliveryOutcome.DEAD,
        DeliveryOutcome.SKIPPED,
    ]
    assert outbox_dispatch() == 0
    assert _state(message) == ("dead", 3)
    assert "HTTP 500" in message.last_error
    assert message.delivered_at is None
    assert [r.headers["x-oms-message-id"] for r in receiver.requests] == [str(message.id)] * 3
    [dead_log] = [r for r in caplog.records if r.getMessage() == "outbox message dead-lettered"]
    assert (dead_log.levelname, dead_log.message_id, dead_log.attempts, dead_log.order_number) == (
        "ERROR",
        str(message.id),
        3,
        KEY,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", [302, 404, 500, 503])
def test_any_answer_but_2xx_is_a_failed_attempt(receiver, status):
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    receiver.fail_next(1, status=status)

    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.RETRY_SCHEDULED

    assert _state(message) == ("pending", 1)
    assert f"HTTP {status}" in message.last_error
    assert len(receiver.requests) == 1


@pytest.mark.django_db
@override_settings(OMS_WEBHOOK_TIMEOUT_SECONDS=0.2)
def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(receiver):
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    receiver.delay = 1.0

    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.RETRY_SCHEDULED

    assert _state(message) == ("pending", 1)
    assert "timed out" in message.last_error.lower()


@pytest.mark.django_db
def test_a_message_for_a_deactivated_endpoint_fails_without_being_sent(receiver):
    endpoint = WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    endpoint.is_active = False
    endpoint.save(update_fields=["is_active"])

    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.RETRY_SCHEDULED

    assert _state(message) == ("pending", 1)
    assert "inactive" in message.last_error
    assert receiver.requests == []


def _in_thread(target, results: list, errors: list):
    def run():
        try:
            results.append(target())
        except Exception as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.django_db(transaction=True)
def test_a_message_being_delivered_is_skipped_by_a_concurrent_delivery(receiver):
    WebhookEndpointFactory(url=receiver.url)
    with transaction.atomic():
        [message] = outbox_publish(topic="order.created", payload=PAYLOAD, key=KEY)
    receiver.hold()
    results, errors = [], []
    first = _in_thread(lambda: outbox_deliver(message_id=message.id), results, errors)
    first.start()
    try:
        receiver.wait_for(1)  # the first delivery is in flight and holds the row lock

        assert outbox_deliver(message_id=message.id) == DeliveryOutcome.SKIPPED
        assert outbox_dispatch() == 0
    finally:
        receiver.release()
        first.join(10)

    assert (results, errors) == ([DeliveryOutcome.DELIVERED], [])
    assert len(receiver.requests) == 1
    assert _state(message) == ("delivered", 1)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatchers_deliver_each_message_exactly_once(receiver):
    WebhookEndpointFactory(url=receiver.url)
    with transaction.atomic():
        published = outbox_publish_many(items=[("order.created", {"n": n}) for n in range(20)], key=KEY)
    receiver.delay = 0.02  # keeps both dispatchers busy at the same time
    barrier = threading.Barrier(2)
    results, errors = [], []

    def dispatch():
        barrier.wait(5)
        return outbox_dispatch()

    threads = [_in_thread(dispatch, results, errors) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sum(results) == 20
    assert sorted(r.headers["x-oms-message-id"] for r in receiver.requests) == sorted(str(m.id) for m in published)
    assert sorted(OutboxMessage.objects.values_list("status", "attempts")) == [("delivered", 1)] * 20
