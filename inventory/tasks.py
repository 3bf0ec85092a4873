import logging

from celery import shared_task

from inventory import services
from oms.core.actors import get_system_user

logger = logging.getLogger("inventory")


@shared_task(name="inventory.tasks.products_switch_off_expired", acks_late=True)
def products_switch_off_expired() -> list[str]:
    skus = services.products_switch_off_expired(actor=get_system_user())
    if skus:
        logger.info("switched off %d product(s) past their sell window: %s", len(skus), ", ".join(skus))
    return skus


@shared_task(name="inventory.tasks.coverage_alerts_refresh", acks_late=True)
def coverage_alerts_refresh() -> int:
    return len(services.coverage_alerts_refresh())
