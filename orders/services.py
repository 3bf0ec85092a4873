"""Every write to an order goes through here: one service per action.

Each service, in one transaction: locks the order (lock order: order → lines → holds), checks the
actor's permission explicitly, runs the FSM transition, saves with the history user and reason,
and writes a typed OrderEvent (published to the outbox in the same transaction). Views, admin
actions, API endpoints, Celery tasks and commands all call these functions.
"""

import datetime
import functools
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from inventory import services as inventory
from inventory.models import Location, Product, ReservationMode
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.fsm import run_transition
from oms.core.history import stamp
from oms.core.logging import set_order
from oms.core.money import ZERO, quantize, to_decimal, validate_currency
from oms.core.numbering import format_number, next_unique
from orders.addresses import address_errors, normalize_address
from orders.choices import (
    CancelReason,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
)
from orders.events import event_record, events_record
from orders.exceptions import TransitionRefused
from orders.identity import customer_keys_refresh
from orders.models import Channel, Customer, Order, OrderHold, OrderLine, OrderNote, Tag
from orders.pricing import line_amounts, order_totals, split_amount

MAX_LINES = 500
MAX_QUANTITY = 100_000
MAX_TEXT = 5_000

# Why a transition's condition failed, in words support can act on.
CONDITION_MESSAGES = {
    "has_lines": "The order has no lines.",
    "is_paid_or_authorized": "The order is not paid or authorized in full.",
    "customer_has_terms": "The customer has no payment terms.",
    "has_no_active_hold": "The order has an active hold; release it first.",
    "has_shipped_something": "Nothing has been shipped yet.",
    "is_fully_delivered": "Not every shipped item has been delivered.",
    "return_window_elapsed": "The return window has not elapsed yet.",
    "has_nothing_shipped": "Part of the order has shipped: use a return instead.",
}

TERMINAL_OR_SHIPPED = {
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
    OrderStatus.CANCELED,
}


# --- building blocks ---------------------------------------------------------------------------


def _lock(order: Order | int) -> Order:
    """Re-read and lock the order row (only that row: `of=self`). First lock taken by any service."""
    pk = order.pk if isinstance(order, Order) else order
    try:
        locked = Order.objects.select_for_update(of=("self",)).select_related("channel", "customer").get(pk=pk)
    except Order.DoesNotExist:
        raise NotFoundError("Order not found.", code="order_not_found") from None
    set_order(locked.number)
    return locked


def _require_perm(actor, perm: str, action: str) -> None:
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(
            f"You do not have permission to {action}.", code="permission_denied", extra={"permission": perm}
        )


def _run_transition(order: Order, name: str, *, actor, check_permission: bool = True, **kwargs) -> str:
    """Permission, then source state, then conditions; then the transition itself. Returns the new status."""
    return run_transition(
        order,
        name,
        actor=actor,
        noun="order",
        messages=CONDITION_MESSAGES,
        check_permission=check_permission,
        refused=TransitionRefused,
        **kwargs,
    )


def _save(order: Order, *, actor, reason: str, fields: list[str]) -> None:
    stamp(order, actor=actor, reason=reason)
    order.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


def derive_payment_status(order: Order) -> str:
    if order.amount_refunded > 0:
        if order.amount_refunded >= order.amount_paid:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if order.amount_paid > 0 or order.total_gross == 0:
        if order.amount_paid >= order.total_gross:
            return PaymentStatus.PAID
        return PaymentStatus.PARTIALLY_PAID
    if order.amount_authorized > 0 and order.amount_authorized >= order.total_gross:
        return PaymentStatus.AUTHORIZED
    if order.on_payment_terms:
        return PaymentStatus.ON_TERMS
    return PaymentStatus.UNPAID


def derive_fulfillment_status(lines) -> str:
    ordered = sum(line.quantity - line.quantity_canceled for line in lines)
    shipped = sum(line.quantity_shipped for line in lines)
    delivered = sum(line.quantity_delivered for line in lines)
    if ordered == 0:
        return FulfillmentStatus.CANCELED
    if shipped < ordered:
        return FulfillmentStatus.PARTIALLY_SHIPPED if shipped else FulfillmentStatus.UNFULFILLED
    if delivered >= ordered:
        return FulfillmentStatus.DELIVERED
    return FulfillmentStatus.PARTIALLY_DELIVERED if delivered else FulfillmentStatus.SHIPPED


# --- input checking ------------------------------------------------------------------------------


@dataclass
class _LineInput:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    discount: Decimal
    tax_rate: Decimal
    attributes: dict
    promotion: dict


def _text(errors, key, value, *, required=False, max_length=255) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[key] = ["Must be a string."]
        return ""
    value = value.strip()
    if required and not value:
        errors[key] = ["This field is required."]
    elif len(value) > max_length:
        errors[key] = [f"At most {max_length} characters."]
    return value


def _decimal(errors, key, value, *, default=None, minimum=ZERO, maximum=None) -> Decimal:
    if value is None or value == "":
        if default is None:
            errors[key] = ["This field is required."]
            return ZERO
        return default
    if isinstance(value, bool):
        errors[key] = ["A valid number is required."]
        return ZERO
    try:
        number = to_decimal(value, field=key)
    except ValidationError:
        errors[key] = ["A valid number is required."]
        return ZERO
    if number < minimum:
        errors[key] = [f"Must be at least {minimum}."]
    elif maximum is not None and number > maximum:
        errors[key] = [f"Must be at most {maximum}."]
    return number


def _clean_lines(errors: dict, raw_lines) -> list[_LineInput]:
    if not isinstance(raw_lines, list) or not raw_lines:
        errors["lines"] = ["At least one line is required."]
        return []
    if len(raw_lines) > MAX_LINES:
        errors["lines"] = [f"At most {MAX_LINES} lines."]
        return []
    cleaned = []
    for index, raw in enumerate(raw_lines):
        prefix = f"lines.{index}"
        if not isinstance(raw, dict):
            errors[prefix] = ["A line object is required."]
            continue
        quantity = raw.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            errors[f"{prefix}.quantity"] = [f"A whole number from 1 to {MAX_QUANTITY} is required."]
            quantity = 1
        line = _LineInput(
            sku=_text(errors, f"{prefix}.sku", raw.get("sku"), required=True, max_length=64),
            name=_text(errors, f"{prefix}.name", raw.get("name"), required=True),
            quantity=quantity,
            unit_price=_decimal(errors, f"{prefix}.unit_price", raw.get("unit_price"), maximum=Decimal("1e9")),
            discount=_decimal(errors, f"{prefix}.discount", raw.get("discount"), default=ZERO),
            tax_rate=_decimal(errors, f"{prefix}.tax_rate", raw.get("tax_rate"), default=ZERO, maximum=Decimal("1")),
            attributes=raw.get("attributes") or {},
            promotion=raw.get("promotion") or {},
        )
        if not isinstance(line.attributes, dict):
            errors[f"{prefix}.attributes"] = ["Must be an object."]
        if not isinstance(line.promotion, dict):
            errors[f"{prefix}.promotion"] = ["Must be an object."]
        amount_known = not any(f"{prefix}.{name}" in errors for name in ("quantity", "unit_price", "discount"))
        if amount_known and line.discount > line.unit_price * line.quantity:
            errors[f"{prefix}.discount"] = ["The discount exceeds the line amount."]
        cleaned.append(line)
    return cleaned


def _address(errors: dict, key: str, data) -> dict:
    problems = address_errors(data)
    for field, messages in problems.items():
        errors[f"{key}.{field}" if field != "non_field_errors" else key] = messages
    return normalize_address(data) if not problems else {}


