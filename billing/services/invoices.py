"""Invoices and credit notes: issued once, numbered without gaps, never edited.

- An invoice snapshots what it bills (lines, discounts, tax per line and per rate, seller and buyer)
  and is never updated: this module has no update service, corrections are credit notes, and
  `billing.guards` refuses any save of an issued document.
- Numbers come from `next_gapless` (a counter row locked until the issuing transaction commits): a
  rolled-back issue gives its number back, concurrent issues get consecutive numbers. The number is
  drawn last, so the counter is held only for the inserts.
- Lock order: the order, then its invoice (credit notes), then the number counter.
- Units are never invoiced twice: per order line, what all invoices bill is at most what the policy
  allows (ordered and not canceled, or shipped), read under the order lock.
- A credit note never exceeds what is left of its invoice, read under the invoice lock.
"""

import calendar
import datetime
from collections import defaultdict
from decimal import Decimal

from babel.numbers import format_decimal
from django.conf import settings
from django.db import transaction
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext

from billing.models import (
    BillingPolicy,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceTax,
    InvoiceTrigger,
    PaymentTerms,
    RefundReason,
)
from fulfillment.models import Shipment, ShipmentLine
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.money import ZERO, amount_parse, quantize, to_decimal
from oms.core.numbering import format_number, next_gapless
from oms.core.permissions import require_perm
from orders.choices import OrderStatus
from orders.events import event_record
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderLine
from orders.pricing import line_amounts, split_amount

# Order timeline entries (strings until orders.choices lists them).
EVENT_INVOICE_ISSUED = "invoice_issued"
EVENT_CREDIT_NOTE_ISSUED = "credit_note_issued"

INVOICEABLE_STATUSES = {
    OrderStatus.CONFIRMED,
    OrderStatus.IN_PREPARATION,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
}
CREDIT_NOTE_REASONS = [*RefundReason.values, "correction", "other"]
RATE_PLACES = Decimal("0.0001")
MONEY_OUTPUT = DecimalField(max_digits=14, decimal_places=4)


class InvoiceConflict(ConflictError):
    default_code = "invoice_conflict"


# --- policy and payment terms ----------------------------------------------------------------------


def billing_policy_for(order: Order) -> tuple[str, str]:
    """(trigger, payment terms) for an order: the customer's policy wins over the channel's."""
    policies = list(BillingPolicy.objects.filter(Q(customer_id=order.customer_id) | Q(channel_id=order.channel_id)))
    policy = next((p for p in policies if p.customer_id == order.customer_id), None) or next(
        (p for p in policies if p.channel_id == order.channel_id), None
    )
    if policy is not None:
        return policy.trigger, policy.payment_terms
    trigger = settings.OMS_INVOICE_DEFAULT_TRIGGER
    if trigger not in InvoiceTrigger.values:
        trigger = InvoiceTrigger.SHIPMENT
    terms = PaymentTerms.IMMEDIATE
    days = order.customer.payment_terms_days
    if order.on_payment_terms and days:
        terms = PaymentTerms.NET_15 if days <= 15 else PaymentTerms.NET_30
    return trigger, terms


def _end_of_month(day: datetime.date) -> datetime.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def invoice_due_date(*, terms: str, issued_on: datetime.date) -> datetime.date:
    """The due date of an invoice issued on `issued_on` under `terms`.

    45 days end of month: 45 days after the invoice date, then to the end of that month.
    End of month + 30: the end of the invoice's month, then 30 days.
    """
    if terms == PaymentTerms.IMMEDIATE:
        return issued_on
    if terms == PaymentTerms.NET_15:
        return issued_on + datetime.timedelta(days=15)
    if terms == PaymentTerms.NET_30:
        return issued_on + datetime.timedelta(days=30)
    if terms == PaymentTerms.NET_45_EOM:
        return _end_of_month(issued_on + datetime.timedelta(days=45))
    if terms == PaymentTerms.EOM_30:
        return _end_of_month(issued_on) + datetime.timedelta(days=30)
    raise ValidationError(
        "Unknown payment terms.", fields={"payment_terms": [f"One of: {', '.join(PaymentTerms.values)}."]}
    )


