"""The transactional outbox: publish in the caller's transaction, deliver at least once after it.

`outbox_publish` writes one `OutboxMessage` per matching destination in the same transaction as
the change it reports, so a rolled-back change never reaches anyone and a committed one is never
lost. Delivery is enqueued on commit; `outbox_dispatch` (Celery beat) sweeps what a crash between
commit and enqueue, or a failed attempt, left pending.

Delivery locks the message row (`FOR UPDATE SKIP LOCKED`) for the whole attempt, so a message is
sent by one worker at a time and never again once delivered. At least once, not exactly once: a
receiver that answered 2xx while the commit failed gets the message again, with the same id.
"""

import datetime
import enum
import functools
import logging
import random
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from integrations import tasks
from integrations.adapters.webhooks import webhook_deliver
from integrations.models import OutboxMessage, WebhookEndpoint
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.logging import bind_order

logger = logging.getLogger(__name__)

REPLAY_PERMISSION = "integrations.replay_outboxmessage"
LAST_ERROR_MAX_LENGTH = 2000

# destination -> handler(message); a handler returns on success and raises on any failure.
DESTINATION_HANDLERS: dict[str, Callable[[OutboxMessage], None]] = {
    OutboxMessage.Destination.WEBHOOK: webhook_deliver,
}


class DeliveryOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD = "dead"
    # Not found, not pending (already delivered or dead), not yet due, or being delivered right
    # now by another worker (row locked): nothing was sent.
    SKIPPED = "skipped"


def outbox_publish(*, topic: str, payload: dict, key: str = "", is_test: bool = False) -> list[OutboxMessage]:
    return outbox_publish_many(items=[(topic, payload)], key=key, is_test=is_test)


def outbox_publish_many(*, items: list[tuple[str, dict]], key: str = "", is_test: bool = False) -> list[OutboxMessage]:
    """One message per (item, active endpoint that subscribes to its topic). Two queries.

    Must run inside the caller's transaction: that is what ties the messages to the change.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_publish must be called inside the transaction of the change it reports.")
    for topic, payload in items:
        if not isinstance(topic, str) or not topic or len(topic) > 100:
            raise ValidationError(
                "An outbox topic is a non-empty string of at most 100 characters.", code="invalid_topic"
            )
        if not isinstance(payload, dict):
            raise ValidationError("An outbox payload is a JSON object.", code="invalid_payload")
    key = key or ""
    if len(key) > 100:
        raise ValidationError("An outbox key is at most 100 characters.", code="invalid_key")
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True).order_by("pk"))
    messages = [
        OutboxMessage(
            topic=topic,
            key=key,
            payload=payload,
            endpoint=endpoint,
            destination=OutboxMessage.Destination.WEBHOOK,
            is_test=is_test,
        )
        for topic, payload in items
        for endpoint in endpoints
        if endpoint.accepts(topic=topic, is_test=is_test)
    ]
    if not messages:
        return []
    OutboxMessage.objects.bulk_create(messages)
    for message in messages:
        transaction.on_commit(functools.partial(tasks.outbox_deliver.delay, message_id=str(message.id)))
    return messages


def outbox_backoff(*, attempts: int) -> datetime.timedelta:
    """Delay before the next attempt after `attempts` failures: exponential, capped, jittered.

    "Equal jitter": between half and all of the exponential delay, so retries of messages that
    failed together spread out, and each delay is still longer than the one before (until the cap).
    """
    base = settings.OMS_OUTBOX_BACKOFF_BASE_SECONDS
    cap = settings.OMS_OUTBOX_BACKOFF_MAX_SECONDS
    ceiling = min(cap, base * 2 ** min(max(attempts - 1, 0), 32))
    return datetime.timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))


def outbox_deliver(*, message_id) -> DeliveryOutcome:
    """Make one delivery attempt of one message if it is pending, due and not being delivered."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=message_id, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=timezone.now())
            .first()
        )
        if message is None:
            return DeliveryOutcome.SKIPPED
        with bind_order(message.key if message.topic.startswith("order.") else None):
            return _attempt(message)