def _clean_risk(errors: dict, risk) -> tuple[int | None, list[dict]]:
    """The channel's fraud assessment: {"score": 0-100, "facts": ["…", …]}."""
    if risk in (None, {}):
        return None, []
    if not isinstance(risk, dict):
        errors["risk"] = ["Must be an object with score and facts."]
        return None, []
    score = risk.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        errors["risk.score"] = ["A whole number from 0 to 100."]
        score = None
    facts = risk.get("facts", [])
    if (
        not isinstance(facts, list)
        or len(facts) > 50
        or not all(isinstance(f, str) and 0 < len(f) <= 255 for f in facts)
    ):
        errors["risk.facts"] = ["A list of up to 50 texts (1 to 255 characters)."]
        facts = []
    return score, [{"source": "channel", "fact": fact} for fact in facts]


def _resolve_channel(channel) -> Channel:
    if isinstance(channel, Channel):
        return channel
    found = Channel.objects.filter(code=channel, is_active=True).first() if isinstance(channel, str) else None
    if found is None:
        raise ValidationError(
            "Unknown or inactive channel.", code="unknown_channel", fields={"channel": ["Unknown or inactive channel."]}
        )
    return found


# --- creation ----------------------------------------------------------------------------------


@transaction.atomic
def order_create(
    *,
    actor,
    channel,
    customer: dict,
    lines: list[dict],
    billing_address: dict,
    shipping_address: dict | None = None,
    external_id: str | None = None,
    currency: str | None = None,
    prices_include_tax: bool | None = None,
    shipping: dict | None = None,
    payment: dict | None = None,
    is_test: bool = False,
    risk: dict | None = None,
    placed_at: datetime.datetime | None = None,
    promised_at: datetime.datetime | None = None,
    tags: list[str] | tuple = (),
    note: str = "",
    requires_approval: bool = False,
    purchase_order_number: str = "",
    locale: str | None = None,
    submit: bool = True,
    reason: str = "",
) -> tuple[Order, bool]:
    """Create an order, or import one from a channel. Returns (order, created).

    Importing the same (channel, external id) again returns the existing order and changes
    nothing, also when both deliveries run at the same moment (the unique constraint decides, the
    loser reads the winner's row). With `submit` the order leaves draft at once and, when the
    payment covers it, is confirmed: each step is its own event.
    """
    _require_perm(actor, "orders.import_order", "create orders")
    channel = _resolve_channel(channel)
    errors: dict[str, list[str]] = {}
    external_id = _text(errors, "external_id", external_id, max_length=128) or None

    if external_id:
        existing = Order.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            set_order(existing.number)
            return existing, False

    try:
        currency = validate_currency(currency or channel.default_currency)
    except ValidationError as exc:
        errors.update(exc.extra.get("fields", {}))
        currency = "EUR"
    includes_tax = channel.prices_include_tax if prices_include_tax is None else bool(prices_include_tax)
    if not isinstance(customer, dict):
        errors["customer"] = ["A customer object is required."]
        customer = {}
    email = _text(errors, "customer.email", customer.get("email"), required=True, max_length=254).lower()
    if email and "customer.email" not in errors and ("@" not in email or email.startswith("@")):
        errors["customer.email"] = ["Enter a valid email address."]
    first_name = _text(errors, "customer.first_name", customer.get("first_name"), max_length=100)
    last_name = _text(errors, "customer.last_name", customer.get("last_name"), max_length=100)
    phone = _text(errors, "customer.phone", customer.get("phone"), max_length=32)
    clean_lines = _clean_lines(errors, lines)
    billing = _address(errors, "billing_address", billing_address)
    shipping_addr = _address(errors, "shipping_address", shipping_address) if shipping_address else billing
    shipping = shipping or {}
    if not isinstance(shipping, dict):
        errors["shipping"] = ["Must be an object."]
        shipping = {}
    shipping_method = _text(errors, "shipping.method", shipping.get("method"), max_length=80)
    pickup_location = None
    pickup_code = _text(errors, "shipping.pickup_location", shipping.get("pickup_location"), max_length=40)
    if pickup_code:
        pickup_location = Location.objects.filter(code=pickup_code, is_active=True, store_pickup=True).first()
        if pickup_location is None:
            errors["shipping.pickup_location"] = [f"No active store {pickup_code!r} offers pickup."]
    shipping_price = _decimal(errors, "shipping.price", shipping.get("price"), default=ZERO, maximum=Decimal("1e9"))
    shipping_rate = _decimal(errors, "shipping.tax_rate", shipping.get("tax_rate"), default=ZERO, maximum=Decimal("1"))
    payment = payment or {}
    if not isinstance(payment, dict):
        errors["payment"] = ["Must be an object."]
        payment = {}
    payment_state = payment.get("status", "unpaid")
    if payment_state not in {"unpaid", "authorized", "paid"}:
        errors["payment.status"] = ["One of: unpaid, authorized, paid."]
    payment_method = _text(errors, "payment.method", payment.get("method"), max_length=40)
    payment_reference = _text(errors, "payment.reference", payment.get("reference"), max_length=128)
    note = _text(errors, "note", note, max_length=MAX_TEXT)
    purchase_order_number = _text(errors, "purchase_order_number", purchase_order_number, max_length=64)
    locale = locale or customer.get("locale") or "en"
    if locale not in {"en", "fr"}:
        errors["locale"] = ["One of: en, fr."]
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 40 for t in tags):
        errors["tags"] = ["A list of tag names (1 to 40 characters) is required."]
        tags = []
    risk_score, risk_facts = _clean_risk(errors, risk)
    when = placed_at or timezone.now()
    products = _resolve_products(errors, clean_lines, when=when)
    if errors:
        raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)

    amounts = [
        line_amounts(
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount=line.discount,
            tax_rate=line.tax_rate,
            includes_tax=includes_tax,
            currency=currency,
        )
        for line in clean_lines
    ]
    shipping_amounts = split_amount(
        amount=shipping_price, tax_rate=shipping_rate, includes_tax=includes_tax, currency=currency
    )
    totals = order_totals(lines=amounts, shipping=shipping_amounts)

    payment_amount = ZERO
    if payment_state != "unpaid":
        payment_amount = quantize(
            _decimal(errors, "payment.amount", payment.get("amount"), default=totals.gross), currency
        )
        if "payment.amount" not in errors and payment_amount > totals.gross:
            errors["payment.amount"] = [f"Exceeds the order total ({totals.gross} {currency})."]
        if errors:
            raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)

    customer_row, _created = Customer.objects.get_or_create(
        email__iexact=email,
        defaults={
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "phone": phone,
            "locale": locale,
            "is_test": bool(is_test),
        },
    )
    if customer_row.merged_into_id is not None:
        # A record merged into another (identity.customer_merge): the order goes to the kept one
        # (merges are flattened: merged_into is never itself merged).
        customer_row = customer_row.merged_into
    # The duplicate detector's keys (phone, last shipping address); written only when they change.
    customer_keys_refresh(customer=customer_row, address=shipping_addr, actor=actor, reason="Order intake")
    now = timezone.now()
    year = timezone.localdate(now).year
    number = format_number("ORD", year, next_unique("order", year))
    order = Order(
        number=number,
        channel=channel,
        external_id=external_id,
        customer=customer_row,
        email=email,
        locale=locale,
        currency=currency,
        prices_include_tax=includes_tax,
        requires_approval=bool(requires_approval),
        billing_address=billing,
        shipping_address=shipping_addr,
        shipping_method=shipping_method,
        pickup_location=pickup_location,
        shipping_price=quantize(shipping_price, currency),
        shipping_tax_rate=shipping_rate,
        shipping_net=shipping_amounts.net,
        shipping_tax=shipping_amounts.tax,
        discount_total=sum((quantize(line.discount, currency) for line in clean_lines), ZERO),
        total_net=totals.net,
        total_tax=totals.tax,
        total_gross=totals.gross,
        is_test=bool(is_test) or customer_row.is_test,
        purchase_order_number=purchase_order_number,
        placed_at=placed_at or now,
        promised_at=promised_at,
        risk_score=risk_score,
        risk_facts=risk_facts,
    )
    created_event = OrderEventType.IMPORTED if external_id else OrderEventType.CREATED
    stamp(order, actor=actor, reason=reason or created_event.label)
    try:
        # The savepoint lets a concurrent duplicate import fail cleanly and read the winner's row.
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        if external_id:
            existing = Order.objects.filter(channel=channel, external_id=external_id).first()
            if existing is not None:
                set_order(existing.number)
                return existing, False
        raise
    set_order(order.number)
    if payment_method in ("store_credit", "voucher"):
        from billing.services.credits import intake_payment_debit  # billing builds on orders

        # Debits the ledger in this transaction, or refuses the order with a field error.
        intake_payment_debit(order=order, actor=actor, payment=payment, amount=payment_amount)

    line_rows = [
        OrderLine(
            order=order,
            line_number=index,
            sku=line.sku,
            name=line.name,
            product=products.get(line.sku),
            attributes=line.attributes,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_amount=quantize(line.discount, currency),
            promotion=line.promotion,
            tax_rate=line.tax_rate,
            total_net=amount.net,
            tax_amount=amount.tax,
            total_gross=amount.gross,
            promised_at=promised_at,
        )
        for index, (line, amount) in enumerate(zip(clean_lines, amounts, strict=True), start=1)
    ]
    bulk_create_with_history(
        line_rows, OrderLine, default_user=actor, default_change_reason=reason or created_event.label
    )
    if tags:
        order.tags.add(*[_tag_get_or_create(name) for name in dict.fromkeys(t.strip().lower() for t in tags)])
    if note:
        OrderNote.objects.create(order=order, author=actor, body=note)

    events = [
        (
            created_event,
            reason,
            {"lines": len(line_rows), "total_gross": str(order.total_gross), "currency": currency, "tags": list(tags)},
        )
    ]
    changed = False
    if submit:
        _run_transition(order, "submit", actor=actor, check_permission=False)
        events.append((OrderEventType.SUBMITTED, "", {"status": order.status}))
        changed = True
    if payment_amount > 0 or (payment_state != "unpaid" and totals.gross == 0):
        if payment_state == "paid":
            order.amount_paid = payment_amount
            order.paid_at = now
        else:
            order.amount_authorized = payment_amount
        order.payment_method = payment_method
        order.payment_reference = payment_reference
        order.payment_status = derive_payment_status(order)
        events.append(
            (
                OrderEventType.PAYMENT_RECORDED,
                "",
                {
                    "amount": str(payment_amount),
                    "captured": payment_state == "paid",
                    "method": payment_method,
                    "reference": payment_reference,
                },
            )
        )
        changed = True
        if order.status == OrderStatus.AWAITING_PAYMENT and order.is_paid_or_authorized():
            _run_transition(order, "pay", actor=actor, check_permission=False)
            events.append((OrderEventType.CONFIRMED, "", {}))
    unknown = [line.line_number for line in line_rows if line.product_id is None]
    if unknown and settings.OMS_UNKNOWN_SKU == "hold":
        # Nothing is lost: the order is kept and waits in the exception queue for a catalog fix.
        note_text = f"Unknown SKU on line(s) {', '.join(map(str, unknown))}."
        hold = OrderHold(order=order, reason=HoldReason.UNKNOWN_PRODUCT, note=note_text, placed_by=actor)
        stamp(hold, actor=actor, reason=note_text)
        hold.save()
        events.append((OrderEventType.HOLD_PLACED, note_text, {"hold": hold.pk, "reason": hold.reason}))
    if risk_score is not None and risk_score >= settings.OMS_FRAUD_REVIEW_SCORE:
        # Kept from preparation until someone looks: the hold opens the fraud case with the facts.
        facts_text = "; ".join(fact["fact"] for fact in risk_facts) or "no facts given"
        note_text = f"Risk score {risk_score} from the channel: {facts_text}"[:MAX_TEXT]
        hold = OrderHold(order=order, reason=HoldReason.FRAUD_REVIEW, note=note_text, placed_by=actor)
        stamp(hold, actor=actor, reason=note_text)
        hold.save()
        events.append((OrderEventType.HOLD_PLACED, note_text, {"hold": hold.pk, "reason": hold.reason}))
    if order.status == OrderStatus.CONFIRMED:
        events += _allocate_stock(order, actor=actor, lines=line_rows, products={p.pk: p for p in products.values()})
    if changed:
        _save(
            order,
            actor=actor,
            reason=reason or "Submitted on import",
            fields=[
                "status",
                "payment_status",
                "amount_paid",
                "amount_authorized",
                "paid_at",
                "payment_method",
                "payment_reference",
                "confirmed_at",
            ],
        )
    events_record(order=order, actor=actor, events=events)
    if payment_amount > 0:  # billing keeps the payment as a row of its own, and invoices when confirmed
        from billing.services.payments import payment_intake_record

        payment_intake_record(order=order, actor=actor, payment=payment)
    _invoice_when_confirmed(order)
    return order, True


