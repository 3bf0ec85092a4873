"""Thin Celery wrappers around the outbox services. Safe to redeliver: the service decides."""

from celery import shared_task

from integrations import services


@shared_task(name="integrations.tasks.outbox_deliver", ignore_result=True)
def outbox_deliver(message_id: str) -> str:
    # A redelivered task finds the message delivered, not yet due, or locked, and does nothing.
    return str(services.outbox_deliver(message_id=message_id))


@shared_task(name="integrations.tasks.outbox_dispatch", ignore_result=True)
def outbox_dispatch(limit: int = 100) -> int:
    return services.outbox_dispatch(limit=limit)
