"""Every write to shipments and waves: plan, wave, pick, short pick, pack, label, dispatch, track, pickup.

Lock order, the same as the orders services': orders (by id), then their lines, then shipments,
then stock rows. A shipment service therefore locks the shipment's orders first (`_lock_shipment`).
Order-side effects (shipped and delivered counts, canceled or substituted units, promise dates)
go through `orders.services`; stock goes through `inventory.services`.
"""

import datetime
import functools
import logging
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from fulfillment.carriers.base import Parcel, TrackingEvent
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.registry import get_carrier
from fulfillment.choices import (
    OPEN_STATUSES,
    ConsentChannel,
    ShipmentKind,
    ShipmentStatus,
    ShortPickResolution,
    TrackingSource,
    WaveRender,
)
from fulfillment.models import ConsolidationRule, Shipment, ShipmentLine, ShortPick, TrackingUpdate, Wave
from integrations.services import notification_queue, outbox_publish
from inventory import services as inventory
from inventory.models import Product, Reservation, ReservationState, StockItem
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.fsm import TransitionRefused, run_transition
from oms.core.history import stamp
from oms.core.logging import set_order
from oms.core.money import ZERO, quantize
from oms.core.numbering import format_number, next_unique
from orders import services as orders
from orders.choices import CancelReason, OrderEventType, OrderStatus
from orders.events import event_record, events_record
from orders.models import Order, OrderHold, OrderLine

logger = logging.getLogger(__name__)
S = ShipmentStatus

CONDITION_MESSAGES = {
    "_all_picked": "Not every unit has been picked: nothing ships that was not picked.",
    "_has_no_open_short_pick": "A short pick is still open: resolve it first.",
    "_is_delivery": "A store pickup is handed to the customer, not to a carrier.",
    "_is_pickup": "Only a store pickup can be made ready for pickup.",
}
EXPRESS_WORDS = ("express", "next day", "next-day", "priority", "24h")


# --- building blocks ---------------------------------------------------------------------------


class ShipmentTransitionRefused(TransitionRefused):
    pass


def _require_perm(actor, perm: str, action: str) -> None:
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(
            f"You do not have permission to {action}.", code="permission_denied", extra={"permission": perm}
        )


def _run(shipment: Shipment, name: str, *, actor, check_permission: bool = True, **kwargs) -> None:
    """Permission, then source state, then conditions, then the transition (as orders do)."""
    run_transition(
        shipment,
        name,
        actor=actor,
        noun="shipment",
        messages=CONDITION_MESSAGES,
        check_permission=check_permission,
        refused=ShipmentTransitionRefused,
        **kwargs,
    )


def _save(shipment: Shipment, *, actor, reason: str) -> None:
    stamp(shipment, actor=actor, reason=reason)
    shipment.save()


def _resolve(shipment: Shipment | int | str) -> int:
    if isinstance(shipment, Shipment):
        return shipment.pk
    if isinstance(shipment, str) and not shipment.isdigit():
        pk = Shipment.objects.filter(number=shipment).values_list("pk", flat=True).first()
        if pk is None:
            raise NotFoundError("Shipment not found.", code="shipment_not_found")
        return pk
    return int(shipment)


def _lock_shipment(shipment: Shipment | int | str) -> Shipment:
    """Lock the shipment's orders (by id), then the shipment itself."""
    pk = _resolve(shipment)
    order_ids = set(ShipmentLine.objects.filter(shipment_id=pk).values_list("order_line__order_id", flat=True)) | set(
        Shipment.objects.filter(pk=pk).values_list("order_id", flat=True)
    )
    if not order_ids:
        raise NotFoundError("Shipment not found.", code="shipment_not_found")
    list(Order.objects.select_for_update(of=("self",)).filter(pk__in=order_ids).order_by("pk").values_list("pk"))
    locked = Shipment.objects.select_for_update(of=("self",)).select_related("order", "location").get(pk=pk)
    set_order(locked.order.number)
    return locked


def _lines(shipment: Shipment) -> list[ShipmentLine]:
    return list(
        shipment.lines.select_related("order_line", "order_line__order", "order_line__product").order_by(
            "order_line__order_id", "order_line__line_number"
        )
    )


def _quantities_by_order(lines: list[ShipmentLine]) -> dict[Order, dict[int, int]]:
    by_order: dict[int, dict[int, int]] = defaultdict(dict)
    orders_by_id = {}
    for line in lines:
        orders_by_id[line.order_line.order_id] = line.order_line.order
        by_order[line.order_line.order_id][line.order_line_id] = line.quantity
    return {orders_by_id[order_id]: quantities for order_id, quantities in sorted(by_order.items())}


def _publish(shipment: Shipment, topic: str, extra: dict | None = None) -> None:
    outbox_publish(
        topic=f"shipment.{topic}",
        payload={
            "shipment": shipment.number,
            "order": shipment.order.number,
            "location": shipment.location.code,
            "status": shipment.status,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            **(extra or {}),
        },
        key=shipment.order.number,
        is_test=shipment.is_test,
    )


def parcel_summary(shipment: Shipment, lines: list[ShipmentLine] | None = None) -> dict:
    """What a customer message says about one parcel."""
    lines = lines if lines is not None else _lines(shipment)
    return {
        "shipment": shipment.number,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "items": [
            {"sku": line.order_line.sku, "name": line.order_line.name, "quantity": line.quantity} for line in lines
        ],
    }


def _notify(order: Order, *, kind: str, group: str, data: dict, merge: tuple[str, ...] = ()) -> None:
    if not order.email:
        return
    notification_queue(
        kind=kind,
        recipient=order.email,
        group_key=f"{group}:{order.number}",
        data={"order": order.number, **data},
        locale=order.locale,
        order_number=order.number,
        is_test=order.is_test,
        merge=merge,
    )