def _invoice_when_confirmed(order: Order) -> None:
    """Billing invoices a confirmed order after commit, when its policy invoices per order."""
    from billing.tasks import invoice_when_confirmed

    invoice_when_confirmed(order)


def _tag_get_or_create(name: str) -> Tag:
    tag, _ = Tag.objects.get_or_create(name=name)
    return tag


# --- lifecycle ---------------------------------------------------------------------------------


def _simple_transition(
    *, order, actor, name: str, event_type: str, reason: str, fields: list[str], payload=None, **kwargs
) -> Order:
    order = _lock(order)
    before = order.status
    _run_transition(order, name, actor=actor, **kwargs)
    _save(order, actor=actor, reason=reason or str(event_type.label), fields=["status", *fields])
    event_record(
        order=order,
        actor=actor,
        type=event_type,
        reason=reason,
        payload={"from": before, "to": order.status, **(payload or {})},
    )
    return order


@transaction.atomic
def order_submit(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order, actor=actor, name="submit", event_type=OrderEventType.SUBMITTED, reason=reason, fields=[]
    )


@transaction.atomic
def order_approve(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order, actor=actor, name="approve", event_type=OrderEventType.APPROVED, reason=reason, fields=[]
    )


@transaction.atomic
def order_mark_paid(
    *,
    order: Order | int,
    actor,
    amount: Decimal | str | None = None,
    captured: bool = True,
    method: str = "",
    reference: str = "",
    reason: str = "",
) -> Order:
    """Record a payment (captured) or an authorization; confirms the order once it is covered."""
    order = _lock(order)
    _require_perm(actor, "orders.record_payment_order", "record payments")
    if order.status in {OrderStatus.DRAFT, OrderStatus.CANCELED, OrderStatus.COMPLETED}:
        raise TransitionRefused(
            f"Cannot record a payment on order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"status": order.status},
        )
    already = order.amount_paid if captured else order.amount_authorized
    if amount in (None, "") and order.total_gross - already <= 0:
        # The default amount is the balance: with nothing due it would record a payment of 0.
        raise TransitionRefused(
            f"Nothing is due on order {order.number}.", code="nothing_due", extra={"status": order.status}
        )
    errors: dict[str, list[str]] = {}
    value = _decimal(errors, "amount", amount, default=order.total_gross - already, minimum=Decimal("0.0001"))
    if errors:
        raise ValidationError("The payment is not valid.", code="invalid_payment", fields=errors)
    value = quantize(value, order.currency)
    if already + value > order.total_gross:
        raise ValidationError(
            f"The payment exceeds what is due ({order.total_gross - already} {order.currency}).",
            code="overpayment",
            fields={"amount": ["Exceeds the amount due."]},
        )
    if captured:
        order.amount_paid += value
        order.paid_at = timezone.now()
    else:
        order.amount_authorized += value
    order.payment_method = (method or order.payment_method)[:40]
    order.payment_reference = (reference or order.payment_reference)[:128]
    order.payment_status = derive_payment_status(order)
    events = [
        (
            OrderEventType.PAYMENT_RECORDED,
            reason,
            {"amount": str(value), "captured": captured, "method": method, "reference": reference},
        )
    ]
    if order.status == OrderStatus.AWAITING_PAYMENT and order.is_paid_or_authorized():
        _run_transition(order, "pay", actor=actor)
        events.append((OrderEventType.CONFIRMED, reason, {}))
        events += _allocate_stock(order, actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Payment recorded",
        fields=[
            "status",
            "payment_status",
            "amount_paid",
            "amount_authorized",
            "paid_at",
            "payment_method",
            "payment_reference",
            "confirmed_at",
        ],
    )
    events_record(order=order, actor=actor, events=events)
    _invoice_when_confirmed(order)
    return order