# --- parties -------------------------------------------------------------------------------------------


def seller_snapshot() -> dict:
    seller = dict(settings.OMS_SELLER)
    seller["address"] = list(seller.get("address") or [])
    return seller


def buyer_snapshot(order: Order) -> dict:
    address = order.billing_address or {}
    customer = order.customer
    city_line = " ".join(part for part in (address.get("postal_code", ""), address.get("city", "")) if part)
    return {
        "name": address.get("name") or customer.full_name or order.email,
        "company": address.get("company") or customer.company_name,
        "address": [
            line for line in (address.get("line1"), address.get("line2"), city_line, address.get("region")) if line
        ],
        "country": address.get("country", ""),
        "vat_number": address.get("vat_number", ""),
        "email": order.email,
        "customer": customer.pk,
        "purchase_order_number": order.purchase_order_number,
    }


# --- issuing ----------------------------------------------------------------------------------------


def _invoiced_by_line(order: Order) -> dict[int, dict]:
    rows = (
        InvoiceLine.objects.filter(invoice__order=order, order_line__isnull=False)
        .values("order_line_id")
        .annotate(
            quantity=Sum("quantity"), net=Sum("net"), tax=Sum("tax"), gross=Sum("gross"), discount=Sum("discount")
        )
    )
    return {row["order_line_id"]: row for row in rows}


def _part(order: Order, line: OrderLine, quantity: int, invoiced: dict | None) -> dict:
    """Amounts of `quantity` units of an order line. The part that completes the line takes what is
    left of the line's own amounts, so that a line invoiced in parts adds up to the cent."""
    done_quantity = int(invoiced["quantity"]) if invoiced else 0
    if done_quantity + quantity == line.quantity:
        done = invoiced or {"net": ZERO, "tax": ZERO, "gross": ZERO, "discount": ZERO}
        return {
            "discount": line.discount_amount - done["discount"],
            "net": line.total_net - done["net"],
            "tax": line.tax_amount - done["tax"],
            "gross": line.total_gross - done["gross"],
        }
    discount = quantize(line.discount_amount * quantity / line.quantity, order.currency)
    amounts = line_amounts(
        quantity=quantity,
        unit_price=line.unit_price,
        discount=discount,
        tax_rate=line.tax_rate,
        includes_tax=order.prices_include_tax,
        currency=order.currency,
    )
    return {"discount": discount, "net": amounts.net, "tax": amounts.tax, "gross": amounts.gross}


def _rate(value) -> Decimal:
    return Decimal(value).quantize(RATE_PLACES)


def _quantities_to_invoice(order: Order, *, lines: list[OrderLine], shipment: Shipment | None, trigger: str, invoiced):
    """{order line: units} this invoice bills."""
    by_id = {line.pk: line for line in lines}

    def left(line: OrderLine, cap: int) -> int:
        done = int(invoiced[line.pk]["quantity"]) if line.pk in invoiced else 0
        return max(cap - done, 0)

    if shipment is None:
        use_shipped = trigger == InvoiceTrigger.SHIPMENT
        wanted = {
            line: left(line, line.quantity_shipped if use_shipped else line.quantity - line.quantity_canceled)
            for line in lines
        }
    else:
        wanted = {}
        for shipment_line in ShipmentLine.objects.filter(shipment=shipment, order_line__order=order).order_by(
            "order_line__line_number"
        ):
            line = by_id[shipment_line.order_line_id]
            wanted[line] = min(shipment_line.quantity, left(line, line.quantity_shipped))
    return {line: qty for line, qty in wanted.items() if qty > 0}


