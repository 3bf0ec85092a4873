"""Every write to stock: receipts, adjustments, returns, reservations for orders, shipments,
incoming supply, cycle counts, sell windows and coverage alerts.

Lock order (the project's one, `oms.core.locks`): an order and its lines (taken by the orders
services that call in here), then that order's reservations by id, then stock rows by (product,
location), then incoming supply by (expected date, id). Two places depart from it: a receipt
against incoming supply locks the stock row and the supply before the supply's promises (the
supply's lock is what keeps that set of promises still), and a last-unit preemption takes the
losing reservations with SKIP LOCKED (it never waits on them) and then their stock row, after the
rows the allocation already holds.

Inventory sits below orders: it gets orders and their lines as arguments (their `pk`,
`channel_id`, `number`, `shipping_address`, lines' `product_id`, `quantity_open` …) and does not
query orders' tables; what else it must know of them (which orders may still give up their stock)
comes with the call.
"""

import datetime
import logging
import math
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from inventory import atp as atp_rules
from inventory.models import (
    AllocationConflict,
    ChannelStockSettings,
    CycleCount,
    CycleCountLine,
    IncomingSupply,
    Location,
    MovementReason,
    Product,
    Reservation,
    ReservationMode,
    ReservationState,
    SourcingDecision,
    StockAlert,
    StockItem,
    StockMovement,
    TransitTime,
)
from inventory.sourcing import (
    DEFAULT_DOMESTIC_TRANSIT_DAYS,
    DEFAULT_INTERNATIONAL_TRANSIT_DAYS,
    Candidate,
    LineNeed,
    Plan,
    lead_days,
    plan,
)
from inventory.stock import apply_change, ledger_write, locked_item, locked_items, reserve_with_rows
from oms.core.errors import ConflictError, ValidationError
from oms.core.history import stamp
from oms.core.permissions import require_perm

logger = logging.getLogger("inventory")

OPTIMISTIC_ATTEMPTS = 3


def _positive(quantity, field: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError("A whole number of at least 1 is required.", fields={field: ["At least 1."]})
    return quantity


# --- receipts, adjustments, returns ------------------------------------------------------------


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
def stock_adjust(
    *, product: Product, location: Location, delta: int, actor, note: str, reference: str = ""
) -> StockItem:
    """A manual correction of on hand (own permission, reason required). Never below what is reserved."""
    require_perm(actor, "inventory.adjust_stock", "adjust stock")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValidationError("A non-zero whole number is required.", fields={"delta": ["Non-zero integer."]})
    if not (note or "").strip():
        raise ValidationError("A reason is required for a stock adjustment.", fields={"note": ["Required."]})
    item = locked_item(product_id=product.pk, location_id=location.pk)
    if item.on_hand + delta < item.reserved:
        raise ConflictError(
            f"{product.sku} at {location.code}: on hand would fall to {item.on_hand + delta}, below the "
            f"{item.reserved} unit(s) reserved for orders.",
            code="adjustment_below_reserved",
        )
    apply_change(
        item=item, on_hand_delta=delta, reason=MovementReason.ADJUSTMENT, actor=actor, reference=reference, note=note
    )
    return item


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


# --- orders: sourcing and reservations ------------------------------------------------------------


def _channel_settings(channel_id: int) -> ChannelStockSettings:
    found = ChannelStockSettings.objects.filter(channel_id=channel_id).first()
    return found or ChannelStockSettings(channel_id=channel_id)


def channel_reservation_mode(*, channel_id: int) -> str:
    """When the channel's orders reserve stock, unless a product says otherwise."""
    return _channel_settings(channel_id).reservation_mode


def reservation_mode_for(*, product: Product, channel_id: int) -> str:
    return product.reservation_mode or channel_reservation_mode(channel_id=channel_id)


def _open_reserved_by_line(order_id: int, line_ids) -> dict[int, int]:
    rows = (
        Reservation.objects.filter(order_id=order_id, order_line_id__in=list(line_ids), state=ReservationState.ACTIVE)
        .values("order_line_id")
        .annotate(open=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))
    )
    return {row["order_line_id"]: row["open"] or 0 for row in rows}


