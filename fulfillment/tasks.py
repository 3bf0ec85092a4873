"""Thin Celery wrappers around fulfillment services."""

from celery import shared_task
from django.contrib.auth import get_user_model

from fulfillment import services
from oms.core.actors import get_system_user


@shared_task(acks_late=True)
def wave_render(*, wave_id: int, actor_id: int | None = None) -> None:
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    services.wave_render_pick_list(wave=wave_id, actor=actor or get_system_user())


@shared_task
def tracking_poll() -> int:
    return services.tracking_poll(actor=get_system_user())


@shared_task
def pickups_remind_and_expire() -> list[int]:
    return list(services.pickups_remind_and_expire(actor=get_system_user()))
