from django.db.models import QuerySet

from integrations.models import OutboxMessage


def outbox_message_list(*, status: str | None = None, topic: str | None = None, key: str | None = None) -> QuerySet:
    messages = OutboxMessage.objects.select_related("endpoint", "replayed_by").order_by("-created_at")
    if status:
        messages = messages.filter(status=status)
    if topic:
        messages = messages.filter(topic=topic)
    if key:
        messages = messages.filter(key=key)
    return messages


def outbox_dead_letter_count() -> int:
    """For the cockpit's dashboard: served by the partial index on dead messages."""
    return OutboxMessage.objects.filter(status=OutboxMessage.Status.DEAD).count()