# --- planning: reserved units become shipments --------------------------------------------------


def _open_shipment_units(order_ids) -> dict[tuple[int, int], int]:
    """(order line, location) → units on shipments not yet handed over."""
    rows = (
        ShipmentLine.objects.filter(order_line__order_id__in=list(order_ids), shipment__status__in=OPEN_STATUSES)
        .values("order_line_id", "shipment__location_id")
        .annotate(units=Sum("quantity"))
    )
    return {(row["order_line_id"], row["shipment__location_id"]): row["units"] for row in rows}


def _customs_value(line: OrderLine) -> Decimal:
    """Per unit, what the customer paid net of discount (the declared value of the goods)."""
    return quantize((line.unit_price * line.quantity - line.discount_amount) / line.quantity, "EUR")


def _new_line(shipment: Shipment, line: OrderLine, quantity: int) -> ShipmentLine:
    product = line.product
    gift = line.attributes.get("gift") if isinstance(line.attributes, dict) else None
    gift = gift if isinstance(gift, dict) else {}
    return ShipmentLine(
        shipment=shipment,
        order_line=line,
        quantity=quantity,
        hs_code=(product.hs_code if product else "") or "",
        origin_country=str(product.country_of_origin or "") if product else "",
        customs_value=_customs_value(line),
        gift_wrap=bool(gift.get("wrap")),
        gift_message=str(gift.get("message") or "")[:1000],
    )


def _same_address(a: dict, b: dict) -> bool:
    keys = ("name", "line1", "line2", "postal_code", "city", "country")
    norm = lambda d: tuple(" ".join(str((d or {}).get(k) or "").casefold().split()) for k in keys)  # noqa: E731
    return norm(a) == norm(b)


def _consolidation_target(order: Order, location_id: int) -> Shipment | None:
    """A pending parcel of the same customer to the same address, from the same location, that a
    rule lets this order join. Locked, or None."""
    if order.is_test or order.pickup_location_id:
        return None
    rule = (
        ConsolidationRule.objects.filter(is_active=True)
        .filter(Q(channel=order.channel_id) | Q(channel__isnull=True))
        .order_by(F("channel_id").asc(nulls_last=True))
        .first()
    )
    if rule is None:
        return None
    window = datetime.timedelta(hours=rule.window_hours)
    candidates = (
        Shipment.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(
            status=S.PENDING,
            kind=ShipmentKind.DELIVERY,
            wave__isnull=True,
            location_id=location_id,
            is_test=False,
            order__customer_id=order.customer_id,
            order__placed_at__gte=order.placed_at - window,
            order__placed_at__lte=order.placed_at + window,
        )
        .exclude(order_id=order.pk)
        .select_related("order")
        .order_by("created_at")
    )
    if rule.channel_id:
        candidates = candidates.filter(order__channel_id=rule.channel_id)
    for candidate in candidates:
        if _same_address(candidate.ship_to, order.shipping_address):
            return candidate
    return None


def _ship_by(location) -> datetime.datetime:
    days = max(location.handling_days, 0)
    when = timezone.localtime() + datetime.timedelta(days=days)
    while when.weekday() >= 5:  # a warehouse day, not a weekend
        when += datetime.timedelta(days=1)
    cutoff = location.cutoff_time or datetime.time(17, 0)
    return when.replace(hour=cutoff.hour, minute=cutoff.minute, second=0, microsecond=0)


def shipments_plan(*, order: Order, actor) -> list[Shipment]:
    """Give the order's reserved, not yet planned units a shipment per location (under the order lock).

    Units join the order's own pending shipment at that location, or a consolidation target, or a
    new shipment. Returns the shipments created or extended.
    """
    if order.is_test:
        return []  # test orders take no stock and never reach carriers
    reserved = (
        Reservation.objects.filter(order_id=order.pk, state=ReservationState.ACTIVE, stock_item__isnull=False)
        .values("order_line_id", "location_id")
        .annotate(units=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))
    )
    planned = _open_shipment_units([order.pk])
    missing: dict[int, dict[int, int]] = defaultdict(dict)
    held = {}
    for row in reserved:
        key = (row["order_line_id"], row["location_id"])
        held[key] = row["units"] or 0
        units = held[key] - planned.get(key, 0)
        if units > 0:
            missing[row["location_id"]][row["order_line_id"]] = units
    excess = {key: units - held.get(key, 0) for key, units in planned.items() if units > held.get(key, 0)}
    if excess:
        _trim(order, excess, actor=actor)
    if not missing:
        return []
    lines = {line.pk: line for line in order.lines.select_related("product")}
    touched = []
    events = []
    for location_id, quantities in sorted(missing.items()):
        shipment = (
            Shipment.objects.select_for_update(of=("self",))
            .filter(order=order, location_id=location_id, status=S.PENDING, wave__isnull=True)
            .select_related("location")
            .first()
        )
        consolidated_with = None
        if shipment is None:
            shipment = _consolidation_target(order, location_id)
            consolidated_with = shipment.order if shipment is not None else None
        if shipment is None:
            shipment = _create_shipment(order=order, location_id=location_id, actor=actor)
        existing = {line.order_line_id: line for line in shipment.lines.select_for_update()}
        new_rows, changed = [], []
        for line_id, units in sorted(quantities.items()):
            if line_id in existing:
                existing[line_id].quantity += units
                changed.append(existing[line_id])
            else:
                new_rows.append(_new_line(shipment, lines[line_id], units))
        if new_rows:
            bulk_create_with_history(new_rows, ShipmentLine, default_user=actor, default_change_reason="Planned")
        for row in changed:
            stamp(row, actor=actor, reason="Planned")
            row.save(update_fields=["quantity"])
        _refresh_values(shipment, actor=actor, reason="Planned")
        touched.append(shipment)
        summary = {
            "shipment": shipment.number,
            "location": shipment.location.code,
            "kind": shipment.kind,
            "lines": [
                {"line": lines[pk].line_number, "sku": lines[pk].sku, "quantity": q} for pk, q in quantities.items()
            ],
        }
        events.append((OrderEventType.SHIPMENT_PLANNED, "", summary))
        if consolidated_with is not None:
            events.append(
                (OrderEventType.CONSOLIDATED, "", {"shipment": shipment.number, "with_order": consolidated_with.number})
            )
            event_record(
                order=consolidated_with,
                actor=actor,
                type=OrderEventType.CONSOLIDATED,
                payload={"shipment": shipment.number, "with_order": order.number},
            )
    events_record(order=order, actor=actor, events=events)
    return touched


