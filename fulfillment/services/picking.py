"""Picking: units picked per line, and the short picks a line left short opens.

Nothing ships that was not picked. A short pick releases the missing units and writes them off at
the bin; the parcel waits until support substitutes, delays or cancels them (with the customer's
consent), through `orders.services` for the order side and `inventory.services` for stock.
"""

import datetime
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from fulfillment.choices import ConsentChannel, ShortPickResolution
from fulfillment.models import Shipment, ShipmentLine, ShortPick
from fulfillment.services._common import (
    S,
    ShipmentTransitionRefused,
    _lines,
    _lock_shipment,
    _new_line,
    _notify,
    _refresh_values,
    _run,
    _save,
)
from inventory import services as inventory
from inventory.models import Product
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.history import stamp
from oms.core.locks import lock_one
from oms.core.permissions import require_perm
from orders import services as orders
from orders.choices import CancelReason, OrderEventType
from orders.events import event_record


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
    require_perm(actor, "fulfillment.pick_shipment", "confirm picks")
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
    short = lock_one(
        ShortPick.objects.all(),
        pk,
        not_found="Short pick not found.",
        code="short_pick_not_found",
        related=("order_line", "order"),
    )
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
    require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
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
    require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
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
    require_perm(actor, "fulfillment.resolve_short_pick", "resolve short picks")
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


def short_pick_case_source_open(*, case) -> str | None:
    """Asked before a case is resolved by hand (hook `case.source_open`): a short pick's case closes
    with the short pick, so it cannot be resolved while the short pick is open."""
    kind, _, ident = case.source_key.partition(":")
    if kind != "short_pick" or not ident.isdigit():
        return None
    if ShortPick.objects.filter(pk=ident, resolved_at__isnull=True).exists():
        return "The short pick is still open: resolve it (the case closes with it)."
    return None
