import fnmatch
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oms.core.history import AuditHistory


def generate_webhook_secret() -> str:
    return secrets.token_hex(32)


class WebhookEndpoint(models.Model):
    """A receiver of outbox messages over HTTPS, signed with its own secret."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(
        _("signing secret"),
        max_length=255,
        default=generate_webhook_secret,
        help_text=_("Key of the HMAC-SHA256 signature sent in the X-OMS-Signature header."),
    )
    topics = models.JSONField(
        _("topics"),
        default=list,
        blank=True,
        help_text=_('Topic patterns such as ["order.*", "shipment.created"]. Empty: every topic.'),
    )
    is_active = models.BooleanField(_("active"), default=True)
    include_test_orders = models.BooleanField(
        _("include test orders"), default=False, help_text=_("Also send messages about test orders.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = AuditHistory()

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.topics, list) or not all(isinstance(t, str) and t.strip() for t in self.topics):
            raise ValidationError({"topics": _('A list of topic patterns, for example ["order.*"].')})

    def subscribes_to(self, topic: str) -> bool:
        return not self.topics or any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

    def accepts(self, *, topic: str, is_test: bool) -> bool:
        return self.subscribes_to(topic) and (self.include_test_orders or not is_test)


class OutboxMessage(models.Model):
    """One message for one destination, written in the transaction of the change it reports.

    A queue table: rows are appended by `outbox_publish`, their delivery state is updated by
    `outbox_deliver`, and they are never deleted by the code (the id is what receivers
    deduplicate on, and the dead letters are the cockpit's evidence).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        DEAD = "dead", _("Dead-lettered")

    class Destination(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")

    # The stable message id: the same on every retry and replay, sent to receivers.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(_("topic"), max_length=100, db_index=True)
    key = models.CharField(_("key"), max_length=100, blank=True, db_index=True)
    payload = models.JSONField(_("payload"), default=dict, encoder=DjangoJSONEncoder)
    # null: an internal destination that needs no endpoint. PROTECT: messages outlive endpoints
    # (an endpoint that has messages is deactivated, not deleted).
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="outbox_messages",
    )
    destination = models.CharField(
        _("destination"), max_length=32, choices=Destination.choices, default=Destination.WEBHOOK
    )
    is_test = models.BooleanField(_("test"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Indexed by the partial index below: only pending rows are ever looked up by it.
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    replayed_at = models.DateTimeField(_("replayed at"), null=True, blank=True)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("replayed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        permissions = [("replay_outboxmessage", _("Can replay outbox messages"))]
        indexes = [
            # The sweeper's query: pending and due, oldest first.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="outbox_due_pending_idx"),
            # The dead-letter queue the cockpit shows, newest first.
            models.Index(fields=["-created_at"], condition=Q(status="dead"), name="outbox_dead_letter_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="outbox_delivered_has_delivered_at",
            ),
        ]

    def __str__(self) -> str:
        return " ".join(part for part in (self.topic, self.key, f"[{self.id}]") if part)


class Notification(models.Model):
    """A message to a customer (email), queued in the change's transaction and sent after a short
    grouping delay: what happens to one order in that window (three parcels dispatched at once)
    is merged into one message by its `group_key`."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    kind = models.CharField(_("kind"), max_length=40, db_index=True)
    channel = models.CharField(_("channel"), max_length=12, default="email")
    recipient = models.CharField(_("recipient"), max_length=254)
    locale = models.CharField(_("locale"), max_length=8, default="en")
    order_number = models.CharField(_("order"), max_length=32, blank=True, db_index=True)
    group_key = models.CharField(_("group key"), max_length=120)
    data = models.JSONField(_("data"), default=dict, encoder=DjangoJSONEncoder)
    is_test = models.BooleanField(_("test"), default=False)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    send_after = models.DateTimeField(_("send after"), default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body = models.TextField(_("body"), blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["send_after"], condition=Q(status="pending"), name="notification_due_idx"),
        ]
        constraints = [
            # One open message per group: later events of the window merge into it.
            models.UniqueConstraint(
                fields=["group_key"], condition=Q(status="pending"), name="uniq_pending_notification_group"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient}"


class NotificationStop(models.Model):
    """No more customer messages about one order (it was canceled), but the kinds it keeps.

    Recorded in the transaction of the change by the app that owns the order (which skips what is
    pending at the same moment) and read when a message is sent, so that a message queued later is
    skipped too: the sender never reads the order itself. Staff alerts are never stopped."""

    order_number = models.CharField(_("order"), max_length=32, unique=True)
    reason = models.CharField(_("reason"), max_length=255)
    keep_kinds = models.JSONField(_("kinds still sent"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("notification stop")
        verbose_name_plural = _("notification stops")

    def __str__(self) -> str:
        return f"{self.order_number}: {self.reason}"