@transaction.atomic
def invoice_issue(*, order: Order | int, actor, shipment: Shipment | int | None = None) -> Invoice:
    """Issue the invoice of an order (its units not invoiced yet) or of one shipped parcel.

    Per the billing policy (customer, else channel): per order, the ordered units not canceled; per
    shipment, the units the parcel shipped (and, without a parcel, all shipped units). The shipping
    fee goes on the order's first invoice. Totals are the sums of the lines, each rounded half-up.
    """
    require_perm(actor, "billing.issue_invoice", "issue invoices")
    order = order_lock(order)
    if order.status not in INVOICEABLE_STATUSES:
        raise InvoiceConflict(
            f"Cannot invoice order {order.number}: it is {order.get_status_display().lower()}.",
            code="order_not_invoiceable",
            extra={"status": order.status},
        )
    if shipment is not None:
        shipment_id = shipment.pk if isinstance(shipment, Shipment) else shipment
        shipment = Shipment.objects.filter(pk=shipment_id).first()
        if shipment is None or not ShipmentLine.objects.filter(shipment=shipment, order_line__order=order).exists():
            raise NotFoundError("No such shipment for this order.", code="shipment_not_found")
        if shipment.shipped_at is None or shipment.status == "canceled":
            raise InvoiceConflict(
                f"Shipment {shipment.number} has not shipped: it is {shipment.get_status_display().lower()}.",
                code="shipment_not_shipped",
                extra={"status": shipment.status},
            )
        if Invoice.objects.filter(order=order, shipment=shipment).exists():
            raise InvoiceConflict(f"Shipment {shipment.number} is already invoiced.", code="already_invoiced")
    trigger, terms = billing_policy_for(order)
    lines = order_lines_lock(order)
    invoiced = _invoiced_by_line(order)
    quantities = _quantities_to_invoice(order, lines=lines, shipment=shipment, trigger=trigger, invoiced=invoiced)
    first_invoice = not Invoice.objects.filter(order=order).exists()
    with_shipping = first_invoice and (order.shipping_net + order.shipping_tax) > 0
    if not quantities and not with_shipping:
        raise InvoiceConflict(f"Nothing is left to invoice on order {order.number}.", code="nothing_to_invoice")

    rows: list[InvoiceLine] = []
    for line in sorted(quantities, key=lambda candidate: candidate.line_number):
        quantity = quantities[line]
        part = _part(order, line, quantity, invoiced.get(line.pk))
        rows.append(
            InvoiceLine(
                order_line=line,
                position=len(rows) + 1,
                sku=line.sku,
                description=line.name[:255],
                quantity=Decimal(quantity),
                unit_price=line.unit_price,
                discount=part["discount"],
                tax_rate=_rate(line.tax_rate),
                net=part["net"],
                tax=part["tax"],
                gross=part["gross"],
            )
        )
    if with_shipping:
        with translation.override(order.locale):
            label = gettext("Shipping")
        if order.shipping_method:
            label = f"{label} ({order.shipping_method})"
        rows.append(
            InvoiceLine(
                position=len(rows) + 1,
                sku="",
                description=label[:255],
                quantity=Decimal(1),
                unit_price=order.shipping_price,
                tax_rate=_rate(order.shipping_tax_rate),
                net=order.shipping_net,
                tax=order.shipping_tax,
                gross=order.shipping_net + order.shipping_tax,
            )
        )
    taxes = _tax_breakdown(rows)
    now = timezone.now()
    today = timezone.localdate(now)
    invoice = Invoice(
        order=order,
        shipment=shipment,
        currency=order.currency,
        issued_at=now,
        due_at=invoice_due_date(terms=terms, issued_on=today),
        payment_terms=terms,
        seller=seller_snapshot(),
        buyer=buyer_snapshot(order),
        total_net=sum((row.net for row in rows), ZERO),
        total_tax=sum((row.tax for row in rows), ZERO),
        total_gross=sum((row.gross for row in rows), ZERO),
        locale=order.locale,
        issued_by=actor,
    )
    # Last, so that the counter row stays locked only for the inserts below.
    invoice.number = format_number("INV", today.year, next_gapless("invoice", today.year))
    invoice.save(force_insert=True)
    for row in rows:
        row.invoice = invoice
    InvoiceLine.objects.bulk_create(rows)
    InvoiceTax.objects.bulk_create([InvoiceTax(invoice=invoice, rate=rate, base=b, tax=t) for rate, b, t in taxes])
    event_record(
        order=order,
        actor=actor,
        type=EVENT_INVOICE_ISSUED,
        payload={
            "invoice": invoice.number,
            "shipment": shipment.number if shipment else None,
            "total_gross": str(quantize(invoice.total_gross, invoice.currency)),
            "due_at": invoice.due_at.isoformat(),
        },
    )
    return invoice