def reservations_release_excess(*, order, actor, lines, reason: str = "") -> int:
    """Release what the lines hold reserved beyond their open (unshipped, not canceled) units."""
    reserved = _open_reserved_by_line(order.pk, [line.pk for line in lines])
    excess = {
        line.pk: reserved.get(line.pk, 0) - line.quantity_open
        for line in lines
        if reserved.get(line.pk, 0) > line.quantity_open
    }
    if not excess:
        return 0
    return reservation_units_release(order=order, actor=actor, quantities=excess, reason=reason)


def _needs(order, lines) -> list[LineNeed]:
    reserved = _open_reserved_by_line(order.pk, [line.pk for line in lines])
    needs = []
    for line in lines:
        if line.product_id is None:
            continue
        missing = line.quantity - line.quantity_canceled - line.quantity_shipped - reserved.get(line.pk, 0)
        if missing > 0:
            needs.append(
                LineNeed(
                    line_id=line.pk,
                    line_number=line.line_number,
                    sku=line.sku,
                    product_id=line.product_id,
                    quantity=missing,
                )
            )
    return needs


def _stock_rows(product_ids) -> dict[tuple[int, int], StockItem]:
    """The stock rows of these products at active locations, by (product, location). No lock."""
    return {
        (item.product_id, item.location_id): item
        for item in StockItem.objects.filter(product_id__in=list(product_ids), location__is_active=True)
    }


def _candidates(*, order, needs: list[LineNeed], rules, now, items: dict, locations: list) -> list[Candidate]:
    product_ids = {need.product_id for need in needs}
    country = (order.shipping_address or {}).get("country", "")
    simple = all(rules.is_simple(product_id=p, location_id=loc.pk) for p in product_ids for loc in locations)
    reserved = {} if simple else atp_rules.reserved_by_channel(stock_item_ids=[item.pk for item in items.values()])
    transit = {t.location_id: t for t in TransitTime.objects.filter(country=country)} if country else {}
    now_local = timezone.localtime(now)
    candidates = []
    for location in locations:
        available = {}
        excluded = []
        for product_id in product_ids:
            if rules.excludes(product_id=product_id, location=location):
                excluded.append(product_id)
                continue
            item = items.get((product_id, location.pk))
            if item is not None:
                available[product_id] = atp_rules.available_for_channel(
                    item=item, location=location, rules=rules, reserved=reserved
                )
        if not available and not excluded:
            continue  # holds none of these products: not a candidate worth listing
        route = transit.get(location.pk)
        if route is not None:
            transit_days = route.days
        elif country and location.country.code == country:
            transit_days = DEFAULT_DOMESTIC_TRANSIT_DAYS
        else:
            transit_days = DEFAULT_INTERNATIONAL_TRANSIT_DAYS
        cost = (
            route.cost_per_parcel
            if route is not None and route.cost_per_parcel is not None
            else (location.cost_per_parcel)
        )
        reason = ""
        pickup_id = getattr(order, "pickup_location_id", None)
        if pickup_id and location.pk != pickup_id:
            reason = "the customer collects the order at another store"
        elif not pickup_id and not location.can_ship:
            reason = "a store that does not ship to customers"
        elif excluded and len(excluded) == len(product_ids):
            reason = f"its stock is kept from channel {order.channel.code}"
        candidates.append(
            Candidate(
                location_id=location.pk,
                code=location.code,
                name=location.name,
                priority=location.priority,
                lead_days=lead_days(
                    handling_days=location.handling_days,
                    cutoff=location.cutoff_time,
                    now_local=now_local,
                    transit_days=transit_days,
                ),
                cost=Decimal(cost).quantize(Decimal("0.01")),
                available=available,
                excluded_because=reason,
            )
        )
    return candidates


def _reserve_plan(
    *, order, the_plan: Plan, rules, mode: str, actor, items: dict, locations: dict, locked: bool
) -> bool:
    """Reserve every allocation of the plan, or nothing (the caller's savepoint). False on a lost race.

    `items` are the stock rows the plan was made from (locked ones when `locked`)."""
    by_item: dict[tuple[int, int], list] = defaultdict(list)
    for need, candidate, quantity in the_plan.allocations:
        by_item[(need.product_id, candidate.location_id)].append((need, quantity))
    for key in sorted(by_item):  # fixed lock order: (product, location)
        product_id, location_id = key
        item = items[key]
        quantity = sum(q for _, q in by_item[key])
        if not locked and rules.is_simple(product_id=product_id, location_id=location_id):
            if not stock_reserve(order=order, item=item, parts=by_item[key], actor=actor, mode=mode):
                return False
        else:
            if not locked:
                item = locked_item(product_id=product_id, location_id=location_id)
            reserved = atp_rules.reserved_by_channel(stock_item_ids=[item.pk])
            location = locations[location_id]
            if atp_rules.available_for_channel(item=item, location=location, rules=rules, reserved=reserved) < quantity:
                return False
            StockItem.objects.filter(pk=item.pk).update(reserved=F("reserved") + quantity)
            item.reserved += quantity
            _reservation_rows(order=order, item=item, parts=by_item[key], mode=mode, actor=actor)
    return True