def _attempt(message: OutboxMessage) -> DeliveryOutcome:
    # Runs with the message row locked, inside outbox_deliver's transaction.
    log_context = {
        "message_id": str(message.id),
        "topic": message.topic,
        "key": message.key,
        "destination": message.destination,
        "endpoint": message.endpoint.name if message.endpoint else None,
    }
    message.attempts += 1
    handler = DESTINATION_HANDLERS.get(message.destination)
    try:
        if handler is None:
            raise LookupError(f"No handler for destination {message.destination!r}.")
        # A savepoint: a handler that touches the database and fails cannot break this transaction.
        with transaction.atomic():
            handler(message)
    except Exception as exc:  # any failure of the destination is a failed attempt
        message.last_error = f"{type(exc).__name__}: {exc}"[:LAST_ERROR_MAX_LENGTH]
        if message.attempts >= settings.OMS_OUTBOX_MAX_ATTEMPTS:
            message.status = OutboxMessage.Status.DEAD
            outcome = DeliveryOutcome.DEAD
            logger.error(
                "outbox message dead-lettered",
                extra={**log_context, "attempts": message.attempts, "error": message.last_error},
            )
        else:
            message.next_attempt_at = timezone.now() + outbox_backoff(attempts=message.attempts)
            outcome = DeliveryOutcome.RETRY_SCHEDULED
            logger.warning(
                "outbox delivery failed, retry scheduled",
                extra={
                    **log_context,
                    "attempts": message.attempts,
                    "next_attempt_at": message.next_attempt_at.isoformat(),
                    "error": message.last_error,
                },
            )
        message.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        return outcome
    message.status = OutboxMessage.Status.DELIVERED
    message.delivered_at = timezone.now()
    message.save(update_fields=["attempts", "status", "delivered_at"])
    logger.info("outbox message delivered", extra={**log_context, "attempts": message.attempts})
    return DeliveryOutcome.DELIVERED


def outbox_dispatch(*, limit: int = 100) -> int:
    """Attempt the due pending messages, oldest due first. Returns how many were delivered.

    Safe to run concurrently with itself and with the on-commit tasks: each message is attempted
    under its own row lock, and one that another worker holds is skipped.
    """
    due_ids = list(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    delivered = 0
    for message_id in due_ids:
        if outbox_deliver(message_id=message_id) == DeliveryOutcome.DELIVERED:
            delivered += 1
    return delivered


@transaction.atomic
def outbox_replay(*, message_id, actor) -> OutboxMessage:
    """Put a dead (or delivered) message back in the queue, with its attempts reset, and send it."""
    if actor is None or not actor.has_perm(REPLAY_PERMISSION):
        raise PermissionDeniedError("You are not allowed to replay outbox messages.", code="outbox_replay_forbidden")
    # Waits for an attempt in progress on this message to finish: its outcome decides what to do.
    message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
    if message is None:
        raise NotFoundError("No such outbox message.", code="outbox_message_not_found", extra={"id": str(message_id)})
    if message.status == OutboxMessage.Status.PENDING:
        raise ConflictError(
            "This message is already waiting for delivery.",
            code="outbox_message_pending",
            extra={"id": str(message.id)},
        )
    previous_status, previous_attempts = message.status, message.attempts
    now = timezone.now()
    message.status = OutboxMessage.Status.PENDING
    message.attempts = 0
    message.next_attempt_at = now
    message.delivered_at = None
    message.replayed_at = now
    message.replayed_by = actor
    message.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at", "replayed_at", "replayed_by"])
    transaction.on_commit(functools.partial(tasks.outbox_deliver.delay, message_id=str(message.id)))
    logger.info(
        "outbox message replayed",
        extra={
            "message_id": str(message.id),
            "topic": message.topic,
            "key": message.key,
            "actor": actor.get_username(),
            "actor_id": actor.pk,
            "previous_status": previous_status,
            "previous_attempts": previous_attempts,
        },
    )
    return message


# --- customer notifications -------------------------------------------------------------------


def notification_queue(
    *,
    kind: str,
    recipient: str,
    group_key: str,
    data: dict,
    locale: str = "en",
    order_number: str = "",
    is_test: bool = False,
    merge: tuple[str, ...] = (),
):
    """Queue a customer message in the caller's transaction, merged into the pending one of its group.

    `merge` names list-valued keys of `data` that accumulate (the parcels of one dispatch); the other
    keys take the latest value. Sent by `notifications_send_due` once `send_after` has passed.
    """
    from integrations.models import Notification

    if not connection.in_atomic_block:
        raise RuntimeError("notification_queue must be called inside the transaction of the change it reports.")
    pending = Notification.objects.select_for_update().filter(group_key=group_key, status="pending").first()
    if pending is None:
        return Notification.objects.create(
            kind=kind,
            recipient=recipient,
            group_key=group_key,
            data=data,
            locale=locale,
            order_number=order_number,
            is_test=is_test,
            send_after=timezone.now() + datetime.timedelta(seconds=settings.OMS_NOTIFICATION_GROUP_SECONDS),
        )
    merged = dict(pending.data)
    for key, value in data.items():
        if key in merge:
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    pending.data = merged
    pending.kind = kind
    pending.save(update_fields=["data", "kind"])
    return pending
