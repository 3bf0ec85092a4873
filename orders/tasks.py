from celery import shared_task

from oms.core.actors import get_system_user
from oms.core.logging import set_order
from orders import cases, services


@shared_task(name="orders.tasks.orders_complete_due", acks_late=True)
def orders_complete_due() -> int:
    """Close delivered orders whose return window has elapsed. Safe to run twice."""
    set_order(None)
    return services.orders_complete_due(actor=get_system_user())


@shared_task(
    name="orders.tasks.order_reallocate", acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5
)
def order_reallocate(*, order_id: int) -> None:
    """Source again an order that lost units (last-unit conflict). Idempotent."""
    services.order_reallocate(order=order_id, actor=get_system_user(), reason="Lost a last-unit conflict")


@shared_task(name="orders.tasks.cases_sweep", acks_late=True)
def cases_sweep() -> dict:
    """The time-based case detectors: SLA breaches, overdue invoices, dead letters. Safe to run twice."""
    set_order(None)
    return cases.cases_sweep(actor=get_system_user())
