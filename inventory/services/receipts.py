"""Goods in: receipts (one by one or a 3PL's whole document, applied once), incoming supply and the
pre-order promises it fills, and resellable returns.

Lock order: stock row by (product, location), then the supply, then the supply's promises (the
supply's lock keeps that set of promises still); a whole receipt document first takes its location
row.
"""

import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from inventory.models import (
    IncomingSupply,
    Location,
    MovementReason,
    Product,
    Reservation,
    ReservationState,
    StockItem,
    StockMovement,
)
from inventory.services._common import _positive
from inventory.stock import apply_change, locked_item
from oms.core.errors import ConflictError, ValidationError
from oms.core.history import stamp
from oms.core.permissions import require_perm


@transaction.atomic
def stock_receive(
    *, product: Product, location: Location, quantity: int, actor, reference: str = "", supply=None, note: str = ""
) -> StockItem:
    """Goods in. Against incoming supply, the units promised to pre-orders become real reservations."""
    require_perm(actor, "inventory.receive_stock", "receive stock")
    _positive(quantity)
    item = locked_item(product_id=product.pk, location_id=location.pk)
    apply_change(
        item=item,
        on_hand_delta=quantity,
        reason=MovementReason.RECEIPT,
        actor=actor,
        reference=reference or (supply.reference if supply else ""),
        note=note,
    )
    if supply is not None:
        _supply_receive(supply_id=supply.pk, item=item, quantity=quantity, actor=actor)
    return item


def _supply_receive(*, supply_id: int, item: StockItem, quantity: int, actor) -> None:
    supply = IncomingSupply.objects.select_for_update().get(pk=supply_id)
    if supply.product_id != item.product_id or supply.location_id != item.location_id:
        raise ValidationError("This supply is for another product or location.", code="supply_mismatch")
    if quantity > supply.quantity_open:
        raise ValidationError(
            f"Only {supply.quantity_open} unit(s) are still expected on {supply.reference}.",
            code="over_receipt",
            fields={"quantity": [f"At most {supply.quantity_open}."]},
        )
    supply.quantity_received += quantity
    # Promises against this supply turn into reservations on the stock just received, oldest first.
    convertible = quantity
    for reservation in (
        Reservation.objects.select_for_update()
        .filter(supply=supply, state=ReservationState.ACTIVE)
        .order_by("created_at", "pk")
    ):
        if convertible <= 0:
            break
        units = reservation.quantity_open
        if units > convertible:
            # Split: the part that arrived moves to stock, the rest stays promised.
            reservation.quantity -= convertible
            reservation.save(update_fields=["quantity"])
            Reservation.objects.create(
                order_id=reservation.order_id,
                order_line_id=reservation.order_line_id,
                channel_id=reservation.channel_id,
                product_id=reservation.product_id,
                location_id=reservation.location_id,
                stock_item=item,
                quantity=convertible,
                mode=reservation.mode,
            )
            moved = convertible
        else:
            reservation.supply = None
            reservation.stock_item = item
            reservation.quantity = units
            reservation.save(update_fields=["supply", "stock_item", "quantity"])
            moved = units
        supply.quantity_promised -= moved
        convertible -= moved
        apply_change(
            item=item,
            reserved_delta=moved,
            reason=MovementReason.RESERVATION,
            actor=actor,
            order_id=reservation.order_id,
            order_line_id=reservation.order_line_id,
            reference=supply.reference,
            note="Pre-order promise filled by receipt",
        )
    if supply.quantity_received >= supply.quantity:
        supply.status = IncomingSupply.Status.RECEIVED
    stamp(supply, actor=actor, reason="Received")
    supply.save(update_fields=["quantity_received", "quantity_promised", "status"])


@transaction.atomic
def stock_return(
    *,
    product: Product,
    location: Location,
    quantity: int,
    actor,
    order_id=None,
    order_line_id=None,
    reference: str = "",
) -> StockItem:
    """Resellable goods back from a customer return."""
    require_perm(actor, "inventory.receive_stock", "put returned goods back in stock")
    _positive(quantity)
    item = locked_item(product_id=product.pk, location_id=location.pk)
    apply_change(
        item=item,
        on_hand_delta=quantity,
        reason=MovementReason.RETURN,
        actor=actor,
        order_id=order_id,
        order_line_id=order_line_id,
        reference=reference,
    )
    return item


@transaction.atomic
def supply_create(
    *,
    product: Product,
    location: Location,
    quantity: int,
    expected_at: datetime.date,
    reference: str,
    actor,
    kind: str = IncomingSupply.Kind.PURCHASE_ORDER,
) -> IncomingSupply:
    require_perm(actor, "inventory.add_incomingsupply", "record incoming supply")
    _positive(quantity)
    supply = IncomingSupply(
        product=product, location=location, quantity=quantity, expected_at=expected_at, reference=reference, kind=kind
    )
    stamp(supply, actor=actor, reason="Supply expected")
    try:
        supply.full_clean()
    except DjangoValidationError as exc:
        raise ValidationError("The incoming supply is not valid.", fields=exc.message_dict) from None
    supply.save()
    return supply


@transaction.atomic
def stock_receipt_apply(*, location: Location, reference: str, lines: list[dict], actor) -> bool:
    """Apply a receipt (a 3PL's goods-in document) once: every line or none.

    `lines`: [{"product": Product, "quantity": int, "supply": IncomingSupply | None}]. Returns True
    when applied now, False when a receipt with this reference was already applied at this location
    (a redelivery: nothing is written). The ledger is the record of what was applied: its receipt
    rows carry the reference, so no other table can disagree with it. A redelivery with other lines
    is refused (409), never half-applied.

    Lock order: the location row first (FOR NO KEY UPDATE: it serialises the receipts of one
    location without blocking inserts that reference the row), then `stock_receive`'s stock rows by
    (product, location), then the supply rows. Nothing else locks location rows.
    """
    require_perm(actor, "inventory.receive_stock", "receive stock")
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        # The ledger keeps 128 characters: a longer reference would not be found again on a retry.
        raise ValidationError("A receipt needs its document reference.", fields={"reference": ["1 to 128 characters."]})
    if not lines:
        raise ValidationError("A receipt needs at least one line.", fields={"lines": ["At least one line."]})
    list(Location.objects.select_for_update(no_key=True).filter(pk=location.pk))  # evaluated: takes the lock
    applied = list(
        StockMovement.objects.filter(
            reason=MovementReason.RECEIPT, reference=reference, stock_item__location_id=location.pk
        )
        .order_by("pk")
        .values_list("stock_item__product_id", "on_hand_delta")
    )
    if applied:
        if applied != [(line["product"].pk, line["quantity"]) for line in lines]:
            raise ConflictError(
                f"Receipt {reference} was already applied at {location.code} with other lines.",
                code="receipt_reference_reused",
                extra={"reference": reference, "location": location.code},
            )
        return False
    for index, line in enumerate(lines):
        try:
            stock_receive(
                product=line["product"],
                location=location,
                quantity=line["quantity"],
                actor=actor,
                reference=reference,
                supply=line.get("supply"),
            )
        except ValidationError as exc:
            # The caller names lines by position: "lines.1.quantity", as in its document.
            fields = exc.extra.get("fields") or {"supply": [exc.message]}
            raise ValidationError(
                f"Line {index + 1}: {exc.message}",
                code=exc.code,
                fields={f"lines.{index}.{name}": messages for name, messages in fields.items()},
            ) from exc
    return True
