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
import re
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime

from integrations import tasks
from integrations.adapters.sms import sms_send
from integrations.adapters.webhooks import webhook_deliver
from integrations.links import tracking_url_for_number
from integrations.models import Notification, NotificationStop, OutboxMessage, WebhookEndpoint
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
    channel: str = "email",
    phone: str | None = None,
):
    """Queue a customer message in the caller's transaction, merged into the pending one of its group.

    `merge` names list-valued keys of `data` that accumulate (the parcels of one dispatch); the other
    keys take the latest value. The merged message takes the new kind unless the pending one says
    more (NOTIFICATION_PRECEDENCE). A pending order confirmation (ABSORBED_KINDS) is absorbed by the
    next message about the order, whatever its group: confirmed then dispatched (or delayed) within
    the window is one message about the dispatch. Sent by `notifications_send_due` once
    `send_after` has passed.

    An email of a kind in SMS_KINDS about an order also queues a text message to `phone` (the
    customer's number in international form, "+33612345678", which the queuer reads from the order;
    none: no text message), grouped the same way in its own group.

    The data carries everything the message prints, so that sending it never reads the order: a
    parcel's `carrier_name` and `tracking_url` come with it (the tracking page's link is built from
    the order number).
    """

    if not connection.in_atomic_block:
        raise RuntimeError("notification_queue must be called inside the transaction of the change it reports.")
    if channel not in NOTIFICATION_CHANNELS:
        raise ValueError(f"Unknown notification channel {channel!r}.")
    if channel == "email" and kind in SMS_KINDS and order_number and phone:
        notification_queue(
            kind=kind,
            recipient=phone,
            group_key=f"sms:{group_key}"[:120],
            data=data,
            locale=locale,
            order_number=order_number,
            is_test=is_test,
            merge=merge,
            channel="sms",
        )
    pending = Notification.objects.select_for_update().filter(group_key=group_key, status="pending").first()
    if pending is None and order_number and kind not in ABSORBED_KINDS | STAFF_KINDS:
        # A confirmation still waiting is told by the next message about the order: one message.
        pending = (
            Notification.objects.select_for_update()
            .filter(
                order_number=order_number,
                channel=channel,
                recipient=recipient,
                kind__in=ABSORBED_KINDS,
                status=Notification.Status.PENDING,
            )
            .order_by("pk")
            .first()
        )
        if pending is not None:
            pending.group_key = group_key
    if pending is None:
        return Notification.objects.create(
            kind=kind,
            channel=channel,
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
    if NOTIFICATION_PRECEDENCE.get(kind, 1) >= NOTIFICATION_PRECEDENCE.get(pending.kind, 1):
        pending.kind = kind
    pending.save(update_fields=["data", "kind", "group_key"])
    return pending


def notifications_skip_for_order(*, order_number: str, reason: str, keep_kinds=frozenset()) -> int:
    """Mark the order's pending customer messages skipped (with why), except the kinds in
    `keep_kinds` and the staff alerts. In the caller's transaction. Returns how many."""
    pending = list(
        Notification.objects.select_for_update()
        .filter(order_number=order_number, status=Notification.Status.PENDING)
        .exclude(kind__in={*keep_kinds, *STAFF_KINDS})
        .order_by("pk")
    )
    for notification in pending:
        notification.status = Notification.Status.SKIPPED
        notification.last_error = reason[:LAST_ERROR_MAX_LENGTH]
        notification.save(update_fields=["status", "last_error"])
    if pending:
        logger.info(
            "pending notifications skipped",
            extra={"order": order_number, "count": len(pending), "reason": reason},
        )
    return len(pending)


def notifications_stop_for_order(*, order_number: str, reason: str, keep_kinds=frozenset()) -> NotificationStop:
    """From now on, customer messages about the order are skipped when sent (with `reason`), but
    the kinds in `keep_kinds` and the staff alerts. In the caller's transaction (the cancellation's):
    a message queued later is stopped too, and the sender never reads the order. Idempotent."""
    stop, _ = NotificationStop.objects.get_or_create(
        order_number=order_number,
        defaults={"reason": reason[:255], "keep_kinds": sorted(keep_kinds)},
    )
    return stop


# --- customer notifications: sending ----------------------------------------------------------

NOTIFICATION_MAX_ATTEMPTS = 5
NOTIFICATION_RETRY_BASE_SECONDS = 60
NOTIFICATION_RETRY_MAX_SECONDS = 3600
SEND_NOW_PERMISSION = "integrations.change_notification"
# Each kind has templates/notifications/<kind>_subject.txt, <kind>.txt and <kind>.html; the kinds in
# SMS_KINDS also <kind>.sms.txt (short, plain text).
NOTIFICATION_KINDS = frozenset(
    {
        "order_confirmed",
        "parcels_dispatched",
        "delivery_delayed",
        "ready_for_pickup",
        "pickup_reminder",
        "order_delivered",
        "order_canceled",
        "seller_cancellation",
        "return_approved",
        "return_received",
        "refund_processed",
        "rule_alert",
    }
)
NOTIFICATION_CHANNELS = ("email", "sms")
# What a customer wants on their phone too: a parcel on its way, something to collect, a delay.
SMS_KINDS = frozenset({"parcels_dispatched", "ready_for_pickup", "pickup_reminder", "delivery_delayed"})
# Messages to staff (automation rules), not to the customer: never stopped by a cancellation.
STAFF_KINDS = frozenset({"rule_alert"})
# Still sent about a canceled order: the cancellation itself and the money going back.
CANCELED_ORDER_KINDS = frozenset({"order_canceled", "seller_cancellation", "refund_processed"})
# Pending messages that the next message about the same order (any group) takes over.
ABSORBED_KINDS = frozenset({"order_confirmed"})
# When two kinds meet in one group, the higher one names the message (equal: the latest).
NOTIFICATION_PRECEDENCE = {"order_confirmed": 0, "order_canceled": 2, "seller_cancellation": 2}


class NotificationOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    # A test order's message, or one about a canceled order: marked skipped (last_error says why).
    SKIPPED = "skipped"
    # Not found, not pending, not yet due, or being sent right now by another worker: nothing done.
    UNTOUCHED = "untouched"


def notification_backoff(*, attempts: int) -> datetime.timedelta:
    """Delay before the next attempt after `attempts` failures: 1, 2, 4, 8 minutes…, at most an hour."""
    seconds = NOTIFICATION_RETRY_BASE_SECONDS * 2 ** min(max(attempts - 1, 0), 16)
    return datetime.timedelta(seconds=min(seconds, NOTIFICATION_RETRY_MAX_SECONDS))


def _as_datetime(value) -> datetime.datetime | None:

    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str) and value:
        return parse_datetime(value)
    return None


