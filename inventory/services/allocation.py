"""Reserving stock for orders: choose locations for the unreserved quantities (optimistic first, then
under lock), reserve them, and explain the choice; a hard reservation at one given location.

Runs inside the orders service's transaction, after it locked the order and its lines; stock rows
are taken in (product, location) order. What no location has goes to `backorders`.
"""

import logging
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory import atp as atp_rules
from inventory.models import (
    Location,
    MovementReason,
    Product,
    Reservation,
    ReservationMode,
    SourcingDecision,
    StockItem,
    StockMovement,
    TransitTime,
)
from inventory.services._common import _channel_settings, _open_reserved_by_line, _positive
from inventory.services.backorders import _promise_from_supply, preempt_for
from inventory.sourcing import (
    DEFAULT_DOMESTIC_TRANSIT_DAYS,
    DEFAULT_INTERNATIONAL_TRANSIT_DAYS,
    Candidate,
    LineNeed,
    Plan,
    lead_days,
    plan,
)
from inventory.stock import apply_change, locked_item, locked_items, reserve_with_rows

logger = logging.getLogger("inventory")


OPTIMISTIC_ATTEMPTS = 3


def channel_reservation_mode(*, channel_id: int) -> str:
    """When the channel's orders reserve stock, unless a product says otherwise."""
    return _channel_settings(channel_id).reservation_mode


def reservation_mode_for(*, product: Product, channel_id: int) -> str:
    return product.reservation_mode or channel_reservation_mode(channel_id=channel_id)


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
