"""The cockpit's order screens.

Nothing here writes a model: every button opens a small form whose POST calls the service in
`orders.services` with `actor=request.user`. The service checks the permission, runs the
transition, writes the event and the history row; the admin only turns its `ApplicationError`
into a message on the page. Lists never run an unfiltered COUNT(*) (see oms.core.admin).

One module per screen group: `orders` (the order list and page, built from `timeline`, `forms` and
`actions`), `customers`, `records` (holds, events), `cases` (the queues), `rules` (automation rules,
SLA policies); `base` holds what the big append-only lists share. Importing them registers them.
"""

from orders.admin import cases, customers, orders, records, rules  # noqa: F401 (importing registers the screens)