def stock_reserve(
    *, order, item: StockItem, parts: list[tuple[LineNeed, int]], actor, mode: str = ReservationMode.SOFT
) -> bool:
    """Reserve units of order lines on one stock row if they are free beyond safety stock.

    One statement (see `stock.reserve_with_rows`): the conditional UPDATE and, only when it
    matched, the reservation and ledger rows. False: nothing was written. For rows without
    channel shares or fences (`atp.ChannelRules.is_simple`); the others go through `stock_allocate`.
    """
    return reserve_with_rows(
        item_id=item.pk,
        order_id=order.pk,
        channel_id=order.channel_id,
        parts=[(need.line_id, quantity) for need, quantity in parts],
        mode=mode,
        actor_id=actor.pk if actor is not None else None,
        reference=order.number,
    )


def _reservation_rows(*, order, item: StockItem, parts, mode: str, actor) -> None:
    reservations = [
        Reservation(
            order_id=order.pk,
            order_line_id=need.line_id,
            channel_id=order.channel_id,
            product_id=item.product_id,
            location_id=item.location_id,
            stock_item=item,
            quantity=quantity,
            mode=mode,
        )
        for need, quantity in parts
    ]
    Reservation.objects.bulk_create(reservations)
    StockMovement.objects.bulk_create(
        [
            StockMovement(
                stock_item=item,
                reserved_delta=quantity,
                reason=MovementReason.RESERVATION,
                actor=actor,
                order_id=order.pk,
                order_line_id=need.line_id,
                reference=order.number,
            )
            for need, quantity in parts
        ]
    )


def _promise_from_supply(*, order, backorders, actor, mode: str, products: dict[int, Product]):
    """Back-ordered units promised against incoming supply (pre-orders within their limit).

    Returns (promises [(need, supply, qty)], shortages [(need, qty)]).
    """
    promises, shortages = [], []
    for need, quantity in backorders:
        product = products[need.product_id]
        left = quantity
        if product.preorder_enabled and product.preorder_limit:
            promised_total = (
                Reservation.objects.filter(
                    product_id=product.pk, supply__isnull=False, state=ReservationState.ACTIVE
                ).aggregate(n=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))["n"]
                or 0
            )
            left = min(left, max(0, product.preorder_limit - promised_total))
        for supply in (
            IncomingSupply.objects.select_for_update()
            .filter(product_id=need.product_id, status=IncomingSupply.Status.OPEN)
            .order_by("expected_at", "pk")
        ):
            if left <= 0:
                break
            take = min(left, supply.quantity_unpromised)
            if take <= 0:
                continue
            supply.quantity_promised += take
            supply.save(update_fields=["quantity_promised"])
            Reservation.objects.create(
                order_id=order.pk,
                order_line_id=need.line_id,
                channel_id=order.channel_id,
                product_id=need.product_id,
                location_id=supply.location_id,
                supply=supply,
                quantity=take,
                mode=mode,
            )
            promises.append((need, supply, take))
            left -= take
        short = quantity - sum(q for n, _, q in promises if n is need)
        if short > 0:
            shortages.append((need, short))
    return promises, shortages


