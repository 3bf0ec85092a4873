"""What support adds to an order without changing its state: notes, tags, corrected addresses."""

from django.db import transaction

from oms.core.errors import ValidationError
from oms.core.permissions import require_perm
from orders.addresses import address_errors, normalize_address
from orders.choices import (
    OrderEventType,
)
from orders.events import event_record
from orders.exceptions import TransitionRefused
from orders.locks import order_lock
from orders.models import Order, OrderNote, Tag
from orders.services._common import MAX_TEXT, TERMINAL_OR_SHIPPED, _save
from orders.services.intake import _tag_get_or_create


@transaction.atomic
def order_add_note(*, order: Order | int, actor, body: str) -> OrderNote:
    body = (body or "").strip()
    if not body or len(body) > MAX_TEXT:
        raise ValidationError(
            "A note of 1 to 5000 characters is required.",
            code="invalid_note",
            fields={"body": [f"1 to {MAX_TEXT} characters."]},
        )
    order = order_lock(order)
    require_perm(actor, "orders.add_note", "add notes")
    note = OrderNote.objects.create(order=order, author=actor, body=body)
    event_record(order=order, actor=actor, type=OrderEventType.NOTE_ADDED, payload={"note": note.pk, "body": body})
    return note


def _clean_tag(name) -> str:
    name = (name or "").strip().lower() if isinstance(name, str) else ""
    if not name or len(name) > 40:
        raise ValidationError(
            "A tag of 1 to 40 characters is required.", code="invalid_tag", fields={"tag": ["1 to 40 characters."]}
        )
    return name


@transaction.atomic
def order_tag(*, order: Order | int, actor, tag: str, reason: str = "") -> bool:
    """Add a tag; False (and no event) when the order already had it."""
    name = _clean_tag(tag)
    order = order_lock(order)
    require_perm(actor, "orders.tag_order", "tag orders")
    tag_row = _tag_get_or_create(name)
    if order.tags.filter(pk=tag_row.pk).exists():
        return False
    order.tags.add(tag_row)
    event_record(order=order, actor=actor, type=OrderEventType.TAG_ADDED, reason=reason, payload={"tag": name})
    return True


@transaction.atomic
def order_untag(*, order: Order | int, actor, tag: str, reason: str = "") -> bool:
    name = _clean_tag(tag)
    order = order_lock(order)
    require_perm(actor, "orders.tag_order", "tag orders")
    tag_row = Tag.objects.filter(name=name).first()
    if tag_row is None or not order.tags.filter(pk=tag_row.pk).exists():
        return False
    order.tags.remove(tag_row)
    event_record(order=order, actor=actor, type=OrderEventType.TAG_REMOVED, reason=reason, payload={"tag": name})
    return True


@transaction.atomic
def order_change_address(*, order: Order | int, actor, kind: str, address: dict, reason: str = "") -> Order:
    """Change the shipping or billing address while nothing has shipped."""
    if kind not in {"shipping", "billing"}:
        raise ValidationError("Unknown address kind.", fields={"kind": ["One of: shipping, billing."]})
    problems = address_errors(address)
    if problems:
        raise ValidationError("The address is not valid.", code="invalid_address", fields={"address": problems})
    order = order_lock(order)
    require_perm(actor, "orders.change_address_order", "change addresses")
    if order.status in TERMINAL_OR_SHIPPED or not order.has_nothing_shipped():
        raise TransitionRefused(
            f"Cannot change the address of order {order.number}: it is {order.get_status_display().lower()}.",
            code="address_change_not_allowed",
            extra={"status": order.status},
        )
    field = f"{kind}_address"
    before = getattr(order, field)
    after = normalize_address(address)
    if before == after:
        return order
    setattr(order, field, after)
    _save(order, actor=actor, reason=reason or f"{kind.capitalize()} address changed", fields=[field])
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.ADDRESS_CHANGED,
        reason=reason,
        payload={"kind": kind, "before": before, "after": after},
    )
    return order
