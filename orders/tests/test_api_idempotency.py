"""Idempotency-Key on the write endpoints: replay, reuse with another body, in-flight duplicates."""

import datetime
import json
import threading
import time

import psycopg
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from oms.cockpit import roles
from oms.core.idempotency import idempotency_claim, request_fingerprint
from oms.core.models import IdempotencyRecord
from orders.choices import OrderEventType, OrderStatus
from orders.models import Order
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import (
    ORDERS_URL,
    error_of,
    post_action,
    row_counts,
    token_client,
)
from orders.tests.factories import make_user, order_payload
from orders.tests.states import order_in_state


def test_the_same_key_and_body_replay_the_first_response_byte_for_byte(api_client, channel):
    payload = order_payload()
    first = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    before = row_counts()

    again = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert again["Content-Type"] == "application/json"
    assert row_counts() == before
    assert Order.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.response_status, record.key) == (IdempotencyRecord.State.COMPLETED, 201, "k-1")


def test_the_same_json_with_other_key_order_and_spacing_is_the_same_request(api_client, channel):
    payload = order_payload()
    first = api_client.post(ORDERS_URL, json.dumps(payload), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    again = api_client.post(
        ORDERS_URL,
        json.dumps(payload, sort_keys=True, indent=2),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )

    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_refused_with_422_and_nothing_written(api_client, channel):
    api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    before = row_counts()

    response = api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert row_counts() == before
    assert Order.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_another_request(api_client, admin_user_role, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role)
    api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    response = post_action(api_client, order, "notes", {"body": "Gift wrap"}, HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert not order.notes.exists()


def test_the_same_key_from_another_client_is_independent(api_client, channel):
    other_client = token_client(make_user(roles.API_STORE_FRONT))
    mine = api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    theirs = other_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["number"] != theirs.json()["number"]
    assert not theirs.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2


def test_a_refused_request_is_replayed_too(api_client, channel):
    payload = order_payload(lines=[])
    first = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    again = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_a_key_longer_than_255_characters_is_refused(api_client, channel):
    response = api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_idempotency_key"
    assert Order.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_a_replayed_action_is_not_run_twice(admin_user_role, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=admin_user_role)
    payer = token_client(make_user(roles.API_PAYMENT_PROVIDER))
    body = {"amount": "10.00", "reference": "psp-77"}
    first = post_action(payer, order, "mark-paid", body, HTTP_IDEMPOTENCY_KEY="pay-77")

    again = post_action(payer, order, "mark-paid", body, HTTP_IDEMPOTENCY_KEY="pay-77")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    order.refresh_from_db()
    assert str(order.amount_paid) == "10.0000"
    assert order.events.filter(type=OrderEventType.PAYMENT_RECORDED).count() == 1


def test_a_replayed_cancel_answers_as_the_first_time_instead_of_409(api_client, admin_user_role, channel):
    order = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=admin_user_role)
    body = {"reason_code": "customer_request"}
    first = post_action(api_client, order, "cancel", body, HTTP_IDEMPOTENCY_KEY="cancel-1")

    again = post_action(api_client, order, "cancel", body, HTTP_IDEMPOTENCY_KEY="cancel-1")
    without_key = post_action(api_client, order, "cancel", body)

    assert (first.status_code, again.status_code, without_key.status_code) == (200, 200, 409)
    assert again.content == first.content
    assert order.events.filter(type=OrderEventType.CANCELED).count() == 1


def test_a_hold_replayed_keeps_its_201(admin_user_role, channel):
    order = order_in_state(OrderStatus.CONFIRMED, actor=admin_user_role)
    support = token_client(make_user(roles.SUPPORT_L1))
    body = {"reason": "address_check"}
    first = post_action(support, order, "hold", body, HTTP_IDEMPOTENCY_KEY="hold-1")

    again = post_action(support, order, "hold", body, HTTP_IDEMPOTENCY_KEY="hold-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert order.holds.count() == 1


# --- a first request still running ------------------------------------------------------------------


def _other_connection() -> psycopg.Connection:
    params = connection.settings_dict
    conninfo = {
        "dbname": params["NAME"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "host": params["HOST"],
        "port": params["PORT"],
    }
    return psycopg.connect(**{key: value for key, value in conninfo.items() if value}, connect_timeout=5)


def _wait_until_a_backend_waits_for_a_lock(monitor: psycopg.Connection, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (waiting,) = monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the first request never reached the lock")


@pytest.mark.django_db(transaction=True)
def test_the_same_key_while_the_first_request_runs_gets_409_then_the_first_response(api_user, channel):
    """A real first request, held inside order_create by a table lock, while its duplicate arrives.

    Another connection locks the orders table against inserts (SHARE mode), so the first request
    claims its key (committed at once), then waits at its INSERT of the order. Its duplicate finds
    the claim in progress and is told so. Once the lock goes, the first request finishes; a third
    try gets its response replayed.
    """
    payload = order_payload(external_id="shop-4004")
    body = json.dumps(payload)
    results = {}

    def first_request():
        try:
            response = token_client(api_user).post(
                ORDERS_URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="in-flight"
            )
            results["first"] = response
        finally:
            connection.close()

    blocker = _other_connection()
    monitor = _other_connection()
    monitor.autocommit = True
    try:
        blocker.execute("LOCK TABLE orders_order IN SHARE MODE")
        thread = threading.Thread(target=first_request)
        thread.start()
        _wait_until_a_backend_waits_for_a_lock(monitor)

        duplicate = token_client(api_user).post(
            ORDERS_URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="in-flight"
        )

        assert duplicate.status_code == 409
        assert error_of(duplicate)["code"] == "idempotency_request_in_progress"
        assert IdempotencyRecord.objects.get().state == IdempotencyRecord.State.IN_PROGRESS
    finally:
        blocker.rollback()
        blocker.close()
        monitor.close()
    thread.join(timeout=30)
    assert not thread.is_alive()

    first = results["first"]
    assert first.status_code == 201
    replay = token_client(api_user).post(
        ORDERS_URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="in-flight"
    )
    assert replay.status_code == 201
    assert replay.content == first.content
    assert Order.objects.count() == 1
    assert Order.objects.get().events.filter(type=OrderEventType.IMPORTED).count() == 1


def _claim_as_a_crashed_request(*, user, key: str, payload: dict, age_seconds: float) -> IdempotencyRecord:
    """The claim a first request made `age_seconds` ago before dying without an answer."""
    fingerprint = request_fingerprint(
        method="POST", path=ORDERS_URL, body=json.dumps(payload).encode(), content_type="application/json"
    )
    with time_machine.travel(timezone.now() - datetime.timedelta(seconds=age_seconds)):
        record, replay = idempotency_claim(
            client=user, key=key, method="POST", path=ORDERS_URL, fingerprint=fingerprint
        )
    assert replay is None
    return record


def test_a_recent_claim_without_an_answer_is_in_progress(api_client, api_user, channel):
    payload = order_payload()
    _claim_as_a_crashed_request(user=api_user, key="k-5", payload=payload, age_seconds=1)

    response = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-5")

    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_request_in_progress"
    assert Order.objects.count() == 0


def test_a_stale_claim_is_taken_over(api_client, api_user, channel):
    payload = order_payload()
    record = _claim_as_a_crashed_request(
        user=api_user, key="k-6", payload=payload, age_seconds=settings.OMS_IDEMPOTENCY_LOCK_SECONDS + 5
    )

    response = api_client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-6")

    assert response.status_code == 201
    assert Order.objects.count() == 1
    record.refresh_from_db()
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.response_status == 201
    assert bytes(record.response_body) == response.content


def test_a_stale_claim_still_refuses_another_body(api_client, api_user, channel):
    _claim_as_a_crashed_request(
        user=api_user, key="k-7", payload=order_payload(), age_seconds=settings.OMS_IDEMPOTENCY_LOCK_SECONDS + 5
    )

    response = api_client.post(ORDERS_URL, order_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k-7")

    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 0