def stock_allocate(
    *, order, lines, actor, now=None, products: dict | None = None, preemptible_orders=None
) -> SourcingDecision | None:
    """Choose locations for the order's unreserved quantities and reserve them; explain the choice.

    Runs inside the orders service's transaction, after it locked the order and its lines. First
    optimistic (a conditional UPDATE per chosen stock row; a lost race re-plans on fresh numbers),
    then, if the stock keeps moving, pessimistic: every candidate row locked in (product, location)
    order and the plan made on exact numbers. What no location has is first taken from
    lower-priority channels' soft reservations of `preemptible_orders` (see `preempt_for`), then
    promised against incoming supply, or reported as shortages (`decision.shortages`) for the
    caller to hold the order.
    """
    now = now or timezone.now()
    needs = _needs(order, lines)
    if not needs:
        return None
    settings = _channel_settings(order.channel_id)
    wanted = {n.product_id for n in needs}
    if products is None or not wanted <= set(products):
        products = {p.pk: p for p in Product.objects.filter(pk__in=wanted)}
    mode = ReservationMode.SOFT
    rules = atp_rules.channel_rules(channel_id=order.channel_id, product_ids=products)
    locations = {location.pk: location for location in Location.objects.filter(is_active=True)}
    the_plan = None
    for _attempt in range(OPTIMISTIC_ATTEMPTS):
        items = _stock_rows(wanted)
        candidates = _candidates(
            order=order, needs=needs, rules=rules, now=now, items=items, locations=list(locations.values())
        )
        the_plan = plan(lines=needs, candidates=candidates, strategy=settings.sourcing_strategy)
        savepoint = transaction.savepoint()
        if _reserve_plan(
            order=order,
            the_plan=the_plan,
            rules=rules,
            mode=mode,
            actor=actor,
            items=items,
            locations=locations,
            locked=False,
        ):
            transaction.savepoint_commit(savepoint)
            break
        transaction.savepoint_rollback(savepoint)
    else:
        locked = locked_items([(p, location_id) for p in wanted for location_id in locations])
        candidates = _candidates(
            order=order, needs=needs, rules=rules, now=now, items=locked, locations=list(locations.values())
        )
        the_plan = plan(lines=needs, candidates=candidates, strategy=settings.sourcing_strategy)
        if not _reserve_plan(
            order=order,
            the_plan=the_plan,
            rules=rules,
            mode=mode,
            actor=actor,
            items=locked,
            locations=locations,
            locked=True,
        ):
            raise RuntimeError("A plan made under lock could not be reserved")  # cannot happen: rows are locked

    backorders, losers = [], set()
    for need, quantity in the_plan.backorders:
        won = preempt_for(order=order, need=need, quantity=quantity, actor=actor, preemptible_orders=preemptible_orders)
        losers |= {loser.order_id for loser, _ in won}
        short = quantity - sum(units for _, units in won)
        if short > 0:
            backorders.append((need, short))
    promises, shortages = _promise_from_supply(
        order=order, backorders=backorders, actor=actor, mode=mode, products=products
    )
    by_code = {c.code: c for c in candidates}
    decision = SourcingDecision.objects.create(
        order=order,
        strategy=the_plan.strategy,
        summary=the_plan.summary(),
        allocations=[
            {"line": need.line_number, "sku": need.sku, "location": candidate.code, "quantity": quantity}
            for need, candidate, quantity in the_plan.allocations
        ],
        candidates=[
            {
                "location": c.code,
                "name": c.name,
                "lead_days": c.lead_days,
                "cost": str(c.cost),
                "available": {products[p].sku: n for p, n in c.available.items()},
                "chosen": c.code in {x.code for x in the_plan.chosen},
                "rejected_because": the_plan.rejected.get(c.code, ""),
            }
            for c in by_code.values()
        ],
        backorders=[
            {
                "line": need.line_number,
                "sku": need.sku,
                "quantity": qty,
                "supply": supply.reference,
                "promised_for": supply.expected_at.isoformat(),
            }
            for need, supply, qty in promises
        ]
        + [
            {"line": need.line_number, "sku": need.sku, "quantity": qty, "supply": None, "promised_for": None}
            for need, qty in shortages
        ],
        actor=actor,
        created_at=now,
    )
    decision.promises = promises
    decision.losers = sorted(losers)
    decision.shortages = shortages
    logger.info("sourced: %s", decision.summary, extra={"order_number": order.number})
    return decision


def reservations_release(*, order, actor, line_ids=None, reason: str = "") -> int:
    """Release the order's open reservations (all, or those of some lines). Returns units released."""
    qs = Reservation.objects.filter(order_id=order.pk, state=ReservationState.ACTIVE)
    if line_ids is not None:
        qs = qs.filter(order_line_id__in=list(line_ids))
    open_units = {
        row["order_line_id"]: row["units"]
        for row in qs.values("order_line_id").annotate(
            units=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released"))
        )
        if row["units"]
    }
    if not open_units:
        return 0
    return reservation_units_release(order=order, actor=actor, quantities=open_units, reason=reason)


