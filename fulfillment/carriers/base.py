"""The carrier adapter contract: plain data in, plain data out, no database.

A shipment service builds a `Parcel`, asks an adapter (from `registry.get_carrier`) for a `Label`,
and stores what comes back. Inbound tracking webhooks are parsed into `TrackingEvent`s whose
`status` is already one of ours: a carrier's "shipped" is never our "delivered".
"""

import abc
import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from fulfillment.carriers.choices import TrackingStatus

ADDRESS_KEYS = ("name", "company", "line1", "line2", "postal_code", "city", "region", "country", "phone")
REQUIRED_ADDRESS_KEYS = ("name", "line1", "postal_code", "city", "country")


class ParcelLine(NamedTuple):
    """One customs line; a plain tuple `(sku, name, quantity, hs_code, origin_country, unit_value)` fits too."""

    sku: str
    name: str
    quantity: int
    hs_code: str
    origin_country: str
    unit_value: Decimal


@dataclass(frozen=True)
class Parcel:
    shipment_reference: str
    order_number: str
    weight_grams: int
    declared_value: Decimal
    currency: str
    insurance: bool
    ship_from: dict
    ship_to: dict
    lines: list[ParcelLine] = field(default_factory=list)

    def __post_init__(self):
        # Accept plain tuples from callers; the adapters read lines by name.
        object.__setattr__(self, "lines", [ParcelLine(*line) for line in self.lines])

    @property
    def is_international(self) -> bool:
        origin = (self.ship_from.get("country") or "").upper()
        destination = (self.ship_to.get("country") or "").upper()
        return origin != destination


@dataclass(frozen=True)
class Label:
    carrier_code: str
    service: str
    tracking_number: str
    tracking_url: str
    pdf: bytes


@dataclass(frozen=True)
class TrackingEvent:
    carrier_event_id: str
    tracking_number: str
    carrier_status_code: str
    status: str  # a TrackingStatus value, mapped by the adapter
    occurred_at: datetime.datetime  # always timezone-aware
    description: str = ""
    location: str = ""


class CarrierAdapter(abc.ABC):
    code: str = ""
    name: str = ""
    services: tuple[str, ...] = ()

    @abc.abstractmethod
    def create_label(self, parcel: Parcel, service: str) -> Label: ...

    @abc.abstractmethod
    def cancel_label(self, tracking_number: str) -> None: ...

    @abc.abstractmethod
    def tracking_url(self, tracking_number: str) -> str: ...

    @abc.abstractmethod
    def map_status(self, carrier_status_code: str) -> str:
        """Return a `TrackingStatus` value; an unknown code is an exception to look at, never a guess."""

    @abc.abstractmethod
    def parse_webhook(self, payload: dict) -> list[TrackingEvent]:
        """Turn the carrier's tracking payload into events; a malformed payload is a `ValidationError`."""

    def fetch_tracking(
        self, tracking_number: str, *, shipped_at: datetime.datetime | None = None
    ) -> list[TrackingEvent]:
        """Poll the carrier for a parcel's events (for carriers without webhooks). Default: none."""
        return []


__all__ = [
    "ADDRESS_KEYS",
    "REQUIRED_ADDRESS_KEYS",
    "CarrierAdapter",
    "Label",
    "Parcel",
    "ParcelLine",
    "TrackingEvent",
    "TrackingStatus",
]