def _tax_breakdown(rows) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(rate, base, tax) per rate: sums of the lines' own rounded amounts, so the breakdown adds up."""
    base: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    tax: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        base[row.tax_rate] += row.net
        tax[row.tax_rate] += row.tax
    return [(rate, base[rate], tax[rate]) for rate in sorted(base)]


def invoice_for_policy(*, order: Order | int, actor, shipment: Shipment | int | None = None) -> Invoice | None:
    """What the automatic invoicing calls after a confirmation or a dispatch: issues the invoice the
    policy asks for, once; None when the policy wants another trigger or nothing is left to bill."""
    order_id = order.pk if isinstance(order, Order) else order
    order = Order.objects.select_related("customer", "channel").get(pk=order_id)
    trigger, _terms = billing_policy_for(order)
    if shipment is None and trigger != InvoiceTrigger.ORDER:
        return None
    if shipment is not None and trigger != InvoiceTrigger.SHIPMENT:
        return None
    if shipment is None and Invoice.objects.filter(order=order).exists():
        return None
    try:
        return invoice_issue(order=order, actor=actor, shipment=shipment)
    except InvoiceConflict:
        return None


# --- credit notes -------------------------------------------------------------------------------------


def _credited_by_line(invoice: Invoice) -> dict[int, dict]:
    rows = (
        CreditNoteLine.objects.filter(credit_note__invoice=invoice, invoice_line__isnull=False)
        .values("invoice_line_id")
        .annotate(quantity=Sum("quantity"), net=Sum("net"), tax=Sum("tax"), gross=Sum("gross"))
    )
    return {row["invoice_line_id"]: row for row in rows}


def invoice_credited(invoice: Invoice) -> Decimal:
    return invoice.credit_notes.aggregate(total=Sum("total_gross"))["total"] or ZERO


def invoice_remaining(invoice: Invoice) -> Decimal:
    """What credit notes may still take from the invoice (gross)."""
    return invoice.total_gross - invoice_credited(invoice)