def reservation_units_release(
    *, order, actor, quantities: dict[int, int], location_id: int | None = None, reason: str = ""
) -> int:
    """Release up to `quantities[line id]` units of the order's open reservations (at one location
    first when given, then anywhere). Returns the units released."""
    reservations = list(
        Reservation.objects.select_for_update()
        .filter(order_id=order.pk, order_line_id__in=list(quantities), state=ReservationState.ACTIVE)
        .order_by("pk")
    )
    if location_id is not None:
        reservations.sort(key=lambda r: r.location_id != location_id)
    items = locked_items({(r.product_id, r.location_id) for r in reservations if r.stock_item_id})
    supplies = {
        s.pk: s
        for s in IncomingSupply.objects.select_for_update()
        .filter(pk__in={r.supply_id for r in reservations if r.supply_id})
        .order_by("expected_at", "pk")
    }
    left = dict(quantities)
    released = 0
    now = timezone.now()
    for reservation in reservations:
        units = min(left.get(reservation.order_line_id, 0), reservation.quantity_open)
        if units <= 0:
            continue
        if reservation.stock_item_id:
            apply_change(
                item=items[(reservation.product_id, reservation.location_id)],
                reserved_delta=-units,
                reason=MovementReason.RELEASE,
                actor=actor,
                order_id=order.pk,
                order_line_id=reservation.order_line_id,
                reference=order.number,
                note=reason,
            )
        else:
            supply = supplies[reservation.supply_id]
            supply.quantity_promised -= units
            supply.save(update_fields=["quantity_promised"])
        reservation.quantity_released += units
        if reservation.quantity_open == 0:
            reservation.state = ReservationState.RELEASED
            reservation.closed_at = now
        reservation.save(update_fields=["quantity_released", "state", "closed_at"])
        left[reservation.order_line_id] -= units
        released += units
    return released


def reserve_at_location(*, order, line_id: int, product_id: int, location_id: int, quantity: int, actor) -> bool:
    """Reserve (hard) units of one line at one given location, beyond safety stock; False if not free.

    For a substitute chosen at the picking location, where sourcing has nothing left to decide."""
    quantity = _positive(quantity)
    item = StockItem.objects.filter(product_id=product_id, location_id=location_id).first()
    if item is None:
        return False
    item = locked_item(product_id=product_id, location_id=location_id)
    if item.on_hand - item.reserved - item.safety_stock < quantity:
        return False
    apply_change(
        item=item,
        reserved_delta=quantity,
        reason=MovementReason.RESERVATION,
        actor=actor,
        order_id=order.pk,
        order_line_id=line_id,
        reference=order.number,
    )
    Reservation.objects.create(
        order_id=order.pk,
        order_line_id=line_id,
        channel_id=order.channel_id,
        product_id=product_id,
        location_id=location_id,
        stock_item=item,
        quantity=quantity,
        mode=ReservationMode.HARD,
    )
    return True


def stock_write_off_short_pick(
    *, product_id: int, location_id: int, quantity: int, actor, order=None, order_line_id=None, reference: str = ""
) -> int:
    """A picker did not find units the system believed were there: take them off hand.

    Units other orders still hold reserved are never written off (the counters stay consistent and
    their own pickers will report what they miss); a cycle count settles the rest. Returns units
    written off."""
    item = StockItem.objects.filter(product_id=product_id, location_id=location_id).first()
    if item is None:
        return 0
    item = locked_item(product_id=product_id, location_id=location_id)
    units = min(quantity, item.on_hand - item.reserved)
    if units <= 0:
        return 0
    apply_change(
        item=item,
        on_hand_delta=-units,
        reason=MovementReason.SHORT_PICK,
        actor=actor,
        order_id=order.pk if order is not None else None,
        order_line_id=order_line_id,
        reference=reference,
    )
    return units