@transaction.atomic
def order_accept_on_terms(*, order: Order | int, actor, reason: str = "") -> Order:
    order = _lock(order)
    before = order.status
    _run_transition(order, "accept_on_terms", actor=actor)
    order.payment_status = derive_payment_status(order)
    events = [
        (
            OrderEventType.ACCEPTED_ON_TERMS,
            reason,
            {"from": before, "to": order.status, "terms_days": order.customer.payment_terms_days},
        )
    ]
    events += _allocate_stock(order, actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Accepted on payment terms",
        fields=["status", "on_payment_terms", "payment_status", "confirmed_at", "promised_at"],
    )
    events_record(order=order, actor=actor, events=events)
    _invoice_when_confirmed(order)
    return order


@transaction.atomic
def order_flag_for_review(*, order: Order | int, actor, reason: str, risk_score: int | None = None) -> Order:
    if not (reason or "").strip():
        raise ValidationError("A reason is required.", code="reason_required", fields={"reason": ["Required."]})
    if risk_score is not None and (
        isinstance(risk_score, bool) or not isinstance(risk_score, int) or not 0 <= risk_score <= 100
    ):
        raise ValidationError("Risk score must be 0 to 100.", fields={"risk_score": ["A whole number from 0 to 100."]})
    order = _lock(order)
    before = order.status
    _run_transition(order, "flag_for_review", actor=actor)
    fields = ["status"]
    if risk_score is not None:
        order.risk_score = risk_score
        fields.append("risk_score")
    _save(order, actor=actor, reason=reason, fields=fields)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.FLAGGED_FOR_REVIEW,
        reason=reason,
        payload={"from": before, "to": order.status, "risk_score": risk_score},
    )
    return order


@transaction.atomic
def order_accept(*, order: Order | int, actor, reason: str = "") -> Order:
    """Accept an order under review: confirmed when settled, otherwise back to awaiting payment."""
    order = _lock(order)
    before = order.status
    _run_transition(order, "accept", actor=actor)
    events = [(OrderEventType.REVIEW_ACCEPTED, reason, {"from": before, "to": order.status})]
    if order.status == OrderStatus.CONFIRMED:
        events += _allocate_stock(order, actor=actor)
    _save(order, actor=actor, reason=reason or "Review accepted", fields=["status", "confirmed_at", "promised_at"])
    events_record(order=order, actor=actor, events=events)
    _invoice_when_confirmed(order)
    return order


@transaction.atomic
def order_start_preparation(*, order: Order | int, actor, reason: str = "") -> Order:
    """Start picking. Lines reserved "hard" (at picking) are reserved now: all of them, or nothing."""
    order = _lock(order)
    before = order.status
    _run_transition(order, "start_preparation", actor=actor)
    order.preparation_started_at = order.preparation_started_at or timezone.now()
    events = [(OrderEventType.PREPARATION_STARTED, reason, {"from": before, "to": order.status})]
    events += _allocate_stock(order, actor=actor, hard=True)
    _save(order, actor=actor, reason=reason or "Preparation started", fields=["status", "preparation_started_at"])
    events_record(order=order, actor=actor, events=events)
    _plan_shipments(order, actor=actor)
    return order


def _plan_shipments(order: Order, *, actor) -> None:
    """Reserved units get shipments, one per location (fulfillment owns shipments; it calls back here)."""
    from fulfillment.services import shipments_plan

    shipments_plan(order=order, actor=actor)


def _resolve_products(errors: dict, clean_lines, *, when) -> dict[str, Product]:
    """SKU → product. A product outside its sell window is refused; an unknown SKU per OMS_UNKNOWN_SKU."""
    products = {p.sku: p for p in Product.objects.filter(sku__in={line.sku for line in clean_lines})}
    for index, line in enumerate(clean_lines):
        product = products.get(line.sku)
        if product is None:
            if settings.OMS_UNKNOWN_SKU == "refuse":
                errors[f"lines.{index}.sku"] = [f"Unknown SKU {line.sku}."]
        elif not product.is_sellable_at(when):
            if product.sellable_until and when >= product.sellable_until:
                why = f"no longer sold since {timezone.localtime(product.sellable_until):%Y-%m-%d}"
            elif product.sellable_from and when < product.sellable_from:
                why = f"not sold before {timezone.localtime(product.sellable_from):%Y-%m-%d}"
            else:
                why = "not sold any more"
            errors[f"lines.{index}.sku"] = [f"{line.sku} is {why}."]
    return products


