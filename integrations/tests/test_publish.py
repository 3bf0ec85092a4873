import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from integrations import tasks
from integrations.models import OutboxMessage
from integrations.services import outbox_publish, outbox_publish_many
from integrations.tests.factories import WebhookEndpointFactory
from oms.core.errors import ValidationError

KEY = "ORD-2026-000001"


def _row(message: OutboxMessage) -> tuple:
    return (
        message.endpoint,
        message.topic,
        message.key,
        message.payload,
        message.destination,
        message.is_test,
        message.status,
        message.attempts,
        message.last_error,
        message.delivered_at,
    )


@pytest.mark.django_db
def test_publish_writes_one_message_per_active_subscribed_endpoint(django_capture_on_commit_callbacks):
    every_topic = WebhookEndpointFactory(topics=[])
    order_topics = WebhookEndpointFactory(topics=["order.*"])
    WebhookEndpointFactory(topics=["order.canceled"])
    WebhookEndpointFactory(topics=["invoice.*"])
    WebhookEndpointFactory(topics=["order.*"], is_active=False)
    payload = {"total": Decimal("12.50"), "paid_at": datetime.datetime(2026, 3, 2, 9, 30, tzinfo=datetime.UTC)}

    with django_capture_on_commit_callbacks() as callbacks:
        published = outbox_publish(topic="order.created", payload=payload, key=KEY)

    stored_payload = {"total": "12.50", "paid_at": "2026-03-02T09:30:00Z"}
    rows = list(OutboxMessage.objects.select_related("endpoint").order_by("endpoint_id"))
    assert [m.id for m in rows] == [m.id for m in published]
    assert [_row(m) for m in rows] == [
        (endpoint, "order.created", KEY, stored_payload, "webhook", False, "pending", 0, "", None)
        for endpoint in (every_topic, order_topics)
    ]
    assert all(m.next_attempt_at <= timezone.now() and m.created_at is not None for m in rows)
    # One delivery per message after commit, each bound to its own id (a partial, not a lambda).
    assert [(c.func, c.args, c.keywords) for c in callbacks] == [
        (tasks.outbox_deliver.delay, (), {"message_id": str(m.id)}) for m in published
    ]


@pytest.mark.django_db
def test_publish_many_fans_out_items_with_one_read_and_one_insert(django_assert_num_queries):
    order_topics = WebhookEndpointFactory(topics=["order.*"])
    cancellations = WebhookEndpointFactory(topics=["order.canceled"])

    with django_assert_num_queries(2):
        published = outbox_publish_many(
            items=[("order.created", {"n": 1}), ("order.canceled", {"n": 2}), ("invoice.issued", {"n": 3})],
            key=KEY,
        )

    assert [(m.topic, m.endpoint, m.payload, m.key) for m in published] == [
        ("order.created", order_topics, {"n": 1}, KEY),
        ("order.canceled", order_topics, {"n": 2}, KEY),
        ("order.canceled", cancellations, {"n": 2}, KEY),
    ]
    assert sorted(OutboxMessage.objects.values_list("topic", "endpoint_id", "payload")) == sorted(
        (m.topic, m.endpoint_id, m.payload) for m in published
    )
    assert len({m.id for m in published}) == 3


@pytest.mark.django_db
def test_publish_without_subscribers_writes_nothing(django_assert_num_queries, django_capture_on_commit_callbacks):
    WebhookEndpointFactory(topics=["invoice.*"])

    with django_assert_num_queries(1), django_capture_on_commit_callbacks() as callbacks:
        published = outbox_publish(topic="order.created", payload={}, key=KEY)

    assert published == []
    assert callbacks == []
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_test_order_messages_skip_endpoints_that_exclude_test_orders():
    sandbox = WebhookEndpointFactory(include_test_orders=True)
    production = WebhookEndpointFactory(include_test_orders=False)

    test_messages = outbox_publish(topic="order.created", payload={}, key="ORD-2026-000002", is_test=True)
    real_messages = outbox_publish(topic="order.created", payload={}, key=KEY)

    assert [(m.endpoint, m.is_test) for m in test_messages] == [(sandbox, True)]
    assert sorted((m.endpoint_id, m.is_test) for m in real_messages) == [(sandbox.id, False), (production.id, False)]
    assert sorted(OutboxMessage.objects.values_list("key", "endpoint_id", "is_test")) == [
        (KEY, sandbox.id, False),
        (KEY, production.id, False),
        ("ORD-2026-000002", sandbox.id, True),
    ]


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused():
    WebhookEndpointFactory()

    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox_publish(topic="order.created", payload={}, key=KEY)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox_publish_many(items=[("order.created", {})], key=KEY)

    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("topic", "payload", "key", "code"),
    [
        ("", {}, KEY, "invalid_topic"),
        ("x" * 101, {}, KEY, "invalid_topic"),
        ("order.created", ["not", "a", "dict"], KEY, "invalid_payload"),
        ("order.created", {}, "K" * 101, "invalid_key"),
    ],
)
def test_publish_refuses_bad_topics_payloads_and_keys(topic, payload, key, code):
    WebhookEndpointFactory()

    with pytest.raises(ValidationError) as exc_info:
        outbox_publish(topic=topic, payload=payload, key=key)

    assert exc_info.value.code == code
    assert OutboxMessage.objects.count() == 0
