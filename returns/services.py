"""Every write to a return goes through here: request, approve (label), receive, inspect, close.

Lock order, as everywhere: order → order lines → return request → return lines → stock (by product,
location). Each service checks the actor's permission first, runs the FSM transition, saves with the
history user and reason, and records the step on the order's timeline (`return_requested`,
`return_approved`, …), which is what notifications, automation rules and integrations hear.
"""

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Sum, prefetch_related_objects
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from billing.models import InvoiceLine
from billing.services import invoices, refunds
from fulfillment.carriers.base import Parcel
from fulfillment.carriers.registry import get_carrier
from fulfillment.models import ShipmentLine
from inventory import services as inventory
from inventory.models import Location, LocationKind, Product
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from oms.core.fsm import TransitionRefused, run_transition
from oms.core.history import stamp
from oms.core.money import ZERO, quantize
from oms.core.numbering import format_number, next_unique
from oms.core.permissions import require_perm
from orders import services as orders
from orders.choices import OrderEventType
from orders.events import event_record
from orders.locks import order_lines_lock, order_lock
from orders.models import Order, OrderHold, OrderLine
from returns.choices import OPEN_OR_DONE, ReturnMethod, ReturnReason, ReturnStatus
from returns.models import ReturnLine, ReturnRequest

logger = logging.getLogger("returns")

MAX_TEXT = 5_000
MAX_LINES = 200


class ReturnTransitionRefused(TransitionRefused):
    pass


# --- building blocks ---------------------------------------------------------------------------


def _resolve(request: ReturnRequest | int | str) -> int:
    if isinstance(request, ReturnRequest):
        return request.pk
    if isinstance(request, str) and not request.isdigit():
        found = ReturnRequest.objects.filter(number=request).values_list("pk", flat=True).first()
    else:
        found = ReturnRequest.objects.filter(pk=int(request)).values_list("pk", flat=True).first()
    if found is None:
        raise NotFoundError(_("Return not found."), code="return_not_found")
    return found


def _lock_request(request: ReturnRequest | int | str) -> ReturnRequest:
    """The order first, then the return (the fixed lock order)."""
    pk = _resolve(request)
    order_id = ReturnRequest.objects.filter(pk=pk).values_list("order_id", flat=True).get()
    order_lock(order_id)
    return ReturnRequest.objects.select_for_update(of=("self",)).select_related("order", "restock_location").get(pk=pk)


def _run(request: ReturnRequest, name: str, *, actor, **kwargs) -> str:
    return run_transition(
        request, name, actor=actor, noun=str(_("return")), messages={}, refused=ReturnTransitionRefused, **kwargs
    )


def _save(request: ReturnRequest, *, actor, reason: str, fields: list[str]) -> None:
    stamp(request, actor=actor, reason=reason)
    request.save(update_fields=list(dict.fromkeys(fields)))


def _order_event(request: ReturnRequest, event_type: str, *, actor, reason: str = "", lines=None, **extra) -> None:
    payload = {"return": request.number, "status": request.status, **extra}
    if lines is not None:
        payload["items"] = [
            {"sku": line.order_line.sku, "name": line.order_line.name, "quantity": line.quantity} for line in lines
        ]
    event_record(order=request.order, actor=actor, type=event_type, reason=reason, payload=payload)


