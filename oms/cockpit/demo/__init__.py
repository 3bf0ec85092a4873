"""Demo data for the cockpit, built by `manage.py seed_demo`: role users, channels, customers and
~250 orders in every status.

Every order is created and moved ONLY through `orders.services` and `fulfillment.services`, each
step by the role that does it in real life (the store front's API client imports, support cancels
and holds, the warehouse picks, packs and ships parcels, a 3PL reports its own through the API, the carrier's
webhook tracks them, finance records payments and closes), so the timeline, the history and the
outbox look like production. Fulfillment shows every parcel state: a printed wave at the Paris
warehouse, short picks (one open, one resolved each way), parcels in transit, delivered and lost,
store pickups, a consolidated parcel and an order split over two locations. Billing and returns
follow through `billing.services` and `returns.services`: payment rows, billing policies, invoices
(one overdue), credit notes by lines and by amount, refunds in each state, a voucher, a dispute with
its evidence pack, and returns requested, approved, inspected and refused. Reproducible (fixed
random seed): the builders draw from one random generator in a fixed order, so the command calls
them in the same order every time.

`context.Demo` is what the builders share (users, random draws, clock, counters). The builders, in
the order the command calls them:
- `users`: the role groups, one staff user per role and one API client per job (store front, 3PL,
  payment provider, ERP, read-only), each on its channels;
- `customers`: the customers, drawn first (they tell whether the demo is there), saved after the
  catalog;
- `catalog`: channels, tags, locations, products and opening stock;
- `orders`: the plan of orders per status, each created and driven to its status, its parcels
  picked, packed, dispatched and tracked by `parcels`;
- `fulfillment`: the showcase of every parcel state on recent orders of their own customers;
- `billing`, then `returns`: payments, invoices, credit notes, refunds, a dispute and returns;
- `cockpit`: SLA policies, automation rules, cases in every queue and possible duplicates.

DEMO ONLY: the passwords are deterministic and printed. Never run this against production.
"""
