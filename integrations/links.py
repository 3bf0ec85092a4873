"""The customer's link to their order's tracking page, printed in every customer message.

It lives here, under the messages that print it, rather than with the page (fulfillment's
`tracking:order` view, which re-exports these in fulfillment.links): a message is rendered from its
order number alone, without reading the order or importing the app that serves the page.

The link carries the order number signed with the project's secret key (salt "order-tracking"):
whoever holds the link sees that order's parcels, nobody can forge one for another order. It does
not expire, so that an old email still leads to the page; changing SECRET_KEY invalidates every link.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

TRACKING_SALT = "order-tracking"


def _signer() -> signing.Signer:
    return signing.Signer(salt=TRACKING_SALT)


def tracking_token_for_number(order_number: str) -> str:
    # Deterministic: every email of an order carries the same link.
    return _signer().sign_object(order_number)


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
