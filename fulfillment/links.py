"""The customer's link to the parcel tracking page, shared by the page and the customer emails.

The signed link itself is built in integrations.links (the customer messages print it without
reading the order); this module adds the order-instance shortcuts and the carrier's name.
"""

from fulfillment.carriers.registry import CARRIERS
from integrations.links import (
    TRACKING_SALT,
    order_number_from_token,
    tracking_path_for_number,
    tracking_token_for_number,
    tracking_url_for_number,
)

__all__ = [
    "TRACKING_SALT",
    "carrier_name",
    "order_number_from_token",
    "tracking_path_for_number",
    "tracking_token",
    "tracking_token_for_number",
    "tracking_url",
    "tracking_url_for_number",
]


def tracking_token(order) -> str:
    return tracking_token_for_number(order.number)


def tracking_url(order, *, lang: str = "") -> str:
    return tracking_url_for_number(order.number, lang=lang)


def carrier_name(code: str) -> str:
    """The carrier's name as customers know it (the adapter's), else its code."""
    adapter = CARRIERS.get(code)
    return (adapter.name if adapter is not None else "") or code
