"""The cockpit's fulfillment screens: shipments, waves and pick lists, short picks, tracking.

Nothing here writes a model: every button opens a small form (or is one) whose POST calls a service
in `fulfillment.services` with `actor=request.user`. The service checks the permission, the state
and the input; the admin only turns its `ApplicationError` into a message on the page. Labels, pick
lists and packing slips are served by admin views that first check the user may see the shipment or
the wave (media files are not public). Lists never run an unfiltered COUNT(*) (oms.core.admin).

One module per screen group; importing the package registers every screen and the order page's
Shipments panel.
"""

from fulfillment.admin import order_page, shipments, short_picks, tracking, waves  # noqa: F401 (registers the screens)
