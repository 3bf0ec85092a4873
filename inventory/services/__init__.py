"""Every write to stock: receipts, adjustments, returns, reservations for orders, shipments,
incoming supply, cycle counts, sell windows and coverage alerts.

The package is split by use case and this module re-exports every service: `receipts` (goods in,
incoming supply, returns, a 3PL's receipt document), `adjustments` (on hand corrected by hand or by
a short pick), `allocation` (sourcing and reserving for orders), `backorders` (last-unit preemption,
promises against incoming supply), `release` (reservations released or consumed by a shipment),
`counts` (cycle counts) and `alerts` (sell windows, coverage).

Lock order (the project's one, `oms.core.locks`): an order and its lines (taken by the orders
services that call in here), then that order's reservations by id, then stock rows by (product,
location), then incoming supply by (expected date, id). Two places depart from it: a receipt
against incoming supply locks the stock row and the supply before the supply's promises (the
supply's lock is what keeps that set of promises still), and a last-unit preemption takes the
losing reservations with SKIP LOCKED (it never waits on them) and then their stock row, after the
rows the allocation already holds.

Inventory sits below orders: it gets orders and their lines as arguments (their `pk`,
`channel_id`, `number`, `shipping_address`, lines' `product_id`, `quantity_open` …) and does not
query orders' tables; what else it must know of them (which orders may still give up their stock)
comes with the call.
"""

from inventory.services.adjustments import stock_adjust, stock_write_off_short_pick  # noqa: F401
from inventory.services.alerts import coverage_alerts_refresh, products_switch_off_expired  # noqa: F401
from inventory.services.allocation import (  # noqa: F401
    OPTIMISTIC_ATTEMPTS,
    channel_reservation_mode,
    reservation_mode_for,
    reserve_at_location,
    stock_allocate,
    stock_reserve,
)
from inventory.services.backorders import preempt_for  # noqa: F401
from inventory.services.counts import count_apply, count_cancel, count_open, count_record, count_submit  # noqa: F401
from inventory.services.receipts import stock_receipt_apply, stock_receive, stock_return, supply_create  # noqa: F401
from inventory.services.release import (  # noqa: F401
    reservation_units_release,
    reservations_release,
    reservations_release_excess,
    stock_consume,
)
