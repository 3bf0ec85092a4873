"""Cycle counts: opened with what the system expects, counted, then approved (each variance a ledger
adjustment) or canceled; a count done elsewhere arrives in one go.
"""

from django.db import transaction
from simple_history.utils import bulk_create_with_history

from inventory.models import (
    CycleCount,
    CycleCountLine,
    Location,
    MovementReason,
    Product,
    StockItem,
)
from inventory.stock import apply_change, locked_items
from oms.core.errors import ConflictError, ValidationError
from oms.core.history import stamp
from oms.core.permissions import require_perm


@transaction.atomic
def count_open(*, location: Location, products, actor, note: str = "") -> CycleCount:
    require_perm(actor, "inventory.add_cyclecount", "open cycle counts")
    products = list({p.pk: p for p in products}.values())  # each product once
    if not products:
        raise ValidationError("Choose at least one product to count.", fields={"products": ["Required."]})
    count = CycleCount(location=location, created_by=actor, note=note)
    stamp(count, actor=actor, reason="Count opened")
    count.save()
    on_hand = dict(
        StockItem.objects.filter(location=location, product__in=products).values_list("product_id", "on_hand")
    )
    bulk_create_with_history(
        [CycleCountLine(count=count, product=p, expected=on_hand.get(p.pk, 0)) for p in products],
        CycleCountLine,
        default_user=actor,
        default_change_reason="Count opened",
    )
    return count


@transaction.atomic
def count_record(*, count: CycleCount, counted: dict[int, int], actor) -> CycleCount:
    """Enter counted quantities ({product id: units}) and submit the count for approval."""
    count = CycleCount.objects.select_for_update().get(pk=count.pk)
    require_perm(actor, "inventory.change_cyclecount", "record counts")
    if count.status != CycleCount.Status.OPEN:
        raise ConflictError("This count is not open.", code="count_not_open")
    lines = {line.product_id: line for line in count.lines.select_for_update()}
    errors = {}
    for product_id, units in counted.items():
        if int(product_id) not in lines:
            errors[str(product_id)] = ["Not in this count."]
        elif isinstance(units, bool) or not isinstance(units, int) or units < 0:
            errors[str(product_id)] = ["A whole number of at least 0."]
    if errors:
        raise ValidationError("The counted quantities are not valid.", fields={"counted": errors})
    for product_id, units in counted.items():
        line = lines[int(product_id)]
        line.counted = units
        stamp(line, actor=actor, reason="Counted")
        line.save(update_fields=["counted"])
    if any(line.counted is None for line in lines.values()):
        raise ValidationError("Every line must be counted before submitting.", code="count_incomplete")
    count.submit()
    stamp(count, actor=actor, reason="Counted")
    count.save(update_fields=["status"])
    return count


@transaction.atomic
def count_apply(*, count: CycleCount, actor, note: str = "") -> CycleCount:
    """Approve a submitted count: each variance becomes a ledger adjustment (own permission)."""
    count = CycleCount.objects.select_for_update().get(pk=count.pk)
    require_perm(actor, "inventory.approve_cyclecount", "approve cycle counts")
    if count.status != CycleCount.Status.COUNTED:
        raise ConflictError("Only a counted, not yet applied count can be approved.", code="count_not_counted")
    lines = list(count.lines.all())
    items = locked_items([(line.product_id, count.location_id) for line in lines])
    for line in lines:
        item = items[(line.product_id, count.location_id)]
        # The variance is against stock now, not at opening: movements since then are respected.
        delta = line.counted - item.on_hand
        if delta == 0:
            continue
        if item.on_hand + delta < item.reserved:
            raise ConflictError(
                f"{line.product.sku}: counted {line.counted} but {item.reserved} unit(s) are reserved; "
                "release or reallocate those orders first.",
                code="count_below_reserved",
            )
        apply_change(
            item=item,
            on_hand_delta=delta,
            reason=MovementReason.COUNT,
            actor=actor,
            reference=f"count-{count.pk}",
            note=note,
        )
    count.apply()
    count.approved_by = actor
    stamp(count, actor=actor, reason=note or "Applied")
    count.save(update_fields=["status", "applied_at", "approved_by"])
    return count


@transaction.atomic
def count_cancel(*, count: CycleCount, actor, note: str) -> CycleCount:
    """Drop an open or counted count (e.g. counted below what is reserved): stock is untouched."""
    count = CycleCount.objects.select_for_update().get(pk=count.pk)
    require_perm(actor, "inventory.change_cyclecount", "cancel counts")
    if count.status not in {CycleCount.Status.OPEN, CycleCount.Status.COUNTED}:
        raise ConflictError("Only an open or counted count can be canceled.", code="count_not_cancelable")
    if not (note or "").strip():
        raise ValidationError("A reason is required to cancel a count.", fields={"note": ["Required."]})
    count.cancel()
    stamp(count, actor=actor, reason=note)
    count.save(update_fields=["status"])
    return count


@transaction.atomic
def count_submit(*, location: Location, lines: list[tuple[Product, int]], actor, reference: str = "") -> CycleCount:
    """A count done elsewhere (a 3PL's stock check): opened, recorded and submitted in one go.

    `lines`: [(product, counted units)]. The count waits for approval (`count_apply`, its own
    permission); the document's reference is kept in the count's note.
    """
    seen: dict[int, int] = {}
    for index, (product, _units) in enumerate(lines):
        if product.pk in seen:
            raise ValidationError(
                f"{product.sku} is listed twice.",
                fields={f"lines.{index}.sku": [f"Already on line {seen[product.pk] + 1}."]},
            )
        seen[product.pk] = index
    count = count_open(
        location=location,
        products=[product for product, _ in lines],
        actor=actor,
        note=f"Reference: {reference}" if reference else "",
    )
    return count_record(count=count, counted={product.pk: units for product, units in lines}, actor=actor)