def _allocate_stock(
    order: Order, *, actor, lines=None, hard: bool = False, products: dict | None = None, waiting: bool = False
) -> list[tuple[str, str, dict]]:
    """Source and reserve the order's unreserved units (lock order: order, lines, then stock).

    Soft lines are reserved when the order is confirmed; with `hard`, at picking, every line not
    yet reserved is. Test orders never take real stock. Units nobody has are promised against
    incoming supply (the line carries the promised date) or put the order on a stock-shortage
    hold; at picking a shortage refuses the start instead; with `waiting` (an order already being
    prepared, whose missing units wait for their promised date) it is only reported. Returns the events.
    """
    if order.is_test:
        return []
    if lines is None:
        lines = _lock_lines(order)
    wanted = {line.product_id for line in lines if line.product_id}
    if products is None or not wanted <= set(products):
        products = {p.pk: p for p in Product.objects.filter(pk__in=wanted)}
    if not hard:
        channel_mode = inventory.channel_reservation_mode(channel_id=order.channel_id)
        lines = [
            line
            for line in lines
            if line.product_id and (products[line.product_id].reservation_mode or channel_mode) == ReservationMode.SOFT
        ]
    decision = inventory.stock_allocate(order=order, lines=lines, actor=actor, products=products)
    if decision is None:
        return []
    for loser_id in decision.losers:
        transaction.on_commit(functools.partial(_reallocate_later, order_id=loser_id))
    if hard and decision.shortages and not waiting:
        missing = ", ".join(f"{qty} × {need.sku}" for need, qty in decision.shortages)
        raise ConflictError(
            f"Cannot start picking order {order.number}: {missing} not in stock.",
            code="stock_shortage",
            extra={"missing": missing},
        )
    events = [
        (
            OrderEventType.STOCK_ALLOCATED,
            "",
            {"decision": decision.pk, "summary": decision.summary, "allocations": decision.allocations},
        )
    ]
    if decision.promises:
        by_line = {line.pk: line for line in lines}
        changed = []
        for need, supply, _qty in decision.promises:
            line = by_line[need.line_id]
            promised = timezone.make_aware(datetime.datetime.combine(supply.expected_at, datetime.time(12)))
            if line.promised_at is None or line.promised_at < promised:
                line.promised_at = promised
                changed.append(line)
        if changed:
            bulk_update_with_history(
                changed,
                OrderLine,
                ["promised_at"],
                default_user=actor,
                default_change_reason="Promised from incoming supply",
            )
        order.promised_at = max(line.promised_at for line in by_line.values() if line.promised_at)
        events.append((OrderEventType.BACKORDERED, "", {"backorders": decision.backorders}))
    if decision.shortages and not waiting:
        missing = ", ".join(f"{qty} × {need.sku}" for need, qty in decision.shortages)
        if not order.holds.filter(reason=HoldReason.STOCK_SHORTAGE, released_at__isnull=True).exists():
            hold = OrderHold(
                order=order, reason=HoldReason.STOCK_SHORTAGE, note=f"Not in stock: {missing}.", placed_by=actor
            )
            stamp(hold, actor=actor, reason=hold.note)
            hold.save()
            events.append((OrderEventType.HOLD_PLACED, hold.note, {"hold": hold.pk, "reason": hold.reason}))
    return events


def _reallocate_later(*, order_id: int) -> None:
    from orders.tasks import order_reallocate

    order_reallocate.delay(order_id=order_id)


@transaction.atomic
def order_reallocate(*, order: Order | int, actor, reason: str = "") -> Order:
    """Source again what the order has not reserved (after losing a last-unit conflict, or a receipt)."""
    order = _lock(order)
    preparing = order.status in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}
    if order.status != OrderStatus.CONFIRMED and not preparing:
        return order
    if preparing:
        # Units still open after a delay or a lost parcel: reserve what is in stock now, and wait
        # (promised date kept) for the rest rather than refusing.
        open_lines = [line for line in _lock_lines(order) if line.quantity_open]
        events = _allocate_stock(order, actor=actor, lines=open_lines, hard=True, waiting=True)
    else:
        events = _allocate_stock(order, actor=actor)
    if order.promised_at:
        _save(order, actor=actor, reason=reason or "Stock reallocated", fields=["promised_at"])
    if events:
        events_record(order=order, actor=actor, events=events)
    if preparing:
        _plan_shipments(order, actor=actor)
    return order


def _lock_lines(order: Order) -> list[OrderLine]:
    return list(OrderLine.objects.select_for_update().filter(order=order).order_by("pk"))


def _clean_quantities(lines: list[OrderLine], quantities: dict | None, *, available, field: str) -> dict[int, int]:
    """{line id: quantity} checked against what each line still allows (`available(line)`)."""
    by_id = {line.pk: line for line in lines}
    if quantities is None:
        return {line.pk: available(line) for line in lines if available(line) > 0}
    errors: dict[str, list[str]] = {}
    clean: dict[int, int] = {}
    for raw_id, raw_qty in quantities.items():
        try:
            line_id = int(raw_id)
        except (TypeError, ValueError):
            errors[f"{field}.{raw_id}"] = ["Unknown line."]
            continue
        line = by_id.get(line_id)
        if line is None:
            errors[f"{field}.{raw_id}"] = ["Unknown line."]
        elif isinstance(raw_qty, bool) or not isinstance(raw_qty, int) or raw_qty < 1:
            errors[f"{field}.{raw_id}"] = ["A whole number of at least 1 is required."]
        elif raw_qty > available(line):
            errors[f"{field}.{raw_id}"] = [f"At most {available(line)} for line {line.line_number} ({line.sku})."]
        else:
            clean[line_id] = raw_qty
    if errors:
        raise ValidationError("The quantities are not valid.", code="invalid_quantities", fields=errors)
    if not clean:
        raise ValidationError("Nothing to record.", code="nothing_to_record", fields={field: ["Nothing to record."]})
    return clean


@transaction.atomic
def order_record_shipment(
    *,
    order: Order | int,
    actor,
    quantities: dict | None = None,
    reason: str = "",
    reference: str = "",
    location_id: int | None = None,
    payload: dict | None = None,
) -> Order:
    """Record shipped quantities per line (all that is open by default); derives the order status.

    You cannot ship more than was ordered and not canceled (guarded here and by a check constraint).
    With `location_id` (a shipment's), stock is consumed from that location's reservations.
    """
    order = _lock(order)
    _require_perm(actor, "orders.ship_order", "record shipments")
    if order.status not in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}:
        raise TransitionRefused(
            f"Cannot ship order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "ship", "status": order.status},
        )
    if not order.has_no_active_hold():
        raise TransitionRefused("The order has an active hold; release it first.", code="order_on_hold")
    lines = _lock_lines(order)
    shipped = _clean_quantities(lines, quantities, available=lambda line: line.quantity_open, field="quantities")
    if not order.is_test:
        inventory.stock_consume(
            order=order, actor=actor, quantities=shipped, reference=reference or order.number, location_id=location_id
        )
    changed = []
    for line in lines:
        if line.pk in shipped:
            line.quantity_shipped += shipped[line.pk]
            changed.append(line)
    bulk_update_with_history(
        changed,
        OrderLine,
        ["quantity_shipped"],
        default_user=actor,
        default_change_reason=reason or "Shipment recorded",
    )
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    _run_transition(order, "ship", actor=actor)
    order.first_shipped_at = order.first_shipped_at or timezone.now()
    _save(
        order,
        actor=actor,
        reason=reason or "Shipment recorded",
        fields=["status", "fulfillment_status", "first_shipped_at"],
    )
    by_id = {line.pk: line for line in lines}
    events = [
        (
            OrderEventType.SHIPMENT_RECORDED,
            reason,
            {
                "reference": reference,
                "lines": [
                    {"line": by_id[pk].line_number, "sku": by_id[pk].sku, "quantity": qty}
                    for pk, qty in shipped.items()
                ],
                **(payload or {}),
            },
        )
    ]
    if order.status == OrderStatus.SHIPPED and before != OrderStatus.SHIPPED:
        events.append((OrderEventType.SHIPPED, reason, {"from": before}))
    events_record(order=order, actor=actor, events=events)
    if not (payload or {}).get("shipment"):
        _plan_shipments(order, actor=actor)  # shipped outside a parcel: the parcels give those units up
    return order


