"""The customer's parcel tracking page: GET /track/<token>/, linked from every customer email.

No login: the signed token is the key (fulfillment.links). The page is read-only and shows only
what a customer reads: translated labels, never our internal status codes or shipment numbers.
"""

from django.conf import settings
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from fulfillment.carriers.choices import TrackingStatus
from fulfillment.choices import ShipmentKind, ShipmentStatus
from fulfillment.links import carrier_name, order_number_from_token
from fulfillment.selectors import order_parcels
from orders.labels import order_customer_label
from orders.models import Order

TEMPLATE = "fulfillment/track.html"
S = ShipmentStatus

# What a customer reads for each carrier event (TrackingStatus labels are not for customers).
TRACKING_EVENT_LABELS = {
    TrackingStatus.LABEL_CREATED: _("Registered with the carrier"),
    TrackingStatus.IN_TRANSIT: _("On its way"),
    TrackingStatus.OUT_FOR_DELIVERY: _("Out for delivery"),
    TrackingStatus.DELIVERED: _("Delivered"),
    TrackingStatus.EXCEPTION: _("Delivery problem: the carrier is on it"),
    TrackingStatus.RETURNED_TO_SENDER: _("Returned to us"),
    TrackingStatus.LOST: _("Delayed in transit: we are looking into it"),
    TrackingStatus.DAMAGED: _("Damaged in transit: we will contact you"),
}

# The colour of a parcel's badge: where it stands for the customer.
PARCEL_TONES = {
    S.DELIVERED: "done",
    S.PICKED_UP: "done",
    S.SHIPPED: "moving",
    S.IN_TRANSIT: "moving",
    S.READY_FOR_PICKUP: "ready",
    S.LOST: "problem",
    S.DAMAGED: "problem",
    S.RETURNED_TO_SENDER: "problem",
    S.PICKUP_EXPIRED: "problem",
}


def _language(request, order: Order | None) -> str:
    """?lang= when it names one of our languages, else the order's, else the browser's."""
    available = {code for code, _name in settings.LANGUAGES}
    wanted = (request.GET.get("lang") or "").strip().lower()
    if wanted in available:
        return wanted
    if order is not None and order.locale in available:
        return order.locale
    return translation.get_language() or settings.LANGUAGE_CODE


def _web_url(url: str) -> str:
    # Only links a browser should follow: a carrier URL is data from outside.
    return url if url.startswith(("https://", "http://")) else ""


def _page_context(order: Order, language: str) -> dict:
    # Called under translation.override(language): the selector's labels are rendered in it.
    view = order_parcels(order)
    parcels = []
    for index, parcel in enumerate(view.parcels, start=1):
        is_pickup = parcel.kind == ShipmentKind.PICKUP
        parcels.append(
            {
                "index": index,
                "label": parcel.label,
                "tone": PARCEL_TONES.get(parcel.status, "preparing"),
                "is_pickup": is_pickup,
                "carrier": carrier_name(parcel.carrier) if parcel.tracking_number else "",
                "tracking_number": parcel.tracking_number,
                "tracking_url": _web_url(parcel.tracking_url),
                "store": parcel.location if is_pickup else "",
                "pickup_expires_at": parcel.pickup_expires_at if parcel.status == S.READY_FOR_PICKUP else None,
                "shipped_at": parcel.shipped_at if not is_pickup else None,
                "delivered_at": parcel.delivered_at,
                "items": parcel.items,
                # Newest first: the customer wants to know where the parcel is now.
                "events": [
                    {**event, "label": TRACKING_EVENT_LABELS.get(event["status"], event["status"])}
                    for event in reversed(parcel.events)
                ],
            }
        )
    return {
        "order_number": order.number,
        "order_label": order_customer_label(order, language),
        "placed_at": order.placed_at,
        "parcels": parcels,
        "parcel_count": len(parcels),
        "remaining": view.remaining,
        "languages": [(code, translation.get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES],
        "language": language,
    }


@require_safe
@never_cache
def order_tracking(request, token: str):
    number = order_number_from_token(token)
    order = Order.objects.filter(number=number).first() if number else None
    language = _language(request, order)
    with translation.override(language):
        if order is None:
            response = render(request, TEMPLATE, {"not_found": True, "language": language}, status=404)
        else:
            response = render(request, TEMPLATE, _page_context(order, language))
    response.headers["Content-Language"] = language
    # The token is the key to the page: never sent on to the carrier's site, never indexed.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
