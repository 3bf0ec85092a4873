"""Thin Celery wrappers around the outbox and notification services. Safe to redeliver: the service decides."""

from celery import shared_task

from integrations import services


@shared_task(name="integrations.tasks.outbox_deliver", ignore_result=True)
def outbox_deliver(message_id: str) -> str:
    # A redelivered task finds the message delivered, not yet due, or locked, and does nothing.
    return str(services.outbox_deliver(message_id=message_id))


@shared_task(name="integrations.tasks.outbox_dispatch", ignore_result=True)
def outbox_dispatch(limit: int = 100) -> int:
    return services.outbox_dispatch(limit=limit)


@shared_task(name="integrations.tasks.notifications_send_due", ignore_result=True)
def notifications_send_due(limit: int = 200) -> int:
    # Each message is sent under its own row lock: overlapping beats never send one twice.
    return services.notifications_send_due(limit=limit)
