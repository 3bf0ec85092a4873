"""The customer's link to the parcel tracking page, shared by the page and the customer emails.

The link carries the order number signed with the project's secret key (salt "order-tracking"):
whoever holds the link sees that order's parcels, nobody can forge one for another order. It does
not expire, so that an old email still leads to the page; changing SECRET_KEY invalidates every link.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

from fulfillment.carriers.registry import CARRIERS

TRACKING_SALT = "order-tracking"


def _signer() -> signing.Signer:
    return signing.Signer(salt=TRACKING_SALT)


def tracking_token_for_number(order_number: str) -> str:
    # Deterministic: every email of an order carries the same link.
    return _signer().sign_object(order_number)


def tracking_token(order) -> str:
    return tracking_token_for_number(order.number)


def order_number_from_token(token: str) -> str | None:
    """The order number a token was made for; None for a bad, truncated or tampered token."""
    try:
        number = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    return number if isinstance(number, str) and number else None


def tracking_path_for_number(order_number: str, *, lang: str = "") -> str:
    path = reverse("tracking:order", kwargs={"token": tracking_token_for_number(order_number)})
    return f"{path}?{urlencode({'lang': lang})}" if lang else path


def tracking_url_for_number(order_number: str, *, lang: str = "") -> str:
    """Absolute (settings.OMS_PUBLIC_URL): it is read outside this site, in an email."""
    return settings.OMS_PUBLIC_URL.rstrip("/") + tracking_path_for_number(order_number, lang=lang)


def tracking_url(order, *, lang: str = "") -> str:
    return tracking_url_for_number(order.number, lang=lang)


def carrier_name(code: str) -> str:
    """The carrier's name as customers know it (the adapter's), else its code."""
    adapter = CARRIERS.get(code)
    return (adapter.name if adapter is not None else "") or code
