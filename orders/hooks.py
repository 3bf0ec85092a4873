"""What orders lets the apps above it react to (see oms.core.hooks).

Orders never imports fulfillment, billing, returns or b2b: when one of them must act on an order's
change, orders emits one of these hooks and that app subscribes in its AppConfig.ready().
"""

from oms.core.hooks import Hook

ORDER_PLACED = Hook(
    "order.placed",
    owner="orders",
    args=("order", "payment", "actor"),
    doc="An order was created, in its intake transaction, with the payment it arrived with (its "
    "`payment` object, amount resolved). Billing debits store credit or a voucher (or refuses the "
    "order with a field error) and records the payment as a row.",
)

ORDER_CONFIRMED = Hook(
    "order.confirmed",
    owner="orders",
    args=("order", "actor"),
    doc="An order is confirmed (paid, accepted on terms, accepted after review, cleared of fraud). "
    "Billing invoices it after commit when its policy invoices per order.",
)

ORDER_UNITS_TO_PLAN = Hook(
    "order.units_to_plan",
    owner="orders",
    args=("order", "actor"),
    doc="An order in preparation has reserved units that may have no parcel yet (preparation started, "
    "stock reallocated, a line substituted, canceled or added, units shipped outside a parcel). "
    "Fulfillment plans parcels for them, under the order lock.",
)

ORDER_CANCELED = Hook(
    "order.canceled",
    owner="orders",
    args=("order", "actor", "reason"),
    doc="An order was canceled, or lost its last open line. Fulfillment cancels its open parcels, "
    "under the order lock.",
)

ORDER_EVENTS_RECORDED = Hook(
    "order.events_recorded",
    owner="orders",
    args=("order", "events", "actor"),
    doc="New OrderEvent rows were written for one order (already in the outbox). The case detectors, "
    "the automation rules and the customer notifications react, in that order.",
)

CUSTOMER_MERGED = Hook(
    "customer.merged",
    owner="orders",
    args=("keep", "merged", "actor", "reason"),
    doc="Customer records were merged into `keep` (customers locked, permission checked). Each app "
    "moves what it keeps per customer and answers with a dict of what moved.",
)

CASE_SOURCE_OPEN = Hook(
    "case.source_open",
    owner="orders",
    args=("case",),
    doc="Asked before a case is resolved by hand: the app that owns the case's source answers with "
    "a sentence when that source is still open (the case closes with it), else None.",
)

SLA_SWEEP = Hook(
    "cases.sla_sweep",
    owner="orders",
    args=("actor", "now", "default_sla", "channel_slas", "limit"),
    doc="The SLA sweep (orders.cases.sla_sweep), with the default and per-channel SlaPolicy: each app "
    "that owns a timed stage (billing: refunds not processed in time) opens its SLA-breach cases "
    "(orders.cases.sla_breach_open) and answers with the number opened.",
)

CASES_SWEEP = Hook(
    "cases.sweep",
    owner="orders",
    args=("actor", "now"),
    doc="The periodic case sweep (every 5 minutes, orders.cases.cases_sweep; `now` may be None): each "
    "app opens and closes the other cases it detects by time (billing: overdue invoices) and answers "
    "with a dict of counts that joins the sweep's result.",
)
