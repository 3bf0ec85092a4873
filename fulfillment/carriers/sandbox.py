"""An offline carrier for development, demos and tests: real PDF labels, no network."""

import datetime
import hashlib
import logging
import re
from collections.abc import Callable

from fulfillment.carriers.base import REQUIRED_ADDRESS_KEYS, CarrierAdapter, Label, Parcel, TrackingEvent
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.labels import render_label_pdf
from oms.core.errors import ValidationError
from oms.core.inputs import datetime_problem
from oms.core.money import validate_currency

logger = logging.getLogger(__name__)

TRACKING_PREFIX = "SBX"
TRACKING_DIGITS = 10
TRACKING_NUMBER_RE = re.compile(rf"^{TRACKING_PREFIX}\d{{{TRACKING_DIGITS}}}$")
TRACKING_URL = "https://tracking.sandbox.invalid/{number}"

# The carrier's "SHIPPED" means it left the sender: in transit, never delivered.
STATUS_MAP = {
    "ACCEPTED": TrackingStatus.LABEL_CREATED,
    "PICKED_UP": TrackingStatus.IN_TRANSIT,
    "SHIPPED": TrackingStatus.IN_TRANSIT,
    "IN_TRANSIT": TrackingStatus.IN_TRANSIT,
    "OUT_FOR_DELIVERY": TrackingStatus.OUT_FOR_DELIVERY,
    "DELIVERED": TrackingStatus.DELIVERED,
    "DELIVERY_FAILED": TrackingStatus.EXCEPTION,
    "RETURNED": TrackingStatus.RETURNED_TO_SENDER,
    "LOST": TrackingStatus.LOST,
    "DAMAGED": TrackingStatus.DAMAGED,
}

_WEBHOOK_REQUIRED = ("id", "tracking_number", "status", "occurred_at")
# What TrackingUpdate stores of each (a longer value is refused by field, not cut or failed on).
_WEBHOOK_MAX_LENGTHS = {"id": 128, "tracking_number": 64, "status": 64, "location": 120, "description": 2000}


def sandbox_tracking_number(*, shipment_reference: str, counter: int | None = None) -> str:
    """`SBX` + 10 digits: from `counter` when given (a database sequence), else from a hash of the reference.

    The hash makes a retried label request for the same shipment get the same number.
    """
    if counter is not None:
        if counter < 0 or counter >= 10**TRACKING_DIGITS:
            raise ValidationError("Tracking counter out of range.", fields={"counter": ["Must be 0 to 9999999999."]})
        number = counter
    else:
        digest = hashlib.sha256(shipment_reference.encode("utf-8")).digest()
        number = int.from_bytes(digest[:8], "big") % 10**TRACKING_DIGITS
    return f"{TRACKING_PREFIX}{number:0{TRACKING_DIGITS}d}"