@transaction.atomic
def order_mark_delivered(*, order: Order | int, actor, quantities: dict | None = None, reason: str = "") -> Order:
    """Record delivered quantities (all that shipped by default); the order is delivered once all is."""
    order = _lock(order)
    _require_perm(actor, "orders.deliver_order", "mark orders delivered")
    if order.status not in {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED}:
        raise TransitionRefused(
            f"Cannot record a delivery on order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "deliver", "status": order.status},
        )
    lines = _lock_lines(order)
    delivered = _clean_quantities(
        lines, quantities, available=lambda line: line.quantity_shipped - line.quantity_delivered, field="quantities"
    )
    changed = []
    for line in lines:
        if line.pk in delivered:
            line.quantity_delivered += delivered[line.pk]
            changed.append(line)
    bulk_update_with_history(
        changed,
        OrderLine,
        ["quantity_delivered"],
        default_user=actor,
        default_change_reason=reason or "Delivery recorded",
    )
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    if order.status == OrderStatus.SHIPPED and order.is_fully_delivered():
        _run_transition(order, "deliver", actor=actor)
    _save(
        order,
        actor=actor,
        reason=reason or "Delivery recorded",
        fields=["status", "fulfillment_status", "delivered_at"],
    )
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.DELIVERED,
        reason=reason,
        payload={
            "from": before,
            "to": order.status,
            "fulfillment_status": order.fulfillment_status,
            "lines": {str(pk): qty for pk, qty in delivered.items()},
        },
    )
    return order


# --- line changes at picking (short picks, expired pickups) -----------------------------------


def _unit_gross(line: OrderLine, quantity: int, currency: str) -> Decimal:
    """What `quantity` units of the line cost the customer (discount included), rounded half-up."""
    return quantize(line.total_gross * quantity / line.quantity, currency)


@transaction.atomic
def order_cancel_lines(
    *, order: Order | int, actor, quantities: dict, reason_code: str, reason: str = "", payload: dict | None = None
) -> Order:
    """Cancel open (unshipped) units of some lines: stock released, refund due recorded for billing.

    The same permission as canceling the order (canceling paid units needs the paid one). When
    nothing else is left to ship, the order moves on by itself: shipped if part had shipped,
    canceled if nothing had.
    """
    if reason_code not in CancelReason.values:
        raise ValidationError(
            "Unknown cancellation reason.",
            code="invalid_reason",
            fields={"reason_code": [f"One of: {', '.join(CancelReason.values)}."]},
        )
    order = _lock(order)
    if actor is None or not order_can_cancel(order, actor):
        raise PermissionDeniedError(
            "You do not have permission to cancel items of this order.", code="permission_denied"
        )
    if order.status in {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.CANCELED}:
        raise TransitionRefused(
            f"Cannot cancel items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "cancel_lines", "status": order.status},
        )
    lines = _lock_lines(order)
    canceled = _clean_quantities(lines, quantities, available=lambda line: line.quantity_open, field="quantities")
    by_id = {line.pk: line for line in lines}
    for line_id, qty in canceled.items():
        by_id[line_id].quantity_canceled += qty
    label = reason or str(CancelReason(reason_code).label)
    bulk_update_with_history(
        [by_id[pk] for pk in canceled],
        OrderLine,
        ["quantity_canceled"],
        default_user=actor,
        default_change_reason=label,
    )
    released = 0
    if not order.is_test:
        released = inventory.reservations_release_excess(
            order=order, actor=actor, lines=[by_id[pk] for pk in canceled], reason=label
        )
    refund_due = sum((_unit_gross(by_id[pk], qty, order.currency) for pk, qty in canceled.items()), ZERO)
    before = order.status
    order.fulfillment_status = derive_fulfillment_status(lines)
    events = [
        (
            OrderEventType.LINES_CANCELED,
            reason,
            {
                "reason_code": reason_code,
                "lines": [
                    {"line": by_id[pk].line_number, "sku": by_id[pk].sku, "quantity": q} for pk, q in canceled.items()
                ],
                "refund_due": str(refund_due),
                "stock_released": released,
                **(payload or {}),
            },
        )
    ]
    if order.fulfillment_status == FulfillmentStatus.CANCELED:
        _run_transition(order, "cancel", actor=actor, check_permission=False, reason=reason_code)
        _release_all_holds(order=order, actor=actor, note=_("Order canceled"))
        events.append((OrderEventType.CANCELED, reason, {"from": before, "reason_code": reason_code}))
    elif order.status == OrderStatus.PARTIALLY_SHIPPED and order.is_fully_shipped():
        _run_transition(order, "ship", actor=actor, check_permission=False)
        events.append((OrderEventType.SHIPPED, reason, {"from": before}))
    _save(order, actor=actor, reason=label, fields=["status", "fulfillment_status", "cancel_reason", "canceled_at"])
    events_record(order=order, actor=actor, events=events)
    if order.status == OrderStatus.CANCELED:
        from fulfillment.services import shipments_cancel_for_order

        shipments_cancel_for_order(order=order, actor=actor, reason=label)
    else:
        _plan_shipments(order, actor=actor)
    return order


@transaction.atomic
def order_record_refund(*, order: Order | int, actor, amount: Decimal, reference: str = "") -> Order:
    """Count money given back on the order (called by billing's refund_process, which checks the
    refund's approval and records its own event in the same transaction). Never above what was paid:
    the order's check constraint refuses it too."""
    order = _lock(order)
    value = quantize(Decimal(amount), order.currency)
    if value <= 0 or order.amount_refunded + value > order.amount_paid:
        raise ValidationError(
            f"A refund of {value} {order.currency} exceeds what was paid on order {order.number}.",
            code="refund_exceeds_paid",
            fields={"amount": [f"At most {order.amount_paid - order.amount_refunded} {order.currency}."]},
        )
    order.amount_refunded += value
    order.payment_status = derive_payment_status(order)
    _save(order, actor=actor, reason=f"Refund {reference}".strip(), fields=["amount_refunded", "payment_status"])
    return order


def order_can_cancel(order: Order, actor) -> bool:
    from orders.models import _can_cancel

    return _can_cancel(order, actor)


@transaction.atomic
def order_substitute_line(
    *, order: Order | int, actor, line: OrderLine | int, product: Product, quantity: int, reason: str = "", payload=None
) -> OrderLine:
    """Replace `quantity` open units of a line by another product, at the price the customer paid.

    The new line snapshots the substitute's SKU and name with the original unit price, discount share
    and tax rate; the original units are canceled. Nothing is due back: the customer consented to
    the swap (the caller records the consent). Stock for the substitute is the caller's to reserve.
    """
    order = _lock(order)
    _require_perm(actor, "fulfillment.resolve_short_pick", "substitute items")
    if order.status not in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}:
        raise TransitionRefused(
            f"Cannot substitute items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "substitute", "status": order.status},
        )
    lines = _lock_lines(order)
    line_id = line.pk if isinstance(line, OrderLine) else line
    original = next((candidate for candidate in lines if candidate.pk == line_id), None)
    if original is None:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    if product.pk == original.product_id:
        raise ValidationError("Same product.", fields={"product": ["Choose another product than the missing one."]})
    _clean_quantities(
        lines, {original.pk: quantity}, available=lambda candidate: candidate.quantity_open, field="quantity"
    )
    discount = quantize(original.discount_amount * quantity / original.quantity, order.currency)
    amounts = line_amounts(
        quantity=quantity,
        unit_price=original.unit_price,
        discount=discount,
        tax_rate=original.tax_rate,
        includes_tax=order.prices_include_tax,
        currency=order.currency,
    )
    label = reason or f"Substitute for line {original.line_number}"
    new_line = OrderLine(
        order=order,
        line_number=max(candidate.line_number for candidate in lines) + 1,
        sku=product.sku,
        name=product.name,
        product=product,
        attributes={"substitute_for": {"line": original.line_number, "sku": original.sku}},
        quantity=quantity,
        unit_price=original.unit_price,
        discount_amount=discount,
        promotion=original.promotion,
        tax_rate=original.tax_rate,
        total_net=amounts.net,
        tax_amount=amounts.tax,
        total_gross=amounts.gross,
        promised_at=original.promised_at,
        substitute_for=original,
    )
    stamp(new_line, actor=actor, reason=label)
    new_line.save()
    original.quantity_canceled += quantity
    stamp(original, actor=actor, reason=label)
    original.save(update_fields=["quantity_canceled"])
    if not order.is_test:
        inventory.reservations_release_excess(order=order, actor=actor, lines=[original], reason=label)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.LINE_SUBSTITUTED,
        reason=reason,
        payload={
            "line": original.line_number,
            "sku": original.sku,
            "substitute_line": new_line.line_number,
            "substitute_sku": product.sku,
            "quantity": quantity,
            "refund_due": "0",
            **(payload or {}),
        },
    )
    return new_line


