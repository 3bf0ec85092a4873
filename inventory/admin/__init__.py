"""The cockpit's inventory screens, and the Sourcing panel of the order page.

Counters are never edited here. Receiving, adjusting, recording incoming supply and cycle counts
are small forms whose POST calls the service in `inventory.services` with `actor=request.user`:
the service checks the permission, locks the rows and writes the ledger; the admin only turns its
`ApplicationError` into a message on the form. Master data (products, locations, channel rules)
is edited with the ordinary forms and keeps its history. Lists never run an unfiltered COUNT(*)
(`oms.core.admin.EstimatedCountPaginator`) and search only on indexed columns.

One module per group of screens; importing this package registers them all:
`products`, `stock` (locations and stock rows, receive and adjust), `ledger` (stock movements and
reservations), `supply`, `counts` (cycle counts and stock alerts) and `sourcing` (channel rules and
settings, the order page's Sourcing panel); `base` holds what they share.
"""

from inventory.admin import counts, ledger, products, sourcing, stock, supply
from inventory.admin.base import ActiveLocationFilter, sku_products
from inventory.admin.sourcing import order_sourcing_panel

__all__ = [
    "ActiveLocationFilter",
    "counts",
    "ledger",
    "order_sourcing_panel",
    "products",
    "sku_products",
    "sourcing",
    "stock",
    "supply",
]
