from celery import shared_task

from oms.core.idempotency import idempotency_purge as idempotency_purge_service


@shared_task(name="oms.core.tasks.idempotency_purge")
def idempotency_purge() -> int:
    return idempotency_purge_service()
