"""Stock primitives: every change to on_hand or reserved, each with its ledger row.

These run inside the caller's transaction (they assert it) and are the only code that writes
`StockItem.on_hand` / `reserved`. Two ways to change a counter, both safe under concurrency:

- `try_reserve`: one conditional UPDATE (`… WHERE on_hand - reserved - safety_stock >= n`), which
  locks only the row it changes and fails instead of overselling;
- `locked_items` + a checked change: rows locked in the fixed order (product, location) first,
  for changes that need to read before they write (channel shares, ring fences, adjustments).

The database has the last word: check constraints keep on_hand >= 0, reserved >= 0 and
reserved <= on_hand whatever the code does.
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import F

from inventory.models import MovementReason, StockItem, StockMovement


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("Stock changes must run inside the transaction of the business action.")


def stock_item_get_or_create(*, product_id: int, location_id: int) -> StockItem:
    item, _ = StockItem.objects.get_or_create(product_id=product_id, location_id=location_id)
    return item


def locked_items(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], StockItem]:
    """Lock the stock rows of (product_id, location_id) pairs in the fixed order, creating missing ones."""
    _require_transaction()
    ordered = sorted(set(pairs))
    for product_id, location_id in ordered:
        StockItem.objects.get_or_create(product_id=product_id, location_id=location_id)
    result = {}
    for product_id, location_id in ordered:
        # One statement per row, in order: a single IN (...) FOR UPDATE may lock in any order.
        item = StockItem.objects.select_for_update().get(product_id=product_id, location_id=location_id)
        result[(product_id, location_id)] = item
    return result


def ledger_write(
    *,
    item: StockItem,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reason: str,
    actor=None,
    order_id: int | None = None,
    order_line_id: int | None = None,
    reference: str = "",
    note: str = "",
) -> StockMovement:
    return StockMovement.objects.create(
        stock_item=item,
        on_hand_delta=on_hand_delta,
        reserved_delta=reserved_delta,
        reason=reason,
        actor=actor,
        order_id=order_id,
        order_line_id=order_line_id,
        reference=reference[:128],
        note=note,
    )


def try_reserve(*, item_id: int, quantity: int) -> bool:
    """Reserve `quantity` on one stock row if that much is free beyond safety stock. One UPDATE."""
    _require_transaction()
    updated = StockItem.objects.filter(pk=item_id, on_hand__gte=F("reserved") + F("safety_stock") + quantity).update(
        reserved=F("reserved") + quantity
    )
    return updated == 1


def apply_change(*, item: StockItem, on_hand_delta: int = 0, reserved_delta: int = 0, **ledger) -> StockMovement:
    """Change a row already locked by `locked_items` and write its ledger row.

    The new values are written as increments so the row stays right even if the in-memory copy
    were stale; the check constraints refuse anything that would go negative or over.
    """
    _require_transaction()
    StockItem.objects.filter(pk=item.pk).update(
        on_hand=F("on_hand") + on_hand_delta, reserved=F("reserved") + reserved_delta
    )
    item.on_hand += on_hand_delta
    item.reserved += reserved_delta
    return ledger_write(item=item, on_hand_delta=on_hand_delta, reserved_delta=reserved_delta, **ledger)


RESERVATION = MovementReason.RESERVATION
RELEASE = MovementReason.RELEASE
SHIPMENT = MovementReason.SHIPMENT