def _quantity(value, field: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError("The quantities are not valid.", fields={field: ["A positive quantity is required."]})
    try:
        number = to_decimal(value, field=field)
    except ValidationError:
        raise ValidationError(
            "The quantities are not valid.", fields={field: ["A valid number is required."]}
        ) from None
    if number <= 0 or number != number.quantize(Decimal("0.001")):
        raise ValidationError("The quantities are not valid.", fields={field: ["A positive quantity is required."]})
    return number


def _line_credit_rows(invoice: Invoice, wanted: dict[InvoiceLine, Decimal], credited) -> list[CreditNoteLine]:
    include_tax = invoice.order.prices_include_tax
    rows = []
    for line, quantity in wanted.items():
        done = credited.get(line.pk)
        done_quantity = done["quantity"] if done else ZERO
        if done_quantity + quantity == line.quantity:
            done = done or {"net": ZERO, "tax": ZERO, "gross": ZERO}
            net, tax, gross = line.net - done["net"], line.tax - done["tax"], line.gross - done["gross"]
        else:
            share = (line.gross if include_tax else line.net) * quantity / line.quantity
            amounts = split_amount(
                amount=share, tax_rate=line.tax_rate, includes_tax=include_tax, currency=invoice.currency
            )
            net, tax, gross = amounts.net, amounts.tax, amounts.gross
        rows.append(
            CreditNoteLine(
                invoice_line=line,
                position=len(rows) + 1,
                sku=line.sku,
                description=line.description,
                quantity=quantity,
                unit_price=line.unit_price,
                tax_rate=line.tax_rate,
                net=net,
                tax=tax,
                gross=gross,
            )
        )
    return rows


def _amount_credit_rows(invoice: Invoice, amount: Decimal, description: str) -> list[CreditNoteLine]:
    """`amount` (gross) spread over the invoice's tax rates pro rata of their gross; the last rate
    takes the rounding remainder, so the lines add up to the amount exactly."""
    taxes = list(invoice.taxes.order_by("rate"))
    weights = [(tax.rate, tax.base + tax.tax) for tax in taxes if tax.base + tax.tax > 0]
    total = sum((weight for _rate_value, weight in weights), ZERO)
    rows = []
    left = amount
    for index, (rate, weight) in enumerate(weights):
        share = left if index == len(weights) - 1 else quantize(amount * weight / total, invoice.currency)
        left -= share
        if share <= 0:
            continue
        amounts = split_amount(amount=share, tax_rate=rate, includes_tax=True, currency=invoice.currency)
        rows.append(
            CreditNoteLine(
                position=len(rows) + 1,
                sku="",
                description=(
                    f"{description} ({format_decimal(rate * 100, locale=invoice.locale)} %)"[:255]
                    if len(weights) > 1
                    else description[:255]
                ),
                quantity=Decimal(1),
                unit_price=share,
                tax_rate=rate,
                net=amounts.net,
                tax=amounts.tax,
                gross=amounts.gross,
            )
        )
    return rows


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice | int | str,
    actor,
    reason: str,
    lines: dict | None = None,
    amount=None,
    note: str = "",
) -> CreditNote:
    """Credit all that is left of an invoice (no lines, no amount), some of its lines
    ({invoice line id: quantity}), or an amount (gross; a goodwill gesture or a compensation, spread
    over the invoice's tax rates pro rata). Never above what is left of the invoice, also when two
    are issued at once (the invoice row is locked while what is left is read)."""
    require_perm(actor, "billing.issue_creditnote", "issue credit notes")
    if reason not in CREDIT_NOTE_REASONS:
        raise ValidationError(
            "Unknown reason.", code="invalid_reason", fields={"reason": [f"One of: {', '.join(CREDIT_NOTE_REASONS)}."]}
        )
    if lines is not None and amount not in (None, ""):
        raise ValidationError(
            "Credit lines or an amount, not both.", code="lines_or_amount", fields={"amount": ["Lines are given."]}
        )
    if not isinstance(note, str) or len(note) > 5000:
        raise ValidationError("The note is too long.", fields={"note": ["At most 5000 characters."]})
    invoice_id = _invoice_id(invoice)
    order = order_lock(Invoice.objects.filter(pk=invoice_id).values_list("order_id", flat=True).get())
    invoice = Invoice.objects.select_for_update().select_related("order").get(pk=invoice_id)
    remaining = invoice_remaining(invoice)
    if remaining <= 0:
        raise InvoiceConflict(f"Invoice {invoice.number} is fully credited.", code="invoice_fully_credited")
    credited = _credited_by_line(invoice)
    invoice_lines = {line.pk: line for line in invoice.lines.all()}
    with translation.override(invoice.locale):
        label = str(dict(RefundReason.choices).get(reason, gettext("Credit")))

    if lines is not None:
        if not isinstance(lines, dict) or not lines:
            raise ValidationError(
                "Name the lines to credit.", code="nothing_to_credit", fields={"lines": ["Required."]}
            )
        wanted: dict[InvoiceLine, Decimal] = {}
        errors: dict[str, list[str]] = {}
        for raw_id, raw_quantity in lines.items():
            key = f"lines.{raw_id}"
            try:
                line = invoice_lines.get(int(raw_id))
            except (TypeError, ValueError):
                line = None
            if line is None:
                errors[key] = ["Not a line of this invoice."]
                continue
            try:
                quantity = _quantity(raw_quantity, key)
            except ValidationError as exc:
                errors.update(exc.extra.get("fields", {}))
                continue
            left = line.quantity - (credited[line.pk]["quantity"] if line.pk in credited else ZERO)
            if quantity > left:
                errors[key] = [f"At most {left.normalize():f} left to credit on line {line.position} ({line.sku})."]
                continue
            wanted[line] = quantity
        if errors:
            raise ValidationError("The quantities are not valid.", code="invalid_quantities", fields=errors)
        rows = _line_credit_rows(invoice, wanted, credited)
    elif amount not in (None, ""):
        if isinstance(amount, bool):
            raise ValidationError("The amount is not valid.", fields={"amount": ["A valid number is required."]})
        try:
            value = amount_parse(amount, currency=invoice.currency, field="amount", minimum=None)
        except ValidationError as exc:
            raise ValidationError("The amount is not valid.", fields=exc.extra["fields"]) from None
        if value <= 0:
            raise ValidationError("The amount is not valid.", fields={"amount": ["Must be positive."]})
        if value > remaining:
            raise _exceeds(invoice, remaining)
        rows = _amount_credit_rows(invoice, value, label)
    else:
        by_amount = CreditNoteLine.objects.filter(credit_note__invoice=invoice, invoice_line__isnull=True).exists()
        if by_amount:
            rows = _amount_credit_rows(invoice, remaining, label)
        else:
            left = {
                line: line.quantity - (credited[line.pk]["quantity"] if line.pk in credited else ZERO)
                for line in invoice_lines.values()
            }
            rows = _line_credit_rows(invoice, {line: qty for line, qty in left.items() if qty > 0}, credited)

    total_gross = sum((row.gross for row in rows), ZERO)
    if total_gross <= 0:
        raise InvoiceConflict("Nothing to credit.", code="nothing_to_credit")
    if total_gross > remaining:
        raise _exceeds(invoice, remaining)
    now = timezone.now()
    credit_note = CreditNote(
        invoice=invoice,
        order=order,
        currency=invoice.currency,
        reason=reason,
        note=note,
        issued_at=now,
        seller=seller_snapshot(),
        buyer=invoice.buyer,
        total_net=sum((row.net for row in rows), ZERO),
        total_tax=sum((row.tax for row in rows), ZERO),
        total_gross=total_gross,
        locale=invoice.locale,
        issued_by=actor,
    )
    year = timezone.localdate(now).year
    credit_note.number = format_number("CRN", year, next_gapless("credit_note", year))
    credit_note.save(force_insert=True)
    for row in rows:
        row.credit_note = credit_note
    CreditNoteLine.objects.bulk_create(rows)
    event_record(
        order=order,
        actor=actor,
        type=EVENT_CREDIT_NOTE_ISSUED,
        reason=note,
        payload={
            "credit_note": credit_note.number,
            "invoice": invoice.number,
            "reason": reason,
            "total_gross": str(quantize(total_gross, invoice.currency)),
        },
    )
    return credit_note


