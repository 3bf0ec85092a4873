"""Intake: an order created by staff or imported from a channel, parsed once, written once (idempotent
per channel and external id).
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from inventory.models import Location, Product
from oms.core.errors import ValidationError
from oms.core.history import stamp
from oms.core.inputs import PLACED_AHEAD, PROMISE_AHEAD, datetime_problem, json_problems
from oms.core.logging import set_order
from oms.core.money import AMOUNT_MAX, AMOUNT_MAX_TEXT, ZERO, amount_problem, quantize, validate_currency
from oms.core.numbering import format_number, next_unique
from oms.core.permissions import require_perm
from orders.addresses import address_errors, normalize_address
from orders.choices import (
    HoldReason,
    OrderEventType,
    OrderStatus,
)
from orders.events import events_record
from orders.hooks import ORDER_PLACED
from orders.identity import customer_keys_refresh
from orders.models import Channel, Customer, Order, OrderLine, OrderNote, Tag
from orders.pricing import Amounts, line_amounts, order_totals, split_amount
from orders.services._common import (
    MAX_LINES,
    MAX_QUANTITY,
    MAX_TEXT,
    _announce_confirmed,
    _decimal,
    _hold_place,
    _run_transition,
    _save,
    _text,
    derive_payment_status,
)
from orders.services.allocation import _allocate_stock


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


def _clean_lines(errors: dict, raw_lines, *, currency: str) -> list[_LineInput]:
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
        for name in ("unit_price", "discount"):
            problem = f"{prefix}.{name}" not in errors and amount_problem(getattr(line, name), currency)
            if problem:
                errors[f"{prefix}.{name}"] = [problem]
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


@dataclass(frozen=True)
class OrderIntake:
    """An order's input once checked: what `order_create` writes, and nothing it has to check again."""

    currency: str
    includes_tax: bool
    email: str
    first_name: str
    last_name: str
    phone: str
    locale: str
    clean_lines: list[_LineInput]
    products: dict[str, Product]
    billing: dict
    shipping_addr: dict
    shipping_method: str
    pickup_location: Location | None
    shipping_price: Decimal
    shipping_rate: Decimal
    shipping_amounts: Amounts
    amounts: list[Amounts]
    totals: Amounts
    payment: dict
    payment_state: str
    payment_method: str
    payment_reference: str
    payment_amount: Decimal
    note: str
    purchase_order_number: str
    tags: list[str] | tuple
    risk_score: int | None
    risk_facts: list[dict]
    placed_at: datetime.datetime | None
    promised_at: datetime.datetime | None
    requires_approval: bool
    is_test: bool