@transaction.atomic
def order_delay_lines(
    *, order: Order | int, actor, line_ids, promised_at: datetime.datetime, reason: str = "", payload=None
) -> Order:
    """Give lines a new (later) promise date; the customer is told by the notification of the event."""
    order = _lock(order)
    _require_perm(actor, "fulfillment.resolve_short_pick", "change promise dates")
    if promised_at is None or promised_at <= timezone.now():
        raise ValidationError("The new date must be in the future.", fields={"promised_at": ["Must be in the future."]})
    lines = [line for line in _lock_lines(order) if line.pk in set(line_ids)]
    if not lines:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    for line in lines:
        line.promised_at = promised_at
    bulk_update_with_history(
        lines, OrderLine, ["promised_at"], default_user=actor, default_change_reason=reason or "Delivery delayed"
    )
    previous = order.promised_at
    order.promised_at = max(promised_at, previous or promised_at)
    _save(order, actor=actor, reason=reason or "Delivery delayed", fields=["promised_at"])
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.DELIVERY_DELAYED,
        reason=reason,
        payload={
            "lines": [{"line": line.line_number, "sku": line.sku} for line in lines],
            "promised_at": promised_at.isoformat(),
            "previous_promised_at": previous.isoformat() if previous else None,
            **(payload or {}),
        },
    )
    return order


@transaction.atomic
def order_complete(*, order: Order | int, actor, reason: str = "") -> Order:
    return _simple_transition(
        order=order,
        actor=actor,
        name="complete",
        event_type=OrderEventType.COMPLETED,
        reason=reason,
        fields=["completed_at"],
    )


@transaction.atomic
def order_cancel(*, order: Order | int, actor, reason_code: str, reason: str = "") -> Order:
    """Cancel before anything shipped. Open quantities are canceled and active holds released.

    Money already captured stays recorded on the order (payment status unchanged) until billing
    refunds it; the event says how much is due back.
    """
    if reason_code not in CancelReason.values:
        raise ValidationError(
            "Unknown cancellation reason.",
            code="invalid_reason",
            fields={"reason_code": [f"One of: {', '.join(CancelReason.values)}."]},
        )
    order = _lock(order)
    before = order.status
    _run_transition(order, "cancel", actor=actor, reason=reason_code)
    lines = _lock_lines(order)
    for line in lines:
        line.quantity_canceled = line.quantity - line.quantity_shipped
    bulk_update_with_history(
        lines, OrderLine, ["quantity_canceled"], default_user=actor, default_change_reason=reason or "Order canceled"
    )
    order.fulfillment_status = derive_fulfillment_status(lines)
    released_units = inventory.reservations_release(order=order, actor=actor, reason="Order canceled")
    from fulfillment.services import shipments_cancel_for_order

    shipments_cancel_for_order(order=order, actor=actor, reason=f"Order canceled: {reason or reason_code}")
    label = reason or CancelReason(reason_code).label
    _save(
        order, actor=actor, reason=str(label), fields=["status", "fulfillment_status", "cancel_reason", "canceled_at"]
    )
    released = _release_all_holds(order=order, actor=actor, note=_("Order canceled"))
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.CANCELED,
        reason=reason,
        payload={
            "from": before,
            "reason_code": reason_code,
            "refund_due": str(order.amount_paid - order.amount_refunded),
            "holds_released": released,
            "stock_released": released_units,
        },
    )
    return order


# --- holds, notes, tags, addresses --------------------------------------------------------------


@transaction.atomic
def order_hold(*, order: Order | int, actor, reason: str, note: str = "") -> OrderHold:
    if reason not in HoldReason.values:
        raise ValidationError(
            "Unknown hold reason.",
            code="invalid_reason",
            fields={"reason": [f"One of: {', '.join(HoldReason.values)}."]},
        )
    if len(note or "") > MAX_TEXT:
        raise ValidationError("The note is too long.", fields={"note": [f"At most {MAX_TEXT} characters."]})
    order = _lock(order)
    _require_perm(actor, "orders.place_hold", "place holds")
    if order.status in TERMINAL_OR_SHIPPED:
        raise TransitionRefused(
            f"Cannot hold order {order.number}: it is {order.get_status_display().lower()}.",
            code="hold_not_allowed",
            extra={"status": order.status},
        )
    if order.holds.filter(reason=reason, released_at__isnull=True).exists():
        raise ConflictError(
            f"Order {order.number} already has an active {HoldReason(reason).label.lower()} hold.", code="hold_exists"
        )
    hold = OrderHold(order=order, reason=reason, note=note or "", placed_by=actor)
    stamp(hold, actor=actor, reason=note)
    hold.save()
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.HOLD_PLACED,
        reason=note,
        payload={"hold": hold.pk, "reason": reason},
    )
    return hold


@transaction.atomic
def order_release_hold(*, hold: OrderHold | int, actor, note: str) -> OrderHold:
    hold_id = hold.pk if isinstance(hold, OrderHold) else hold
    order_id = OrderHold.objects.filter(pk=hold_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("Hold not found.", code="hold_not_found")
    if not (note or "").strip():
        raise ValidationError(
            "A reason is required to release a hold.", code="reason_required", fields={"note": ["Required."]}
        )
    order = _lock(order_id)  # lock order: order first, then its holds
    _require_perm(actor, "orders.release_hold", "release holds")
    hold = OrderHold.objects.select_for_update().get(pk=hold_id)
    if hold.released_at is not None:
        raise ConflictError("This hold was already released.", code="hold_already_released")
    _release(hold, actor=actor, note=note)
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.HOLD_RELEASED,
        reason=note,
        payload={"hold": hold.pk, "reason": hold.reason},
    )
    return hold


def _release(hold: OrderHold, *, actor, note: str) -> None:
    hold.released_at = timezone.now()
    hold.released_by = actor
    hold.release_note = note
    stamp(hold, actor=actor, reason=note)
    hold.save(update_fields=["released_at", "released_by", "release_note"])


def _release_all_holds(*, order: Order, actor, note: str) -> list[int]:
    released = []
    for hold in OrderHold.objects.select_for_update().filter(order=order, released_at__isnull=True).order_by("pk"):
        _release(hold, actor=actor, note=note)
        released.append(hold.pk)
    return released


