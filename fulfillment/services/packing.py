"""Packing: the parcel is closed and weighed, its packing slip printed and its carrier label made."""

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from fulfillment.carriers.base import Parcel
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.registry import get_carrier
from fulfillment.choices import ShipmentKind
from fulfillment.documents import PackingSlipData, PackingSlipLine, packing_slip_pdf
from fulfillment.models import Shipment, ShipmentLine
from fulfillment.services._common import (
    S,
    ShipmentTransitionRefused,
    _lines,
    _lock_shipment,
    _publish,
    _run,
    _save,
)
from oms.core.errors import ValidationError
from oms.core.money import ZERO
from oms.core.numbering import next_unique
from oms.core.permissions import require_perm


def shipment_packing_slip_pdf(shipment: Shipment) -> bytes:
    """The slip packed with the parcel: its lines (of every order it carries), prices and gift messages."""
    lines = _lines(shipment)
    return packing_slip_pdf(
        PackingSlipData(
            shipment_reference=shipment.number,
            order_number=", ".join(dict.fromkeys(line.order_line.order.number for line in lines))
            or shipment.order.number,
            ship_to=shipment.ship_to,
            lines=[
                PackingSlipLine(
                    sku=line.order_line.sku,
                    name=line.order_line.name,
                    quantity=line.quantity,
                    unit_price=line.order_line.unit_price,
                    gift_message=line.gift_message or None,
                )
                for line in lines
            ],
            is_gift=shipment.is_gift,
            currency=shipment.currency,
            totals=sum((line.order_line.unit_price * line.quantity for line in lines), ZERO),
        )
    )


def _positive_int(value, field: str, *, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError("Invalid value.", fields={field: ["A whole number above 0 is required."]})
    return value


@transaction.atomic
def shipment_pack(
    *, shipment, actor, weight_grams: int | None = None, insured: bool | None = None, reason: str = ""
) -> Shipment:
    """Close the parcel: everything picked, weighed (the lines' weight when not given)."""
    shipment = _lock_shipment(shipment)
    weight_grams = _positive_int(weight_grams, "weight_grams")
    _run(shipment, "pack", actor=actor)
    if weight_grams:
        shipment.weight_grams = weight_grams
    if insured is not None:
        shipment.insured = bool(insured)
    shipment.insurance_amount = shipment.declared_value if shipment.insured else ZERO
    _save(shipment, actor=actor, reason=reason or "Packed")
    _publish(shipment, "packed", {"weight_grams": shipment.weight_grams})
    return shipment


def _tracking_counter():
    year = timezone.localdate().year
    return lambda: next_unique("tracking", year) + (year % 100) * 10**8


def _parcel(shipment: Shipment, lines: list[ShipmentLine]) -> Parcel:
    location = shipment.location
    ship_from = {
        "name": location.name,
        "line1": location.name,
        "postal_code": "-",
        "city": location.city or location.name,
        "country": str(location.country),
    }
    return Parcel(
        shipment_reference=shipment.number,
        order_number=shipment.order.number,
        weight_grams=max(shipment.weight_grams, 1),
        declared_value=shipment.declared_value,
        currency=shipment.currency,
        insurance=shipment.insured,
        ship_from=ship_from,
        ship_to=shipment.ship_to,
        lines=[
            (
                line.order_line.sku,
                line.order_line.name,
                line.quantity,
                line.hs_code,
                line.origin_country or str(location.country),
                line.customs_value,
            )
            for line in lines
        ],
    )


@transaction.atomic
def shipment_create_label(*, shipment, actor, carrier: str = "", service: str = "") -> Shipment:
    """Ask the carrier for a label (once: a shipment that has one keeps it until canceled)."""
    shipment = _lock_shipment(shipment)
    require_perm(actor, "fulfillment.dispatch_shipment", "print labels")
    if shipment.kind != ShipmentKind.DELIVERY:
        raise ShipmentTransitionRefused("A store pickup needs no carrier label.", code="no_label_for_pickup")
    if shipment.status not in (S.PICKING, S.PACKED):
        raise ShipmentTransitionRefused(
            f"Cannot label shipment {shipment.number}: it is {shipment.get_status_display().lower()}.",
            extra={"transition": "label", "status": shipment.status},
        )
    if shipment.is_test:
        raise ShipmentTransitionRefused("Test orders never reach carriers.", code="test_order")
    if shipment.label:
        return shipment
    adapter = get_carrier(carrier or shipment.carrier or settings.OMS_DEFAULT_CARRIER)
    service = service or shipment.service or settings.OMS_DEFAULT_CARRIER_SERVICE
    if getattr(adapter, "code", "") == "sandbox":
        adapter = type(adapter)(counter=_tracking_counter())
    label = adapter.create_label(_parcel(shipment, _lines(shipment)), service)
    shipment.carrier = label.carrier_code
    shipment.service = label.service
    shipment.tracking_number = label.tracking_number
    shipment.tracking_url = label.tracking_url
    shipment.tracking_status = TrackingStatus.LABEL_CREATED
    shipment.label.save(f"{shipment.number}-{label.tracking_number}.pdf", ContentFile(label.pdf), save=False)
    _save(shipment, actor=actor, reason=f"Label {label.tracking_number}")
    return shipment