def stock_consume(
    *,
    order,
    actor,
    quantities: dict[int, int],
    reference: str = "",
    location_id: int | None = None,
    lines=None,
) -> list[tuple[int, int, int]]:
    """Shipped units leave stock: reservations are consumed (on hand and reserved both go down).

    With `location_id` (a shipment's location) only reservations there are consumed. `lines` are the
    order lines of `quantities` as the caller holds them (`pk`, `product_id`, `line_number`, `sku`):
    units of a stock-managed line that no reservation covers are refused, naming the line; a line
    without a product (a service, a gift card) ships without stock. Without `lines`, the lines this
    app reserved for before are the stock-managed ones (inventory does not read order lines).
    Returns [(line_id, location_id, quantity)].
    """
    reservations = Reservation.objects.select_for_update().filter(
        order_id=order.pk,
        order_line_id__in=list(quantities),
        state=ReservationState.ACTIVE,
        stock_item__isnull=False,
    )
    if location_id is not None:
        reservations = reservations.filter(location_id=location_id)
    reservations = list(reservations.order_by("pk"))
    items = locked_items({(r.product_id, r.location_id) for r in reservations})
    moved = []
    left = dict(quantities)
    now = timezone.now()
    for reservation in reservations:
        take = min(left.get(reservation.order_line_id, 0), reservation.quantity_open)
        if take <= 0:
            continue
        apply_change(
            item=items[(reservation.product_id, reservation.location_id)],
            on_hand_delta=-take,
            reserved_delta=-take,
            reason=MovementReason.SHIPMENT,
            actor=actor,
            order_id=order.pk,
            order_line_id=reservation.order_line_id,
            reference=reference or order.number,
        )
        reservation.quantity_consumed += take
        if reservation.quantity_open == 0:
            reservation.state = ReservationState.CONSUMED
            reservation.closed_at = now
        reservation.save(update_fields=["quantity_consumed", "state", "closed_at"])
        left[reservation.order_line_id] -= take
        moved.append((reservation.order_line_id, reservation.location_id, take))
    unreserved = {line_id: qty for line_id, qty in left.items() if qty > 0}
    if unreserved:
        _refuse_unreserved(order=order, unreserved=unreserved, lines=lines)
    return moved


def _refuse_unreserved(*, order, unreserved: dict[int, int], lines) -> None:
    """Refuse shipping units of a stock-managed line that no reservation covers (409 `not_reserved`)."""
    if lines is not None:
        named = {line.pk: f"Line {line.line_number} ({line.sku})" for line in lines if line.product_id is not None}
    else:
        named = {
            line_id: f"Line id {line_id} ({sku})"
            for line_id, sku in Reservation.objects.filter(order_id=order.pk, order_line_id__in=list(unreserved))
            .order_by("order_line_id")
            .values_list("order_line_id", "product__sku")
            .distinct()
        }
    for line_id, qty in unreserved.items():
        if line_id in named:
            raise ConflictError(
                f"{named[line_id]} has no reservation for {qty} unit(s): allocate it first.", code="not_reserved"
            )


# --- last-unit conflicts between channels ------------------------------------------------------


