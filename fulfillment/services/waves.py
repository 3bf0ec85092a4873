"""Waves: pending parcels of one location start picking together, and their pick list is printed.

A large pick list renders in the background (`fulfillment.tasks.wave_render`) while the cockpit
polls the wave's render status.
"""

import datetime
import functools
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from fulfillment import tasks
from fulfillment.choices import WaveRender
from fulfillment.documents import PickListData, PickRow, pick_list_html, render_pdf
from fulfillment.models import Shipment, ShipmentLine, Wave
from fulfillment.services._common import S, _publish, _run, _save
from inventory.models import StockItem
from oms.core.errors import ValidationError
from oms.core.history import stamp
from oms.core.numbering import format_number, next_unique
from oms.core.permissions import require_perm
from orders.models import OrderHold

logger = logging.getLogger(__name__)


@transaction.atomic
def wave_create(
    *,
    location,
    actor,
    ship_by_before: datetime.datetime | None = None,
    carrier: str = "",
    max_priority: int | None = None,
    shipment_ids=None,
    limit: int = 200,
) -> Wave:
    """Pending shipments of one location (by cut-off, priority, carrier, or chosen ones) start picking together.

    Shipments of orders on hold are left out; rows another wave is taking right now are skipped.
    """
    require_perm(actor, "fulfillment.add_wave", "create waves")
    if not 1 <= int(limit) <= 2000:
        raise ValidationError("Bad wave size.", fields={"limit": ["Between 1 and 2000 shipments."]})
    candidates = Shipment.objects.filter(location=location, status=S.PENDING, wave__isnull=True, is_test=False)
    candidates = candidates.exclude(order__in=OrderHold.objects.filter(released_at__isnull=True).values("order_id"))
    criteria = {"limit": int(limit)}
    if shipment_ids is not None:
        candidates = candidates.filter(pk__in=list(shipment_ids))
        criteria["shipments"] = sorted(int(pk) for pk in shipment_ids)
    if ship_by_before is not None:
        candidates = candidates.filter(ship_by__lte=ship_by_before)
        criteria["ship_by_before"] = ship_by_before.isoformat()
    if carrier:
        candidates = candidates.filter(Q(carrier=carrier) | Q(carrier=""))
        criteria["carrier"] = carrier
    if max_priority is not None:
        candidates = candidates.filter(priority__lte=max_priority)
        criteria["max_priority"] = int(max_priority)
    # Parcels being changed right now (their orders locked) are skipped, never waited for: the wave
    # takes no order lock and cannot wait in a circle with a service that holds one.
    picked = list(
        candidates.select_for_update(of=("self",), skip_locked=True)
        .select_related("order", "location")
        .order_by("priority", F("ship_by").asc(nulls_last=True), "created_at", "pk")[: int(limit)]
    )
    if not picked:
        raise ValidationError(
            "No pending shipment matches.", code="empty_wave", fields={"location": ["Nothing to pick here now."]}
        )
    year = timezone.localdate().year
    wave = Wave(
        number=format_number("WAV", year, next_unique("wave", year)),
        location=location,
        criteria=criteria,
        created_by=actor,
    )
    stamp(wave, actor=actor, reason="Wave created")
    wave.save(force_insert=True)
    for shipment in picked:
        shipment.wave = wave
        _run(shipment, "start_picking", actor=actor)
        _save(shipment, actor=actor, reason=f"Wave {wave.number}")
    _publish(picked[0], "wave_created", {"wave": wave.number, "shipments": [s.number for s in picked]})
    return wave