class SandboxCarrier(CarrierAdapter):
    code = "sandbox"
    name = "Sandbox Parcel"
    services = ("standard", "express")

    def __init__(self, *, counter: Callable[[], int] | None = None):
        # `counter` returns the next number of a shared sequence; no in-process state is kept here.
        self._counter = counter

    def create_label(self, parcel: Parcel, service: str) -> Label:
        self._validate(parcel, service)
        tracking_number = sandbox_tracking_number(
            shipment_reference=parcel.shipment_reference,
            counter=self._counter() if self._counter else None,
        )
        pdf = render_label_pdf(parcel=parcel, carrier_name=self.name, service=service, tracking_number=tracking_number)
        logger.info(
            "sandbox label created",
            extra={"shipment_reference": parcel.shipment_reference, "tracking_number": tracking_number},
        )
        return Label(
            carrier_code=self.code,
            service=service,
            tracking_number=tracking_number,
            tracking_url=self.tracking_url(tracking_number),
            pdf=pdf,
        )

    def cancel_label(self, tracking_number: str) -> None:
        self._check_tracking_number(tracking_number, field="tracking_number")
        logger.info("sandbox label cancelled", extra={"tracking_number": tracking_number})

    def tracking_url(self, tracking_number: str) -> str:
        self._check_tracking_number(tracking_number, field="tracking_number")
        return TRACKING_URL.format(number=tracking_number)

    def map_status(self, carrier_status_code: str) -> str:
        status = STATUS_MAP.get((carrier_status_code or "").strip().upper())
        if status is None:
            logger.warning("unknown sandbox carrier status", extra={"carrier_status_code": carrier_status_code})
            return TrackingStatus.EXCEPTION.value
        return status.value

    def parse_webhook(self, payload: dict) -> list[TrackingEvent]:
        if not isinstance(payload, dict):
            raise ValidationError("Webhook payload must be an object.", fields={"payload": ["Expected an object."]})
        raw_events = payload.get("events")
        if not isinstance(raw_events, list):
            raise ValidationError("Webhook payload has no event list.", fields={"events": ["Expected a list."]})

        errors: dict[str, list[str]] = {}
        events: list[TrackingEvent] = []
        for index, raw in enumerate(raw_events):
            prefix = f"events[{index}]"
            if not isinstance(raw, dict):
                errors[prefix] = ["Expected an object."]
                continue
            event_errors = {}
            for key in _WEBHOOK_REQUIRED:
                value = raw.get(key)
                if value is None or (isinstance(value, str) and not value.strip()):
                    event_errors[f"{prefix}.{key}"] = ["This field is required."]
                elif not isinstance(value, str | int) or isinstance(value, bool):
                    event_errors[f"{prefix}.{key}"] = ["Expected a string."]
            for key in ("description", "location"):
                if raw.get(key) is not None and not isinstance(raw[key], str):
                    event_errors[f"{prefix}.{key}"] = ["Expected a string."]
            for key, max_length in _WEBHOOK_MAX_LENGTHS.items():
                value = raw.get(key)
                if f"{prefix}.{key}" not in event_errors and value is not None and len(str(value)) > max_length:
                    event_errors[f"{prefix}.{key}"] = [f"At most {max_length} characters."]
            occurred_at = None
            if f"{prefix}.occurred_at" not in event_errors:
                occurred_at = _parse_aware_datetime(raw["occurred_at"])
                if occurred_at is None:
                    event_errors[f"{prefix}.occurred_at"] = ["Expected an ISO 8601 date-time with a UTC offset."]
                elif problem := datetime_problem(occurred_at):
                    event_errors[f"{prefix}.occurred_at"] = [problem]
            if event_errors:
                errors.update(event_errors)
                continue

            code = str(raw["status"]).strip()
            status = self.map_status(code)
            description = (raw.get("description") or "").strip()
            if code.upper() not in STATUS_MAP:
                # Keep the carrier's code in sight for whoever handles the exception.
                description = f"Unknown carrier status {code!r}" + (f": {description}" if description else "")
            events.append(
                TrackingEvent(
                    carrier_event_id=str(raw["id"]),
                    tracking_number=str(raw["tracking_number"]).strip(),
                    carrier_status_code=code,
                    status=status,
                    occurred_at=occurred_at,
                    description=description,
                    location=(raw.get("location") or "").strip(),
                )
            )
        if errors:
            raise ValidationError("Invalid tracking webhook payload.", code="invalid_webhook", fields=errors)
        return events

    # The sandbox's simulated journey, from the moment the parcel was handed over.
    JOURNEY = (
        (datetime.timedelta(0), "PICKED_UP", "Parcel picked up"),
        (datetime.timedelta(hours=6), "IN_TRANSIT", "At the sorting hub"),
        (datetime.timedelta(hours=20), "OUT_FOR_DELIVERY", "Out for delivery"),
        (datetime.timedelta(hours=26), "DELIVERED", "Delivered"),
    )

    def fetch_tracking(self, tracking_number: str, *, shipped_at: datetime.datetime | None = None, now=None):
        """The journey's steps reached by now, with stable event ids (polling again is a replay)."""
        self._check_tracking_number(tracking_number, field="tracking_number")
        if shipped_at is None:
            return []
        now = now or datetime.datetime.now(datetime.UTC)
        return [
            TrackingEvent(
                carrier_event_id=f"{tracking_number}-{index}",
                tracking_number=tracking_number,
                carrier_status_code=code,
                status=self.map_status(code),
                occurred_at=shipped_at + offset,
                description=description,
            )
            for index, (offset, code, description) in enumerate(self.JOURNEY, start=1)
            if shipped_at + offset <= now
        ]

    def _validate(self, parcel: Parcel, service: str) -> None:
        errors: dict[str, list[str]] = {}
        if service not in self.services:
            errors["service"] = [f"Unknown service; choose one of {', '.join(self.services)}."]
        if not (parcel.shipment_reference or "").strip():
            errors["shipment_reference"] = ["This field is required."]
        if not isinstance(parcel.weight_grams, int) or parcel.weight_grams <= 0:
            errors["weight_grams"] = ["Must be a positive number of grams."]
        if parcel.declared_value < 0:
            errors["declared_value"] = ["Must not be negative."]
        try:
            validate_currency(parcel.currency)
        except ValidationError:
            errors["currency"] = ["Not an ISO 4217 code."]
        for side in ("ship_from", "ship_to"):
            address = getattr(parcel, side)
            for key in REQUIRED_ADDRESS_KEYS:
                if not str((address or {}).get(key) or "").strip():
                    errors[f"{side}.{key}"] = ["This field is required."]
        if parcel.is_international:
            if not parcel.lines:
                errors["lines"] = ["An international parcel needs customs lines."]
            for index, line in enumerate(parcel.lines):
                for key in ("hs_code", "origin_country"):
                    if not str(getattr(line, key) or "").strip():
                        errors[f"lines[{index}].{key}"] = ["Required for customs."]
        if errors:
            raise ValidationError("The parcel cannot be labelled.", code="invalid_parcel", fields=errors)

    @staticmethod
    def _check_tracking_number(tracking_number: str, *, field: str) -> None:
        if not isinstance(tracking_number, str) or not TRACKING_NUMBER_RE.match(tracking_number):
            raise ValidationError(
                "Not a sandbox tracking number.", fields={field: ["Expected SBX followed by 10 digits."]}
            )


def _parse_aware_datetime(value) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed
