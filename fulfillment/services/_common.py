"""The building blocks every fulfillment service shares: the transition runner, the shipment lock,
the shipment's lines by order, the outbox message, the customer message and the parcel's values.

Lock order (oms.core.locks): a shipment service locks the shipment's orders first, by id
(`orders.locks.orders_lock`), then the shipment (`_lock_shipment`), then the shipment's own rows
(lines, short picks); stock rows are locked by `inventory.services` and document counters last.
"""

from collections import defaultdict
from decimal import Decimal

from fulfillment.choices import ShipmentStatus
from fulfillment.links import carrier_name
from fulfillment.models import Shipment, ShipmentLine
from integrations.services import outbox_publish
from oms.core.errors import NotFoundError
from oms.core.fsm import TransitionRefused, run_transition
from oms.core.history import stamp
from oms.core.locks import lock_one
from oms.core.logging import set_order
from oms.core.money import ZERO, quantize
from orders import services as orders
from orders.locks import orders_lock
from orders.models import Order, OrderLine
from orders.notify import order_notify

S = ShipmentStatus

CONDITION_MESSAGES = {
    "_all_picked": "Not every unit has been picked: nothing ships that was not picked.",
    "_has_no_open_short_pick": "A short pick is still open: resolve it first.",
    "_is_delivery": "A store pickup is handed to the customer, not to a carrier.",
    "_is_pickup": "Only a store pickup can be made ready for pickup.",
}


class ShipmentTransitionRefused(TransitionRefused):
    pass


def _run(shipment: Shipment, name: str, *, actor, check_permission: bool = True, **kwargs) -> None:
    """Permission, then source state, then conditions, then the transition (as orders do)."""
    run_transition(
        shipment,
        name,
        actor=actor,
        noun="shipment",
        messages=CONDITION_MESSAGES,
        check_permission=check_permission,
        refused=ShipmentTransitionRefused,
        **kwargs,
    )


def _save(shipment: Shipment, *, actor, reason: str) -> None:
    stamp(shipment, actor=actor, reason=reason)
    shipment.save()


def _resolve(shipment: Shipment | int | str) -> int:
    if isinstance(shipment, Shipment):
        return shipment.pk
    if isinstance(shipment, str) and not shipment.isdigit():
        pk = Shipment.objects.filter(number=shipment).values_list("pk", flat=True).first()
        if pk is None:
            raise NotFoundError("Shipment not found.", code="shipment_not_found")
        return pk
    return int(shipment)


def _order_ids(shipment_ids) -> set[int]:
    """The orders of these parcels: each parcel's own, and every order whose lines it carries."""
    shipment_ids = list(shipment_ids)
    return set(
        ShipmentLine.objects.filter(shipment_id__in=shipment_ids).values_list("order_line__order_id", flat=True)
    ) | set(Shipment.objects.filter(pk__in=shipment_ids).values_list("order_id", flat=True))


def _lock_shipment(shipment: Shipment | int | str) -> Shipment:
    """Lock the shipment's orders (by id: a consolidated parcel carries several), then the shipment itself."""
    pk = _resolve(shipment)
    order_ids = _order_ids([pk])
    if not order_ids:
        raise NotFoundError("Shipment not found.", code="shipment_not_found")
    orders_lock(order_ids)
    locked = lock_one(
        Shipment.objects.all(),
        pk,
        not_found="Shipment not found.",
        code="shipment_not_found",
        related=("order", "location"),
    )
    set_order(locked.order.number)
    return locked


def _lines(shipment: Shipment) -> list[ShipmentLine]:
    return list(
        shipment.lines.select_related("order_line", "order_line__order", "order_line__product").order_by(
            "order_line__order_id", "order_line__line_number"
        )
    )


def _quantities_by_order(lines: list[ShipmentLine]) -> dict[Order, dict[int, int]]:
    by_order: dict[int, dict[int, int]] = defaultdict(dict)
    orders_by_id = {}
    for line in lines:
        orders_by_id[line.order_line.order_id] = line.order_line.order
        by_order[line.order_line.order_id][line.order_line_id] = line.quantity
    return {orders_by_id[order_id]: quantities for order_id, quantities in sorted(by_order.items())}


def _publish(shipment: Shipment, topic: str, extra: dict | None = None) -> None:
    outbox_publish(
        topic=f"shipment.{topic}",
        payload={
            "shipment": shipment.number,
            "order": shipment.order.number,
            "location": shipment.location.code,
            "status": shipment.status,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            **(extra or {}),
        },
        key=shipment.order.number,
        is_test=shipment.is_test,
    )


def parcel_summary(shipment: Shipment, lines: list[ShipmentLine] | None = None) -> dict:
    """What a customer message says about one parcel (it prints what it is given: the carrier's name)."""
    lines = lines if lines is not None else _lines(shipment)
    return {
        "shipment": shipment.number,
        "carrier": shipment.carrier,
        "carrier_name": carrier_name(shipment.carrier),
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "items": [
            {"sku": line.order_line.sku, "name": line.order_line.name, "quantity": line.quantity} for line in lines
        ],
    }


def _notify(order: Order, *, kind: str, group: str, data: dict, merge: tuple[str, ...] = ()) -> None:
    order_notify(order=order, kind=kind, group=group, data=data, merge=merge)


def _customs_value(line: OrderLine) -> Decimal:
    """Per unit, what the customer paid net of discount (the declared value of the goods)."""
    return quantize((line.unit_price * line.quantity - line.discount_amount) / line.quantity, "EUR")


def _new_line(shipment: Shipment, line: OrderLine, quantity: int) -> ShipmentLine:
    product = line.product
    gift = line.attributes.get("gift") if isinstance(line.attributes, dict) else None
    gift = gift if isinstance(gift, dict) else {}
    return ShipmentLine(
        shipment=shipment,
        order_line=line,
        quantity=quantity,
        hs_code=(product.hs_code if product else "") or "",
        origin_country=str(product.country_of_origin or "") if product else "",
        customs_value=_customs_value(line),
        gift_wrap=bool(gift.get("wrap")),
        gift_message=str(gift.get("message") or "")[:1000],
    )


def _refresh_values(shipment: Shipment, *, actor, reason: str) -> None:
    """Declared value and default weight follow the lines (until packing weighs the parcel)."""
    lines = _lines(shipment)
    shipment.declared_value = sum((line.customs_value * line.quantity for line in lines), ZERO)
    if shipment.packed_at is None:
        shipment.weight_grams = sum(
            (line.order_line.product.weight_grams if line.order_line.product else 0) * line.quantity for line in lines
        )
    if shipment.insured:
        shipment.insurance_amount = shipment.declared_value
    shipment.is_gift = shipment.is_gift or any(line.gift_wrap or line.gift_message for line in lines)
    _save(shipment, actor=actor, reason=reason)


def _record_handover(shipment: Shipment, lines: list[ShipmentLine], *, actor, delivered: bool = False) -> None:
    for order, quantities in _quantities_by_order(lines).items():
        payload = {
            "shipment": shipment.number,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
        }
        orders.order_record_shipment(
            order=order,
            actor=actor,
            quantities=quantities,
            reference=shipment.number,
            location_id=shipment.location_id,
            reason=f"Shipment {shipment.number}",
            payload=payload,
        )
        if delivered:
            orders.order_mark_delivered(
                order=order, actor=actor, quantities=quantities, reason=f"Picked up ({shipment.number})"
            )
