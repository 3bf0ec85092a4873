"""How reservations end: released (an order or some of its lines canceled or changed) or consumed by a
shipment.

Lock order: the order's reservations by id, then stock rows by (product, location), then incoming
supply by (expected date, id).
"""

from django.db.models import F, Sum
from django.utils import timezone

from inventory.models import (
    IncomingSupply,
    MovementReason,
    Reservation,
    ReservationState,
)
from inventory.services._common import _open_reserved_by_line
from inventory.stock import apply_change, locked_items
from oms.core.errors import ConflictError


def reservations_release_excess(*, order, actor, lines, reason: str = "") -> int:
    """Release what the lines hold reserved beyond their open (unshipped, not canceled) units."""
    reserved = _open_reserved_by_line(order.pk, [line.pk for line in lines])
    excess = {
        line.pk: reserved.get(line.pk, 0) - line.quantity_open
        for line in lines
        if reserved.get(line.pk, 0) > line.quantity_open
    }
    if not excess:
        return 0
    return reservation_units_release(order=order, actor=actor, quantities=excess, reason=reason)


def reservations_release(*, order, actor, line_ids=None, reason: str = "") -> int:
    """Release the order's open reservations (all, or those of some lines). Returns units released."""
    qs = Reservation.objects.filter(order_id=order.pk, state=ReservationState.ACTIVE)
    if line_ids is not None:
        qs = qs.filter(order_line_id__in=list(line_ids))
    open_units = {
        row["order_line_id"]: row["units"]
        for row in qs.values("order_line_id").annotate(
            units=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released"))
        )
        if row["units"]
    }
    if not open_units:
        return 0
    return reservation_units_release(order=order, actor=actor, quantities=open_units, reason=reason)


def reservation_units_release(
    *, order, actor, quantities: dict[int, int], location_id: int | None = None, reason: str = ""
) -> int:
    """Release up to `quantities[line id]` units of the order's open reservations (at one location
    first when given, then anywhere). Returns the units released."""
    reservations = list(
        Reservation.objects.select_for_update()
        .filter(order_id=order.pk, order_line_id__in=list(quantities), state=ReservationState.ACTIVE)
        .order_by("pk")
    )
    if location_id is not None:
        reservations.sort(key=lambda r: r.location_id != location_id)
    items = locked_items({(r.product_id, r.location_id) for r in reservations if r.stock_item_id})
    supplies = {
        s.pk: s
        for s in IncomingSupply.objects.select_for_update()
        .filter(pk__in={r.supply_id for r in reservations if r.supply_id})
        .order_by("expected_at", "pk")
    }
    left = dict(quantities)
    released = 0
    now = timezone.now()
    for reservation in reservations:
        units = min(left.get(reservation.order_line_id, 0), reservation.quantity_open)
        if units <= 0:
            continue
        if reservation.stock_item_id:
            apply_change(
                item=items[(reservation.product_id, reservation.location_id)],
                reserved_delta=-units,
                reason=MovementReason.RELEASE,
                actor=actor,
                order_id=order.pk,
                order_line_id=reservation.order_line_id,
                reference=order.number,
                note=reason,
            )
        else:
            supply = supplies[reservation.supply_id]
            supply.quantity_promised -= units
            supply.save(update_fields=["quantity_promised"])
        reservation.quantity_released += units
        if reservation.quantity_open == 0:
            reservation.state = ReservationState.RELEASED
            reservation.closed_at = now
        reservation.save(update_fields=["quantity_released", "state", "closed_at"])
        left[reservation.order_line_id] -= units
        released += units
    return released


def stock_consume(
    *,
    order,
    actor,
    quantities: dict[int, int],
    reference: str = "",
    location_id: int | None = None,
    lines=None,
) -> list[tuple[int, int, int]]:
    """Shipped units leave stock: reservations are consumed (on hand and reserved both go down).

    With `location_id` (a shipment's location) only reservations there are consumed. `lines` are the
    order lines of `quantities` as the caller holds them (`pk`, `product_id`, `line_number`, `sku`):
    units of a stock-managed line that no reservation covers are refused, naming the line; a line
    without a product (a service, a gift card) ships without stock. Without `lines`, the lines this
    app reserved for before are the stock-managed ones (inventory does not read order lines).
    Returns [(line_id, location_id, quantity)].
    """
    reservations = Reservation.objects.select_for_update().filter(
        order_id=order.pk,
        order_line_id__in=list(quantities),
        state=ReservationState.ACTIVE,
        stock_item__isnull=False,
    )
    if location_id is not None:
        reservations = reservations.filter(location_id=location_id)
    reservations = list(reservations.order_by("pk"))
    items = locked_items({(r.product_id, r.location_id) for r in reservations})
    moved = []
    left = dict(quantities)
    now = timezone.now()
    for reservation in reservations:
        take = min(left.get(reservation.order_line_id, 0), reservation.quantity_open)
        if take <= 0:
            continue
        apply_change(
            item=items[(reservation.product_id, reservation.location_id)],
            on_hand_delta=-take,
            reserved_delta=-take,
            reason=MovementReason.SHIPMENT,
            actor=actor,
            order_id=order.pk,
            order_line_id=reservation.order_line_id,
            reference=reference or order.number,
        )
        reservation.quantity_consumed += take
        if reservation.quantity_open == 0:
            reservation.state = ReservationState.CONSUMED
            reservation.closed_at = now
        reservation.save(update_fields=["quantity_consumed", "state", "closed_at"])
        left[reservation.order_line_id] -= take
        moved.append((reservation.order_line_id, reservation.location_id, take))
    unreserved = {line_id: qty for line_id, qty in left.items() if qty > 0}
    if unreserved:
        _refuse_unreserved(order=order, unreserved=unreserved, lines=lines)
    return moved


def _refuse_unreserved(*, order, unreserved: dict[int, int], lines) -> None:
    """Refuse shipping units of a stock-managed line that no reservation covers (409 `not_reserved`)."""
    if lines is not None:
        named = {line.pk: f"Line {line.line_number} ({line.sku})" for line in lines if line.product_id is not None}
    else:
        named = {
            line_id: f"Line id {line_id} ({sku})"
            for line_id, sku in Reservation.objects.filter(order_id=order.pk, order_line_id__in=list(unreserved))
            .order_by("order_line_id")
            .values_list("order_line_id", "product__sku")
            .distinct()
        }
    for line_id, qty in unreserved.items():
        if line_id in named:
            raise ConflictError(
                f"{named[line_id]} has no reservation for {qty} unit(s): allocate it first.", code="not_reserved"
            )