def notification_render(notification) -> tuple[str, str, str]:
    """(subject, plain text body, HTML body), in the notification's language.

    An email links the customer's tracking page (absolute, from settings.OMS_PUBLIC_URL). A text
    message is ("", its text, ""): <kind>.sms.txt, on as few lines as it takes.

    A parcel prints the `carrier_name` it was queued with (a message queued without one prints the
    carrier's code)."""
    if notification.kind not in NOTIFICATION_KINDS:
        raise LookupError(f"No templates for notification kind {notification.kind!r}.")
    channel = getattr(notification, "channel", "email") or "email"
    if channel == "sms" and notification.kind not in SMS_KINDS:
        raise LookupError(f"No text message for notification kind {notification.kind!r}.")
    data = notification.data or {}
    order_number = notification.order_number or str(data.get("order") or "")
    parcels = [
        {
            **parcel,
            "carrier_name": parcel.get("carrier_name") or parcel.get("carrier") or "",
            "items": parcel.get("items") or [],
        }
        for parcel in data.get("parcels") or []
    ]
    context = {
        "order_number": order_number,
        "parcels": parcels,
        "parcel_count": len(parcels),
        "items": data.get("items") or [],
        "store": data.get("store") or "",
        "expires_at": _as_datetime(data.get("expires_at")),
        "promised_at": _as_datetime(data.get("promised_at")),
        # seller_cancellation: what goes back to the customer (billing's refunds).
        "refund_amount": data.get("refund_amount") or "",
        "compensation_amount": data.get("compensation_amount") or "",
        "currency": data.get("currency") or "",
        # order_confirmed (kept under its own key: a later message of the burst takes it over).
        "confirmation": data.get("confirmation") or {},
        # order_canceled.
        "refund_due": data.get("refund_due") or "",
        # order_delivered: every parcel delivered, or some of them.
        "complete": bool(data.get("complete", True)),
        # refund_processed (also merged into a cancellation or a return): [{amount, currency, method}].
        "refunds": data.get("refunds") or [],
        # return_approved, return_received.
        "return_number": data.get("return") or "",
        "return_tracking_number": data.get("return_tracking_number") or "",
        "return_tracking_url": data.get("return_tracking_url") or "",
        "return_received": bool(data.get("return_received")),
        # rule_alert (staff): the rule and the orders it fired on in the window.
        "rule": data.get("rule") or "",
        "description": data.get("description") or "",
        "orders": list(dict.fromkeys(data.get("orders") or [])),
        "tracking_page_url": tracking_url_for_number(order_number)
        if order_number and notification.kind not in STAFF_KINDS
        else "",
    }
    languages = {code for code, _name in settings.LANGUAGES}
    language = notification.locale if notification.locale in languages else settings.LANGUAGE_CODE
    with translation.override(language):
        if channel == "sms":
            text = render_to_string(f"notifications/{notification.kind}.sms.txt", context)
            return "", "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip()), ""
        subject = render_to_string(f"notifications/{notification.kind}_subject.txt", context)
        text = render_to_string(f"notifications/{notification.kind}.txt", context)
        html = render_to_string(f"notifications/{notification.kind}.html", context)
    # Template tags leave blank lines behind: at most one empty line in a row, none at the ends.
    text = re.sub(r"\n[ \t]*(\n[ \t]*)+\n", "\n\n", text).strip() + "\n"
    return " ".join(subject.split())[:255], text, html