def _trim(order: Order, excess: dict[tuple[int, int], int], *, actor) -> None:
    """Units no longer reserved (shipped or canceled outside the shipment) leave parcels not yet packed."""
    lines = (
        ShipmentLine.objects.select_for_update(of=("self",))
        .filter(order_line__order=order, shipment__status__in=[S.PENDING, S.PICKING])
        .select_related("shipment")
        .order_by("-shipment__created_at", "-pk")
    )
    emptied = set()
    for line in lines:
        key = (line.order_line_id, line.shipment.location_id)
        take = min(excess.get(key, 0), line.quantity - line.quantity_picked)
        if take <= 0:
            continue
        excess[key] -= take
        stamp(line, actor=actor, reason="Shipped or canceled outside this parcel")
        if take == line.quantity:
            line.delete()
            emptied.add(line.shipment_id)
        else:
            line.quantity -= take
            line.save(update_fields=["quantity"])
    for shipment in Shipment.objects.select_for_update(of=("self",)).filter(pk__in=emptied):
        if not shipment.lines.exists():
            _run(shipment, "cancel", actor=actor, check_permission=False)
            _save(shipment, actor=actor, reason="Nothing left to ship")


def _create_shipment(*, order: Order, location_id: int, actor) -> Shipment:
    from inventory.models import Location

    location = Location.objects.get(pk=location_id)
    year = timezone.localdate().year
    pickup = order.pickup_location_id == location_id
    method = (order.shipping_method or "").casefold()
    gift = any(isinstance(line.attributes, dict) and line.attributes.get("gift") for line in order.lines.all())
    shipment = Shipment(
        number=format_number("SHP", year, next_unique("shipment", year)),
        order=order,
        location=location,
        kind=ShipmentKind.PICKUP if pickup else ShipmentKind.DELIVERY,
        priority=10 if any(word in method for word in EXPRESS_WORDS) else 100,
        ship_by=_ship_by(location),
        ship_to=dict(order.shipping_address or {}),
        currency=order.currency,
        is_gift=gift,
        is_test=order.is_test,
    )
    stamp(shipment, actor=actor, reason="Planned")
    shipment.save(force_insert=True)
    return shipment


def _refresh_values(shipment: Shipment, *, actor, reason: str) -> None:
    """Declared value and default weight follow the lines (until packing weighs the parcel)."""
    lines = _lines(shipment)
    shipment.declared_value = sum((line.customs_value * line.quantity for line in lines), ZERO)
    if shipment.packed_at is None:
        shipment.weight_grams = sum(
            (line.order_line.product.weight_grams if line.order_line.product else 0) * line.quantity for line in lines
        )
    if shipment.insured:
        shipment.insurance_amount = shipment.declared_value
    shipment.is_gift = shipment.is_gift or any(line.gift_wrap or line.gift_message for line in lines)
    _save(shipment, actor=actor, reason=reason)


# --- waves and pick lists -----------------------------------------------------------------------


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
    _require_perm(actor, "fulfillment.add_wave", "create waves")
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
    from fulfillment.documents import PickListData, PickRow

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
    from fulfillment.documents import pick_list_html, render_pdf

    _require_perm(actor, "fulfillment.print_wave", "print pick lists")
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
    _require_perm(actor, "fulfillment.print_wave", "print pick lists")
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
    from fulfillment.tasks import wave_render

    transaction.on_commit(functools.partial(wave_render.delay, wave_id=wave.pk, actor_id=actor.pk))
    return wave


def shipment_packing_slip_pdf(shipment: Shipment) -> bytes:
    from fulfillment.documents import PackingSlipData, PackingSlipLine, packing_slip_pdf

    lines = _lines(shipment)
    return packing_slip_pdf(
        PackingSlipData(
            shipment_reference=shipment.number,
            order_number=", ".join(dict.fromkeys(line.order_line.order.number for line in lines))
            or shipment.order.number,
            ship_to=shipment.ship_to,
            lines=[
                PackingSlipLine(
                    sku=line.order_line.sku,
                    name=line.order_line.name,
                    quantity=line.quantity,
                    unit_price=line.order_line.unit_price,
                    gift_message=line.gift_message or None,
                )
                for line in lines
            ],
            is_gift=shipment.is_gift,
            currency=shipment.currency,
            totals=sum((line.order_line.unit_price * line.quantity for line in lines), ZERO),
        )
    )


# --- picking and short picks --------------------------------------------------------------------


@transaction.atomic
def shipment_start_picking(*, shipment, actor, reason: str = "") -> Shipment:
    shipment = _lock_shipment(shipment)
    _run(shipment, "start_picking", actor=actor)
    _save(shipment, actor=actor, reason=reason or "Picking started")
    return shipment


