from celery import shared_task

from oms.core.actors import get_system_user
from oms.core.logging import set_order
from orders import services


@shared_task(name="orders.tasks.orders_complete_due", acks_late=True)
def orders_complete_due() -> int:
    """Close delivered orders whose return window has elapsed. Safe to run twice."""
    set_order(None)
    return services.orders_complete_due(actor=get_system_user())