def wave_pick_list_data(wave: Wave):
    """The wave's pick rows (bin from the location's stock row), as plain document data."""
    rows = list(
        ShipmentLine.objects.filter(shipment__wave=wave)
        .exclude(shipment__status=S.CANCELED)
        .values_list(
            "order_line__sku",
            "order_line__name",
            "order_line__product_id",
            "order_line__product__barcode",
            "quantity",
            "order_line__order__number",
        )
    )
    bins = dict(
        StockItem.objects.filter(location_id=wave.location_id, product_id__in={r[2] for r in rows if r[2]}).values_list(
            "product_id", "bin_location"
        )
    )
    return PickListData(
        wave_reference=wave.number,
        location_name=wave.location.name,
        printed_at=timezone.now(),
        rows=[
            PickRow(
                bin_location=bins.get(product_id, ""),
                sku=sku,
                name=name,
                quantity=quantity,
                barcode=barcode or "",
                order_numbers=[number],
            )
            for sku, name, product_id, barcode, quantity, number in rows
        ],
    )


def _set_progress(wave_id: int, percent: int) -> None:
    """Only the percentage (left out of the wave's history): written outside the render's own work so
    that the cockpit sees it move."""
    Wave.objects.filter(pk=wave_id).update(render_progress=percent)


def _set_render_status(wave_id: int, status: str, *, actor, reason: str, percent: int, error: str = "") -> None:
    """A render status change is a saved, attributed change of the wave (a history row)."""
    wave = Wave.objects.get(pk=wave_id)
    wave.render_status, wave.render_progress, wave.render_error = status, percent, error
    stamp(wave, actor=actor, reason=reason)
    wave.save(update_fields=["render_status", "render_progress", "render_error"])


def wave_render_pick_list(*, wave: Wave | int, actor) -> Wave:
    """Render the wave's pick list PDF and store it; progress goes to the wave row as it goes."""
    require_perm(actor, "fulfillment.print_wave", "print pick lists")
    wave = Wave.objects.select_related("location").get(pk=wave.pk if isinstance(wave, Wave) else wave)
    _set_render_status(wave.pk, WaveRender.RENDERING, actor=actor, reason="Pick list rendering", percent=5)
    try:
        data = wave_pick_list_data(wave)
        _set_progress(wave.pk, 15)
        html = pick_list_html(data)
        _set_progress(wave.pk, 25)
        pdf = render_pdf(html, progress=lambda fraction: _set_progress(wave.pk, 25 + int(fraction * 70)))
    except Exception as exc:
        logger.exception("pick list failed", extra={"wave": wave.number})
        _set_render_status(
            wave.pk, WaveRender.FAILED, actor=actor, reason="Pick list failed", percent=0, error=str(exc)[:2000]
        )
        raise
    with transaction.atomic():
        wave = Wave.objects.select_for_update().get(pk=wave.pk)
        wave.pick_list.save(f"{wave.number}.pdf", ContentFile(pdf), save=False)
        wave.render_status = WaveRender.READY
        wave.render_progress = 100
        wave.rendered_at = timezone.now()
        stamp(wave, actor=actor, reason="Pick list printed")
        wave.save()
    return wave


@transaction.atomic
def wave_print(*, wave: Wave | int, actor) -> Wave:
    """Print now when small; a large wave renders in the background (Celery) and the cockpit polls."""
    require_perm(actor, "fulfillment.print_wave", "print pick lists")
    wave = Wave.objects.select_for_update().get(pk=wave.pk if isinstance(wave, Wave) else wave)
    stale = timezone.now() - datetime.timedelta(minutes=settings.OMS_PICKLIST_STALE_MINUTES)
    if wave.render_status in (WaveRender.QUEUED, WaveRender.RENDERING) and (
        wave.render_requested_at and wave.render_requested_at > stale
    ):
        return wave  # already on its way (a request lost with its worker is retried once stale)
    wave.render_requested_at = timezone.now()
    wave.render_status = WaveRender.QUEUED
    wave.render_progress = 0
    stamp(wave, actor=actor, reason="Pick list requested")
    wave.save(update_fields=["render_status", "render_progress", "render_requested_at"])
    if ShipmentLine.objects.filter(shipment__wave=wave).count() <= settings.OMS_PICKLIST_SYNC_ROWS:
        return wave_render_pick_list(wave=wave, actor=actor)
    transaction.on_commit(functools.partial(tasks.wave_render.delay, wave_id=wave.pk, actor_id=actor.pk))
    return wave