def _stop_reason(notification) -> str:
    """Why a customer message about a stopped order is not sent ("" when it goes)."""
    if not notification.order_number or notification.kind in STAFF_KINDS:
        return ""
    stop = NotificationStop.objects.filter(order_number=notification.order_number).first()
    if stop is None or notification.kind in stop.keep_kinds:
        return ""
    return stop.reason


def notification_send(*, notification_id, now=None, force: bool = False) -> NotificationOutcome:
    """One attempt at one message, under its row lock, in its own transaction.

    `force` (the cockpit's "send now") ignores `send_after` and also takes a failed message again.
    A message about a test order is marked skipped and never sent; so is a customer message about
    an order whose messages were stopped (canceled: notifications_stop_for_order), other than the
    kinds the stop keeps (the cancellation and its refunds).
    """

    now = now or timezone.now()
    statuses = [Notification.Status.PENDING, Notification.Status.FAILED] if force else [Notification.Status.PENDING]
    with transaction.atomic():
        candidates = Notification.objects.select_for_update(skip_locked=True).filter(
            pk=notification_id, status__in=statuses
        )
        if not force:
            candidates = candidates.filter(send_after__lte=now)
        notification = candidates.first()
        if notification is None:
            return NotificationOutcome.UNTOUCHED
        with bind_order(notification.order_number or None):
            return _notification_attempt(notification, now=now)


def _notification_attempt(notification, *, now) -> NotificationOutcome:
    # Runs with the row locked, inside notification_send's transaction.
    Status = type(notification).Status
    log_context = {
        "notification_id": notification.pk,
        "kind": notification.kind,
        "channel": notification.channel,
        "locale": notification.locale,
    }
    skip_reason = "Test order: never sent." if notification.is_test else _stop_reason(notification)
    if skip_reason:
        notification.status = Status.SKIPPED
        notification.last_error = skip_reason
        notification.save(update_fields=["status", "last_error"])
        logger.info("notification skipped", extra={**log_context, "reason": skip_reason})
        return NotificationOutcome.SKIPPED
    notification.attempts += 1
    try:
        subject, text, html = notification_render(notification)
        if notification.channel == "sms":
            sms_send(to=notification.recipient, body=text)
        else:
            email = EmailMultiAlternatives(
                subject=subject, body=text, from_email=settings.OMS_NOTIFICATION_FROM, to=[notification.recipient]
            )
            email.attach_alternative(html, "text/html")
            email.send()
    except Exception as exc:  # a template, the mail server or the SMS provider: a failed attempt either way
        notification.last_error = f"{type(exc).__name__}: {exc}"[:LAST_ERROR_MAX_LENGTH]
        if notification.attempts >= NOTIFICATION_MAX_ATTEMPTS:
            notification.status = Status.FAILED
            outcome = NotificationOutcome.FAILED
            logger.error(
                "notification failed",
                extra={**log_context, "attempts": notification.attempts, "error": notification.last_error},
            )
        else:
            notification.send_after = now + notification_backoff(attempts=notification.attempts)
            outcome = NotificationOutcome.RETRY_SCHEDULED
            logger.warning(
                "notification not sent, retry scheduled",
                extra={
                    **log_context,
                    "attempts": notification.attempts,
                    "send_after": notification.send_after.isoformat(),
                    "error": notification.last_error,
                },
            )
        notification.save(update_fields=["attempts", "last_error", "status", "send_after"])
        return outcome
    notification.status = Status.SENT
    notification.subject = subject
    notification.body = text
    notification.sent_at = now
    notification.save(update_fields=["attempts", "status", "subject", "body", "sent_at"])
    logger.info("notification sent", extra={**log_context, "attempts": notification.attempts})
    return NotificationOutcome.SENT


def notifications_send_due(*, now=None, limit: int = 200) -> int:
    """Send the pending messages whose grouping window has passed, oldest first. Returns how many were sent.

    Safe to run concurrently with itself: each message is sent under its own row lock, and one that
    another worker holds is skipped."""

    now = now or timezone.now()
    due_ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, send_after__lte=now)
        .order_by("send_after", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for notification_id in due_ids:
        if notification_send(notification_id=notification_id, now=now) == NotificationOutcome.SENT:
            sent += 1
    return sent


def notifications_send_now(*, notification_ids, actor) -> dict[NotificationOutcome, int]:
    """The cockpit's "send now": pending (due or not) and failed messages get one attempt each."""
    if actor is None or not actor.has_perm(SEND_NOW_PERMISSION):
        raise PermissionDeniedError(
            "You are not allowed to send customer notifications.", code="notification_send_forbidden"
        )
    outcomes: dict[NotificationOutcome, int] = {}
    for notification_id in notification_ids:
        outcome = notification_send(notification_id=notification_id, force=True)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes:
        logger.info(
            "notifications sent on demand",
            extra={"actor": actor.get_username(), "actor_id": actor.pk, **{str(k): v for k, v in outcomes.items()}},
        )
    return outcomes