def _exceeds(invoice: Invoice, remaining: Decimal) -> ValidationError:
    return ValidationError(
        f"Only {remaining} {invoice.currency} is left to credit on invoice {invoice.number}.",
        code="credit_exceeds_invoice",
        fields={"amount": [f"At most {remaining} {invoice.currency}."]},
        extra={"remaining": str(remaining)},
    )


def _invoice_id(invoice) -> int:
    if isinstance(invoice, Invoice):
        return invoice.pk
    if isinstance(invoice, str) and not invoice.isdigit():
        pk = Invoice.objects.filter(number=invoice).values_list("pk", flat=True).first()
    else:
        pk = Invoice.objects.filter(pk=int(invoice)).values_list("pk", flat=True).first()
    if pk is None:
        raise NotFoundError("Invoice not found.", code="invoice_not_found")
    return pk


# --- reads ---------------------------------------------------------------------------------------------


def _paid_net_expression():
    return F("order__amount_paid") - F("order__amount_refunded")


def invoice_list(
    *,
    series: str | None = None,
    period_start: datetime.date | None = None,
    period_end: datetime.date | None = None,
    channel=None,
    order: Order | None = None,
    overdue: bool | None = None,
    today: datetime.date | None = None,
) -> QuerySet[Invoice]:
    """Invoices newest first, with `credited` (gross of their credit notes) and, with `overdue`,
    only those overdue (True) or not (False): see invoice_is_overdue."""
    credited = (
        CreditNote.objects.filter(invoice=OuterRef("pk"))
        .order_by()
        .values("invoice")
        .annotate(total=Sum("total_gross"))
        .values("total")
    )
    invoices = Invoice.objects.select_related("order", "order__channel", "shipment", "issued_by").annotate(
        credited=Coalesce(Subquery(credited, output_field=MONEY_OUTPUT), Value(ZERO), output_field=MONEY_OUTPUT)
    )
    if series:
        invoices = invoices.filter(series=series)
    if period_start:
        invoices = invoices.filter(issued_at__date__gte=period_start)
    if period_end:
        invoices = invoices.filter(issued_at__date__lte=period_end)
    if channel is not None:
        invoices = invoices.filter(order__channel=channel)
    if order is not None:
        invoices = invoices.filter(order=order)
    if overdue is not None:
        overdue_ids = _overdue_ids(today=today or timezone.localdate())
        invoices = invoices.filter(pk__in=overdue_ids) if overdue else invoices.exclude(pk__in=overdue_ids)
    return invoices


