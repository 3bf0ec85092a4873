"""Stock primitives: every change to on_hand or reserved, each with its ledger row.

These run inside the caller's transaction (they assert it) and are the only code that writes
`StockItem.on_hand` / `reserved`. Two ways to change a counter, both safe under concurrency:

- `try_reserve`: one conditional UPDATE (`… WHERE on_hand - reserved - safety_stock >= n`), which
  locks only the row it changes and fails instead of overselling;
- `locked_items` + a checked change: rows locked in the fixed order (product, location) first,
  for changes that need to read before they write (channel shares, ring fences, adjustments).
  That is the place of stock rows in the project's one lock order (`oms.core.locks`): after the
  order, its lines and its reservations, before incoming supply and document counters.

The database has the last word: check constraints keep on_hand >= 0, reserved >= 0 and
reserved <= on_hand whatever the code does.
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import F

from inventory.models import MovementReason, Product, Reservation, StockItem, StockMovement


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("Stock changes must run inside the transaction of the business action.")


def stock_item_get_or_create(*, product_id: int, location_id: int) -> StockItem:
    """The stock row, created with the product's safety stock as its own (editable per location)."""
    item = StockItem.objects.filter(product_id=product_id, location_id=location_id).first()
    if item is None:
        safety = Product.objects.filter(pk=product_id).values_list("safety_stock", flat=True).first() or 0
        item, _ = StockItem.objects.get_or_create(
            product_id=product_id, location_id=location_id, defaults={"safety_stock": safety}
        )
    return item


def locked_items(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], StockItem]:
    """Lock the stock rows of (product_id, location_id) pairs in the fixed order, creating missing ones."""
    _require_transaction()
    ordered = sorted(set(pairs))
    for product_id, location_id in ordered:
        stock_item_get_or_create(product_id=product_id, location_id=location_id)
    result = {}
    for product_id, location_id in ordered:
        # One statement per row, in order: a single IN (...) FOR UPDATE may lock in any order.
        item = StockItem.objects.select_for_update().get(product_id=product_id, location_id=location_id)
        result[(product_id, location_id)] = item
    return result


def locked_item(*, product_id: int, location_id: int) -> StockItem:
    """One stock row, locked (created if missing)."""
    return locked_items([(product_id, location_id)])[(product_id, location_id)]


def ledger_write(
    *,
    item: StockItem,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reason: str,
    actor=None,
    actor_id=None,
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
        actor_id=actor.pk if actor is not None else actor_id,
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


_RESERVE_SQL = """
WITH upd AS (
    UPDATE inventory_stockitem SET reserved = reserved + %(total)s
    WHERE id = %(item)s AND on_hand - reserved - safety_stock >= %(total)s
    RETURNING id, product_id, location_id
), parts AS (
    SELECT * FROM {parts}
), res AS (
    INSERT INTO inventory_reservation (order_id, order_line_id, channel_id, product_id, location_id,
        stock_item_id, supply_id, quantity, quantity_consumed, quantity_released, mode, state, created_at)
    SELECT %(order)s, parts.line_id, %(channel)s, upd.product_id, upd.location_id, upd.id, NULL, parts.qty,
        0, 0, %(mode)s, 'active', statement_timestamp()
    FROM upd, parts
), led AS (
    INSERT INTO inventory_stockmovement (stock_item_id, on_hand_delta, reserved_delta, reason, order_id,
        order_line_id, reference, note, actor_id, created_at)
    SELECT upd.id, 0, parts.qty, 'reservation', %(order)s, parts.line_id, %(reference)s, '', %(actor)s,
        statement_timestamp()
    FROM upd, parts
)
SELECT count(*) FROM upd
"""
_RESERVE_MANY_SQL = _RESERVE_SQL.replace(
    "{parts}", "unnest(%(lines)s::bigint[], %(quantities)s::integer[]) AS p(line_id, qty)"
)
# One line, the usual case: scalars, no set to join.
_RESERVE_ONE_SQL = """
WITH upd AS (
    UPDATE inventory_stockitem SET reserved = reserved + %(total)s
    WHERE id = %(item)s AND on_hand - reserved - safety_stock >= %(total)s
    RETURNING id, product_id, location_id
), res AS (
    INSERT INTO inventory_reservation (order_id, order_line_id, channel_id, product_id, location_id,
        stock_item_id, supply_id, quantity, quantity_consumed, quantity_released, mode, state, created_at)
    SELECT %(order)s, %(line)s, %(channel)s, upd.product_id, upd.location_id, upd.id, NULL, %(total)s,
        0, 0, %(mode)s, 'active', statement_timestamp()
    FROM upd
), led AS (
    INSERT INTO inventory_stockmovement (stock_item_id, on_hand_delta, reserved_delta, reason, order_id,
        order_line_id, reference, note, actor_id, created_at)
    SELECT upd.id, 0, %(total)s, 'reservation', %(order)s, %(line)s, %(reference)s, '', %(actor)s,
        statement_timestamp()
    FROM upd
)
SELECT count(*) FROM upd
"""


def reserve_with_rows(
    *, item_id: int, order_id: int, channel_id: int, parts: list[tuple[int, int]], mode: str, actor_id, reference: str
) -> bool:
    """The hot path: one statement that reserves on a stock row if enough is free beyond safety stock
    and, only if it did, writes the reservation rows and their ledger rows.

    One round trip, atomic on its own, so the row lock lasts only for this statement and the
    commit. Raw SQL on purpose, on the contended path of the system: the ORM would need three
    statements. On PostgreSQL it is a server-side prepared statement (planned once per
    connection); `parts` are (order line id, quantity).
    """
    params = {
        "total": sum(qty for _, qty in parts),
        "item": item_id,
        "order": order_id,
        "channel": channel_id,
        "mode": mode,
        "reference": reference[:128],
        "actor": actor_id,
    }
    if len(parts) == 1:
        params["line"] = parts[0][0]
        sql = _RESERVE_ONE_SQL
    else:
        params["lines"] = [line_id for line_id, _ in parts]
        params["quantities"] = [qty for _, qty in parts]
        sql = _RESERVE_MANY_SQL
    if connection.vendor != "postgresql":
        return _reserve_with_rows_orm(params)
    connection.ensure_connection()
    # psycopg directly: server-side binding, so the statement is prepared once per connection.
    return connection.connection.execute(sql, params, prepare=True).fetchone()[0] == 1


def _reserve_with_rows_orm(params: dict) -> bool:
    """The same, portably (the embedded SQLite mode takes one writer at a time anyway)."""
    item = StockItem.objects.get(pk=params["item"])
    if not try_reserve(item_id=item.pk, quantity=params["total"]):
        return False
    lines = params.get("lines") or [params["line"]]
    quantities = params.get("quantities") or [params["total"]]
    for line_id, qty in zip(lines, quantities, strict=True):
        Reservation.objects.create(
            order_id=params["order"],
            order_line_id=line_id,
            channel_id=params["channel"],
            product_id=item.product_id,
            location_id=item.location_id,
            stock_item=item,
            quantity=qty,
            mode=params["mode"],
        )
        ledger_write(
            item=item,
            reserved_delta=qty,
            reason=MovementReason.RESERVATION,
            actor_id=params["actor"],
            order_id=params["order"],
            order_line_id=line_id,
            reference=params["reference"],
        )
    return True


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