def _clean_picks(lines: list[ShipmentLine], picked: dict) -> dict[int, int]:
    """{shipment line id: units picked so far (a total, so a resent confirmation changes nothing)}."""
    by_id = {line.pk: line for line in lines}
    by_order_line = {line.order_line_id: line for line in lines}
    by_sku = defaultdict(list)
    for line in lines:
        by_sku[line.order_line.sku].append(line)
    errors, clean = {}, {}
    if not isinstance(picked, dict) or not picked:
        raise ValidationError("Nothing picked.", fields={"picked": ["Give the units picked per line."]})
    for key, value in picked.items():
        line = None
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            line = by_id.get(int(key))
        elif isinstance(key, str) and key.startswith("line:") and key[5:].isdigit():
            line = by_order_line.get(int(key[5:]))
        elif isinstance(key, str) and len(by_sku.get(key, [])) == 1:
            line = by_sku[key][0]
        if line is None:
            errors[f"picked.{key}"] = ["Not a line of this shipment."]
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors[f"picked.{key}"] = ["A whole number of at least 0 is required."]
        elif value > line.quantity:
            errors[f"picked.{key}"] = [f"At most {line.quantity} ({line.order_line.sku})."]
        elif value < line.quantity_picked:
            errors[f"picked.{key}"] = [f"{line.quantity_picked} already confirmed; a pick cannot be undone here."]
        else:
            clean[line.pk] = value
    if errors:
        raise ValidationError("The picks are not valid.", code="invalid_picks", fields=errors)
    return clean


@transaction.atomic
def shipment_confirm_picks(*, shipment, actor, picked: dict, final: bool = True, note: str = "") -> Shipment:
    """Confirm units picked per line (totals). With `final`, a line left short is a short pick:
    the missing units are released and written off at the bin, an exception opens and the parcel
    waits for support to substitute, delay or cancel them."""
    shipment = _lock_shipment(shipment)
    _require_perm(actor, "fulfillment.pick_shipment", "confirm picks")
    if shipment.status == S.PENDING:
        _run(shipment, "start_picking", actor=actor)
    if shipment.status != S.PICKING:
        raise ShipmentTransitionRefused(
            f"Cannot confirm picks on shipment {shipment.number}: it is {shipment.get_status_display().lower()}.",
            extra={"transition": "confirm_picks", "status": shipment.status},
        )
    lines = _lines(shipment)
    clean = _clean_picks(lines, picked)
    by_id = {line.pk: line for line in lines}
    for line_id, units in clean.items():
        line = by_id[line_id]
        if units != line.quantity_picked:
            line.quantity_picked = units
            stamp(line, actor=actor, reason="Picked")
            line.save(update_fields=["quantity_picked"])
    shorts = [line for line in lines if line.pk in clean and line.quantity_picked < line.quantity] if final else []
    for line in shorts:
        _open_short_pick(shipment=shipment, line=line, actor=actor, note=note)
    if shorts:
        _run(shipment, "report_short", actor=actor)
    _refresh_values(shipment, actor=actor, reason="Short pick" if shorts else "Picked")
    return shipment


def _open_short_pick(*, shipment: Shipment, line: ShipmentLine, actor, note: str) -> ShortPick:
    order_line = line.order_line
    order = order_line.order
    missing = line.quantity - line.quantity_picked
    short = ShortPick(
        shipment=shipment,
        shipment_line=line if line.quantity_picked else None,
        order=order,
        order_line=order_line,
        quantity=missing,
        reported_by=actor,
        note=note,
    )
    stamp(short, actor=actor, reason=note or "Short pick")
    short.save()
    # Nothing ships that was not picked: the parcel keeps only what is in hand.
    if line.quantity_picked:
        line.quantity = line.quantity_picked
        stamp(line, actor=actor, reason="Short pick")
        line.save(update_fields=["quantity"])
    else:
        stamp(line, actor=actor, reason="Short pick")
        line.delete()
    released = written_off = 0
    if not order.is_test:
        released = inventory.reservation_units_release(
            order=order,
            actor=actor,
            quantities={order_line.pk: missing},
            location_id=shipment.location_id,
            reason=f"Short pick on {shipment.number}",
        )
        if order_line.product_id:
            written_off = inventory.stock_write_off_short_pick(
                product_id=order_line.product_id,
                location_id=shipment.location_id,
                quantity=missing,
                actor=actor,
                order=order,
                order_line_id=order_line.pk,
                reference=shipment.number,
            )
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.SHORT_PICKED,
        reason=note,
        payload={
            "shipment": shipment.number,
            "short_pick": short.pk,
            "line": order_line.line_number,
            "sku": order_line.sku,
            "missing": missing,
            "stock_released": released,
            "stock_written_off": written_off,
        },
    )
    return short


def _lock_short_pick(short_pick) -> tuple[ShortPick, Shipment]:
    pk = short_pick.pk if isinstance(short_pick, ShortPick) else int(short_pick)
    shipment_id = ShortPick.objects.filter(pk=pk).values_list("shipment_id", flat=True).first()
    if shipment_id is None:
        raise NotFoundError("Short pick not found.", code="short_pick_not_found")
    shipment = _lock_shipment(shipment_id)
    short = ShortPick.objects.select_for_update().select_related("order_line", "order").get(pk=pk)
    if short.resolved_at is not None:
        raise ConflictError(
            f"Short pick #{short.pk} was already resolved ({short.get_resolution_display().lower()}).",
            code="already_resolved",
        )
    return short, shipment


def _consent(channel: str, note: str) -> tuple[str, str]:
    errors = {}
    if channel not in ConsentChannel.values:
        errors["consent_channel"] = [f"One of: {', '.join(ConsentChannel.values)}."]
    if not (note or "").strip():
        errors["consent_note"] = ["Record what the customer agreed to."]
    if errors:
        raise ValidationError("The customer's consent is required.", code="consent_required", fields=errors)
    return channel, note.strip()


def _close_short(short: ShortPick, *, actor, resolution: str, **fields) -> None:
    short.resolution = resolution
    short.resolved_by = actor
    short.resolved_at = timezone.now()
    for key, value in fields.items():
        setattr(short, key, value)
    stamp(short, actor=actor, reason=str(ShortPickResolution(resolution).label))
    short.save()


