"""Corrections of on hand outside a receipt or a shipment: a manual adjustment, and units a picker did
not find.

Neither ever takes on hand below what orders hold reserved.
"""

from django.db import transaction

from inventory.models import (
    Location,
    MovementReason,
    Product,
    StockItem,
)
from inventory.stock import apply_change, locked_item
from oms.core.errors import ConflictError, ValidationError
from oms.core.permissions import require_perm


@transaction.atomic
def stock_adjust(
    *, product: Product, location: Location, delta: int, actor, note: str, reference: str = ""
) -> StockItem:
    """A manual correction of on hand (own permission, reason required). Never below what is reserved."""
    require_perm(actor, "inventory.adjust_stock", "adjust stock")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValidationError("A non-zero whole number is required.", fields={"delta": ["Non-zero integer."]})
    if not (note or "").strip():
        raise ValidationError("A reason is required for a stock adjustment.", fields={"note": ["Required."]})
    item = locked_item(product_id=product.pk, location_id=location.pk)
    if item.on_hand + delta < item.reserved:
        raise ConflictError(
            f"{product.sku} at {location.code}: on hand would fall to {item.on_hand + delta}, below the "
            f"{item.reserved} unit(s) reserved for orders.",
            code="adjustment_below_reserved",
        )
    apply_change(
        item=item, on_hand_delta=delta, reason=MovementReason.ADJUSTMENT, actor=actor, reference=reference, note=note
    )
    return item


def stock_write_off_short_pick(
    *, product_id: int, location_id: int, quantity: int, actor, order=None, order_line_id=None, reference: str = ""
) -> int:
    """A picker did not find units the system believed were there: take them off hand.

    Units other orders still hold reserved are never written off (the counters stay consistent and
    their own pickers will report what they miss); a cycle count settles the rest. Returns units
    written off."""
    item = StockItem.objects.filter(product_id=product_id, location_id=location_id).first()
    if item is None:
        return 0
    item = locked_item(product_id=product_id, location_id=location_id)
    units = min(quantity, item.on_hand - item.reserved)
    if units <= 0:
        return 0
    apply_change(
        item=item,
        on_hand_delta=-units,
        reason=MovementReason.SHORT_PICK,
        actor=actor,
        order_id=order.pk if order is not None else None,
        order_line_id=order_line_id,
        reference=reference,
    )
    return units