def preempt_for(
    *, order, need: LineNeed, quantity: int, actor, preemptible_orders=None
) -> list[tuple[Reservation, int]]:
    """Take units soft-reserved by lower-priority channels' orders that may still give them up.

    Which orders may is the caller's rule, not inventory's: `preemptible_orders` are their ids (a
    list or a subquery, such as the orders confirmed and not yet in preparation), read when the
    preemption runs; None: no order may. Rows another transaction is working on are skipped (SKIP
    LOCKED), so this never waits on, or deadlocks with, the losing order's own services. Returns
    [(losing reservation, units)]; each conflict is recorded. The losing orders must then be
    re-sourced by the caller after commit.
    """
    if preemptible_orders is None:
        return []
    my_priority = _channel_settings(order.channel_id).priority
    lower = ChannelStockSettings.objects.filter(priority__gt=my_priority).values_list("channel_id", flat=True)
    candidates = list(
        Reservation.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            product_id=need.product_id,
            state=ReservationState.ACTIVE,
            mode=ReservationMode.SOFT,
            stock_item__isnull=False,
            channel_id__in=list(lower),
            order_id__in=preemptible_orders,
        )
        .exclude(order_id=order.pk)
        .order_by("-created_at", "-pk")  # the newest promise gives way first
    )
    taken = []
    left = quantity
    for loser in candidates:
        if left <= 0:
            break
        units = min(left, loser.quantity_open)
        item = locked_item(product_id=loser.product_id, location_id=loser.location_id)
        loser.quantity_released += units
        if loser.quantity_open == 0:
            loser.state = ReservationState.RELEASED
            loser.closed_at = timezone.now()
        loser.save(update_fields=["quantity_released", "state", "closed_at"])
        # The units change hands: reserved stays the same on the row, two ledger rows say who.
        ledger_write(
            item=item,
            reserved_delta=-units,
            reason=MovementReason.RELEASE,
            actor=actor,
            order_id=loser.order_id,
            order_line_id=loser.order_line_id,
            reference=order.number,
            note="Last-unit conflict: lost to a higher-priority channel",
        )
        ledger_write(
            item=item,
            reserved_delta=units,
            reason=MovementReason.RESERVATION,
            actor=actor,
            order_id=order.pk,
            order_line_id=need.line_id,
            reference=order.number,
            note="Last-unit conflict: won on channel priority",
        )
        Reservation.objects.create(
            order_id=order.pk,
            order_line_id=need.line_id,
            channel_id=order.channel_id,
            product_id=need.product_id,
            location_id=loser.location_id,
            stock_item=item,
            quantity=units,
            mode=ReservationMode.SOFT,
        )
        AllocationConflict.objects.create(
            stock_item=item,
            winner_order=order,
            loser_order_id=loser.order_id,
            quantity=units,
            reason=f"Channel priority {my_priority} beats the losing order's channel; newest promise gives way.",
        )
        taken.append((loser, units))
        left -= units
    return taken


# --- cycle counts --------------------------------------------------------------------------------


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


# --- sell windows and coverage ----------------------------------------------------------------


@transaction.atomic
def products_switch_off_expired(*, actor, now=None) -> list[str]:
    """Products past their sellable-until date stop being sellable; each switch is logged."""
    now = now or timezone.now()
    expired = list(Product.objects.select_for_update().filter(is_active=True, sellable_until__lte=now))
    for product in expired:
        product.is_active = False
        stamp(product, actor=actor, reason="Sell window ended")
        product.save(update_fields=["is_active"])
        StockAlert.objects.get_or_create(
            product=product,
            kind=StockAlert.Kind.SELL_WINDOW_ENDED,
            resolved_at=None,
            defaults={"message": f"{product.sku} stopped being sellable on {product.sellable_until:%Y-%m-%d}."},
        )
        logger.info("product switched off: %s (sellable until %s)", product.sku, product.sellable_until.isoformat())
    return [p.sku for p in expired]


@transaction.atomic
def coverage_alerts_refresh(*, window_days: int = 28, now=None) -> list[StockAlert]:
    """Flag key SKUs whose sellable stock covers fewer days than their threshold at recent sales pace."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=window_days)
    opened = []
    for product in Product.objects.filter(is_key=True, is_active=True):
        sold = -(
            StockMovement.objects.filter(
                stock_item__product=product, reason=MovementReason.SHIPMENT, created_at__gte=since
            ).aggregate(n=Sum("on_hand_delta"))["n"]
            or 0
        )
        stock = StockItem.objects.filter(product=product).aggregate(free=Sum(F("on_hand") - F("reserved")))["free"] or 0
        per_day = Decimal(sold) / window_days
        cover = Decimal(math.inf) if per_day == 0 else (Decimal(stock) / per_day).quantize(Decimal("0.1"))
        open_alert = StockAlert.objects.filter(
            product=product, kind=StockAlert.Kind.LOW_COVERAGE, resolved_at__isnull=True
        ).first()
        if per_day > 0 and cover < product.coverage_alert_days:
            if open_alert is None:
                opened.append(
                    StockAlert.objects.create(
                        product=product,
                        kind=StockAlert.Kind.LOW_COVERAGE,
                        days_of_cover=cover,
                        message=f"{product.sku}: {stock} unit(s) cover {cover} days at {per_day:.1f}/day "
                        f"(threshold {product.coverage_alert_days} days).",
                    )
                )
            else:
                open_alert.days_of_cover = cover
                open_alert.save(update_fields=["days_of_cover"])
        elif open_alert is not None:
            open_alert.resolved_at = now
            open_alert.save(update_fields=["resolved_at"])
    return opened


# --- documents from a 3PL / WMS (the inventory API) ---------------------------------------------


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