def _overdue_ids(*, today: datetime.date):
    """Ids of overdue invoices. Payments go to an order's invoices oldest first: an invoice is
    overdue when its due date has passed and what the order paid (net of refunds) does not cover it
    and every older invoice of the order (each net of its credit notes)."""
    credited = (
        CreditNote.objects.filter(invoice=OuterRef("pk"))
        .order_by()
        .values("invoice")
        .annotate(total=Sum("total_gross"))
        .values("total")
    )
    owed = (
        Invoice.objects.annotate(
            credited=Coalesce(Subquery(credited, output_field=MONEY_OUTPUT), Value(ZERO), output_field=MONEY_OUTPUT)
        )
        .annotate(
            owed_to_date=Window(
                Sum(F("total_gross") - F("credited"), output_field=MONEY_OUTPUT),
                partition_by=[F("order_id")],
                order_by=[F("issued_at").asc(), F("id").asc()],
            ),
            paid=_paid_net_expression(),
        )
        .filter(due_at__lt=today, owed_to_date__gt=F("paid"))
    )
    return list(owed.values_list("pk", flat=True))


def invoice_is_overdue(invoice: Invoice, *, today: datetime.date | None = None) -> bool:
    """The due date has passed and the order has not paid this invoice (payments settle an
    order's invoices oldest first, each net of its credit notes)."""
    today = today or timezone.localdate()
    if invoice.due_at >= today:
        return False
    owed = ZERO
    for earlier in Invoice.objects.filter(order_id=invoice.order_id).order_by("issued_at", "id"):
        owed += earlier.total_gross - invoice_credited(earlier)
        if earlier.pk == invoice.pk:
            break
    order = Order.objects.only("amount_paid", "amount_refunded").get(pk=invoice.order_id)
    return owed > order.amount_paid - order.amount_refunded


def credit_note_list(*, period_start=None, period_end=None, channel=None, order=None) -> QuerySet[CreditNote]:
    notes = CreditNote.objects.select_related("invoice", "order", "order__channel", "issued_by")
    if period_start:
        notes = notes.filter(issued_at__date__gte=period_start)
    if period_end:
        notes = notes.filter(issued_at__date__lte=period_end)
    if channel is not None:
        notes = notes.filter(order__channel=channel)
    if order is not None:
        notes = notes.filter(order=order)
    return notes