def intake_parse(
    *,
    channel: Channel,
    customer: dict,
    lines: list[dict],
    billing_address: dict,
    shipping_address: dict | None = None,
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
) -> OrderIntake:
    """Check an order's input once, every field, and compute its amounts: the one parse of an intake.

    Any caller (the API after its shape check, a channel webhook, an import, staff) goes through
    here; the write that follows reads only the returned object. All field errors come at once as
    one ValidationError with dotted keys (`lines.0.quantity`).
    """
    # Text PostgreSQL cannot store (NUL, unpaired surrogates) or absurd nesting, in any field: refused
    # first, by field, whoever the caller (the API's parser has already refused it for its requests).
    raw = {
        "customer": customer,
        "lines": lines,
        "billing_address": billing_address,
        "shipping_address": shipping_address,
        "currency": currency,
        "shipping": shipping,
        "payment": payment,
        "risk": risk,
        "tags": list(tags) if isinstance(tags, tuple) else tags,
        "note": note,
        "purchase_order_number": purchase_order_number,
        "locale": locale,
    }
    errors: dict[str, list[str]] = json_problems(raw)
    if errors:
        raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)
    for field, value, window in (
        ("placed_at", placed_at, {"ahead": PLACED_AHEAD}),
        ("promised_at", promised_at, {"ahead": PROMISE_AHEAD}),
    ):
        if value is not None:
            problem = (
                datetime_problem(value, **window)
                if isinstance(value, datetime.datetime)
                else "A date-time with its UTC offset is required."
            )
            if problem:
                errors[field] = [problem]
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
    clean_lines = _clean_lines(errors, lines, currency=currency)
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
    if "shipping.price" not in errors and (problem := amount_problem(shipping_price, currency)):
        errors["shipping.price"] = [problem]
    shipping_rate = _decimal(errors, "shipping.tax_rate", shipping.get("tax_rate"), default=ZERO, maximum=Decimal("1"))
    payment = payment or {}
    if not isinstance(payment, dict):
        errors["payment"] = ["Must be an object."]
        payment = {}
    payment_state = payment.get("status", "unpaid")
    if not isinstance(payment_state, str) or payment_state not in {"unpaid", "authorized", "paid"}:
        errors["payment.status"] = ["One of: unpaid, authorized, paid."]
    payment_method = _text(errors, "payment.method", payment.get("method"), max_length=40)
    payment_reference = _text(errors, "payment.reference", payment.get("reference"), max_length=128)
    note = _text(errors, "note", note, max_length=MAX_TEXT)
    purchase_order_number = _text(errors, "purchase_order_number", purchase_order_number, max_length=64)
    locale = locale or customer.get("locale") or "en"
    if not isinstance(locale, str) or locale not in {"en", "fr"}:
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
    # Each amount fits its bounds; their products and sums must too (100,000 x 999,999,999 does not).
    for index, line_total in enumerate(amounts):
        if line_total.gross > AMOUNT_MAX or line_total.net > AMOUNT_MAX:
            errors[f"lines.{index}"] = [f"The line's total exceeds {AMOUNT_MAX_TEXT} {currency}."]
    if not errors and max(totals.gross, totals.net) > AMOUNT_MAX:
        errors["lines"] = [f"The order's total exceeds {AMOUNT_MAX_TEXT} {currency}."]
    if errors:
        raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)

    payment_amount = ZERO
    if payment_state != "unpaid":
        payment_amount = _decimal(errors, "payment.amount", payment.get("amount"), default=totals.gross)
        if "payment.amount" not in errors and (problem := amount_problem(payment_amount, currency)):
            errors["payment.amount"] = [problem]
        if "payment.amount" not in errors and payment_amount > totals.gross:
            errors["payment.amount"] = [f"Exceeds the order total ({totals.gross} {currency})."]
        if errors:
            raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)

    return OrderIntake(
        currency=currency,
        includes_tax=includes_tax,
        email=email,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        locale=locale,
        clean_lines=clean_lines,
        products=products,
        billing=billing,
        shipping_addr=shipping_addr,
        shipping_method=shipping_method,
        pickup_location=pickup_location,
        shipping_price=shipping_price,
        shipping_rate=shipping_rate,
        shipping_amounts=shipping_amounts,
        amounts=amounts,
        totals=totals,
        payment=payment,
        payment_state=payment_state,
        payment_method=payment_method,
        payment_reference=payment_reference,
        payment_amount=payment_amount,
        note=note,
        purchase_order_number=purchase_order_number,
        tags=tags,
        risk_score=risk_score,
        risk_facts=risk_facts,
        placed_at=placed_at,
        promised_at=promised_at,
        requires_approval=requires_approval,
        is_test=is_test,
    )


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
    require_perm(actor, "orders.import_order", "create orders")
    channel = _resolve_channel(channel)
    errors: dict[str, list[str]] = {}
    external_id = _text(errors, "external_id", external_id, max_length=128) or None
    if errors:
        raise ValidationError("The order is not valid.", code="invalid_order", fields=errors)

    if external_id:
        existing = Order.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            set_order(existing.number)
            return existing, False

    intake = intake_parse(
        channel=channel,
        customer=customer,
        lines=lines,
        billing_address=billing_address,
        shipping_address=shipping_address,
        currency=currency,
        prices_include_tax=prices_include_tax,
        shipping=shipping,
        payment=payment,
        is_test=is_test,
        risk=risk,
        placed_at=placed_at,
        promised_at=promised_at,
        tags=tags,
        note=note,
        requires_approval=requires_approval,
        purchase_order_number=purchase_order_number,
        locale=locale,
    )
    customer_row, _created = Customer.objects.get_or_create(
        email__iexact=intake.email,
        defaults={
            "email": intake.email,
            "first_name": intake.first_name,
            "last_name": intake.last_name,
            "phone": intake.phone,
            "locale": intake.locale,
            "is_test": bool(intake.is_test),
        },
    )
    if customer_row.merged_into_id is not None:
        # A record merged into another (identity.customer_merge): the order goes to the kept one
        # (merges are flattened: merged_into is never itself merged).
        customer_row = customer_row.merged_into
    # The duplicate detector's keys (phone, last shipping address); written only when they change.
    customer_keys_refresh(customer=customer_row, address=intake.shipping_addr, actor=actor, reason="Order intake")
    now = timezone.now()
    year = timezone.localdate(now).year
    number = format_number("ORD", year, next_unique("order", year))
    order = Order(
        number=number,
        channel=channel,
        external_id=external_id,
        customer=customer_row,
        email=intake.email,
        locale=intake.locale,
        currency=intake.currency,
        prices_include_tax=intake.includes_tax,
        requires_approval=bool(intake.requires_approval),
        billing_address=intake.billing,
        shipping_address=intake.shipping_addr,
        shipping_method=intake.shipping_method,
        pickup_location=intake.pickup_location,
        shipping_price=quantize(intake.shipping_price, intake.currency),
        shipping_tax_rate=intake.shipping_rate,
        shipping_net=intake.shipping_amounts.net,
        shipping_tax=intake.shipping_amounts.tax,
        discount_total=sum((quantize(line.discount, intake.currency) for line in intake.clean_lines), ZERO),
        total_net=intake.totals.net,
        total_tax=intake.totals.tax,
        total_gross=intake.totals.gross,
        is_test=bool(intake.is_test) or customer_row.is_test,
        purchase_order_number=intake.purchase_order_number,
        placed_at=intake.placed_at or now,
        promised_at=intake.promised_at,
        risk_score=intake.risk_score,
        risk_facts=intake.risk_facts,
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
    line_rows = [
        OrderLine(
            order=order,
            line_number=index,
            sku=line.sku,
            name=line.name,
            product=intake.products.get(line.sku),
            attributes=line.attributes,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_amount=quantize(line.discount, intake.currency),
            promotion=line.promotion,
            tax_rate=line.tax_rate,
            total_net=amount.net,
            tax_amount=amount.tax,
            total_gross=amount.gross,
            promised_at=intake.promised_at,
        )
        for index, (line, amount) in enumerate(zip(intake.clean_lines, intake.amounts, strict=True), start=1)
    ]
    bulk_create_with_history(
        line_rows, OrderLine, default_user=actor, default_change_reason=reason or created_event.label
    )
    if intake.tags:
        order.tags.add(*[_tag_get_or_create(name) for name in dict.fromkeys(t.strip().lower() for t in intake.tags)])
    if intake.note:
        OrderNote.objects.create(order=order, author=actor, body=intake.note)

    events = [
        (
            created_event,
            reason,
            {
                "lines": len(line_rows),
                "total_gross": str(order.total_gross),
                "currency": intake.currency,
                "tags": list(intake.tags),
            },
        )
    ]
    changed = False
    if submit:
        _run_transition(order, "submit", actor=actor, check_permission=False)
        events.append((OrderEventType.SUBMITTED, "", {"status": order.status}))
        changed = True
    if intake.payment_amount > 0 or (intake.payment_state != "unpaid" and intake.totals.gross == 0):
        if intake.payment_state == "paid":
            order.amount_paid = intake.payment_amount
            order.paid_at = now
        else:
            order.amount_authorized = intake.payment_amount
        order.payment_method = intake.payment_method
        order.payment_reference = intake.payment_reference
        order.payment_status = derive_payment_status(order)
        events.append(
            (
                OrderEventType.PAYMENT_RECORDED,
                "",
                {
                    "amount": str(intake.payment_amount),
                    "captured": intake.payment_state == "paid",
                    "method": intake.payment_method,
                    "reference": intake.payment_reference,
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
        events.append(_hold_place(order, reason=HoldReason.UNKNOWN_PRODUCT, note=note_text, actor=actor)[1])
    if intake.risk_score is not None and intake.risk_score >= settings.OMS_FRAUD_REVIEW_SCORE:
        # Kept from preparation until someone looks: the hold opens the fraud case with the facts.
        facts_text = "; ".join(fact["fact"] for fact in intake.risk_facts) or "no facts given"
        note_text = f"Risk score {intake.risk_score} from the channel: {facts_text}"[:MAX_TEXT]
        events.append(_hold_place(order, reason=HoldReason.FRAUD_REVIEW, note=note_text, actor=actor)[1])
    if order.status == OrderStatus.CONFIRMED:
        events += _allocate_stock(
            order, actor=actor, lines=line_rows, products={p.pk: p for p in intake.products.values()}
        )
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
    # Billing debits store credit or a voucher (or refuses the order with a field error) and keeps
    # the payment as a row of its own, in this transaction.
    ORDER_PLACED.emit(order=order, payment={**intake.payment, "amount": intake.payment_amount}, actor=actor)
    _announce_confirmed(order, actor=actor)
    return order, True


def _tag_get_or_create(name: str) -> Tag:
    tag, _ = Tag.objects.get_or_create(name=name)
    return tag


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
