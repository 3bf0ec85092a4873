import logging

import pytest
from django.test import override_settings
from django.utils import timezone

from integrations import tasks
from integrations.models import OutboxMessage
from integrations.services import (
    REPLAY_PERMISSION,
    DeliveryOutcome,
    outbox_deliver,
    outbox_dispatch,
    outbox_publish,
    outbox_replay,
)
from integrations.tests.factories import UserFactory, WebhookEndpointFactory
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError

KEY = "ORD-2026-000001"


def _dead_message(receiver) -> OutboxMessage:
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.canceled", payload={"reason": "customer"}, key=KEY)
    receiver.fail_next(2)
    assert [outbox_deliver(message_id=message.id) for _ in range(2)] == [
        DeliveryOutcome.RETRY_SCHEDULED,
        DeliveryOutcome.DEAD,
    ]
    message.refresh_from_db()
    return message


@pytest.mark.django_db
@override_settings(OMS_OUTBOX_MAX_ATTEMPTS=2)
def test_replay_without_the_permission_is_refused_and_changes_nothing(receiver, django_capture_on_commit_callbacks):
    message = _dead_message(receiver)
    agent = UserFactory(permissions=["integrations.view_outboxmessage"])
    before = OutboxMessage.objects.values().get(pk=message.pk)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(PermissionDeniedError) as exc_info:
        outbox_replay(message_id=message.id, actor=agent)

    assert exc_info.value.code == "outbox_replay_forbidden"
    assert OutboxMessage.objects.values().get(pk=message.pk) == before
    assert callbacks == []
    with pytest.raises(PermissionDeniedError):
        outbox_replay(message_id=message.id, actor=None)


@pytest.mark.django_db
@override_settings(OMS_OUTBOX_MAX_ATTEMPTS=2)
def test_replay_puts_a_dead_message_back_and_it_is_delivered(receiver, caplog, django_capture_on_commit_callbacks):
    message = _dead_message(receiver)
    agent = UserFactory(username="level2", permissions=[REPLAY_PERMISSION])
    caplog.set_level(logging.INFO, logger="integrations")

    with django_capture_on_commit_callbacks() as callbacks:
        replayed = outbox_replay(message_id=message.id, actor=agent)

    assert replayed.pk == message.pk
    message.refresh_from_db()
    assert (message.status, message.attempts, message.delivered_at, message.replayed_by) == ("pending", 0, None, agent)
    assert message.next_attempt_at <= timezone.now()
    assert message.replayed_at is not None
    assert "HTTP 500" in message.last_error  # kept: why it had died
    assert [(c.func, c.keywords) for c in callbacks] == [(tasks.outbox_deliver.delay, {"message_id": str(message.id)})]
    [log] = [r for r in caplog.records if r.getMessage() == "outbox message replayed"]
    assert (log.levelname, log.message_id, log.actor, log.actor_id, log.previous_status, log.previous_attempts) == (
        "INFO",
        str(message.id),
        "level2",
        agent.pk,
        "dead",
        2,
    )

    assert outbox_dispatch() == 1

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("delivered", 1)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.headers["x-oms-message-id"] for r in receiver.requests} == {str(message.id)}


@pytest.mark.django_db
def test_replay_sends_a_delivered_message_again_under_the_same_id(receiver):
    WebhookEndpointFactory(url=receiver.url)
    [message] = outbox_publish(topic="order.created", payload={}, key=KEY)
    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.DELIVERED
    agent = UserFactory(permissions=[REPLAY_PERMISSION])

    outbox_replay(message_id=message.id, actor=agent)
    assert outbox_deliver(message_id=message.id) == DeliveryOutcome.DELIVERED

    message.refresh_from_db()
    assert (message.status, message.attempts, message.replayed_by) == ("delivered", 1, agent)
    assert [r.json()["id"] for r in receiver.requests] == [str(message.id)] * 2


@pytest.mark.django_db
def test_replay_of_a_pending_or_unknown_message_is_refused():
    WebhookEndpointFactory()
    [message] = outbox_publish(topic="order.created", payload={}, key=KEY)
    agent = UserFactory(permissions=[REPLAY_PERMISSION])
    before = OutboxMessage.objects.values().get(pk=message.pk)

    with pytest.raises(ConflictError) as conflict:
        outbox_replay(message_id=message.id, actor=agent)
    with pytest.raises(NotFoundError) as not_found:
        outbox_replay(message_id="6f1c3c8e-0000-4000-8000-000000000000", actor=agent)

    assert (conflict.value.code, not_found.value.code) == ("outbox_message_pending", "outbox_message_not_found")
    assert OutboxMessage.objects.values().get(pk=message.pk) == before