def _after_resolution(shipment: Shipment, *, actor, reason: str) -> None:
    """Back to picking when no short pick is left open; an emptied parcel is canceled."""
    shipment.refresh_from_db()
    if shipment.status == S.CANCELED or shipment.short_picks.filter(resolved_at__isnull=True).exists():
        return
    if not shipment.lines.exists():
        _run(shipment, "cancel", actor=actor, check_permission=False)
        _save(shipment, actor=actor, reason=reason)
        return
    _run(shipment, "resume_picking", actor=actor, check_permission=False)
    _refresh_values(shipment, actor=actor, reason=reason)


@transaction.atomic
def short_pick_substitute(
    *, short_pick, actor, product: Product, consent_channel: str, consent_note: str, quantity: int | None = None
) -> ShortPick:
    """Ship another SKU instead, with the customer's consent, from the same location's free stock."""
    _require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
    channel, note = _consent(consent_channel, consent_note)
    short, shipment = _lock_short_pick(short_pick)
    quantity = short.quantity if quantity is None else quantity
    if quantity != short.quantity:
        raise ValidationError("Substitute every missing unit.", fields={"quantity": [f"Must be {short.quantity}."]})
    consent = {"consent": {"channel": channel, "note": note}, "shipment": shipment.number, "short_pick": short.pk}
    new_line = orders.order_substitute_line(
        order=short.order,
        actor=actor,
        line=short.order_line,
        product=product,
        quantity=quantity,
        reason=f"Substitute for a short pick on {shipment.number}",
        payload=consent,
    )
    if not short.order.is_test and not inventory.reserve_at_location(
        order=short.order,
        line_id=new_line.pk,
        product_id=product.pk,
        location_id=shipment.location_id,
        quantity=quantity,
        actor=actor,
    ):
        raise ConflictError(
            f"{product.sku} has not {quantity} unit(s) free at {shipment.location.name}.",
            code="substitute_not_in_stock",
            extra={"fields": {"product": ["Not enough free stock at this location."]}},
        )
    line = _new_line(shipment, new_line, quantity)
    stamp(line, actor=actor, reason="Substitute")
    line.save()
    _close_short(
        short,
        actor=actor,
        resolution=ShortPickResolution.SUBSTITUTE,
        substitute_product=product,
        substitute_line=new_line,
        consent_channel=channel,
        consent_note=note,
        consent_at=timezone.now(),
    )
    _after_resolution(shipment, actor=actor, reason="Substitute to pick")
    return short


@transaction.atomic
def short_pick_delay(
    *, short_pick, actor, promised_at: datetime.datetime, consent_channel: str = "", consent_note: str = ""
) -> ShortPick:
    """Keep the missing units open with a new promise date; the customer is told. The units are
    sourced again at once (another location may have them) or wait for stock."""
    _require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
    short, shipment = _lock_short_pick(short_pick)
    order = orders.order_delay_lines(
        order=short.order,
        actor=actor,
        line_ids=[short.order_line_id],
        promised_at=promised_at,
        reason=f"Short pick on {shipment.number}",
        payload={"shipment": shipment.number, "short_pick": short.pk, "missing": short.quantity},
    )
    _close_short(
        short,
        actor=actor,
        resolution=ShortPickResolution.DELAY,
        promised_at=promised_at,
        consent_channel=consent_channel if consent_channel in ConsentChannel.values else "",
        consent_note=consent_note or "",
        consent_at=timezone.now() if consent_note else None,
    )
    _notify(
        order,
        kind="delivery_delayed",
        group="delay",
        data={
            "promised_at": promised_at.isoformat(),
            "items": [{"sku": short.order_line.sku, "name": short.order_line.name, "quantity": short.quantity}],
        },
        merge=("items",),
    )
    _after_resolution(shipment, actor=actor, reason="Delayed units left the parcel")
    orders.order_reallocate(order=order, actor=actor, reason="Short pick delayed")
    return short


@transaction.atomic
def short_pick_cancel_line(*, short_pick, actor, consent_channel: str, consent_note: str) -> ShortPick:
    """Cancel the missing units with the customer's explicit consent; billing refunds them."""
    _require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
    channel, note = _consent(consent_channel, consent_note)
    short, shipment = _lock_short_pick(short_pick)
    orders.order_cancel_lines(
        order=short.order,
        actor=actor,
        quantities={short.order_line_id: short.quantity},
        reason_code=CancelReason.OUT_OF_STOCK,
        reason=f"Short pick on {shipment.number}",
        payload={"consent": {"channel": channel, "note": note}, "shipment": shipment.number, "short_pick": short.pk},
    )
    _close_short(
        short,
        actor=actor,
        resolution=ShortPickResolution.CANCEL_LINE,
        consent_channel=channel,
        consent_note=note,
        consent_at=timezone.now(),
    )
    _after_resolution(shipment, actor=actor, reason="Missing units canceled")
    return short


# --- packing, labels, dispatch ------------------------------------------------------------------