def _text(errors: dict, key: str, value, *, max_length: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[key] = [_("Must be text.")]
        return ""
    if len(value) > max_length:
        errors[key] = [_("At most %(n)d characters.") % {"n": max_length}]
        return ""
    return value.strip()


# --- rules: what may be returned -----------------------------------------------------------------


def ineligibility_reason(product: Product | None) -> str:
    """Why a product cannot be returned (the legal exceptions first), or "" when it can."""
    if product is None:
        return ""
    if product.is_custom_made:
        return _("Made to the customer's specifications: not returnable.")
    if product.is_perishable:
        return _("Perishable goods: not returnable.")
    if product.is_hygiene_sealed:
        return _("Sealed for health or hygiene reasons: not returnable once unsealed.")
    if not product.is_returnable:
        return _("This product is not returnable.")
    return ""


def line_delivered_at(line: OrderLine, order: Order) -> datetime.datetime | None:
    """When the line's parcel was delivered (the last of its parcels), else the order's delivery."""
    delivered = ShipmentLine.objects.filter(order_line=line, shipment__delivered_at__isnull=False).aggregate(
        at=Max("shipment__delivered_at")
    )["at"]
    return delivered or order.delivered_at


def window_closes_at(delivered_at: datetime.datetime | None) -> datetime.datetime | None:
    if delivered_at is None:
        return None  # not delivered yet: the window has not started
    return delivered_at + datetime.timedelta(days=settings.OMS_RETURN_WINDOW_DAYS)


def quantities_returned(line_ids) -> dict[int, int]:
    """Units of each order line already in a return that is not refused or canceled."""
    rows = (
        ReturnLine.objects.filter(order_line_id__in=list(line_ids), request__status__in=OPEN_OR_DONE)
        .values("order_line_id")
        .annotate(total=Sum("quantity"))
    )
    return {row["order_line_id"]: row["total"] for row in rows}


@dataclass
class ReturnableLine:
    line: OrderLine
    shipped: int
    returned: int
    returnable: int
    delivered_at: datetime.datetime | None
    window_closes_at: datetime.datetime | None
    refusal: str  # why it cannot be returned now; "" when it can


def returnable_lines(order: Order, *, now=None) -> list[ReturnableLine]:
    """Each line of the order with what may still be returned of it and, if nothing, why."""
    now = now or timezone.now()
    lines = list(order.lines.select_related("product").order_by("line_number"))
    returned = quantities_returned([line.pk for line in lines])
    result = []
    for line in lines:
        delivered_at = line_delivered_at(line, order) if line.quantity_shipped else None
        closes = window_closes_at(delivered_at)
        left = line.quantity_shipped - returned.get(line.pk, 0)
        refusal = ""
        if line.quantity_shipped == 0:
            refusal = _("Not shipped yet.")
        elif left <= 0:
            refusal = _("Every shipped unit is already being returned.")
        elif ineligibility_reason(line.product):
            refusal = ineligibility_reason(line.product)
        elif closes is not None and now > closes:
            refusal = _window_message(delivered_at, closes)
        result.append(
            ReturnableLine(
                line=line,
                shipped=line.quantity_shipped,
                returned=returned.get(line.pk, 0),
                returnable=max(left, 0),
                delivered_at=delivered_at,
                window_closes_at=closes,
                refusal=refusal,
            )
        )
    return result


def _window_message(delivered_at, closes) -> str:
    return _("The %(days)d-day withdrawal window closed on %(closed)s (delivered on %(delivered)s).") % {
        "days": settings.OMS_RETURN_WINDOW_DAYS,
        "closed": formats.date_format(timezone.localtime(closes), "Y-m-d"),
        "delivered": formats.date_format(timezone.localtime(delivered_at), "Y-m-d"),
    }


def _default_restock_location(lines: list[OrderLine]) -> Location | None:
    """Where the goods left from (the first line's parcel), else the preferred active warehouse."""
    shipped_from = (
        ShipmentLine.objects.filter(order_line__in=lines, shipment__shipped_at__isnull=False)
        .order_by("shipment__shipped_at", "pk")
        .values_list("shipment__location_id", flat=True)
        .first()
    )
    if shipped_from is not None:
        return Location.objects.get(pk=shipped_from)
    return Location.objects.filter(is_active=True, kind=LocationKind.WAREHOUSE).order_by("priority", "code").first()


def _location(value, errors: dict, key: str) -> Location | None:
    if value is None or value == "":
        return None
    if isinstance(value, Location):
        return value
    found = Location.objects.filter(pk=value).first() if str(value).isdigit() else None
    found = found or Location.objects.filter(code=str(value)).first()
    if found is None or not found.is_active:
        errors[key] = [_("Unknown or inactive location.")]
    return found


def _product(value) -> Product | None:
    if isinstance(value, Product):
        return value
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return Product.objects.filter(pk=int(value)).first()
    return Product.objects.filter(sku=str(value)).first()


# --- request ---------------------------------------------------------------------------------------


@transaction.atomic
def return_request(
    *,
    order: Order | int,
    actor,
    lines: list[dict],
    reason: str,
    method: str = ReturnMethod.REFUND,
    customer_comment: str = "",
    restock_location=None,
) -> ReturnRequest:
    """Open a return (RMA) for shipped units.

    `lines`: [{"line": order line (or id), "quantity": n, "reason_code": …, "exchange_for": product,
    id or SKU (exchanges)}]. Refused per line, as field errors `lines.<i>.<field>`: units not shipped
    or already returned, the legal withdrawal window (from the delivery of the line's parcel) and
    the product's eligibility (custom-made, perishable, hygiene-sealed, not returnable).
    """
    require_perm(
        actor,
        "returns.add_returnrequest",
        "request returns",
        message=_("You do not have permission to %(action)s.") % {"action": _("request returns")},
    )
    order = order_lock(order)
    errors: dict[str, list[str]] = {}
    if reason not in ReturnReason.values:
        errors["reason"] = [_("One of: %(values)s.") % {"values": ", ".join(ReturnReason.values)}]
    if method not in ReturnMethod.values:
        errors["method"] = [_("One of: %(values)s.") % {"values": ", ".join(ReturnMethod.values)}]
    comment = _text(errors, "customer_comment", customer_comment)
    location = _location(restock_location, errors, "restock_location")
    if not isinstance(lines, list) or not lines:
        errors["lines"] = [_("At least one line is required.")]
        lines = []
    elif len(lines) > MAX_LINES:
        errors["lines"] = [_("At most %(n)d lines.") % {"n": MAX_LINES}]
        lines = []
    order_lines = {line.pk: line for line in order_lines_lock(order)}
    prefetch_related_objects(list(order_lines.values()), "product")
    returned = quantities_returned(order_lines)
    now = timezone.now()
    clean: list[tuple[OrderLine, int, str, Product | None]] = []
    seen: set[int] = set()
    for index, raw in enumerate(lines):
        key = f"lines.{index}"
        if not isinstance(raw, dict):
            errors[key] = [_("Expected an object.")]
            continue
        raw_line = raw.get("line")
        line_id = raw_line.pk if isinstance(raw_line, OrderLine) else raw_line
        line = order_lines.get(line_id) if isinstance(line_id, int) and not isinstance(line_id, bool) else None
        if line is None:
            errors[f"{key}.line"] = [_("Not a line of order %(order)s.") % {"order": order.number}]
            continue
        if line.pk in seen:
            errors[f"{key}.line"] = [_("This line is already in the request.")]
            continue
        seen.add(line.pk)
        quantity = raw.get("quantity")
        line_code = raw.get("reason_code") or reason
        if line_code not in ReturnReason.values:
            errors[f"{key}.reason_code"] = [_("One of: %(values)s.") % {"values": ", ".join(ReturnReason.values)}]
        refusal = ineligibility_reason(line.product)
        if refusal:
            errors[f"{key}.line"] = [f"{line.sku}: {refusal}"]
            continue
        left = line.quantity_shipped - returned.get(line.pk, 0)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            errors[f"{key}.quantity"] = [_("A whole number of at least 1 is required.")]
            continue
        if quantity > left:
            errors[f"{key}.quantity"] = [
                _("At most %(n)d for line %(line)d (%(sku)s): %(shipped)d shipped, %(returned)d already returned.")
                % {
                    "n": max(left, 0),
                    "line": line.line_number,
                    "sku": line.sku,
                    "shipped": line.quantity_shipped,
                    "returned": returned.get(line.pk, 0),
                }
            ]
            continue
        delivered_at = line_delivered_at(line, order)
        closes = window_closes_at(delivered_at)
        if closes is not None and now > closes:
            errors[f"{key}.line"] = [f"{line.sku}: {_window_message(delivered_at, closes)}"]
            continue
        exchange_for = None
        if method == ReturnMethod.EXCHANGE:
            exchange_for = _product(raw.get("exchange_for"))
            if exchange_for is None or not exchange_for.is_active:
                errors[f"{key}.exchange_for"] = [_("An active product to exchange for is required.")]
                continue
        elif raw.get("exchange_for"):
            errors[f"{key}.exchange_for"] = [_("Only for an exchange.")]
            continue
        clean.append((line, quantity, line_code, exchange_for))
    if errors:
        raise ValidationError(_("The return cannot be requested."), code="invalid_return", fields=errors)
    location = location or _default_restock_location([line for line, *_rest in clean])
    if location is None:
        raise ValidationError(
            _("No location to return the goods to."),
            code="no_restock_location",
            fields={"restock_location": [_("Required: no active warehouse was found.")]},
        )
    year = timezone.localdate().year
    request = ReturnRequest(
        number=format_number("RMA", year, next_unique("rma", year)),
        order=order,
        customer=order.customer,
        reason=reason,
        customer_comment=comment,
        method=method,
        restock_location=location,
        requested_by=actor,
    )
    stamp(request, actor=actor, reason=_("Return requested"))
    request.save()
    for line, quantity, line_code, exchange_for in clean:
        return_line = ReturnLine(
            request=request, order_line=line, quantity=quantity, reason_code=line_code, exchange_for=exchange_for
        )
        if exchange_for is not None:
            note = _("exchange: waiting for return %(number)s") % {"number": request.number}
            new_line, hold = orders.order_add_exchange_line(
                order=order,
                actor=actor,
                product=exchange_for,
                quantity=quantity,
                unit_price=line.unit_price,
                replaces_line=line,
                reason=note,
            )
            return_line.exchange_line = new_line
            request.exchange_hold = hold
        stamp(return_line, actor=actor, reason=_("Return requested"))
        return_line.save()
    if request.exchange_hold_id:
        _save(request, actor=actor, reason=_("Exchange held"), fields=["exchange_hold"])
    _order_event(
        request,
        OrderEventType.RETURN_REQUESTED,
        actor=actor,
        lines=list(request.lines.select_related("order_line")),
        exchange=bool(request.exchange_hold_id),
    )
    logger.info("return requested", extra={"rma": request.number, "lines": len(clean)})
    return request


# --- label ----------------------------------------------------------------------------------------


def _location_address(location: Location) -> dict:
    return {
        "name": location.name,
        "line1": location.name,
        "postal_code": "-",
        "city": location.city or location.name,
        "country": str(location.country),
    }


def _unit_gross(line: OrderLine, quantity: int, currency: str):
    """What `quantity` units of the line cost the customer (discount included)."""
    return quantize(line.total_gross * quantity / line.quantity, currency)


def _return_parcel(request: ReturnRequest, lines: list[ReturnLine]) -> Parcel:
    order = request.order
    location = request.restock_location
    weight = sum(
        (line.order_line.product.weight_grams if line.order_line.product else 0) * line.quantity for line in lines
    )
    return Parcel(
        shipment_reference=request.number,
        order_number=order.number,
        weight_grams=max(int(weight), 1),
        declared_value=sum(
            (_unit_gross(line.order_line, line.quantity, order.currency) for line in lines),
            start=ZERO,
        ),
        currency=order.currency,
        insurance=False,
        ship_from=order.shipping_address or order.billing_address,
        ship_to=_location_address(location),
        lines=[
            (
                line.order_line.sku,
                line.order_line.name,
                line.quantity,
                (line.order_line.product.hs_code if line.order_line.product else "") or "",
                str(line.order_line.product.country_of_origin if line.order_line.product else "")
                or str(location.country),
                _unit_gross(line.order_line, 1, order.currency),
            )
            for line in lines
        ],
    )


def _tracking_counter():
    # The fulfillment labels' sequence: return and outbound tracking numbers never collide.
    year = timezone.localdate().year
    return lambda: next_unique("tracking", year) + (year % 100) * 10**8


@transaction.atomic
def return_approve(*, request, actor, carrier: str = "", service: str = "") -> ReturnRequest:
    """Accept the request and issue the return label (from the customer to the restock location)."""
    request = _lock_request(request)
    _run(request, "approve", actor=actor)
    lines = list(request.lines.select_related("order_line__product").order_by("pk"))
    adapter = get_carrier(carrier or settings.OMS_DEFAULT_CARRIER)
    if getattr(adapter, "code", "") == "sandbox":
        adapter = type(adapter)(counter=_tracking_counter())
    label = adapter.create_label(_return_parcel(request, lines), service or settings.OMS_DEFAULT_CARRIER_SERVICE)
    request.carrier = label.carrier_code
    request.tracking_number = label.tracking_number
    request.tracking_url = label.tracking_url
    request.label.save(f"{request.number}-{label.tracking_number}.pdf", ContentFile(label.pdf), save=False)
    _save(
        request,
        actor=actor,
        reason=_("Approved, label %(tracking)s") % {"tracking": label.tracking_number},
        fields=["status", "approved_at", "carrier", "tracking_number", "tracking_url", "label"],
    )
    _order_event(
        request,
        OrderEventType.RETURN_APPROVED,
        actor=actor,
        lines=lines,
        tracking_number=request.tracking_number,
        tracking_url=request.tracking_url,
    )
    return request


# --- receipt and inspection ------------------------------------------------------------------------


@transaction.atomic
def return_receive(*, request, actor, note: str = "") -> ReturnRequest:
    request = _lock_request(request)
    _run(request, "receive", actor=actor)
    _save(request, actor=actor, reason=note or _("Parcel received"), fields=["status", "received_at"])
    _order_event(request, OrderEventType.RETURN_RECEIVED, actor=actor, reason=note)
    return request


def _clean_results(lines: list[ReturnLine], results) -> dict[int, dict[str, int]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(results, dict):
        raise ValidationError(
            _("The inspection results are not valid."),
            code="invalid_results",
            fields={"results": [_("Expected an object keyed by return line id.")]},
        )
    by_id = {line.pk: line for line in lines}
    clean: dict[int, dict[str, int]] = {}
    for raw_id, counts in results.items():
        try:
            line_id = int(raw_id)
        except (TypeError, ValueError):
            line_id = None
        if line_id not in by_id:
            errors[f"results.{raw_id}"] = [_("Not a line of this return.")]
            continue
        if not isinstance(counts, dict):
            errors[f"results.{raw_id}"] = [_("Expected an object.")]
            continue
        unknown = set(counts) - {"resellable", "damaged", "missing"}
        for name in sorted(unknown):
            errors[f"results.{raw_id}.{name}"] = [_("Unknown field.")]
        values = {}
        for name in ("resellable", "damaged", "missing"):
            value = counts.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors[f"results.{raw_id}.{name}"] = [_("A whole number of at least 0 is required.")]
            values[name] = value
        if not any(key.startswith(f"results.{raw_id}") for key in errors):
            line = by_id[line_id]
            if sum(values.values()) != line.quantity:
                errors[f"results.{raw_id}"] = [
                    _("Resellable, damaged and missing must add up to the %(n)d units returned.") % {"n": line.quantity}
                ]
            else:
                clean[line_id] = values
    for line in lines:
        if line.pk not in clean and not any(key.startswith(f"results.{line.pk}") for key in errors):
            errors[f"results.{line.pk}"] = [_("Every returned line must be inspected.")]
    if errors:
        raise ValidationError(_("The inspection results are not valid."), code="invalid_results", fields=errors)
    return clean


@transaction.atomic
def return_inspect(*, request, actor, results: dict, location=None, note: str = "") -> ReturnRequest:
    """Record per line how many units are resellable, damaged or missing.

    Only resellable units are restocked (the stock ledger, to `location`, by default the request's
    restock location), credited and refunded; damaged and missing units are not. An exchange's hold
    is released once all its returned units are resellable.
    """
    request = _lock_request(request)
    _run(request, "inspect", actor=actor)
    errors: dict[str, list[str]] = {}
    target = _location(location, errors, "location") or request.restock_location
    if errors:
        raise ValidationError(_("The inspection results are not valid."), code="invalid_results", fields=errors)
    lines = list(
        ReturnLine.objects.select_for_update(of=("self",))
        .filter(request=request)
        .select_related("order_line__product")
        .order_by("pk")
    )
    clean = _clean_results(lines, results)
    now = timezone.now()
    for line in lines:
        counts = clean[line.pk]
        line.quantity_resellable = counts["resellable"]
        line.quantity_damaged = counts["damaged"]
        line.quantity_missing = counts["missing"]
        line.inspected_at = now
    # Stock rows in the fixed order (product, location): one location here, so by product.
    restock = sorted(
        (line for line in lines if line.quantity_resellable and line.order_line.product_id),
        key=lambda line: (line.order_line.product_id, line.pk),
    )
    if not request.order.is_test:
        for line in restock:
            inventory.stock_return(
                product=line.order_line.product,
                location=target,
                quantity=line.quantity_resellable,
                actor=actor,
                order_id=request.order_id,
                order_line_id=line.order_line_id,
                reference=request.number,
            )
            line.quantity_restocked = line.quantity_resellable
    bulk_update_with_history(
        lines,
        ReturnLine,
        ["quantity_resellable", "quantity_damaged", "quantity_missing", "quantity_restocked", "inspected_at"],
        default_user=actor,
        default_change_reason=note or _("Inspected"),
    )
    # Exchanged units are paid for by the new line: only the others are credited and refunded.
    accepted = [line for line in lines if line.quantity_resellable and line.exchange_line_id is None]
    settlement = _credit_and_refund(request, accepted, actor)
    if settlement:
        request.settlement = settlement
    _save(
        request,
        actor=actor,
        reason=note or _("Inspected at %(location)s") % {"location": target.code},
        fields=["status", "inspected_at", "settlement"],
    )
    _release_exchange_hold(request, lines, actor=actor)
    _order_event(
        request,
        OrderEventType.RETURN_INSPECTED,
        actor=actor,
        reason=note,
        resellable=sum(line.quantity_resellable for line in lines),
        damaged=sum(line.quantity_damaged for line in lines),
        missing=sum(line.quantity_missing for line in lines),
        settlement=request.settlement or {},
    )
    return request


def _release_exchange_hold(request: ReturnRequest, lines: list[ReturnLine], *, actor) -> None:
    exchanged = [line for line in lines if line.exchange_line_id]
    if not exchanged or request.exchange_hold_id is None:
        return
    if any(line.quantity_resellable < line.quantity for line in exchanged):
        return  # damaged or missing units: support decides about the exchange, the hold stays
    hold = OrderHold.objects.get(pk=request.exchange_hold_id)
    if hold.released_at is not None:
        return
    others = (
        ReturnRequest.objects.filter(
            exchange_hold=hold,
            status__in=[ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED],
        )
        .exclude(pk=request.pk)
        .exists()
    )
    if others:
        return  # another exchange on this order still waits for its goods
    # The inspection decided it; releasing is the system's follow-up, not a warehouse permission.
    orders.order_release_hold(
        hold=hold,
        actor=get_system_user(),
        note=_("exchange: return %(number)s received and inspected as resellable by %(user)s")
        % {"number": request.number, "user": actor.get_username()},
    )


def _credit_and_refund(return_request: ReturnRequest, accepted_lines: list[ReturnLine], actor) -> dict:
    """Credit and refund the accepted (resellable) units, through billing's services.

    One credit note per invoice that billed the lines (the order is invoiced first when it was not),
    and one refund request per credit note: to the original payment method, or to store credit.
    """
    if not accepted_lines:
        return {}
    order = return_request.order
    wanted = {line.order_line_id: line.quantity_resellable for line in accepted_lines}

    def invoice_lines():
        found: dict[int, InvoiceLine] = {}
        # The latest invoice that billed each line carries the credit.
        for row in (
            InvoiceLine.objects.filter(order_line_id__in=list(wanted), invoice__order=order)
            .select_related("invoice")
            .order_by("invoice__issued_at", "invoice_id", "pk")
        ):
            found[row.order_line_id] = row
        return found

    billed = invoice_lines()
    if len(billed) < len(wanted):
        invoices.invoice_issue(order=order, actor=actor)
        billed = invoice_lines()
    by_invoice: dict[int, dict[int, int]] = {}
    invoice_of: dict[int, object] = {}
    for order_line_id, quantity in wanted.items():
        row = billed.get(order_line_id)
        if row is None:
            raise ConflictError(
                _("Line %(line)s of the return was never invoiced: it cannot be credited.") % {"line": order_line_id},
                code="line_not_invoiced",
            )
        by_invoice.setdefault(row.invoice_id, {})[row.pk] = quantity
        invoice_of[row.invoice_id] = row.invoice
    method = "store_credit" if return_request.method == ReturnMethod.STORE_CREDIT else "original"
    note = _("Return %(number)s") % {"number": return_request.number}
    settlement: dict[str, list[str]] = {"credit_notes": [], "refunds": []}
    for invoice_id, lines in sorted(by_invoice.items()):
        invoice = invoice_of[invoice_id]
        try:
            credit_note = invoices.credit_note_issue(
                invoice=invoice, actor=actor, reason="return", lines=lines, note=note
            )
        except ValidationError:
            # Earlier credits (goodwill, pricing) left less on the invoice than these units are worth:
            # credit what is left, never more.
            left = invoices.invoice_remaining(invoice)
            if left <= 0:
                settlement.setdefault("not_credited", []).append(invoice.number)
                continue
            credit_note = invoices.credit_note_issue(
                invoice=invoice, actor=actor, reason="return", amount=left, note=note
            )
        settlement["credit_notes"].append(credit_note.number)
        # Never more than what is still refundable (a goodwill refund may have paid part of it already).
        amount = min(credit_note.total_gross, refunds.refund_ceiling(order)["available"])
        if amount <= 0:
            settlement.setdefault("not_refunded", []).append(credit_note.number)
            continue
        refund = refunds.refund_request(
            order=order,
            actor=actor,
            amount=amount,
            reason="return",
            method=method,
            credit_note=credit_note,
            note=note,
        )
        settlement["refunds"].append(refund.number)
    return settlement


# --- the end of a return ---------------------------------------------------------------------------


@transaction.atomic
def return_close(*, request, actor, note: str = "") -> ReturnRequest:
    request = _lock_request(request)
    _run(request, "close", actor=actor)
    _save(request, actor=actor, reason=note or _("Closed"), fields=["status", "closed_at"])
    _order_event(request, OrderEventType.RETURN_CLOSED, actor=actor, reason=note)
    return request


@transaction.atomic
def return_refuse(*, request, actor, reason: str) -> ReturnRequest:
    """Refuse (before inspection), with the reason the customer is given. An exchange's hold stays
    for support to decide about the new line."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_TEXT:
        raise ValidationError(
            _("A reason is required to refuse a return."), code="reason_required", fields={"reason": [_("Required.")]}
        )
    request = _lock_request(request)
    _run(request, "refuse", actor=actor, reason=reason)
    _save(request, actor=actor, reason=reason, fields=["status", "refusal_reason", "refused_at"])
    _order_event(request, OrderEventType.RETURN_REFUSED, actor=actor, reason=reason)
    return request


@transaction.atomic
def return_cancel(*, request, actor, reason: str = "") -> ReturnRequest:
    request = _lock_request(request)
    _run(request, "cancel", actor=actor)
    _save(request, actor=actor, reason=reason or _("Canceled"), fields=["status", "canceled_at"])
    _order_event(request, OrderEventType.RETURN_CANCELED, actor=actor, reason=reason)
    return request


@transaction.atomic
def returns_merge_customers(*, keep, merged: list, actor, reason: str) -> list[str]:
    """Called by orders.identity.customer_merge: the merged records' returns follow their orders."""
    requests = list(ReturnRequest.objects.select_for_update().filter(customer__in=merged).order_by("pk"))
    for request in requests:
        request.customer = keep
    if requests:
        bulk_update_with_history(
            requests,
            ReturnRequest,
            ["customer"],
            default_user=actor,
            default_change_reason=f"Customer merged: {reason}",
        )
    return [request.number for request in requests]
