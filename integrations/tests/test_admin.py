import pytest
from django.contrib import admin, messages
from django.contrib.admin.utils import lookup_field
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from integrations.admin import OutboxMessageAdmin, TimeBoxedCountPaginator
from integrations.models import OutboxMessage
from integrations.services import REPLAY_PERMISSION, DeliveryOutcome, outbox_deliver, outbox_publish
from integrations.tests.factories import UserFactory, WebhookEndpointFactory

KEY = "ORD-2026-000001"
CHANGELIST = "/admin/integrations/outboxmessage/"


def _request(user, method="get", data=None):
    request = getattr(RequestFactory(), method)(CHANGELIST, data or {})
    request.user = user
    request._messages = CookieStorage(request)
    return request


def _model_admin() -> OutboxMessageAdmin:
    return OutboxMessageAdmin(OutboxMessage, admin.site)


@pytest.mark.django_db
def test_outbox_admin_is_read_only_and_offers_replay_only_with_the_permission():
    viewer = UserFactory(permissions=["integrations.view_outboxmessage"])
    replayer = UserFactory(permissions=["integrations.view_outboxmessage", REPLAY_PERMISSION])
    superuser = UserFactory(is_superuser=True)
    model_admin = _model_admin()

    assert list(model_admin.get_actions(_request(viewer))) == []
    assert list(model_admin.get_actions(_request(replayer))) == ["replay_selected"]
    for user in (viewer, replayer, superuser):
        request = _request(user)
        assert (
            model_admin.has_view_permission(request),
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request),
        ) == (True, False, False, False)


@pytest.mark.django_db
@override_settings(OMS_OUTBOX_MAX_ATTEMPTS=1)
def test_replay_action_replays_dead_messages_and_reports_the_others(receiver):
    WebhookEndpointFactory(url=receiver.url)
    [dead] = outbox_publish(topic="order.created", payload={}, key=KEY)
    [pending] = outbox_publish(topic="order.canceled", payload={}, key=KEY)
    receiver.fail_next(1)
    assert outbox_deliver(message_id=dead.id) == DeliveryOutcome.DEAD
    replayer = UserFactory(permissions=["integrations.view_outboxmessage", REPLAY_PERMISSION])
    request = _request(replayer, "post")

    _model_admin().replay_selected(request, OutboxMessage.objects.filter(pk__in=[dead.pk, pending.pk]))

    assert [(m.level, m.message) for m in messages.get_messages(request)] == [
        (messages.SUCCESS, "1 message replayed."),
        (messages.ERROR, "1 message not replayed: This message is already waiting for delivery."),
    ]
    assert sorted(OutboxMessage.objects.values_list("topic", "status", "attempts", "replayed_by")) == [
        ("order.canceled", "pending", 0, None),
        ("order.created", "pending", 0, replayer.pk),
    ]


@pytest.mark.django_db
def test_replay_action_turns_a_refusal_into_an_error_message():
    WebhookEndpointFactory()
    [message] = outbox_publish(topic="order.created", payload={}, key=KEY)
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD, attempts=8)
    viewer = UserFactory(permissions=["integrations.view_outboxmessage"])
    request = _request(viewer, "post")

    _model_admin().replay_selected(request, OutboxMessage.objects.all())

    assert [(m.level, m.message) for m in messages.get_messages(request)] == [
        (messages.ERROR, "1 message not replayed: You are not allowed to replay outbox messages."),
    ]
    assert list(OutboxMessage.objects.values_list("status", "attempts")) == [("dead", 8)]


def _changelist_queries(user, params=None) -> tuple[int, list[OutboxMessage]]:
    model_admin = _model_admin()
    user.get_all_permissions()  # the permission cache, loaded once per request in real life
    with CaptureQueriesContext(connection) as queries:
        changelist = model_admin.get_changelist_instance(_request(user, data=params))
        rows = list(changelist.result_list)
        for row in rows:
            for name in model_admin.list_display:
                lookup_field(name, row, model_admin)
    return len(queries), rows


@pytest.mark.django_db
def test_outbox_changelist_runs_a_constant_number_of_queries_and_finds_by_key_or_id():
    endpoints = [WebhookEndpointFactory(), WebhookEndpointFactory()]
    viewer = UserFactory(permissions=["integrations.view_outboxmessage"])
    outbox_publish(topic="order.created", payload={}, key=KEY)
    few_queries, few_rows = _changelist_queries(viewer)
    for n in range(10):
        outbox_publish(topic=f"order.event_{n}", payload={}, key=f"ORD-2026-{n:06d}")
    many_queries, many_rows = _changelist_queries(viewer)

    assert (len(few_rows), len(many_rows)) == (len(endpoints), 11 * len(endpoints))
    assert few_queries == many_queries == 7  # topics, time-boxed count (5 with its savepoint), page
    _, by_key = _changelist_queries(viewer, {"q": "ORD-2026-000003"})
    assert {(m.topic, m.key) for m in by_key} == {("order.event_3", "ORD-2026-000003")}
    wanted = many_rows[0]
    _, by_id = _changelist_queries(viewer, {"q": str(wanted.id)})
    assert [m.id for m in by_id] == [wanted.id]
    _, by_topic = _changelist_queries(viewer, {"topic": "order.event_7", "status": "pending"})
    assert {m.topic for m in by_topic} == {"order.event_7"} and len(by_topic) == 2


@pytest.mark.django_db
def test_changelist_count_falls_back_to_the_planner_estimate_when_counting_is_slow():
    WebhookEndpointFactory()
    for n in range(20):
        outbox_publish(topic="order.created", payload={}, key=f"ORD-2026-{n:06d}")
    # Each row costs 10 ms to count: 200 ms in all, over a 50 ms budget.
    slow = OutboxMessage.objects.extra(where=["pg_sleep(0.01)::text = ''"]).order_by("pk")
    fast = TimeBoxedCountPaginator(OutboxMessage.objects.order_by("pk"), 10)
    timed_out = TimeBoxedCountPaginator(slow, 10)
    timed_out.timeout_ms = 50

    assert fast.count == 20
    assert timed_out.count == timed_out.estimated_count()
    assert timed_out.count >= 1
    assert OutboxMessage.objects.count() == 20  # the transaction is still usable afterwards