def _positive_int(value, field: str, *, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError("Invalid value.", fields={field: ["A whole number above 0 is required."]})
    return value


@transaction.atomic
def shipment_pack(
    *, shipment, actor, weight_grams: int | None = None, insured: bool | None = None, reason: str = ""
) -> Shipment:
    """Close the parcel: everything picked, weighed (the lines' weight when not given)."""
    shipment = _lock_shipment(shipment)
    weight_grams = _positive_int(weight_grams, "weight_grams")
    _run(shipment, "pack", actor=actor)
    if weight_grams:
        shipment.weight_grams = weight_grams
    if insured is not None:
        shipment.insured = bool(insured)
    shipment.insurance_amount = shipment.declared_value if shipment.insured else ZERO
    _save(shipment, actor=actor, reason=reason or "Packed")
    _publish(shipment, "packed", {"weight_grams": shipment.weight_grams})
    return shipment


def _tracking_counter():
    year = timezone.localdate().year
    return lambda: next_unique("tracking", year) + (year % 100) * 10**8


def _parcel(shipment: Shipment, lines: list[ShipmentLine]) -> Parcel:
    location = shipment.location
    ship_from = {
        "name": location.name,
        "line1": location.name,
        "postal_code": "-",
        "city": location.city or location.name,
        "country": str(location.country),
    }
    return Parcel(
        shipment_reference=shipment.number,
        order_number=shipment.order.number,
        weight_grams=max(shipment.weight_grams, 1),
        declared_value=shipment.declared_value,
        currency=shipment.currency,
        insurance=shipment.insured,
        ship_from=ship_from,
        ship_to=shipment.ship_to,
        lines=[
            (
                line.order_line.sku,
                line.order_line.name,
                line.quantity,
                line.hs_code,
                line.origin_country or str(location.country),
                line.customs_value,
            )
            for line in lines
        ],
    )


@transaction.atomic
def shipment_create_label(*, shipment, actor, carrier: str = "", service: str = "") -> Shipment:
    """Ask the carrier for a label (once: a shipment that has one keeps it until canceled)."""
    shipment = _lock_shipment(shipment)
    _require_perm(actor, "fulfillment.dispatch_shipment", "print labels")
    if shipment.kind != ShipmentKind.DELIVERY:
        raise ShipmentTransitionRefused("A store pickup needs no carrier label.", code="no_label_for_pickup")
    if shipment.status not in (S.PICKING, S.PACKED):
        raise ShipmentTransitionRefused(
            f"Cannot label shipment {shipment.number}: it is {shipment.get_status_display().lower()}.",
            extra={"transition": "label", "status": shipment.status},
        )
    if shipment.is_test:
        raise ShipmentTransitionRefused("Test orders never reach carriers.", code="test_order")
    if shipment.label:
        return shipment
    adapter = get_carrier(carrier or shipment.carrier or settings.OMS_DEFAULT_CARRIER)
    service = service or shipment.service or settings.OMS_DEFAULT_CARRIER_SERVICE
    if getattr(adapter, "code", "") == "sandbox":
        adapter = type(adapter)(counter=_tracking_counter())
    label = adapter.create_label(_parcel(shipment, _lines(shipment)), service)
    shipment.carrier = label.carrier_code
    shipment.service = label.service
    shipment.tracking_number = label.tracking_number
    shipment.tracking_url = label.tracking_url
    shipment.tracking_status = TrackingStatus.LABEL_CREATED
    shipment.label.save(f"{shipment.number}-{label.tracking_number}.pdf", ContentFile(label.pdf), save=False)
    _save(shipment, actor=actor, reason=f"Label {label.tracking_number}")
    return shipment


def _record_handover(shipment: Shipment, lines: list[ShipmentLine], *, actor, delivered: bool = False) -> None:
    for order, quantities in _quantities_by_order(lines).items():
        payload = {
            "shipment": shipment.number,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
        }
        orders.order_record_shipment(
            order=order,
            actor=actor,
            quantities=quantities,
            reference=shipment.number,
            location_id=shipment.location_id,
            reason=f"Shipment {shipment.number}",
            payload=payload,
        )
        if delivered:
            orders.order_mark_delivered(
                order=order, actor=actor, quantities=quantities, reason=f"Picked up ({shipment.number})"
            )


@transaction.atomic
def shipment_dispatch(
    *, shipment, actor, carrier: str = "", service: str = "", tracking_number: str = "", tracking_url: str = ""
) -> Shipment:
    """Hand the parcel to the carrier: stock leaves, the orders count it shipped, the customer is told.

    A 3PL that labels parcels itself sends its carrier and tracking number; otherwise a label is
    made here (once)."""
    shipment = _lock_shipment(shipment)
    _require_perm(actor, "fulfillment.dispatch_shipment", "dispatch shipments")
    if shipment.kind != ShipmentKind.DELIVERY:
        raise ShipmentTransitionRefused(CONDITION_MESSAGES["_is_delivery"], code="transition_condition_failed")
    if tracking_number:
        if not carrier and not shipment.carrier:
            raise ValidationError("Which carrier?", fields={"carrier": ["Required with a tracking number."]})
        if shipment.tracking_number and shipment.tracking_number != tracking_number:
            raise ConflictError(
                f"Shipment {shipment.number} already has tracking number {shipment.tracking_number}.",
                code="tracking_number_conflict",
            )
        adapter_code = carrier or shipment.carrier
        shipment.carrier = adapter_code[:32]
        shipment.service = (service or shipment.service)[:32]
        shipment.tracking_number = tracking_number[:64]
        if not tracking_url:
            try:
                tracking_url = get_carrier(adapter_code).tracking_url(tracking_number)
            except ValidationError:
                tracking_url = ""
        shipment.tracking_url = tracking_url
    elif not shipment.tracking_number and shipment.status == S.PACKED and not shipment.is_test:
        shipment_create_label(shipment=shipment, actor=actor, carrier=carrier, service=service)
        shipment.refresh_from_db()
    _run(shipment, "dispatch", actor=actor)
    _save(shipment, actor=actor, reason=f"Handed to {shipment.carrier or 'carrier'}")
    lines = _lines(shipment)
    _record_handover(shipment, lines, actor=actor)
    summary = parcel_summary(shipment, lines)
    for order in _quantities_by_order(lines):
        _notify(order, kind="parcels_dispatched", group="dispatch", data={"parcels": [summary]}, merge=("parcels",))
    _publish(shipment, "dispatched", {"items": summary["items"]})
    _invoice_when_shipped(shipment)
    return shipment


def _invoice_when_shipped(shipment: Shipment) -> None:
    """Billing invoices the parcel after commit, when the orders' policy invoices per shipment."""
    from billing.tasks import invoice_when_shipped

    invoice_when_shipped(shipment)


@transaction.atomic
def shipments_dispatch(*, shipments, actor) -> list[Shipment]:
    """Dispatch several parcels at once (one transaction: one message per order, not per parcel)."""
    ids = sorted(_resolve(s) for s in shipments)
    return [shipment_dispatch(shipment=pk, actor=actor) for pk in ids]


@transaction.atomic
def shipment_cancel(*, shipment, actor, reason: str) -> Shipment:
    """Cancel a parcel not yet handed over; its units stay reserved for the order (re-planned)."""
    if not (reason or "").strip():
        raise ValidationError("Say why.", fields={"reason": ["This field is required."]})
    shipment = _lock_shipment(shipment)
    _run(shipment, "cancel", actor=actor)
    if shipment.tracking_number and shipment.label:
        get_carrier(shipment.carrier).cancel_label(shipment.tracking_number)
    _save(shipment, actor=actor, reason=reason)
    _publish(shipment, "canceled", {"reason": reason})
    return shipment


def shipments_cancel_for_order(*, order: Order, actor, reason: str) -> int:
    """The order was canceled: its open parcels go too (called under the order lock)."""
    count = 0
    for shipment in Shipment.objects.select_for_update(of=("self",)).filter(
        order=order, status__in=[S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED]
    ):
        _run(shipment, "cancel", actor=actor, check_permission=False)
        _save(shipment, actor=actor, reason=reason)
        count += 1
    return count


# --- tracking -----------------------------------------------------------------------------------

# How far along each tracking status is: an older or lesser event never moves a parcel back.
RANK = {
    TrackingStatus.LABEL_CREATED: 0,
    TrackingStatus.IN_TRANSIT: 1,
    TrackingStatus.OUT_FOR_DELIVERY: 2,
    TrackingStatus.EXCEPTION: 2,
    TrackingStatus.DAMAGED: 3,
    TrackingStatus.LOST: 3,
    TrackingStatus.RETURNED_TO_SENDER: 4,
    TrackingStatus.DELIVERED: 5,
}
TRANSITIONS = {
    TrackingStatus.IN_TRANSIT: "mark_in_transit",
    TrackingStatus.OUT_FOR_DELIVERY: "mark_in_transit",
    TrackingStatus.DELIVERED: "mark_delivered",
    TrackingStatus.LOST: "mark_lost",
    TrackingStatus.DAMAGED: "mark_damaged",
    TrackingStatus.RETURNED_TO_SENDER: "mark_returned_to_sender",
}


@transaction.atomic
def tracking_ingest(
    *, carrier: str, events: list[TrackingEvent], actor, source: str = TrackingSource.WEBHOOK
) -> list[TrackingUpdate]:
    """Store each carrier event once per (carrier, event id), then apply the new ones in time order.

    A replay stores nothing and changes nothing. An event for an unknown tracking number is kept
    (unmatched) for support to look at. Returns the events stored now."""
    _require_perm(actor, "fulfillment.track_shipment", "record tracking updates")
    stored = []
    for event in sorted(events, key=lambda e: e.occurred_at):
        try:
            with transaction.atomic():
                update = TrackingUpdate.objects.create(
                    carrier=carrier,
                    carrier_event_id=event.carrier_event_id[:128],
                    tracking_number=event.tracking_number[:64],
                    carrier_status_code=event.carrier_status_code[:64],
                    status=event.status,
                    occurred_at=event.occurred_at,
                    description=event.description,
                    location=event.location[:120],
                    source=source,
                )
        except IntegrityError:
            continue  # already stored: a replay
        stored.append(update)
    for update in stored:
        shipment_id = (
            Shipment.objects.filter(carrier=carrier, tracking_number=update.tracking_number)
            .values_list("pk", flat=True)
            .first()
        )
        if shipment_id is None:
            logger.warning("tracking for an unknown parcel", extra={"tracking_number": update.tracking_number})
            continue
        _apply_tracking(shipment_id, update, actor=actor)
    return stored


def _apply_tracking(shipment_id: int, update: TrackingUpdate, *, actor) -> None:
    shipment = _lock_shipment(shipment_id)
    update.shipment = shipment
    current = RANK.get(shipment.tracking_status, 0) if shipment.tracking_status else 0
    newer = shipment.tracking_updated_at is None or update.occurred_at >= shipment.tracking_updated_at
    name = TRANSITIONS.get(update.status)
    moved = False
    if RANK[update.status] >= current or update.status == TrackingStatus.DELIVERED:
        if name and getattr(shipment, name)._django_fsm.has_transition(shipment.status):
            kwargs = {"at": update.occurred_at} if name == "mark_delivered" else {}
            _run(shipment, name, actor=actor, check_permission=False, **kwargs)
            moved = True
        if newer or moved:
            shipment.tracking_status = update.status
            shipment.tracking_updated_at = max(update.occurred_at, shipment.tracking_updated_at or update.occurred_at)
            if update.status in (TrackingStatus.EXCEPTION, TrackingStatus.LOST, TrackingStatus.DAMAGED):
                shipment.exception_note = update.description or update.get_status_display()
            _save(shipment, actor=actor, reason=f"Carrier: {update.carrier_status_code}")
    update.applied = moved
    update.save(update_fields=["shipment", "applied"])
    if not moved:
        return
    lines = _lines(shipment)
    if shipment.status == S.DELIVERED:
        for order, quantities in _quantities_by_order(lines).items():
            if order.status in (OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED):
                orders.order_mark_delivered(
                    order=order, actor=actor, quantities=quantities, reason=f"Delivered ({shipment.number})"
                )
        _publish(shipment, "delivered")
        return
    kind = (
        OrderEventType.PARCEL_EXCEPTION
        if shipment.status in (S.LOST, S.DAMAGED, S.RETURNED_TO_SENDER)
        else OrderEventType.PARCEL_UPDATED
    )
    for order in _quantities_by_order(lines):
        event_record(
            order=order,
            actor=actor,
            type=kind,
            reason=update.description,
            payload={
                "shipment": shipment.number,
                "status": shipment.status,
                "carrier_status": update.carrier_status_code,
            },
        )
    _publish(shipment, shipment.status)


def carrier_webhook_receive(*, carrier: str, payload: dict, actor) -> list[TrackingUpdate]:
    adapter = get_carrier(carrier)
    return tracking_ingest(carrier=adapter.code, events=adapter.parse_webhook(payload), actor=actor)


def tracking_poll(*, actor, limit: int = 500) -> int:
    """Ask carriers that can be polled about parcels still on their way. Returns events stored."""
    stored = 0
    parcels = (
        Shipment.objects.filter(status__in=[S.SHIPPED, S.IN_TRANSIT], is_test=False)
        .exclude(tracking_number="")
        .order_by(F("tracking_updated_at").asc(nulls_first=True))[:limit]
    )
    for shipment in parcels:
        try:
            adapter = get_carrier(shipment.carrier)
        except ValidationError:
            continue
        fetch = getattr(adapter, "fetch_tracking", None)
        if fetch is None:
            continue
        events = fetch(shipment.tracking_number, shipped_at=shipment.shipped_at)
        if events:
            stored += len(tracking_ingest(carrier=adapter.code, events=events, actor=actor, source=TrackingSource.POLL))
    return stored


# --- store pickup ------------------------------------------------------------------------------


@transaction.atomic
def shipment_ready_for_pickup(*, shipment, actor, reason: str = "") -> Shipment:
    """On the pickup shelf: the customer is told, and the holding period starts."""
    shipment = _lock_shipment(shipment)
    if shipment.status == S.PICKING:
        _run(shipment, "pack", actor=actor)
    expires = timezone.now() + datetime.timedelta(days=settings.OMS_PICKUP_HOLD_DAYS)
    _run(shipment, "make_ready_for_pickup", actor=actor, expires_at=expires)
    _save(shipment, actor=actor, reason=reason or "Ready for pickup")
    lines = _lines(shipment)
    for order in _quantities_by_order(lines):
        event_record(
            order=order,
            actor=actor,
            type=OrderEventType.READY_FOR_PICKUP,
            payload={"shipment": shipment.number, "store": shipment.location.name, "expires_at": expires.isoformat()},
        )
        _notify(
            order,
            kind="ready_for_pickup",
            group="pickup",
            data={
                "store": shipment.location.name,
                "expires_at": expires.isoformat(),
                "parcels": [parcel_summary(shipment, lines)],
            },
        )
    _publish(shipment, "ready_for_pickup", {"expires_at": expires.isoformat()})
    return shipment


@transaction.atomic
def shipment_hand_over(*, shipment, actor, reason: str = "") -> Shipment:
    """The customer collected the parcel: shipped and delivered at once."""
    shipment = _lock_shipment(shipment)
    _run(shipment, "hand_over", actor=actor)
    _save(shipment, actor=actor, reason=reason or "Picked up")
    _record_handover(shipment, _lines(shipment), actor=actor, delivered=True)
    _publish(shipment, "picked_up")
    _invoice_when_shipped(shipment)
    return shipment


@transaction.atomic
def pickup_expire(*, shipment, actor, reason: str = "") -> Shipment:
    """Not collected in time: the units go back to available stock and are canceled on the order."""
    shipment = _lock_shipment(shipment)
    _run(shipment, "expire_pickup", actor=actor)
    _save(shipment, actor=actor, reason=reason or "Pickup expired")
    for order, quantities in _quantities_by_order(_lines(shipment)).items():
        event_record(
            order=order, actor=actor, type=OrderEventType.PICKUP_EXPIRED, payload={"shipment": shipment.number}
        )
        orders.order_cancel_lines(
            order=order,
            actor=actor,
            quantities=quantities,
            reason_code=CancelReason.PICKUP_EXPIRED,
            reason=f"Not collected ({shipment.number})",
            payload={"shipment": shipment.number},
        )
    _publish(shipment, "pickup_expired")
    return shipment


def pickups_remind_and_expire(*, actor, now=None) -> tuple[int, int]:
    """Remind once before the end of the holding period; expire what is past it. (reminded, expired)"""
    now = now or timezone.now()
    reminded = expired = 0
    due = now + datetime.timedelta(days=settings.OMS_PICKUP_REMINDER_DAYS)
    for pk in Shipment.objects.filter(
        status=S.READY_FOR_PICKUP,
        pickup_reminded_at__isnull=True,
        pickup_expires_at__lte=due,
        pickup_expires_at__gt=now,
    ).values_list("pk", flat=True):
        with transaction.atomic():
            shipment = _lock_shipment(pk)
            if shipment.status != S.READY_FOR_PICKUP or shipment.pickup_reminded_at:
                continue
            shipment.pickup_reminded_at = now
            _save(shipment, actor=actor, reason="Pickup reminder")
            for order in _quantities_by_order(_lines(shipment)):
                event_record(
                    order=order, actor=actor, type=OrderEventType.PICKUP_REMINDED, payload={"shipment": shipment.number}
                )
                _notify(
                    order,
                    kind="pickup_reminder",
                    group="pickup",
                    data={"store": shipment.location.name, "expires_at": shipment.pickup_expires_at.isoformat()},
                )
            reminded += 1
    for pk in Shipment.objects.filter(status=S.READY_FOR_PICKUP, pickup_expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        pickup_expire(shipment=pk, actor=actor, reason="Holding period over")
        expired += 1
    return reminded, expired