@transaction.atomic
def order_clear_fraud(*, order: Order | int, actor, reason: str) -> Order:
    """The false-positive protocol: one action, its own permission, a reason required.

    Releases the active fraud-review hold, accepts the review when the order is under review
    (confirmed when settled), and records the decision on the timeline; the fraud case closes as
    a false positive with the reason as its evidence.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_TEXT:
        raise ValidationError(
            "A reason is required to clear a fraud review.", code="reason_required", fields={"reason": ["Required."]}
        )
    order = _lock(order)
    _require_perm(actor, "orders.release_fraud_hold", "clear fraud reviews")
    holds = list(
        OrderHold.objects.select_for_update().filter(
            order=order, reason=HoldReason.FRAUD_REVIEW, released_at__isnull=True
        )
    )
    if not holds and order.status != OrderStatus.UNDER_REVIEW:
        raise ConflictError(f"Order {order.number} is not under fraud review.", code="not_under_review")
    events = []
    for hold in holds:
        _release(hold, actor=actor, note=reason)
        events.append(
            (
                OrderEventType.HOLD_RELEASED,
                reason,
                {"hold": hold.pk, "reason": hold.reason, "decision": "false_positive"},
            )
        )
    before = order.status
    if order.status == OrderStatus.UNDER_REVIEW:
        # The permission to clear fraud includes accepting the review it caused.
        _run_transition(order, "accept", actor=actor, check_permission=False)
        events.append(
            (OrderEventType.REVIEW_ACCEPTED, reason, {"from": before, "to": order.status, "decision": "false_positive"})
        )
        if order.status == OrderStatus.CONFIRMED:
            events += _allocate_stock(order, actor=actor)
        _save(order, actor=actor, reason=reason, fields=["status", "confirmed_at", "promised_at"])
    events.append(
        (OrderEventType.FRAUD_CLEARED, reason, {"holds_released": [hold.pk for hold in holds], "from": before})
    )
    events_record(order=order, actor=actor, events=events)
    _invoice_when_confirmed(order)
    return order


@transaction.atomic
def order_add_note(*, order: Order | int, actor, body: str) -> OrderNote:
    body = (body or "").strip()
    if not body or len(body) > MAX_TEXT:
        raise ValidationError(
            "A note of 1 to 5000 characters is required.",
            code="invalid_note",
            fields={"body": [f"1 to {MAX_TEXT} characters."]},
        )
    order = _lock(order)
    _require_perm(actor, "orders.add_note", "add notes")
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
    order = _lock(order)
    _require_perm(actor, "orders.tag_order", "tag orders")
    tag_row = _tag_get_or_create(name)
    if order.tags.filter(pk=tag_row.pk).exists():
        return False
    order.tags.add(tag_row)
    event_record(order=order, actor=actor, type=OrderEventType.TAG_ADDED, reason=reason, payload={"tag": name})
    return True


@transaction.atomic
def order_untag(*, order: Order | int, actor, tag: str, reason: str = "") -> bool:
    name = _clean_tag(tag)
    order = _lock(order)
    _require_perm(actor, "orders.tag_order", "tag orders")
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
    order = _lock(order)
    _require_perm(actor, "orders.change_address_order", "change addresses")
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


def orders_complete_due(*, actor, limit: int = 500) -> int:
    """Close delivered orders whose return window has elapsed (the periodic task calls this)."""
    from django.conf import settings

    cutoff = timezone.now() - datetime.timedelta(days=settings.OMS_RETURN_WINDOW_DAYS)
    ids = list(
        Order.objects.filter(status=OrderStatus.DELIVERED, delivered_at__lte=cutoff)
        .order_by("delivered_at")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for order_id in ids:
        try:
            order_complete(order=order_id, actor=actor, reason="Return window elapsed")
            done += 1
        except (TransitionRefused, PermissionDeniedError):
            continue
    return done


# --- returns: exchanges -----------------------------------------------------------------------

EXCHANGE_STATES = {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED}


@transaction.atomic
def order_add_exchange_line(
    *,
    order: Order | int,
    actor,
    product: Product,
    quantity: int,
    unit_price,
    replaces_line: OrderLine | int,
    reason: str,
) -> tuple[OrderLine, OrderHold]:
    """Add the line a return exchanges shipped units for, held until the returned goods arrive.

    Mirrors `order_substitute_line`: the new line snapshots the product with the replaced line's
    tax rate and a share of its discount. The shipped units stay shipped (they come back through
    the return); the order gets one manual hold (reused when one is active), which the return
    releases once the goods are inspected as resellable. A shipped or delivered order is reopened
    (partially shipped) so that the new line ships through a parcel of its own, planned here; the
    new line's stock is reserved here (sourced like any line).
    """
    order = _lock(order)
    _require_perm(actor, "returns.add_returnrequest", "exchange items")
    if order.status not in EXCHANGE_STATES:
        raise TransitionRefused(
            f"Cannot exchange items of order {order.number}: it is {order.get_status_display().lower()}.",
            extra={"transition": "exchange", "status": order.status},
        )
    lines = _lock_lines(order)
    line_id = replaces_line.pk if isinstance(replaces_line, OrderLine) else replaces_line
    original = next((candidate for candidate in lines if candidate.pk == line_id), None)
    if original is None:
        raise ValidationError("Unknown line.", code="unknown_line", fields={"line": ["Not a line of this order."]})
    _clean_quantities(
        lines, {original.pk: quantity}, available=lambda candidate: candidate.quantity_shipped, field="quantity"
    )
    price = to_decimal(unit_price, field="unit_price")
    if price < 0:
        raise ValidationError("Invalid price.", fields={"unit_price": ["A price of at least 0 is required."]})
    discount = quantize(original.discount_amount * quantity / original.quantity, order.currency)
    amounts = line_amounts(
        quantity=quantity,
        unit_price=price,
        discount=discount,
        tax_rate=original.tax_rate,
        includes_tax=order.prices_include_tax,
        currency=order.currency,
    )
    new_line = OrderLine(
        order=order,
        line_number=max(candidate.line_number for candidate in lines) + 1,
        sku=product.sku,
        name=product.name,
        product=product,
        attributes={"exchange_for": {"line": original.line_number, "sku": original.sku}},
        quantity=quantity,
        unit_price=price,
        discount_amount=discount,
        promotion=original.promotion,
        tax_rate=original.tax_rate,
        total_net=amounts.net,
        tax_amount=amounts.tax,
        total_gross=amounts.gross,
    )
    stamp(new_line, actor=actor, reason=reason)
    new_line.save()
    lines.append(new_line)
    if not order.is_test:
        # The exchanged product is kept for the customer now (what no location has is promised or
        # reported as a shortage by the sourcing, like any line).
        inventory.stock_allocate(order=order, lines=[new_line], actor=actor)
    order.fulfillment_status = derive_fulfillment_status(lines)
    before = order.status
    if order.status in {OrderStatus.SHIPPED, OrderStatus.DELIVERED}:
        # The new line has to ship: the order is partially shipped again (until it does).
        _run_transition(order, "reopen", actor=actor, check_permission=False)
    _save(order, actor=actor, reason=reason, fields=["status", "fulfillment_status"])
    # A return's order has shipped, so `order_hold` (before shipping only) does not apply.
    hold = (
        OrderHold.objects.select_for_update()
        .filter(order=order, reason=HoldReason.MANUAL, released_at__isnull=True)
        .first()
    )
    if hold is None:
        hold = OrderHold(order=order, reason=HoldReason.MANUAL, note=reason, placed_by=actor)
        stamp(hold, actor=actor, reason=reason)
        hold.save()
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.HOLD_PLACED,
        reason=reason,
        payload={
            "hold": hold.pk,
            "reason": HoldReason.MANUAL,
            "exchange_line": new_line.line_number,
            "sku": product.sku,
            "quantity": quantity,
            "replaces_line": original.line_number,
            "replaces_sku": original.sku,
        },
    )
    event_record(
        order=order,
        actor=actor,
        type=OrderEventType.EXCHANGE_LINE_ADDED,
        reason=reason,
        payload={
            "line": new_line.line_number,
            "sku": product.sku,
            "quantity": quantity,
            "from": before,
            "to": order.status,
        },
    )
    # Its parcel is planned now; waves leave it out while the hold waits for the returned goods.
    _plan_shipments(order, actor=actor)
    return new_line, hold
